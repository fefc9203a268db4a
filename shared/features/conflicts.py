"""Conflicts seen before they hurt (issue 15, part 2): when the sync creates a site event's Outlook event,
or moves it (start, end or all-day changed, from the site or in Outlook), the free/busy of the organiser
and the attendees is read with one Graph request (calendar getSchedule, through the organiser's calendar)
and whoever is busy then is named in an optional Meeting Events column (SITES `conflicts_column`, off
when unset), in the site's time zone:

    Bob is busy 09:00–09:30 (tentative) · Carol is out of office all day

The column is cleared when no conflict applies any more. One Graph request per created or moved event,
never more, and never in the way of the sync: a refusal (403), throttling (429) or an outage is logged
and the sync's work stands (the next move asks again). The column is written with webhooks=false and only
when what it says changed (the conflicts last written are kept in the ops table, as the answers are);
names are the site's (Principals and External Contacts titles, read only when there is something new to
say). Free never counts; busy, tentative, out of office and working elsewhere do. Addresses Graph cannot
read (guests outside the tenant) come back as error entries and are skipped; people outside the site's
bounds (SITES `mailbox_domains` / `mailbox_group`, clients/bounds.py) are never asked about.

The event itself is in the organiser's calendar, and each invitee who got the invitation holds a copy of
it, tentative until they answer ([MS-OXOCAL] 3.1.4.7.2.2). Free/busy items carry no event id, so our own
is recognised by its slot: per person, at most one item exactly at the event's time (for an invitee also
at its time and title before the move: the update may not have reached their copy yet), whose subject,
when shown, is the event's. An invitee who declined holds no copy. Anything else overlapping is a
conflict, even a second meeting at exactly the same time.

With SITES `working_hours` on, an invitee the event falls outside the working hours of is named too
("Carol: outside working hours (09:00–17:00 their time)"), from the `workingHours` of the same answer
(model/schedule.py). Features that work from this read (features/base.py `schedule_window`,
`after_schedule`: the times free for everyone) widen its window and are given it; the event's rooms are
then read too, and never named here (they answer for themselves: features/rooms.py).
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from .answers import MAX_TEXT, answers_of, short_names, site_people
from ..model.errors import RemoteNotFound
from ..clients.graph import SCHEDULE_LIMIT
from ..model.mapping import Synced, format_utc, parse_utc, zone_named
from ..context import SiteContext
from ..model.rapid_items import lookup_id
from ..model.schedule import outside_hours
from .base import Feature, write_column
from .rooms import rooms_of, tenant_rooms

log = logging.getLogger("rapid_meetings")
UTC = timezone.utc
MAX_PERIOD = timedelta(days=61)   # getSchedule looks at less than 62 days (concepts/outlook-get-free-busy-schedule.md)
# scheduleitem.md, status (a freeBusyStatus): free, tentative, busy, oof, workingElsewhere, unknown; the concept
# page's example writes them capitalised ("Tentative"), so they are read case-insensitively
STATUSES = {s.lower(): s for s in ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown")}
PHRASES = {"busy": ("busy", ""), "tentative": ("busy", " (tentative)"), "oof": ("out of office", ""),
           "workingElsewhere": ("working elsewhere", "")}   # what counts as a conflict, and how it is said


@dataclass(frozen=True, order=True)
class Busy:
    """Someone's time that overlaps the event."""

    start: datetime   # UTC
    end: datetime
    email: str
    status: str       # a key of PHRASES


@dataclass(frozen=True)
class OwnCopy:
    """Where the event itself may show in one person's free/busy, under which subject (when the mailbox
    shows subjects), and with which status most likely."""

    slots: tuple[tuple[datetime, datetime], ...]
    status: str
    subjects: tuple[str, ...] = ()


def _moment(value: dict) -> datetime:
    """A dateTimeTimeZone as a UTC instant (Graph answers in the zone asked for with Prefer, UTC here)."""
    naive = parse_utc(value["dateTime"]).replace(tzinfo=None)
    return naive.replace(tzinfo=zone_named(value.get("timeZone") or "UTC")).astimezone(UTC)


def own_copies(organiser: str, synced: Synced, event: dict, before: Synced | None = None,
               rooms=()) -> dict[str, OwnCopy]:
    """email → where the event itself shows: the organiser's event at its time; each invitee's (and each of
    the `rooms`') copy at its time or, after a move, maybe still at the time (and under the title) before;
    none for one who declined."""
    slot = (parse_utc(synced.start), parse_utc(synced.end))
    old = (parse_utc(before.start), parse_utc(before.end)) if before else None
    shown = STATUSES.get(str(event.get("showAs") or "busy").lower(), "busy")
    copies = {organiser.lower(): OwnCopy((slot,), shown, (synced.title,))}
    responses = {a.email: a.response for a in answers_of(event) or ()} | rooms_of(event)
    for email in (*synced.attendees, *rooms):
        response = responses.get(email.lower(), "none")
        if response != "declined":
            copies[email.lower()] = OwnCopy(tuple(s for s in (slot, old) if s),
                                            shown if response == "accepted" else "tentative",
                                            (synced.title, *((before.title,) if before else ())))
    return copies


