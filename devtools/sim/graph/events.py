"""Events: api-reference/v1.0/resources/event.md, api/user-post-events.md, event-get.md, user-list-events.md,
event-update.md, event-cancel.md, event-delete.md, user-list-calendarview.md; the values Exchange
gives back (zone names, change keys, HTML documents) come from exchange.py.
"""

from __future__ import annotations

import html
import re
import secrets
from datetime import datetime
from urllib.parse import quote, urlencode

from ..base import HttpError, Request, Response, utcnow
from .folders import immutable_id
from .exchange import exchange_html, new_change_key, teams_meeting, with_teams_block, zone
from .model import (READ_CALENDARS, _EXT_FILTER, _EXT_EXPAND, _SIMPLE_FILTER, _TZ_PREFER, graph_time,
    parse_instant, _trim_fraction, _unq, User, Event, Cancellation)


class Calendars:
    """Outlook events: create, read, list, update, cancel, delete, calendarView."""

    def events(self, mailbox: str) -> list[dict]:
        user = self._must_user(mailbox)
        with self.lock:
            return [self._render(ev, expand="") for ev in self.calendars[user.id].values()]

    def get_event(self, mailbox: str, event_id: str) -> dict | None:
        user = self._must_user(mailbox)
        with self.lock:
            ev = self.calendars[user.id].get(event_id)
            return self._render(ev, expand="") if ev else None

    def outlook_create(self, mailbox: str, **fields) -> dict:
        user = self._must_user(mailbox)
        with self.lock:
            ev, _ = self._create(user, fields)
            return self._render(ev, expand="")

    def outlook_update(self, mailbox: str, event_id: str, **fields) -> dict:
        user = self._must_user(mailbox)
        with self.lock:
            return self._render(self._update(user, event_id, fields), expand="")

    def attendee_answers(self, mailbox: str, event_id: str, email: str, response: str,
                         proposed_start: str | None = None, proposed_end: str | None = None) -> dict:
        """An attendee answers the organiser's meeting; the organiser's event (`mailbox`) then tracks it,
        as Outlook does, and its subscriptions get an `updated` notification.

        resources/attendee.md: `status` is a responseStatus, `proposedNewTime` a timeSlot included only
        when the attendee proposed another time; resources/responsestatus.md: `response` (here in the
        wire form: none, tentativelyAccepted, accepted, declined) and `time`, the instant the answer was
        sent, in UTC. api/event-decline.md and event-tentativelyaccept.md: a proposed new time comes only
        with a decline or a tentative acceptance, and only for events that allow new time proposals
        (`allowNewTimeProposals`, event.md); event-accept.md takes none. The answer changes the event's
        version (changeKey, event.md: "every time the event is changed")."""
        if response not in ("none", "tentativelyAccepted", "accepted", "declined"):
            raise ValueError(f"not an attendee's answer: {response!r}")
        proposed = proposed_start is not None or proposed_end is not None
        user = self._must_user(mailbox)
        with self.lock:
            ev = self._event_or_404(user, event_id)
            if proposed and (response not in ("tentativelyAccepted", "declined") or
                             not ev.fields.get("allowNewTimeProposals", True) or not (proposed_start and proposed_end)):
                raise ValueError("a new time is proposed with a decline or a tentative acceptance only, start and "
                                 "end, and only when the organiser allows new time proposals")
            attendees = [dict(a) for a in ev.fields.get("attendees") or []]
            found = [a for a in attendees if a["emailAddress"]["address"].lower() == email.lower()]
            if not found:
                raise ValueError(f"{email} is not an attendee of {event_id}")
            attendee = found[0]
            attendee["status"] = {"response": response, "time": graph_time(utcnow())}
            attendee.pop("proposedNewTime", None)
            if proposed:
                attendee["proposedNewTime"] = {
                    "start": {"dateTime": graph_time(parse_instant(proposed_start), z=False), "timeZone": "UTC"},
                    "end": {"dateTime": graph_time(parse_instant(proposed_end), z=False), "timeZone": "UTC"}}
            ev.fields = {**ev.fields, "attendees": attendees}
            ev.modified, ev.change_key, ev.seq = utcnow(), new_change_key(), self._next_seq()
            self._changed(ev, "updated")
            return self._render(ev, expand="")

    def outlook_cancel(self, mailbox: str, event_id: str, comment: str | None = None) -> None:
        user = self._must_user(mailbox)
        with self.lock:
            self._remove(user, event_id, comment, "outlook_cancel", always_record=True)

    def outlook_delete(self, mailbox: str, event_id: str) -> None:
        user = self._must_user(mailbox)
        with self.lock:
            self._remove(user, event_id, None, "outlook_delete")

    def _prefer(self, req: Request, pattern: re.Pattern) -> str | None:
        m = pattern.search(",".join(req.headers.get_all("Prefer") or []))
        return m.group(1).strip() if m else None

    def _tz(self, req: Request) -> str | None:
        name = self._prefer(req, _TZ_PREFER)
        if name:
            try:
                zone(name)
            except HttpError:
                return None
        return name

    def _event_or_404(self, user: User, event_id: str) -> Event:
        ev = self.calendars[user.id].get(self.event_key(event_id))  # either id form (folders.py)
        if ev is None:
            raise HttpError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        return ev

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _context(self, user: User, suffix: str) -> str:
        return f"{self.graph_url}/$metadata#users('{user.id}')/{suffix}"

    def _parse_time(self, value, name: str) -> tuple[datetime, str]:
        if not isinstance(value, dict) or not value.get("dateTime"):
            raise HttpError(400, "ErrorInvalidRequest", f"Property '{name}' requires dateTime and timeZone.")
        tz_name = value.get("timeZone") or "UTC"
        zone(tz_name)
        try:
            parsed = datetime.fromisoformat(_trim_fraction(value["dateTime"].replace("Z", "+00:00")))
        except ValueError:
            raise HttpError(400, "ErrorInvalidRequest",
                            f"Cannot convert the literal '{value['dateTime']}' to the expected type.") from None
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(zone(tz_name)).replace(tzinfo=None)
        return parsed, tz_name

    def _apply(self, ev_fields: dict, data: dict, start, end) -> tuple:
        for key, value in data.items():
            if key.startswith("@") or key in ("id", "changeKey", "createdDateTime", "lastModifiedDateTime",
                                              "iCalUId", "organizer", "singleValueExtendedProperties"):
                continue
            if key == "start":
                start = self._parse_time(value, "start")
            elif key == "end":
                end = self._parse_time(value, "end")
            elif key == "body":
                ev_fields["body"] = _body(value)
            elif key == "location":
                ev_fields["location"] = _location(value)
                ev_fields["locations"] = [ev_fields["location"]] if ev_fields["location"]["displayName"] else []
            elif key == "attendees":
                ev_fields["attendees"] = _attendees(value, ev_fields.get("attendees") or [])
            elif key in _ONLINE:
                continue  # _online(): it needs the organiser's calendar
            elif key in _CHECKED:
                ev_fields[key] = _checked(key, value)
            else:
                ev_fields[key] = value
        if start is None or end is None:
            raise HttpError(400, "ErrorInvalidRequest", "The event must have a start and an end.")
        if ev_fields.get("isAllDay"):
            midnight = all(t.time() == datetime.min.time() for t, _ in (start, end))
            if not midnight or end[0].date() <= start[0].date():
                raise HttpError(400, "ErrorInvalidRequest",
                                "Your request can't be completed. If the event is an all-day event, the start "
                                "and end times must be at midnight, and the event must be at least one day long.")
        return start, end

    def _create(self, user: User, data: dict) -> tuple[Event, bool]:
        txn = data.get("transactionId")
        if txn:
            # api-reference/v1.0/resources/event.md, transactionId: "avoids unnecessary retries on the server";
            # what the duplicate POST answers is not documented: the first event (default) or a refusal.
            for ev in self.calendars[user.id].values():
                if ev.fields.get("transactionId") == txn:
                    if self.transaction_duplicate == "conflict":
                        raise HttpError(409, "ErrorDuplicateTransactionId",
                                        "An event with this transactionId already exists.")
                    return ev, False
        fields = {"subject": "", "body": {"contentType": "text", "content": ""}, "location": _location(None),
                  "locations": [], "attendees": [], "isAllDay": False, "isCancelled": False,
                  "transactionId": None,
                  "iCalUId": "040000008200E00074C5B7101A82E00800000000" + secrets.token_hex(28).upper()}
        start, end = self._apply(fields, data, None, None)
        provider = self._online_request(user, fields, data)
        now = utcnow()
        ext = {p["id"]: p.get("value") for p in data.get("singleValueExtendedProperties") or []}
        ev = Event(_event_id(), user.id, fields, start, end, ext, now, now, new_change_key(), self._next_seq())
        self._go_online(user, ev, provider)
        self.calendars[user.id][ev.id] = ev
        self._changed(ev, "created")
        self._book_rooms(ev, None)  # rooms.py: the rooms invited answer
        return ev, True

    def _update(self, user: User, event_id: str, data: dict) -> Event:
        ev = self._event_or_404(user, event_id)
        before = (ev.window(), {a["emailAddress"]["address"].lower() for a in ev.fields.get("attendees") or []})
        fields = dict(ev.fields)
        provider = self._online_request(user, fields, data)
        ev.start, ev.end = self._apply(fields, data, ev.start, ev.end)
        ev.fields = fields
        self._go_online(user, ev, provider)
        for p in data.get("singleValueExtendedProperties") or []:
            ev.ext[p["id"]] = p.get("value")
        ev.modified, ev.change_key, ev.seq = utcnow(), new_change_key(), self._next_seq()
        self._series_updated(user, ev, data)  # series.py: a recurrence makes a master, an occurrence an exception
        self._changed(ev, "updated")
        self._book_rooms(ev, before)  # rooms.py: a room newly invited, or every room of a moved meeting, answers
        return ev

    # -- Teams meetings: concepts/outlook-calendar-online-meetings.md, event.md (isOnlineMeeting,
    # onlineMeetingProvider, onlineMeeting), calendar.md (allowedOnlineMeetingProviders)

    def set_online_providers(self, mailbox: str, providers: tuple[str, ...]) -> None:
        """The online meeting providers a user's calendar offers (a user without Teams: ())."""
        user = self._must_user(mailbox)
        with self.lock:
            user.online_providers = tuple(providers)

    def _online_request(self, user: User, fields: dict, data: dict) -> str | None:
        """The provider a create or update asks for, None when it asks for none. "Once you enable a meeting
        online ... you cannot change the onlineMeetingProvider property, nor set isOnlineMeeting to false":
        later requests change nothing. A provider the calendar does not offer: what Graph answers is not
        published; by default the event is kept without an online meeting (unsupported_provider="ignore"),
        or the request is refused ("refuse")."""
        asked, provider = data.get("isOnlineMeeting"), data.get("onlineMeetingProvider")
        if asked is not None and not isinstance(asked, bool):
            raise HttpError(400, "RequestBodyRead", f"Cannot convert the literal '{asked}' to the expected type "
                            "'Edm.Boolean'.")
        if provider is not None and provider not in _PROVIDERS:
            raise HttpError(400, "RequestBodyRead", f"Cannot convert the literal '{provider}' to the expected type "
                            "'microsoft.graph.onlineMeetingProviderType'.")
        if fields.get("isOnlineMeeting") or not (asked or provider not in (None, "unknown")):
            return None
        provider = provider if provider not in (None, "unknown") else (user.online_providers or ("unknown",))[0]
        if provider in user.online_providers:
            return provider
        if self.unsupported_provider == "refuse":
            raise HttpError(400, "ErrorInvalidRequest", f"The online meeting provider '{provider}' is not allowed "
                            "for this calendar.")
        return None

    def _go_online(self, user: User, ev: Event, provider: str | None) -> None:
        if provider is None:
            return
        ev.fields = {**ev.fields, "isOnlineMeeting": True, "onlineMeetingProvider": provider, "onlineMeeting": None}
        if self.join_info_after_reads:
            ev.join_info_after_reads = self.join_info_after_reads  # filled in later, on one of the next reads
        else:
            self._join_info(user, ev)

    def _join_info(self, user: User, ev: Event) -> None:
        meeting = teams_meeting(user.tenant_id, user.id)
        ev.fields = {**ev.fields, "onlineMeeting": meeting, "body": with_teams_block(ev.fields["body"], meeting)}
        ev.join_info_after_reads = 0

    def _read(self, user: User, ev: Event) -> None:
        """A read of an event whose join information is late: on the last awaited read it is there (the
        event changed: a new change key, and an `updated` notification, as for any change)."""
        if ev.join_info_after_reads:
            ev.join_info_after_reads -= 1
            if not ev.join_info_after_reads:
                self._join_info(user, ev)
                ev.modified, ev.change_key, ev.seq = utcnow(), new_change_key(), self._next_seq()
                self._changed(ev, "updated")

    def _get_calendar(self, req: Request) -> Response:
        _, user = self._mailbox(req, READ_CALENDARS)
        with self.lock:
            providers = list(user.online_providers)
        return Response(200, {
            "@odata.context": self._context(user, "calendar/$entity"), "id": "AAMkAGI2TGuLAAA=" + user.id[:8],
            "name": "Calendar", "color": "auto", "isDefaultCalendar": True, "changeKey": "nfZyf7VcrEKLNoU37KWlkQAAA0x0+w==",
            "canShare": True, "canViewPrivateItems": True, "hexColor": "", "canEdit": True,
            "allowedOnlineMeetingProviders": providers,
            "defaultOnlineMeetingProvider": providers[0] if providers else "unknown",
            "isTallyingResponses": True, "isRemovable": False,
            "owner": {"name": user.display_name, "address": user.upn}})

    def _remove(self, user: User, event_id: str, comment: str | None, via: str, always_record=False) -> None:
        ev = self._event_or_404(user, event_id)
        self._series_removing(user, ev)  # series.py: a master takes its occurrences with it
        attendees = [a["emailAddress"]["address"] for a in ev.fields.get("attendees", [])]
        if attendees or always_record:
            self.cancellations.append(Cancellation(user.upn, ev.id, attendees, comment,
                                                   ev.fields.get("subject", ""), via))
        del self.calendars[user.id][ev.id]
        ev.seq = self._next_seq()
        self._removed[user.id][ev.id] = (ev.seq, ev)
        self._changed(ev, "deleted")

    def _render(self, ev: Event, tz: str | None = None, select: str | None = None,
                expand: str | None = None) -> dict:
        user = self.users[ev.mailbox]
        f = ev.fields
        out = {
            "@odata.etag": f'W/"{ev.change_key}"', "id": self.shown_id(ev.id),
            "createdDateTime": graph_time(ev.created), "lastModifiedDateTime": graph_time(ev.modified),
            "changeKey": ev.change_key, "categories": [], "transactionId": None,
            "originalStartTimeZone": ev.start[1], "originalEndTimeZone": ev.end[1],
            "iCalUId": f["iCalUId"], "uid": f["iCalUId"], "reminderMinutesBeforeStart": 15,
            "isReminderOn": True, "hasAttachments": False, "subject": "",
            "bodyPreview": _preview(f["body"]), "importance": "normal", "sensitivity": "normal",
            "isAllDay": False, "isCancelled": False, "isOrganizer": True, "responseRequested": True,
            "seriesMasterId": None, "showAs": "busy", "type": "singleInstance",
            "webLink": f"https://outlook.office365.com/owa/?itemid={quote(ev.id, safe='')}&exvsurl=1&path=/calendar/item",
            "onlineMeetingUrl": None, "isOnlineMeeting": False, "onlineMeetingProvider": "unknown",
            "allowNewTimeProposals": True, "occurrenceId": None, "isDraft": False, "hideAttendees": False,
            "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
            "recurrence": None, "onlineMeeting": None,
            "organizer": {"emailAddress": {"name": user.display_name, "address": user.upn}},
        }
        out.update(f)
        if f.get("seriesMasterId"):
            out["seriesMasterId"] = self.shown_id(f["seriesMasterId"])
        out["start"], out["end"] = (self._render_time(ev, t, tz) for t in (ev.start, ev.end))
        if select:
            wanted = {s.strip().lower() for s in select.split(",")}
            out = {k: v for k, v in out.items() if k in ("@odata.etag", "id") or k.lower() in wanted}
        if expand is not None:
            m = _EXT_EXPAND.search(expand) if expand else None
            if expand == "" or m:
                wanted_id = _unq(m.group(1)).lower() if m and m.group(1) else None
                props = [{"id": k, "value": v} for k, v in ev.ext.items()
                         if wanted_id is None or _norm(k) == _norm(wanted_id)]
                if props:
                    out["singleValueExtendedProperties"] = props
        return out

    def _render_time(self, ev: Event, value: tuple[datetime, str], tz: str | None) -> dict:
        naive, zone_name = value
        if ev.fields.get("isAllDay"):
            local = naive
        else:
            local = naive.replace(tzinfo=zone(zone_name)).astimezone(zone(tz or "UTC")).replace(tzinfo=None)
        return {"dateTime": graph_time(local, z=False), "timeZone": tz or "UTC"}

    def _post_event(self, req: Request) -> Response:
        _, user = self._mailbox(req)
        data = req.json()
        with self.lock:
            ev, _ = self._create(user, data)
            out = self._render(ev, self._tz(req))
        return Response(201, {"@odata.context": self._context(user, "events/$entity"), **out})

    def _get_event(self, req: Request) -> Response:
        _, user = self._mailbox(req, READ_CALENDARS)
        with self.lock:
            ev = self._event_or_404(user, req.params["id"])
            self._read(user, ev)
            out = self._render(ev, self._tz(req), req.query.get("$select"), req.query.get("$expand"))
        return Response(200, {"@odata.context": self._context(user, "events/$entity"), **out})

    def _list_events(self, req: Request) -> Response:
        _, user = self._mailbox(req, READ_CALENDARS)
        match = _event_filter(req.query.get("$filter"))
        top, skip = min(_int_param(req, "$top", 10), 1000), _int_param(req, "$skip", 0)
        with self.lock:
            found = [ev for ev in self.calendars[user.id].values() if match(ev) and self._listed(ev) and self.covered(ev)]  # series.py, folders.py
            page = [self._render(ev, self._tz(req), req.query.get("$select"), req.query.get("$expand"))
                    for ev in found[skip: skip + top]]
        out = {"@odata.context": self._context(user, "events"), "value": page}
        if skip + top < len(found):
            query = {**req.query, "$top": str(top), "$skip": str(skip + top)}
            out["@odata.nextLink"] = f"{self.base_url}{req.path}?{urlencode(query, quote_via=quote)}"
        return Response(200, out)

    def _patch_event(self, req: Request) -> Response:
        _, user = self._mailbox(req)
        data = req.json()
        match = req.header("If-Match")
        with self.lock:
            current = self._event_or_404(user, req.params["id"])
            # api-reference/v1.0/api/event-update.md, "Request headers": Authorization and Content-Type
            # only. If-Match is not part of the contract: ignored by default; the switch offers the two
            # answers Exchange is known to give when it does check a change key.
            stale = match and match not in ("*", f'W/"{current.change_key}"', current.change_key)
            if stale and self.if_match in ("412", "409"):
                raise HttpError(int(self.if_match), "ErrorIrresolvableConflict",
                                "The send or update operation could not be performed because the change key passed "
                                "in the request does not match the current change key for the item.")
            attendees_before = list(current.fields.get("attendees") or [])
            ev = self._update(user, req.params["id"], data)
            self._send_update_mails(user, ev, attendees_before, data)  # mail.py: what Exchange mails attendees
            out = self._render(ev, self._tz(req))
        return Response(200, {"@odata.context": self._context(user, "events/$entity"), **out})

    def _delete_event(self, req: Request) -> Response:
        _, user = self._mailbox(req)
        with self.lock:
            self._remove(user, req.params["id"], None, "delete")
        return Response(204)

    def _cancel_event(self, req: Request) -> Response:
        _, user = self._mailbox(req)
        data = req.body() if req.raw else {}
        comment = data.get("Comment", data.get("comment")) if isinstance(data, dict) else None
        with self.lock:
            ev = self._event_or_404(user, req.params["id"])
            # api-reference/v1.0/api/event-cancel.md: "the organizer of a meeting" sends a cancellation;
            # what it answers for an event that is no meeting (no attendees) is not documented. Default:
            # refused like an attendee's call (400); DELETE (event-delete.md) removes any event.
            if not ev.fields.get("attendees") and self.cancel_without_attendees == "refuse":
                raise HttpError(400, "ErrorInvalidRequest", "Your request can't be completed. This event has no "
                                "attendees to send a cancellation to.")
            self._remove(user, req.params["id"], comment, "cancel", always_record=True)
        return Response(202)

    def _window(self, req: Request) -> tuple[datetime, datetime]:
        try:
            return parse_instant(req.query["startDateTime"]), parse_instant(req.query["endDateTime"])
        except (KeyError, ValueError):
            raise HttpError(400, "ErrorInvalidParameter", "This request requires a time window specified by the "
                            "query string parameters StartDateTime and EndDateTime.") from None

    def _in_window(self, ev: Event, start: datetime, end: datetime) -> bool:
        s, e = ev.window()
        # covered: the calendars a view covers (folders.py); expanded: a series master is never in a view (series.py)
        return self.covered(ev) and s < end and e > start and self._expanded(ev)

    def _calendar_view(self, req: Request) -> Response:
        _, user = self._mailbox(req, READ_CALENDARS)
        start, end = self._window(req)
        top, skip = min(_int_param(req, "$top", 10), 1000), _int_param(req, "$skip", 0)
        with self.lock:
            found = sorted((ev for ev in self.calendars[user.id].values() if self._in_window(ev, start, end)),
                           key=lambda ev: ev.window()[0])
            page = [self._render(ev, self._tz(req), req.query.get("$select")) for ev in found[skip: skip + top]]
        out = {"@odata.context": self._context(user, "calendarView"), "value": page}
        if skip + top < len(found):
            query = {**req.query, "$top": str(top), "$skip": str(skip + top)}
            out["@odata.nextLink"] = f"{self.base_url}{req.path}?{urlencode(query, quote_via=quote)}"
        return Response(200, out)


