"""The outage scenarios: a dependency down for hours of app time while both sides are edited, a site whose
list suddenly answers empty, and a week of ordinary traffic. Each ends with a `Row` of the table.

After the dependency is back the scenario polls, with a deadline of `settle_hours` of app time, until both
sides agree with each other and with the last edit; it then lets another app hour pass and counts again
(a removal or a duplicate may come after the first agreement).
"""

from __future__ import annotations

import time
from typing import Callable

from shared import clock

from .counts import Row
from .world import EVENTS, ORGANISERS, World

POLL_SECONDS = 0.05  # wall seconds between two looks at both sides
SETTLE_HOURS = 25.0  # app hours after recovery the sides have to agree: past one daily comparison


def until_agreed(world: World, items: list[int], hours: float) -> tuple[float | None, float | None]:
    """Poll until both sides agree on `items`: (app seconds, wall seconds) it took, or (None, None) when the
    deadline (`hours` of app time, and 3 wall seconds for the work itself) passed first."""
    app_start, wall_start = clock.now(), time.monotonic()
    deadline = wall_start + clock.wall_seconds(hours * 3600) + 3
    while not world.check(items).agreed():
        if time.monotonic() > deadline:
            return None, None
        time.sleep(POLL_SECONDS)
    return (clock.now() - app_start).total_seconds(), time.monotonic() - wall_start


def _finish(world: World, name: str, items: list[int], settle_hours: float, poisoned_before: int,
            lapses_before: int) -> Row:
    app_s, wall_s = until_agreed(world, items, settle_hours)
    world.app_hours(1)
    # what the app clears by itself (held removals whose items are back, dropped one by one with a site write
    # each: seconds of wall time, hours of app time at this speed) is not waiting for a person: poll a while
    deadline = time.monotonic() + clock.wall_seconds(settle_hours * 3600) + 3
    while world.waiting_for_a_person() and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    counts = world.check(items)
    counts.poisoned = world.poisoned_so_far() - poisoned_before
    counts.waiting_for_a_person = world.waiting_for_a_person()
    counts.lapsed_subscriptions = world.lapses - lapses_before
    if counts.waiting_for_a_person:
        world.empty_poison_queue()
    return Row(name, counts, app_s, wall_s)


def _settled(world: World, items: list[int]) -> None:
    """Items made before an outage must be in line before it starts, or the scenario proves nothing; and the
    app done with them (its second delivery of a create, its catch-up), so that an edit during the outage
    meets an idle app, not one still writing the same event."""
    if until_agreed(world, items, 2)[0] is None:
        raise RuntimeError(f"items {items} did not reach Outlook before the outage: {world.check(items)}")
    time.sleep(max(1.0, clock.wall_seconds(3600)))  # an app hour, and a wall second for the work itself
    if not world.check(items).agreed():
        raise RuntimeError(f"items {items} fell out of line before the outage: {world.check(items)}")


def _switch(world: World, kind: str) -> Callable[[bool], None]:
    """How a dependency goes down (True) and comes back (False)."""
    stack = world.stack
    if kind == "Graph":
        return stack.graph.down  # every Graph request, tokens included, answers 503
    if kind == "site":
        return stack.rapid.down  # the RAPID API answers 503 (its people still edit: webhooks still fire)
    if kind == "Storage":
        return lambda down: stack.azurite.stop() if down else stack.azurite.start()  # connections refused
    raise ValueError(f"no outage of {kind!r}")


def outage(world: World, kind: str, hours: float, settle_hours: float = SETTLE_HOURS) -> Row:
    """`kind` down for `hours` of app time. Early in the outage: a site rename, an Outlook move to another
    room, a site create and a site delete; late in it (past Graph's 4 h of redelivery for long outages):
    an Outlook rename and a site move."""
    poisoned_before, lapses_before = world.poisoned_so_far(), world.lapses
    renamed, relocated, deleted, late_outlook, late_site = (world.create(organiser=ORGANISERS[n % 2], hour=8 + n)
                                                            for n in range(5))
    before = [renamed, relocated, deleted, late_outlook, late_site]
    _settled(world, before)
    switch = _switch(world, kind)
    switch(True)
    try:
        world.app_hours(hours * 0.1)
        world.site_rename(renamed, f"Renamed in the site while {kind} was down")
        world.outlook_relocate(relocated, f"Room moved in Outlook while {kind} was down")
        created = world.create(hour=16)
        world.site_delete(deleted)
        world.app_hours(hours * 0.8)
        world.outlook_rename(late_outlook, f"Renamed in Outlook late in the {kind} outage")
        world.site_move(late_site, 20, 11)
        world.app_hours(hours * 0.1)
    finally:
        switch(False)
    return _finish(world, f"{kind} down {hours:g} h", before + [created], settle_hours, poisoned_before,
                   lapses_before)


def empty_list(world: World, items_answer: str, hours: float = 25.0, settle_hours: float = SETTLE_HOURS) -> Row:
    """The site's Meeting Events list answers every read with no rows for `hours` (past a daily sweep), its
    items answering a GET as `items_answer` ("found", or "404"), while both sides are edited; nothing may be
    cancelled, and both sides agree once the list is back."""
    poisoned_before, lapses_before = world.poisoned_so_far(), world.lapses
    items = [world.create(organiser=ORGANISERS[n % 2], day=12, hour=8 + n) for n in range(4)]
    _settled(world, items)
    variant = world.site.sim.variant
    variant.empty_items, variant.empty_lists = items_answer, (EVENTS,)
    try:
        world.app_hours(hours * 0.2)
        world.site_rename(items[0], "Renamed while the list answered empty")
        world.outlook_relocate(items[1], "Room moved in Outlook while the list answered empty")
        world.app_hours(hours * 0.8)
    finally:
        variant.empty_lists, variant.empty_items = (), "found"
    name = "site list answers empty" + (", items 404" if items_answer == "404" else "")
    return _finish(world, f"{name} {hours:g} h", items, settle_hours, poisoned_before, lapses_before)


def week(world: World, days: int = 7, settle_hours: float = SETTLE_HOURS) -> Row:
    """`days` of ordinary traffic: every 6 app hours a site edit and an Outlook edit, subscriptions renewed
    by the renewer timer as they near Graph's maximum lifetime for events (4230 minutes), tokens expiring
    every hour and refreshed, and on the third day every delta token Graph gave out made void (410)."""
    poisoned_before, lapses_before = world.poisoned_so_far(), world.lapses
    items = [world.create(organiser=ORGANISERS[n % 2], day=20, hour=8 + n) for n in range(4)]
    _settled(world, items)
    for step in range(days * 4):
        world.app_hours(6)
        site_item, outlook_item = items[step % 4], items[(step + 2) % 4]
        if step % 2:
            world.site_move(site_item, 21 + step % 7, 8 + step % 9)
        else:
            world.site_rename(site_item, f"Week edit {step} in the site")
        world.outlook_relocate(outlook_item, f"Week room {step}")
        if step == 8:
            world.stack.graph.expire_delta_tokens()
    return _finish(world, f"a week in minutes ({days} days)", items, settle_hours, poisoned_before,
                   lapses_before)
