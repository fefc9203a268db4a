"""Recurring series made in Outlook: a series master, its occurrences and exceptions.

Published sources (microsoftgraph/microsoft-graph-docs-contrib):
- api-reference/v1.0/resources/event.md: `type` (singleInstance, occurrence, exception, seriesMaster),
  `seriesMasterId`, `originalStart` ("the start time of an event when it is initially created as an
  occurrence or exception in a recurring series ... not returned for events that are single instances",
  UTC), `occurrenceId`, `recurrence` (on the master only).
- resources/patternedrecurrence.md, recurrencepattern.md (daily, weekly with daysOfWeek, interval),
  recurrencerange.md (endDate inclusive, numbered with numberOfOccurrences, noEnd).
- api/event-list-instances.md: GET /events/{id}/instances?startDateTime&endDateTime, the occurrences
  and exceptions of a seriesMaster in the window (the window is required).
- api/user-list-calendarview.md: occurrences and exceptions are expanded, series masters are not;
  api/user-list-events.md: masters and single instances, occurrences not expanded.
- api/event-update.md: a PATCH of an occurrence changes that occurrence only (it becomes an exception);
  a PATCH of the master changes the series.
- api/event-cancel.md, event-delete.md: on an occurrence, that occurrence only; on the master, the series.

The master keeps the id the single event had (turning an event into a series in Outlook edits that item).
Occurrence ids are derived from the master's and the occurrence's date: stable, unique, as Graph's are.

What the pages leave open is a switch (constructor argument and attribute of the same name):
  occurrence_notifications  "master" (default) | "occurrence"   which event a change notification names
                            when one occurrence is edited or cancelled. Users report the master only,
                            with changeType updated even for a cancelled occurrence
                            (microsoftgraph/microsoft-graph-docs issue 5520; pnp/PnP issue 1894);
                            "occurrence" names the occurrence (updated, or deleted when cancelled).
  delta_occurrences         "bare" (default) | "full"   what calendarView/delta gives for an occurrence:
                            as issue 21 and users report, its id, type, seriesMasterId, originalStart,
                            start and end without its data (subject, body, attendees...), or the whole event.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from ..base import HttpError, Request, Response, utcnow
from .exchange import new_change_key, zone
from .model import READ_CALENDARS, Event, User, graph_time

SERIES_TYPES = ("seriesMaster", "occurrence", "exception")
MAX_OCCURRENCES = 200           # a noEnd series is expanded this far (the simulator's limit, not Graph's)
_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_BARE = ("@odata.etag", "id", "type", "seriesMasterId", "originalStart", "start", "end", "occurrenceId")
_TIMING = ("start", "end", "recurrence", "isAllDay")


class Series:
    """Series masters, occurrences and exceptions: made, edited and cancelled in Outlook or through Graph."""

    occurrence_notifications = "master"
    delta_occurrences = "bare"

    # -- Outlook-side actions for tests

    def outlook_make_series(self, mailbox: str, event_id: str, pattern: str = "daily", interval: int = 1,
                            count: int | None = None, until: str | None = None,
                            days_of_week: tuple[str, ...] = ()) -> dict:
        """The organiser turns an event into a series in Outlook: the same item, now a seriesMaster."""
        current = self.get_event(mailbox, event_id)
        if current is None:
            raise ValueError(f"no event {event_id}")
        start = current["start"]["dateTime"][:10]
        kind = {"type": "numbered", "numberOfOccurrences": count} if count else \
            {"type": "endDate", "endDate": until} if until else {"type": "noEnd"}
        recurrence = {"pattern": {"type": pattern, "interval": interval, "firstDayOfWeek": "sunday",
                                  **({"daysOfWeek": list(days_of_week)} if days_of_week else {})},
                      "range": {"startDate": start, "recurrenceTimeZone": "UTC", **kind}}
        return self.outlook_update(mailbox, event_id, recurrence=recurrence)

    def occurrences(self, mailbox: str, master_id: str) -> list[dict]:
        """The occurrences and exceptions of a series, in order."""
        user = self._must_user(mailbox)
        with self.lock:
            return [self._render(ev, expand="") for ev in self._instances_of(user, master_id)]

    # -- hooks the other mixins call

    def _in_series(self, ev: Event) -> str:
        return ev.fields.get("type") or "singleInstance"

    def _expanded(self, ev: Event) -> bool:
        """In a calendar view: anything but a series master (user-list-calendarview.md)."""
        return self._in_series(ev) != "seriesMaster"

    def _listed(self, ev: Event) -> bool:
        """In GET /events: masters and single instances (user-list-events.md)."""
        return self._in_series(ev) in ("singleInstance", "seriesMaster")

    def _delta_render(self, ev: Event, tz: str | None) -> dict:
        out = self._render(ev, tz)
        if self._in_series(ev) == "occurrence" and self.delta_occurrences == "bare":
            out = {k: v for k, v in out.items() if k in _BARE}
        return out

    def _series_updated(self, user: User, ev: Event, data: dict) -> None:
        """After a PATCH (or an edit in Outlook): a recurrence makes a master; a master's change reaches
        its occurrences; an occurrence edited becomes an exception."""
        kind = self._in_series(ev)
        if kind in ("occurrence", "exception"):
            ev.fields = {**ev.fields, "type": "exception"}
        elif ev.fields.get("recurrence") and (kind == "singleInstance" or any(k in data for k in _TIMING)):
            ev.fields = {**ev.fields, "type": "seriesMaster"}
            self._expand(user, ev)
        elif kind == "seriesMaster":
            self._follow_master(user, ev, data)

    def _changed(self, ev: Event, change_type: str) -> None:
        """A change notification, naming the master for a change of one occurrence unless the switch says
        otherwise (occurrence_notifications)."""
        master_id = ev.fields.get("seriesMasterId")
        master = self.calendars.get(ev.mailbox, {}).get(master_id) if master_id else None
        if master is None or self.occurrence_notifications == "occurrence":
            return super()._changed(ev, change_type)
        master.modified, master.change_key = utcnow(), new_change_key()  # Exchange keeps exceptions on the master
        return super()._changed(master, "updated")

    def _series_removing(self, user: User, ev: Event) -> None:
        """Before a cancel or delete: of a master, its occurrences go with it (the caller removes the master
        and records its one cancellation); of an occurrence, that occurrence only (nothing more to do)."""
        if self._in_series(ev) == "seriesMaster":
            for occurrence in self._instances_of(user, ev.id):
                self._drop_occurrence(user, occurrence, notify=self.occurrence_notifications == "occurrence")

    # -- internals

    def _instances_of(self, user: User, master_id: str) -> list[Event]:
        found = [ev for ev in self.calendars[user.id].values() if ev.fields.get("seriesMasterId") == master_id]
        return sorted(found, key=lambda ev: ev.window()[0])

    def _drop_occurrence(self, user: User, ev: Event, notify: bool) -> None:
        del self.calendars[user.id][ev.id]
        ev.seq = self._next_seq()
        self._removed[user.id][ev.id] = (ev.seq, ev)
        if notify:
            super()._changed(ev, "deleted")

    def _expand(self, user: User, master: Event) -> None:
        """(Re)make the occurrences of a master from its recurrence; a new pattern or time drops exceptions,
        as Outlook warns it does."""
        for old in self._instances_of(user, master.id):
            self._drop_occurrence(user, old, notify=False)
        (naive_start, start_zone), (naive_end, end_zone) = master.start, master.end
        length = naive_end - naive_start
        for day in _dates(master.fields["recurrence"], naive_start.date()):
            start = datetime.combine(day, naive_start.time())
            original = start.replace(tzinfo=zone(start_zone)).astimezone(timezone.utc)
            fields = {k: v for k, v in master.fields.items() if k != "recurrence"}
            fields.update(type="occurrence", seriesMasterId=master.id, originalStart=graph_time(original)[:19] + "Z",
                          occurrenceId=f"OID.{master.id}.{day:%Y-%m-%d}")
            now = utcnow()
            occurrence = Event(f"{master.id}_{day:%Y%m%d}", user.id, fields, (start, start_zone),
                               (start + length, end_zone), dict(master.ext), now, now, new_change_key(),
                               self._next_seq())
            self.calendars[user.id][occurrence.id] = occurrence

    def _follow_master(self, user: User, master: Event, data: dict) -> None:
        """A PATCH of the master changes the series (event-update.md): its occurrences take the change;
        exceptions keep what was changed on them (the simulator: they keep everything)."""
        if any(k in data for k in _TIMING):
            self._expand(user, master)
            return
        keep = ("type", "seriesMasterId", "originalStart", "occurrenceId")
        for occurrence in self._instances_of(user, master.id):
            if self._in_series(occurrence) == "occurrence":
                occurrence.fields = {**{k: v for k, v in master.fields.items() if k != "recurrence"},
                                     **{k: occurrence.fields[k] for k in keep}}
                occurrence.modified, occurrence.change_key = utcnow(), new_change_key()
                occurrence.seq = self._next_seq()

    def _list_instances(self, req: Request) -> Response:
        _, user = self._mailbox(req, READ_CALENDARS)
        start, end = self._window(req)  # required (event-list-instances.md, "Query parameters")
        with self.lock:
            master = self._event_or_404(user, req.params["id"])
            found = [ev for ev in self._instances_of(user, master.id) if self._in_window(ev, start, end)]
            page = [self._render(ev, self._tz(req), req.query.get("$select")) for ev in found]
        return Response(200, {"@odata.context": self._context(user, "events"), "value": page})


def _dates(recurrence: dict, first: date) -> list[date]:
    """The dates a daily or weekly pattern gives within its range (recurrencepattern.md, recurrencerange.md)."""
    pattern, rng = recurrence.get("pattern") or {}, recurrence.get("range") or {}
    kind, interval = pattern.get("type"), max(1, int(pattern.get("interval") or 1))
    if kind not in ("daily", "weekly"):
        raise HttpError(501, "NotImplemented", f"the simulator expands daily and weekly patterns only, not {kind!r}")
    begin = date.fromisoformat(rng.get("startDate") or first.isoformat())
    last = date.fromisoformat(rng["endDate"]) if rng.get("type") == "endDate" else None
    count = int(rng.get("numberOfOccurrences") or 0) if rng.get("type") == "numbered" else MAX_OCCURRENCES
    days = {_DAYS.index(d.lower()) for d in pattern.get("daysOfWeek") or ()} or {begin.weekday()}
    out, day = [], begin
    while len(out) < min(count, MAX_OCCURRENCES) and (last is None or day <= last):
        weeks = (day - (begin - timedelta(days=begin.weekday()))).days // 7
        if kind == "daily" and (day - begin).days % interval == 0:
            out.append(day)
        elif kind == "weekly" and day.weekday() in days and weeks % interval == 0:
            out.append(day)
        day += timedelta(days=1)
    return out