def _int_param(req: Request, name: str, default: int) -> int:
    try:
        return max(0, int(req.query.get(name, default)))
    except ValueError:
        raise HttpError(400, "BadRequest", f"Invalid value for {name}: '{req.query[name]}'.") from None


def _event_id() -> str:
    return immutable_id()  # the event's key; folders.py shows its default id to requests not asking for this


def _norm(ext_id: str) -> str:
    return " ".join(ext_id.lower().split())


def _body(value) -> dict:
    value = value or {}
    ctype = str(value.get("contentType", "text")).lower()
    content = value.get("content") or ""
    if ctype == "html":
        content = exchange_html(content)  # Exchange keeps its own document, not what it was sent
    return {"contentType": "html" if ctype == "html" else "text", "content": content}


def _preview(body: dict) -> str:
    text = body.get("content", "")
    if body.get("contentType") == "html":
        text = re.sub(r"<head>.*?</head>", "", text, flags=re.S | re.I)
        text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    return " ".join(text.split())[:255]


def _location(value) -> dict:
    value = value or {}
    return {"displayName": value.get("displayName") or "", "locationType": value.get("locationType", "default"),
            "uniqueIdType": "unknown", "address": value.get("address") or {},
            "coordinates": value.get("coordinates") or {}}


# resources/event.md, "Properties": categories is a String collection (outlookcategory.md: an item carries
# category displayNames; a name missing from the user's master list is still kept on the item), showAs a
# freeBusyStatus, sensitivity a sensitivity, reminderMinutesBeforeStart an Int32, isReminderOn a Boolean.
# Graph refuses another type or an enum value it does not know (400, the OData reader's message).
_FREE_BUSY = ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown")
_SENSITIVITY = ("normal", "personal", "private", "confidential")
_CHECKED = ("categories", "showAs", "sensitivity", "reminderMinutesBeforeStart", "isReminderOn")
_ONLINE = ("isOnlineMeeting", "onlineMeetingProvider")
_PROVIDERS = ("unknown", "teamsForBusiness", "skypeForBusiness", "skypeForConsumer")  # event.md


