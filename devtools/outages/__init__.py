"""Outage scenarios on an accelerated clock (issue 20, "Prove it with a clock you control"): the second half of
`make chaos`.

    python -m devtools.outages [--speed 3600] [--week-speed 14400] [--only "Graph down 1 h"] [--settle-hours 25]

The app, its local host and the Graph and RAPID simulators share one clock running `--speed` times faster
than the wall clock (devtools/world_clock.py): Graph, the site API and Storage (Azurite stopped) each go
down for 1 h, 4 h and 24 h of app time while both sides are edited, the site's list answers empty for a day
(its items found, then answering 404), and, on a second world at `--week-speed`, a week of ordinary traffic
with subscription renewals, token expiry and a delta-token expiry. One table: lost, duplicated, mismatched,
poisoned, waiting for a person, wrongly cancelled, lapsed subscriptions (all must be 0) and the time from
recovery to both sides agreeing, in app time and wall time. Exit code 0 only when every count is 0.
"""

from __future__ import annotations

import sys
import time
from typing import Callable

from .counts import Counts, Row
from .scenarios import SETTLE_HOURS, empty_list, outage, week
from .world import World

OUTAGE_SPEED = 3600.0   # 1 app hour a wall second: 24 h down in 24 s; the app's back-off cap (≤ 15 min) in 0.25 s
WEEK_SPEED = 14400.0    # 1 app day in 6 wall seconds


def outage_scenarios(settle_hours: float) -> list[tuple[str, Callable[[World], Row]]]:
    named = [(f"{kind} down {hours} h", lambda w, k=kind, h=hours: outage(w, k, h, settle_hours))
             for kind in ("Graph", "site", "Storage") for hours in (1, 4, 24)]
    named += [("site list answers empty 25 h", lambda w: empty_list(w, "found", settle_hours=settle_hours)),
              ("site list answers empty, items 404 25 h", lambda w: empty_list(w, "404", settle_hours=settle_hours))]
    return named


def run(speed: float = OUTAGE_SPEED, week_speed: float = WEEK_SPEED, only: tuple[str, ...] = (),
        settle_hours: float = SETTLE_HOURS, say=lambda text: None) -> list[Row]:
    """Every scenario (or those whose name starts with one of `only`), each world on its own clock."""
    worlds = [(speed, outage_scenarios(settle_hours)),
              (week_speed, [("a week in minutes", lambda w: week(w, settle_hours=settle_hours))])]
    rows = []
    for world_speed, scenarios in worlds:
        chosen = [(n, s) for n, s in scenarios if not only or any(n.lower().startswith(o.lower()) for o in only)]
        if chosen:
            rows += _run_world(world_speed, chosen, say)
    return rows


def _run_world(speed: float, scenarios, say) -> list[Row]:
    world, rows = World(speed), []
    try:
        world.start()
        say(f"a world at {speed:g}× (1 app hour = {3600 / speed:.2f} wall s); host logs in {world.log_dir}")
        for name, scenario in scenarios:
            started = time.monotonic()
            try:
                row = scenario(world)
            except Exception as e:  # the table still shows the others
                row = Row(name, Counts(), error=f"{type(e).__name__}: {e}")
            rows.append(row)
            say(f"{name}: {'ok' if row.ok() else 'NOT OK'} ({time.monotonic() - started:.0f} s)")
    finally:
        world.stop()
    return rows


def say_to_stderr(started: float):
    return lambda text: print(f"[{time.monotonic() - started:6.1f}s] {text}", file=sys.stderr, flush=True)