def overlaps(schedules: list[dict], window: tuple[datetime, datetime], copies: dict[str, OwnCopy]) -> tuple[Busy, ...]:
    """Who is busy during `window`, from getSchedule's answer, without the event itself. Pure."""
    found = set()
    for info in schedules:
        email = str(info.get("scheduleId") or "").strip().lower()
        if not email or info.get("error"):
            continue  # freebusyerror.md: an address it could not read (a guest outside the tenant)
        items = []
        for raw in info.get("scheduleItems") or []:
            try:
                items.append((raw, STATUSES.get(str(raw["status"]).lower(), "unknown"), _moment(raw["start"]),
                              _moment(raw["end"])))
            except (KeyError, TypeError, ValueError, AttributeError):
                continue  # an item we cannot read tells nothing
        copy = copies.get(email)
        if copy is not None:
            titles = {t.strip().lower() for t in copy.subjects}
            own = [i for i in items if (i[2], i[3]) in copy.slots
                   and (not i[0].get("subject") or str(i[0]["subject"]).strip().lower() in titles)]
            if own:
                items.remove(next((i for i in own if i[1] == copy.status), own[0]))
        found |= {Busy(start, end, email, status) for _, status, start, end in items
                  if status in PHRASES and start < window[1] and end > window[0]}
    return tuple(sorted(found))


def _span(start: datetime, end: datetime, zone, day: date) -> str:
    """When, in the site's zone: times alone on the event's day, with the date otherwise; whole days as such."""
    s, e = start.astimezone(zone), end.astimezone(zone)
    if s.time() == e.time() == time(0) and e > s:
        last = (e - timedelta(days=1)).date()
        if s.date() == last:
            return "all day" if last == day else f"all day {s.day} {s:%b}"
        return f"{s.day} {s:%b}–{last.day} {last:%b}"
    if s.date() == e.date():
        return f"{s:%H:%M}–{e:%H:%M}" if s.date() == day else f"{s.day} {s:%b %H:%M}–{e:%H:%M}"
    return f"{s.day} {s:%b %H:%M}–{e.day} {e:%b %H:%M}"


def conflicts_text(found: tuple[Busy, ...], names: dict[str, str], zone, day: date, outside: dict | None = None) -> str:
    """The words shown: "Bob is busy 09:00–09:30 (tentative) · Carol is out of office all day · Dan: outside
    working hours (09:00–17:00 their time)" (`outside`: email → their model.schedule.Hours)."""
    parts = []
    for busy in found:
        what, note = PHRASES[busy.status]
        parts.append(f"{names.get(busy.email, busy.email)} is {what} {_span(busy.start, busy.end, zone, day)}{note}")
    for email, hours in sorted((outside or {}).items()):
        parts.append(f"{names.get(email, email)}: outside working hours ({hours.words()} their time)")
    words = " · ".join(parts)
    return words if len(words) <= MAX_TEXT else words[:MAX_TEXT - 1] + "…"


def conflicts_key(found: tuple[Busy, ...], outside: dict | None = None) -> str:
    """What the conflicts are, without names: equal keys, nothing to write."""
    text = "|".join(f"{b.email}:{b.status}:{format_utc(b.start)}:{format_utc(b.end)}" for b in found)
    text += "".join(f"|{e}:outside:{h.words()}:{h.zone_name}" for e, h in sorted((outside or {}).items()))
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class ScheduleRead:
    """The one getSchedule of a created or moved event, for the features that work from it (after_schedule)."""

    mailbox: str
    synced: Synced
    schedules: list
    window: tuple[datetime, datetime]    # what was read: the event's time, widened as features asked
    copies: dict                         # email → OwnCopy: the event itself, in each calendar
    rooms: frozenset = frozenset()       # the event's rooms (read too when a feature widened the window)
    conflicts: bool = False              # someone is busy then, or outside their working hours


