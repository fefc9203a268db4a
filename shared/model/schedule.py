"""Working hours and free times, from one getSchedule answer. Pure: no I/O.

Each scheduleInformation carries the person's (or room's) `workingHours` (resources/workinghours.md):
`daysOfWeek`, `startTime`, `endTime` (Edm.TimeOfDay) and `timeZone` {name} - in their own zone, which may
differ from the zone the request asks times in ("You can choose to set a time zone for your working hours
differently from the time zone you have set on your Outlook client"). The zone is a Windows name (the
api/calendar-getschedule.md example: "Pacific Standard Time") or one Graph adds (mapping.zone_named); a
custom zone (customTimeZone, with its own bias and transitions) is not read: such a person's hours are
not known, and nothing is said or assumed about them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfoNotFoundError

from .mapping import zone_named

UTC = timezone.utc
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")  # date.weekday() order


@dataclass(frozen=True)
class Hours:
    """One person's working hours: the days (weekday numbers, Monday 0), from `start` to `end`, in `zone`."""

    days: frozenset[int]
    start: time
    end: time
    zone: object   # a tzinfo
    zone_name: str

    def covers(self, start: datetime, end: datetime) -> bool:
        """Whether [start, end) lies within one of their working days, in their zone."""
        s, e = start.astimezone(self.zone), end.astimezone(self.zone)
        last = e - timedelta(microseconds=1) if e > s else e
        return (s.date() == last.date() and s.weekday() in self.days
                and self.start <= s.time() and (e.time() <= self.end if e.date() == s.date() else self.end == time(0)))

    def words(self) -> str:
        """"09:00–17:00", the hours as they keep them (in their zone)."""
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


def _time_of_day(text) -> time:
    return time.fromisoformat(str(text)[:8])


def hours_of(info: dict) -> Hours | None:
    """A scheduleInformation's working hours, None when it has none we can read (an error entry, a custom
    zone, a form we do not know)."""
    raw = info.get("workingHours")
    if not isinstance(raw, dict):
        return None
    try:
        days = frozenset(DAYS.index(str(d).lower()) for d in raw.get("daysOfWeek") or ())
        start, end = _time_of_day(raw["startTime"]), _time_of_day(raw["endTime"])
        name = str((raw.get("timeZone") or {}).get("name") or "UTC")
        zone = zone_named(name)
    except (KeyError, TypeError, ValueError, ZoneInfoNotFoundError):
        return None
    return Hours(days, start, end, zone, name) if days and (start < end or end == time(0)) else None


def outside_hours(schedules: list[dict], emails: set[str], start: datetime, end: datetime) -> dict[str, Hours]:
    """email → their working hours, for each of `emails` whose hours the event [start, end) falls outside."""
    out = {}
    for info in schedules:
        email = str(info.get("scheduleId") or "").strip().lower()
        if email in emails and not info.get("error") and (hours := hours_of(info)) and not hours.covers(start, end):
            out[email] = hours
    return out


def free_slots(busy: dict[str, list[tuple[datetime, datetime]]], hours: dict[str, Hours | None],
               window: tuple[datetime, datetime], length: timedelta, step: timedelta,
               avoid: tuple[datetime, datetime], wanted: int = 3) -> list[tuple[datetime, datetime]]:
    """Up to `wanted` slots of `length`, earliest first and not overlapping each other or `avoid` (the
    event's own time), starting on the `step` grid from window[0] and ending by window[1], in which everyone
    of `hours` (email → their hours, None: not known) is within their working hours and nobody of `busy`
    (email → their busy times) is busy."""
    found: list[tuple[datetime, datetime]] = []
    at = window[0]
    while at + length <= window[1] and len(found) < wanted:
        slot = (at, at + length)
        if (not _meet(slot, avoid) and not any(_meet(slot, f) for f in found)
                and all(h is None or h.covers(*slot) for h in hours.values())
                and not any(_meet(slot, b) for times in busy.values() for b in times)):
            found.append(slot)
            at = slot[1]
            continue
        at += step
    return found


def _meet(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def grid_start(moment: datetime, zone, step: timedelta) -> datetime:
    """The first instant at or after `moment` on the `step` grid of local clock time in `zone`."""
    local = moment.astimezone(zone)
    midnight = datetime.combine(local.date(), time(0), tzinfo=zone)
    steps = -(-(local - midnight) // step)
    return (midnight + steps * step).astimezone(UTC)
