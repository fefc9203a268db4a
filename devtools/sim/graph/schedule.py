"""Free/busy: api-reference/v1.0/api/calendar-getschedule.md (`POST /users/{id}/calendar/getSchedule`),
its resources scheduleinformation.md, scheduleitem.md and freebusyerror.md, and the concept page
concepts/outlook-get-free-busy-schedule.md (at most 20 entities per request, a period under 62 days,
an address it cannot resolve answered as an error entry). Permissions: the generated table
api-reference/v1.0/includes/permissions/calendar-getschedule-permissions.md (application:
Calendars.ReadBasic, least privileged; Calendars.Read, Calendars.ReadWrite).

What a mailbox's free/busy holds: the events of its own calendar, and the meetings other mailboxes of
its tenant invited it to. The simulator keeps a meeting once, in the organiser's calendar; the invitee's
copy is derived as Exchange makes it: a meeting request puts the meeting in the invitee's calendar as
tentative, or free when the organiser shows it free, until they answer ([MS-OXOCAL] 3.1.4.7.2.2,
"Creating the Meeting Object"); an acceptance gives it the organiser's showAs (PidLidIntendedBusyStatus,
[MS-OXOCAL] 2.2.6.4), a tentative acceptance keeps it tentative, a decline takes it out of the calendar.
The copy follows the organiser's event, so a moved meeting is held at its new time.

Switch: free_busy_details "subject" (default: subject and location of events that are not private, as
the doc's first example shows) | "none" (status and times only: the mailbox shares no more, which the
concept page says each user controls).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

from ..base import HttpError, Request, Response
from .exchange import zone
from .model import FREE_BUSY_ROLES, Event, User, graph_time

MAX_SCHEDULES = 20                 # concepts/outlook-get-free-busy-schedule.md, "Limits and error conditions"
MAX_PERIOD = timedelta(days=62)    # "The time period to look up must be less than 62 days."
DEFAULT_INTERVAL, MIN_INTERVAL, MAX_INTERVAL = 30, 5, 1440   # calendar-getschedule.md, availabilityViewInterval
# scheduleinformation.md, availabilityView: 0 free, 1 tentative, 2 busy, 3 out of office, 4 working elsewhere
# (the concept page, older, counts working elsewhere as 0). One slot shows its most absent status; that
# order is not published: out of office, busy, tentative, working elsewhere, free.
VIEW_DIGITS = {"free": "0", "unknown": "0", "tentative": "1", "busy": "2", "oof": "3", "workingElsewhere": "4"}
_WEIGHT = {"free": 0, "unknown": 0, "workingElsewhere": 1, "tentative": 2, "busy": 3, "oof": 4}
# freebusyerror.md types the error; its values are those Graph answered for an address outside the
# directory (microsoftgraph/microsoft-graph-docs#11225): responseCode "5009" and this message
UNRESOLVED = "Unable to resolve e-mail address {} to an Active Directory object."


def _key(data: dict, name: str):
    """A body property, its name read case-insensitively (the concept page's example sends `Schedules`)."""
    return next((v for k, v in data.items() if k.lower() == name.lower()), None)


def copy_status(response: str, shown_as: str) -> str | None:
    """The free/busy status of an invitee's copy of a meeting, from their answer (None: not held)."""
    if response == "declined":
        return None
    if response == "accepted":
        return shown_as
    return "free" if shown_as == "free" else "tentative"  # not answered, or tentatively accepted


class FreeBusy:
    """calendar: getSchedule, over the simulated calendars (switch: self.free_busy_details)."""

    def _get_schedule(self, req: Request) -> Response:
        claims, _ = self._mailbox(req, FREE_BUSY_ROLES)
        data = req.json()
        if not isinstance(data, dict):
            raise HttpError(400, "BadRequest", "Unable to read JSON request payload.")
        schedules = _key(data, "schedules")
        if not isinstance(schedules, list) or not schedules or not all(isinstance(s, str) and s for s in schedules):
            raise HttpError(400, "ErrorInvalidParameter", "schedules must be a non-empty collection of SMTP addresses.")
        if len(schedules) > MAX_SCHEDULES:  # the limit is published, the answer to a request over it is not
            raise HttpError(400, "ErrorInvalidParameter", f"getSchedule supports at most {MAX_SCHEDULES} schedules "
                            f"per request; {len(schedules)} were asked for.")
        start, end = (self._period_bound(_key(data, name), name) for name in ("startTime", "endTime"))
        if end <= start:
            raise HttpError(400, "ErrorInvalidParameter", "The end of the period must be after its start.")
        if end - start >= MAX_PERIOD:
            raise HttpError(400, "ErrorInvalidParameter", "The time period to look up must be less than 62 days.")
        interval = _key(data, "availabilityViewInterval")
        try:
            interval = DEFAULT_INTERVAL if interval is None else int(interval)
        except (TypeError, ValueError):
            raise HttpError(400, "ErrorInvalidParameter", f"availabilityViewInterval: {interval!r} is not an Int32.") \
                from None
        if not MIN_INTERVAL <= interval <= MAX_INTERVAL:
            raise HttpError(400, "ErrorInvalidParameter",
                            f"availabilityViewInterval must be from {MIN_INTERVAL} to {MAX_INTERVAL} minutes.")
        shown_in = self._tz(req) or "UTC"  # calendar-getschedule.md, Prefer: outlook.timezone; UTC without it
        with self.lock:
            value = [self._schedule(address, claims["tid"], start, end, interval, shown_in) for address in schedules]
        return Response(200, {"@odata.context": f"{self.graph_url}/$metadata#Collection(microsoft.graph."
                                                f"scheduleInformation)", "value": value})

    def _period_bound(self, value, name: str) -> datetime:
        naive, tz_name = self._parse_time(value, name)
        return naive.replace(tzinfo=zone(tz_name)).astimezone(timezone.utc)

    def _schedule(self, address: str, tenant: str, start: datetime, end: datetime, interval: int,
                  shown_in: str) -> dict:
        user = self.user(address, tenant)
        if user is None:
            return {"scheduleId": address, "error": {"message": UNRESOLVED.format(address), "responseCode": "5009"}}
        held = sorted(((ev, status) for ev, status in self._held(user) if _overlaps(ev, start, end)),
                      key=lambda pair: pair[0].window())
        slots = math.ceil((end - start) / timedelta(minutes=interval))
        view = []
        for i in range(slots):
            slot_start = start + timedelta(minutes=interval * i)
            statuses = [s for ev, s in held if _overlaps(ev, slot_start, min(end, slot_start + timedelta(minutes=interval)))]
            view.append(VIEW_DIGITS[max(statuses, key=_WEIGHT.__getitem__, default="free")])
        return {"scheduleId": address, "availabilityView": "".join(view),
                "scheduleItems": [self._item(ev, status, shown_in) for ev, status in held],
                "workingHours": self.working_hours_of(user)}  # working_hours.py

    def calendar_holds(self, mailbox: str) -> list[dict]:
        """Tests: what the mailbox's free/busy holds (its events and the meetings it is invited to and has
        not declined; a room's bookings), as getSchedule derives it: id, subject, status, start and end in UTC."""
        user = self._must_user(mailbox)
        with self.lock:
            held = sorted(self._held(user), key=lambda pair: pair[0].window())
            return [{"id": self.shown_id(ev.id), "subject": ev.fields.get("subject") or "", "status": status,
                     "organiser": self.users[ev.mailbox].upn, "start": ev.window()[0], "end": ev.window()[1]}
                    for ev, status in held]

    def _held(self, user: User) -> list[tuple[Event, str]]:
        """What the user's calendar holds: its own events, and the copies of meetings it is invited to."""
        out = [(ev, ev.fields.get("showAs") or "busy") for ev in self.calendars[user.id].values()
               if not ev.fields.get("isCancelled")]
        for mailbox, events in self.calendars.items():
            if mailbox == user.id or self.users[mailbox].tenant_id != user.tenant_id or not self.takes_invitations(user):
                continue
            for ev in events.values():
                for attendee in ev.fields.get("attendees") or []:
                    if attendee["emailAddress"]["address"].lower() == user.upn.lower() and not ev.fields.get("isCancelled"):
                        status = copy_status(attendee["status"]["response"], ev.fields.get("showAs") or "busy")
                        if status:
                            out.append((ev, status))
        return out

    def _item(self, ev: Event, status: str, shown_in: str) -> dict:
        """scheduleitem.md: status, start, end; isPrivate, subject and location when the mailbox shares them
        (concept page, "Event data returned": only for events of sensitivity normal or personal)."""
        begin, finish = (t.astimezone(zone(shown_in)).replace(tzinfo=None) for t in ev.window())
        item = {"status": status, "start": {"dateTime": graph_time(begin, z=False), "timeZone": shown_in},
                "end": {"dateTime": graph_time(finish, z=False), "timeZone": shown_in}}
        if self.free_busy_details == "subject":
            private = ev.fields.get("sensitivity") in ("private", "confidential")
            item = {"isPrivate": ev.fields.get("sensitivity") == "private", **item}
            if not private:
                item.update(subject=ev.fields.get("subject") or "",
                            location=(ev.fields.get("location") or {}).get("displayName") or "")
        return item


def _overlaps(ev: Event, start: datetime, end: datetime) -> bool:
    first, last = ev.window()
    return first < end and last > start
