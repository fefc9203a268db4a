"""Ids that change when an item moves, ids that do not, and the organiser's other calendars.

concepts/outlook-immutable-id.md (microsoftgraph/microsoft-graph-docs-contrib): an Outlook item's default
(REST) id changes when the item is moved to another folder — a calendar is a folder, Deleted Items is one —
and its immutable id does not, "so long as the item stays in the same mailbox". A request asks for
immutable ids with `Prefer: IdType="ImmutableId"`, which "only applies to the request it is included
with": every id in that answer is immutable, without it every id is the default one. A subscription
created with the header sends immutable ids in its notifications; one created without keeps the default
form ("to switch existing subscriptions ... you must delete and recreate them"). Ids are case-sensitive.
A request may name an item by either form (translateExchangeIds' page migrates stored ids, it does not say
old ids stop working, only a move does); an id from before a move answers 404 ErrorItemNotFound.

Here an event's key in `calendars` is its immutable id; `_rest` holds its current default id.

Which events `/users/{id}/events`, its subscriptions and `calendarView` (and its delta) cover when the
organiser has several calendars is not settled by the pages: user-list-events.md says "the user's mailbox",
while the calendar view and `/calendar/events` are the default calendar's, and users report `/events`
returning the default calendar only. `events_cover` offers both: "default" (the default calendar only:
moving an event out of it looks like a deletion to a subscription and to a delta read, and its later
changes notify nobody) and "mailbox" (every calendar: a move is an update). A GET by id reaches any event
of the mailbox either way (event-get.md: `/users/{id}/events/{id}`).

translateExchangeIds: api/user-translateexchangeids.md (up to 1000 ids of one mailbox, all of one source
type; Application permission User.Read.All or User.ReadWrite.All) and resources/convertidresult.md (a
failed conversion has `errorDetails` and no `targetId`).
"""

from __future__ import annotations

import base64
import contextvars
import os
import re

from ..base import HttpError, Request, Response
from .model import READ_USERS, Event

IMMUTABLE_IDS = 'IdType="ImmutableId"'  # the preference, as a request sends it
IMMUTABLE_PREFER = re.compile(r'IdType\s*=\s*"?ImmutableId"?', re.IGNORECASE)
EVENTS_COVER = ("default", "mailbox")
TRANSLATE_LIMIT = 1000
ID_TYPES = ("restId", "restImmutableEntryId")  # the two Graph forms; entryId/ewsId are not simulated
DEFAULT_CALENDAR = ""
_asked_immutable = contextvars.ContextVar("asked_immutable", default=True)  # the Python API: immutable ids


def immutable_id() -> str:
    return "AAkALgAA" + base64.urlsafe_b64encode(os.urandom(96)).decode()


def rest_id() -> str:
    return "AAMkAD" + base64.urlsafe_b64encode(os.urandom(104)).decode()