def _checked(key: str, value):
    def refuse(kind: str):
        raise HttpError(400, "RequestBodyRead", f"Cannot convert the literal '{value}' to the expected type "
                        f"'{kind}'.")
    if key == "categories":
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            refuse("Collection(Edm.String)")
        return list(value)
    if key == "showAs":
        if value not in _FREE_BUSY:
            refuse("microsoft.graph.freeBusyStatus")
        return value
    if key == "sensitivity":
        if value not in _SENSITIVITY:
            refuse("microsoft.graph.sensitivity")
        return value
    if key == "reminderMinutesBeforeStart":
        if isinstance(value, bool) or not isinstance(value, int) or not -2**31 <= value < 2**31:
            refuse("Edm.Int32")
        return value
    if not isinstance(value, bool):
        refuse("Edm.Boolean")
    return value


def _attendees(values, current: list[dict]) -> list[dict]:
    """The attendees as sent; one who stays keeps the answer Outlook tracked for them (attendee.md
    `status`: the response and when it was sent belong to the attendee, not to this request)."""
    known = {a["emailAddress"]["address"].lower(): a for a in current}
    out = []
    for value in values or []:
        attendee = _attendee(value)
        before = known.get(attendee["emailAddress"]["address"].lower())
        if before is not None:
            attendee["status"] = dict(before["status"])
            if "proposedNewTime" in before:
                attendee["proposedNewTime"] = before["proposedNewTime"]
        out.append(attendee)
    return out


def _attendee(value: dict) -> dict:
    email = value.get("emailAddress") or {}
    if not email.get("address"):
        raise HttpError(400, "ErrorInvalidRecipients", "At least one recipient isn't valid.")
    return {"type": value.get("type", "required"),
            "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
            "emailAddress": {"name": email.get("name", email["address"]), "address": email["address"]}}


def _event_filter(text: str | None):
    if not text:
        return lambda ev: True
    m = _EXT_FILTER.fullmatch(text.strip())
    if m:
        prop_id, value = _norm(_unq(m.group(2))), _unq(m.group(3))
        return lambda ev: any(_norm(k) == prop_id and v == value for k, v in ev.ext.items())
    m = _SIMPLE_FILTER.fullmatch(text.strip())
    if m:
        key, value = m.group(1), _unq(m.group(2))
        return lambda ev: ev.fields.get(key) == value
    raise HttpError(400, "ErrorInvalidUrlQueryFilter", f"The query filter contains one or more invalid nodes: {text}")