def _read(ctx: SiteContext, item_id: str, mailbox: str, synced: Synced, event: dict, before: Synced | None,
          listeners) -> tuple[ScheduleRead, tuple[Busy, ...], dict]:
    """The one getSchedule (the event's time, widened as the `listeners` ask), who is busy then (rooms
    apart: they answer for themselves, features/rooms.py) and who is outside their working hours."""
    site = ctx.site
    start, end = parse_utc(synced.start), parse_utc(synced.end)
    until = min(end, start + MAX_PERIOD)
    wider = [w for f in listeners if (w := f.schedule_window(site, synced, ctx.now()))]
    window = (min([start, *(w[0] for w in wider)]), max([until, *(w[1] for w in wider)]))
    window = (window[0], min(window[1], window[0] + MAX_PERIOD))
    rooms = frozenset(rooms_of(event)) if wider else frozenset()
    people = list(dict.fromkeys(a.strip().lower() for a in (mailbox, *synced.attendees, *rooms) if a and a.strip()))
    room_addresses = tenant_rooms(ctx, rooms)
    # an invitee outside the site's bounds is invited (only an address) but their free/busy is never read;
    # rooms of the tenant's room list are not people (features/rooms.py); any other resource is bounded
    outside = ctx.graph.bounds.outside([p for p in people[1:] if p not in room_addresses])
    people = [p for p in people if p not in outside]
    if len(people) > SCHEDULE_LIMIT:
        log.info("site=%s item=%s conflicts: %d attendees beyond getSchedule's %d per request not checked",
                 site.key, item_id, len(people) - SCHEDULE_LIMIT, SCHEDULE_LIMIT)
    minutes = math.ceil((window[1] - window[0]).total_seconds() / 60)
    interval = min(1440, max(5, minutes))  # one slot for the event alone: the view is unused
    schedules = ctx.graph.get_schedule(mailbox, people[:SCHEDULE_LIMIT], window[0], window[1], interval,
                                       rooms=room_addresses)
    copies = own_copies(mailbox, synced, event, before, rooms)
    found = tuple(b for b in overlaps(schedules, (start, until), copies) if b.email not in rooms)
    invitees = {a.lower() for a in synced.attendees} - {mailbox.lower()}
    outside = outside_hours(schedules, invitees, start, end) if site.working_hours and not synced.all_day else {}
    read = ScheduleRead(mailbox, synced, schedules, window, copies, rooms, bool(found or outside))
    return read, found, outside


def note_conflicts(ctx: SiteContext, item_id, mailbox: str, synced: Synced, event: dict | None = None,
                   before: Synced | None = None, listeners=()) -> bool:
    """After a create (or a move: `before` is the content before it), read who is busy at the event's time
    and write it to the site's conflicts column if that changed; True when written. The `listeners`
    (features) widen the read and are given it."""
    site = ctx.site
    item_id = str(item_id)
    start, end = parse_utc(synced.start), parse_utc(synced.end)
    read, found, outside = None, (), {}
    if end > start:  # an event that takes no time meets nobody
        read, found, outside = _read(ctx, item_id, mailbox, synced, event or {}, before, listeners)
    day = start.astimezone(site.zone).date()

    def words() -> str:
        if not found and not outside:
            return ""
        item = ctx.rapid.get_item("events", item_id)
        if item is None:
            raise RemoteNotFound(f"item {item_id}")
        names = _names(ctx, item, {b.email for b in found} | set(outside), mailbox.lower())
        return conflicts_text(found, names, site.zone, day, outside)

    written = write_column(ctx, "conflicts", item_id, site.conflicts_column, conflicts_key(found, outside), words,
                           unwritten_key=conflicts_key(()))
    if written:
        log.info("site=%s item=%s conflicts: %s", site.key, item_id,
                 f"{len(found) + len(outside)} found" if found or outside else "cleared")
    for feature in listeners if read else ():
        feature.after_schedule(ctx, item_id, read)
    return written


class Conflicts(Feature):
    """Who is busy when a created or moved event takes place (SITES `conflicts_column`)."""

    name = "conflicts"
    skipped = "not checked"

    def enabled(self, site):
        return bool(site.conflicts_column)

    @staticmethod
    def check_needed(outcome) -> tuple[bool, object]:
        """(whether who is busy must be read, the content before a move): after a create, and after a move
        of either side; never after an edit that keeps the time. Pure."""
        synced, before = outcome.link.synced, outcome.before
        moved = before is not None and (synced.start, synced.end, synced.all_day) != (before.start, before.end,
                                                                                        before.all_day)
        return outcome.kind == "created" or (outcome.kind == "updated" and moved), before if moved else None

    def after_sync(self, ctx, outcome):
        needed, before = self.check_needed(outcome)
        if needed:
            from .registry import enabled_features  # the features that work from this read (registry names this one)

            listeners = [f for f in enabled_features(ctx.site) if f is not self]
            note_conflicts(ctx, outcome.link.item_id, outcome.link.mailbox, outcome.link.synced, outcome.event,
                           before=before, listeners=listeners)


def _names(ctx: SiteContext, item: dict, emails: set[str], organiser: str) -> dict[str, str]:
    """email → the name shown: the site's title (the given name, or the whole title where two share one),
    a guest marked as one; the organiser is a Principal too, found through the item's meeting."""
    site, principals = ctx.site, ()
    if organiser in emails and (meeting_id := lookup_id(item, site.col("meeting"))):
        meeting = ctx.rapid.get_item("meetings", meeting_id)
        principals = tuple(filter(None, [lookup_id(meeting, site.col("organiser")) if meeting else None]))
    people = site_people(ctx, item, principals)
    short = short_names({e: (people.get(e, ("", False))[0] or e).strip() for e in emails})
    return {e: short[e] + (" (guest)" if people.get(e, ("", False))[1] else "") for e in emails}