class Folders:
    """Default and immutable ids, calendars and Deleted Items of each mailbox."""

    events_cover = "default"

    def _folders_init(self) -> None:
        self._rest: dict[str, str] = {}       # immutable id -> current default id
        self._by_rest: dict[str, str] = {}    # current default id -> immutable id
        self.user_calendars: dict[str, dict[str, str]] = {}  # user id -> calendar id -> name
        self.id_requests = {"immutable": 0, "default": 0}    # event requests by the id form they asked for

    # -- per request: which form the answer's ids take

    def ids_as_asked(self, req: Request, call):
        """Run `call` with the ids of its answer in the form `req` asks for."""
        immutable = bool(IMMUTABLE_PREFER.search(",".join(req.headers.get_all("Prefer") or [])))
        if "/events" in req.path.lower() or "calendarview" in req.path.lower():
            with self.lock:
                self.id_requests["immutable" if immutable else "default"] += 1
        token = _asked_immutable.set(immutable)
        try:
            return call()
        finally:
            _asked_immutable.reset(token)

    def shown_id(self, key: str, immutable: bool | None = None) -> str:
        """An event's id as this answer (or a subscription, `immutable`) shows it."""
        if immutable is None:
            immutable = _asked_immutable.get()
        if immutable or not key:
            return key
        if key not in self._rest:
            self._rest[key] = rest_id()
            self._by_rest[self._rest[key]] = key
        return self._rest[key]

    def event_key(self, some_id: str) -> str:
        """The immutable id of an event named by either form (an old default id names nothing)."""
        return self._by_rest.get(some_id, some_id)

    def _moved(self, ev: Event) -> None:
        """A move to another folder: a new default id for the event and its occurrences; the old one is gone."""
        for key in [ev.id] + [k for k, o in self.calendars[ev.mailbox].items() if o.fields.get("seriesMasterId") == ev.id]:
            old = self._rest.pop(key, None)
            self._by_rest.pop(old, None)

    # -- what the lists, views and subscriptions of /events cover

    def covered(self, ev: Event) -> bool:
        return self.events_cover == "mailbox" or ev.calendar == DEFAULT_CALENDAR

    # -- Outlook: the organiser's calendars

    def outlook_add_calendar(self, mailbox: str, name: str) -> str:
        """Another calendar of the user (calendar.md); its id (calendar ids never change)."""
        user = self._must_user(mailbox)
        with self.lock:
            calendar_id = "AAMkADcal" + base64.urlsafe_b64encode(os.urandom(24)).decode()
            self.user_calendars.setdefault(user.id, {})[calendar_id] = name
            return calendar_id

    def outlook_move(self, mailbox: str, event_id: str, calendar_id: str = DEFAULT_CALENDAR) -> dict:
        """The organiser drags the event into another of their calendars (or back to the default one)."""
        if self.events_cover not in EVENTS_COVER:
            raise ValueError(f"events_cover must be one of {EVENTS_COVER}")
        user = self._must_user(mailbox)
        with self.lock:
            if calendar_id != DEFAULT_CALENDAR and calendar_id not in self.user_calendars.get(user.id, {}):
                raise ValueError(f"{mailbox} has no calendar {calendar_id}")
            ev = self._event_or_404(user, event_id)
            was_listed = self.covered(ev)
            will_be_listed = self.events_cover == "mailbox" or calendar_id == DEFAULT_CALENDAR
            ev.seq = self._next_seq()
            if was_listed and not will_be_listed:
                self._changed(ev, "deleted")  # it leaves what the subscription and the view cover, under its id then
            self._moved(ev)
            ev.calendar = calendar_id
            if self.covered(ev):
                self._changed(ev, "updated" if was_listed else "created")
            return self._render(ev, expand="")

    def outlook_restore(self, mailbox: str, event_id: str) -> dict:
        """The organiser restores a deleted event from Deleted Items: deleting moved it there (event-delete.md
        offers `permanentDelete` for the other kind), restoring moves it back, so it keeps its immutable id,
        iCalUId and properties (transactionId and our tag included) and gets a new default id; subscriptions
        see it created. The cancellation its deletion mailed is not taken back."""
        user = self._must_user(mailbox)
        with self.lock:
            key = self.event_key(event_id)
            if key not in self._removed[user.id]:
                raise ValueError(f"{mailbox} has no deleted event {event_id}")
            _, ev = self._removed[user.id].pop(key)
            self._moved(ev)
            self.calendars[user.id][ev.id] = ev
            ev.seq = self._next_seq()
            self._changed(ev, "created")
            return self._render(ev, expand="")

    def rest_id_of(self, mailbox: str, event_id: str) -> str:
        """The event's default id now (what an app not asking for immutable ids holds)."""
        user = self._must_user(mailbox)
        with self.lock:
            return self.shown_id(self._event_or_404(user, event_id).id, immutable=False)

    # -- translateExchangeIds

    def _translate_ids(self, req: Request) -> Response:
        _, user = self._mailbox(req, READ_USERS)
        data = req.json()
        ids, source, target = (data.get(k) for k in ("inputIds", "sourceIdType", "targetIdType"))
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise HttpError(400, "ErrorInvalidParameter", "inputIds must be a non-empty collection of strings.")
        if len(ids) > TRANSLATE_LIMIT:
            raise HttpError(400, "ErrorInvalidParameter", f"Maximum size of inputIds is {TRANSLATE_LIMIT}.")
        for value in (source, target):
            if value not in ID_TYPES:
                raise HttpError(400, "ErrorInvalidParameter", f"The exchangeIdFormat '{value}' is not supported.")
        out = []
        with self.lock:
            for some_id in ids:
                key = self.event_key(some_id) if source == "restId" else some_id
                ev = self.calendars[user.id].get(key)
                if ev is None or (source == "restId" and some_id == key):
                    out.append({"sourceId": some_id, "errorDetails": {
                        "code": "ErrorItemNotFound", "message": "The specified object was not found in the store."}})
                else:
                    out.append({"sourceId": some_id, "targetId": self.shown_id(ev.id, target == "restImmutableEntryId")})
        return Response(200, {"@odata.context": f"{self.graph_url}/$metadata#Collection(microsoft.graph.convertIdResult)",
                              "value": out})
