"""Rooms booked with the meeting (issue 23, part 1): a Meeting Events text column (SITES `room_column`)
names the event's room - its address or its name in the tenant's room list - and the room is invited as a
`resource` attendee (resources/attendee.md), so Exchange's booking policy accepts or declines it as it does
for a person (Set-CalendarProcessing; docs/platform-facts.md, "Rooms and working hours"). The room's answer
is written to an optional column (SITES `room_status_column`): "Room 4.12: accepted", "Room 4.12: declined:
already booked".

The rooms a site may use are the tenant's room list (api/place-list.md, GET /places/microsoft.graph.room,
Place.Read.All), read at most once an hour (clients/graph.py `rooms`) and only when an item names a room
the link does not hold yet. A name the list does not have is a status ("Atlantis: not in the tenant's room
list, not booked"), never a failed sync: the event is made without a room. Moving the event re-books the
room (Exchange asks it again); another room in the column sends the attendees without the old one, which
frees it. The room's answer comes later than the create or the PATCH that asked it (a notification or the
next read: platform-facts, "Unsettled"), and is taken from whatever event the sync reads or writes; only a
decline costs a request, one getSchedule of the room, to say whether it is already booked then. A room is
never an invitee: the answers column and the conflicts column leave it out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from ..context import SiteContext
from ..model.mapping import attendee_list, parse_utc
from .base import Feature, Target, write_column

log = logging.getLogger("rapid_meetings")
NAME = "room"
WORDS = {"accepted": "accepted", "declined": "declined", "tentativelyaccepted": "tentative, awaiting approval",
         "none": "asked, no answer yet", "notresponded": "asked, no answer yet"}   # responsestatus.md


@dataclass(frozen=True)
class RoomAsk:
    """What an item's room column asks for: its text, and the room mailbox it names ("" = none known)."""

    text: str
    address: str = ""
    name: str = ""


def same_text(a: str, b: str) -> bool:
    return a.strip().casefold() == b.strip().casefold()


def find_room(rooms: tuple[dict, ...], text: str) -> tuple[str, str] | None:
    """(address, name) of the room the text names, by its address or its display name; None when none. Pure."""
    for room in rooms:
        address, name = str(room.get("emailAddress") or ""), str(room.get("displayName") or "")
        if address and (same_text(text, address) or (name and same_text(text, name))):
            return address.lower(), name
    return None


def rooms_of(event: dict) -> dict[str, str]:
    """email → response of the event's `resource` attendees."""
    return {str((a.get("emailAddress") or {}).get("address") or "").lower():
            str((a.get("status") or {}).get("response") or "none").lower()
            for a in event.get("attendees") or () if a.get("type") == "resource"}


def tenant_rooms(ctx: SiteContext, addresses) -> frozenset:
    """Those of `addresses` that are rooms of the tenant's room list, lower-cased: read as rooms, not people
    (the site's bounds are for people). None without room_column: nothing else reads the room list."""
    if not addresses or not ctx.site.room_column:
        return frozenset()
    listed = {str(room.get("emailAddress") or "").lower() for room in ctx.graph.rooms()}
    return frozenset(a.lower() for a in addresses if a.lower() in listed)


def room_name(ctx: SiteContext, address: str) -> str:
    """The room's display name from the (cached) room list, its address when the list no longer has it."""
    found = find_room(ctx.graph.rooms(), address)
    return found[1] if found and found[1] else address


def status_words(name: str, response: str, booked_elsewhere: bool = False) -> str:
    text = f"{name}: {WORDS.get(response, WORDS['none'])}"
    return text + (": already booked" if response == "declined" and booked_elsewhere else "")


def booked_elsewhere(ctx: SiteContext, link, address: str) -> bool:
    """A declined room: whether it holds another booking at the event's time (one getSchedule of the room;
    a room that declined holds no copy of this event, Set-CalendarProcessing AutoAccept)."""
    start, end = parse_utc(link.synced.start), parse_utc(link.synced.end)
    if end <= start:
        return False
    minutes = max(5, min(1440, int((end - start).total_seconds() // 60) or 5))
    for info in ctx.graph.get_schedule(link.mailbox, [address], start, end, minutes, rooms=frozenset([address])):
        for item in info.get("scheduleItems") or ():
            if str(item.get("status") or "").lower() not in ("free", "unknown"):
                return True
    return False


def show_room(ctx: SiteContext, link, event: dict) -> bool:
    """Write the room's answer (or why there is none) to the item's room status column if it changed."""
    site, address = ctx.site, link.room_address
    if not link.room:
        key, words = "", lambda: ""
    elif not address:
        key, words = f"unknown|{link.room}", lambda: f"{link.room}: not in the tenant's room list, not booked"
    else:
        if not isinstance(event.get("attendees"), list):
            return False  # read without its attendees: nothing can be said
        response = rooms_of(event).get(address, "none")
        key = f"{address}|{response}"

        def words() -> str:
            elsewhere = response == "declined" and booked_elsewhere(ctx, link, address)
            return status_words(room_name(ctx, address), response, elsewhere)
    written = write_column(ctx, NAME, link.item_id, site.room_status_column, key, words, unwritten_key="")
    if written:
        log.info("site=%s item=%s room status: %s", site.key, link.item_id, key or "cleared")
    return written


class Rooms(Feature):
    """The event's room, invited as a resource (SITES `room_column`, `room_status_column`)."""

    name = "rooms"
    skipped = "room status not written"

    def enabled(self, site):
        return bool(site.room_column)

    def columns(self, site):
        return (site.room_column,)

    def contribute(self, site, item, link, target, ctx):
        """The room the item names: with `ctx`, looked up in the tenant's room list (cached) when the link
        does not hold it already; without, the link's when the text is as last synced."""
        text = str(item.get(site.room_column) or "").strip()
        if link is not None and same_text(text, link.room):
            ask = RoomAsk(text, link.room_address)
        elif not text or ctx is None:
            ask = RoomAsk(text)
        else:
            found = find_room(ctx.graph.rooms(), text)
            ask = RoomAsk(text, *found) if found else RoomAsk(text)
            if not found:
                log.info("site=%s item=%s room %r is not in the tenant's room list: not booked", site.key,
                         item.get("id"), text)
        return replace(target, asks={**target.asks, NAME: ask})

    def differs(self, site, target, link):
        ask = target.ask(NAME)
        if ask is None or link is None:
            return None
        return None if same_text(ask.text, link.room) and ask.address == link.room_address else "room changed"

    def create_fields(self, site, target):
        ask = target.ask(NAME, RoomAsk(""))
        fields = {"attendees": _attendees(target, ask)} if ask.address else {}
        return fields, {"room": ask.text, "room_address": ask.address}

    def patch_fields(self, site, target, link):
        """The whole attendee list when the room changed, or the people did while a room is booked (the
        engine's list holds the people only: sent alone, it would release the room)."""
        ask = target.ask(NAME, RoomAsk(link.room, link.room_address))
        people_changed = target.synced.attendees != link.synced.attendees
        if ask.address != link.room_address or (ask.address and people_changed):
            return {"attendees": _attendees(target, ask)}, {"room": ask.text, "room_address": ask.address}
        return {}, {"room": ask.text, "room_address": ask.address}

    def after_sync(self, ctx, outcome):
        if ctx.site.room_status_column:
            show_room(ctx, outcome.link, outcome.event)


def _attendees(target: Target, ask: RoomAsk) -> list[dict]:
    return attendee_list(target.synced.attendees, ((ask.address, ask.name),) if ask.address else ())
