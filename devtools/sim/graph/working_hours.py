"""Each mailbox's working hours, as getSchedule answers them in every scheduleInformation.

resources/workinghours.md: daysOfWeek (dayOfWeek collection), startTime and endTime (Edm.TimeOfDay),
timeZone (timeZoneBase: `name`); "You can choose to set a time zone for your working hours differently
from the time zone you have set on your Outlook client": the hours are in their own zone, whatever zone the
getSchedule request asks times in. api/calendar-getschedule.md, the example's answer: Monday to Friday,
"08:00:00.0000000" to "17:00:00.0000000", in the person's zone ("Pacific Standard Time"; the other person's
is a customTimeZone, which the simulator does not make). That is the default here, in UTC for a mailbox
whose zone no test set (the simulator's mailboxes have no zone of their own); a room is a mailbox and has
working hours like anyone (room.md: "each room is associated with a room mailbox").
"""

from __future__ import annotations

import re

from ..base import HttpError
from .exchange import zone
from .model import User

DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")  # dayofweek.md
WORKING_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?")


def _time_of_day(text: str, name: str) -> str:
    m = _TIME.fullmatch(text) if isinstance(text, str) else None
    if not m:
        raise ValueError(f"{name} must be a time of day as HH:MM or HH:MM:SS, not {text!r}")
    return f"{m.group(1)}:{m.group(2)}:{m.group(3) or '00'}.0000000"


class WorkingHours:
    """set_working_hours(mailbox, ...) and what getSchedule answers as a mailbox's workingHours."""

    def _working_hours_init(self) -> None:
        self.working_hours: dict[str, dict] = {}  # user id -> workingHours as Graph answers it

    def set_working_hours(self, mailbox: str, start: str = "08:00", end: str = "17:00",
                          days: tuple[str, ...] | list[str] = WORKING_DAYS, time_zone: str = "UTC") -> dict:
        """A person's (or room's) working hours: days of the week, start and end times of day (HH:MM) in
        `time_zone` (a zone Graph takes: a Windows name or one of datetimetimezone.md's extras)."""
        user = self._must_user(mailbox)
        days = [d.lower() for d in days] if not isinstance(days, str) else None
        if not days or any(d not in DAYS for d in days) or len(set(days)) != len(days):
            raise ValueError(f"days must be distinct days of the week from {DAYS}")
        start_at, end_at = _time_of_day(start, "start"), _time_of_day(end, "end")
        if end_at <= start_at:
            raise ValueError(f"working hours end ({end}) must be after they start ({start})")
        try:
            zone(time_zone)
        except HttpError:
            raise ValueError(f"{time_zone!r} is not a time zone Graph takes (datetimetimezone.md)") from None
        hours = {"daysOfWeek": sorted(days, key=DAYS.index), "startTime": start_at, "endTime": end_at,
                 "timeZone": {"name": time_zone}}
        with self.lock:
            self.working_hours[user.id] = hours
        return hours

    def working_hours_of(self, user: User) -> dict:
        default = {"daysOfWeek": list(WORKING_DAYS), "startTime": "08:00:00.0000000",
                   "endTime": "17:00:00.0000000", "timeZone": {"name": "UTC"}}
        hours = self.working_hours.get(user.id, default)
        return {**hours, "daysOfWeek": list(hours["daysOfWeek"]), "timeZone": dict(hours["timeZone"])}
