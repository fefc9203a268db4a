"""Times that suit everyone (issue 23, part 3): when a created or moved event has conflicts (someone busy,
or outside their working hours), an optional Meeting Events column (SITES `free_times_column`, which needs
`conflicts_column`) proposes up to three times of the event's length in the next working days, when the
organiser, the invitees and the room are all free and within everyone's working hours:

    Free for everyone: Tue 4 May 10:00–11:00 · Tue 4 May 14:30–15:30 · Wed 5 May 09:00–10:00

in the site's time zone; "No time free for everyone ..." when there is none; cleared when the conflicts
are gone. No request of its own: it widens the one getSchedule the conflicts check makes (features/base.py
`schedule_window`) to cover the days searched, and reads the free/busy and working hours from its answer
(features/conflicts.py, model/schedule.py). People Graph cannot read (guests outside the tenant) are left
out: their free/busy is not known. Times start on the half hour, from the later of now and the start of
the event's day; an all-day event or one longer than a day gets no proposal.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta

from ..context import SiteContext
from ..model.mapping import format_utc, local_midnight, parse_utc
from ..model.schedule import free_slots, grid_start, hours_of
from .base import Feature, write_column
from .conflicts import ScheduleRead, overlaps

log = logging.getLogger("rapid_meetings")
SEARCH = timedelta(days=7)      # a week from the event's day: its next five working days
STEP = timedelta(minutes=30)    # proposals start on the half hour, local time
WANTED = 3


def search_window(zone, synced, now):
    """The times searched: from the later of now and the start of the event's day (in the site's zone), a
    week on; None for an event proposals do not fit (all day, longer than a day, no length)."""
    start, end = parse_utc(synced.start), parse_utc(synced.end)
    if synced.all_day or not timedelta(0) < end - start <= timedelta(days=1):
        return None
    begin = grid_start(max(now, local_midnight(start.astimezone(zone).date(), zone)), zone, STEP)
    return begin, begin + SEARCH


def proposals(read: ScheduleRead, zone, now) -> list[tuple]:
    """Up to three slots free for everyone read (the event itself does not count against them). Pure."""
    window = search_window(zone, read.synced, now)
    if window is None:
        return []
    start, end = parse_utc(read.synced.start), parse_utc(read.synced.end)
    busy: dict[str, list] = {}
    for b in overlaps(read.schedules, window, read.copies):
        busy.setdefault(b.email, []).append((b.start, b.end))
    hours = {str(i.get("scheduleId") or "").lower(): hours_of(i) for i in read.schedules if not i.get("error")}
    return free_slots(busy, hours, window, end - start, STEP, (start, end), WANTED)


def proposals_text(slots: list[tuple], zone) -> str:
    """The words shown, in the site's zone: "Free for everyone: Tue 4 May 10:00–11:00 · …"."""
    if not slots:
        return f"No time free for everyone in the next {SEARCH.days} days"
    parts = []
    for start, end in slots:
        s, e = start.astimezone(zone), end.astimezone(zone)
        until = f"{e:%H:%M}" if e.date() == s.date() else f"{e:%a} {e.day} {e:%b %H:%M}"
        parts.append(f"{s:%a} {s.day} {s:%b %H:%M}–{until}")
    return "Free for everyone: " + " · ".join(parts)


def proposals_key(slots: list[tuple] | None) -> str:
    """None: nothing to propose (no conflict)."""
    text = "none" if slots is None else "|".join(f"{format_utc(s)}/{format_utc(e)}" for s, e in slots)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def propose(ctx: SiteContext, item_id: str, read: ScheduleRead) -> bool:
    """Write the times free for everyone when the event has conflicts, clear them when it has none."""
    site = ctx.site
    slots = proposals(read, site.zone, ctx.now()) if read.conflicts else None
    words = "" if slots is None else proposals_text(slots, site.zone)
    written = write_column(ctx, "free times", item_id, site.free_times_column, proposals_key(slots), lambda: words,
                           unwritten_key=proposals_key(None))
    if written:
        log.info("site=%s item=%s free times: %s", site.key, item_id,
                 "cleared" if slots is None else f"{len(slots)} proposed")
    return written


class FreeTimes(Feature):
    """Times free for everyone, when a created or moved event has conflicts (SITES `free_times_column`)."""

    name = "free times"
    skipped = "not proposed"

    def enabled(self, site):
        return bool(site.free_times_column and site.conflicts_column)

    def schedule_window(self, site, synced, now):
        return search_window(site.zone, synced, now)

    def after_schedule(self, ctx, item_id, read):
        propose(ctx, item_id, read)
