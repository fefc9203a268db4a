"""`python -m devtools.bench`: run the figures in order, then print the table (see __init__.py)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from . import __doc__ as OVERVIEW
from .catch_up import figure7_catch_up
from .cold_start import figure5_cold_start
from .conflict_check import figure8_conflict_check
from .harness import World, progress
from .host import serve_child
from .intake import figure1_intake
from .propagation import figure6_propagation
from .renewal import figure3_renewal
from .rooms_free_times import figure10_rooms_free_times
from .requests_per_change import figure2_requests_per_change, tokens_row
from .table import print_report
from .throughput import figure4_throughput
from .update_mails import figure9_update_mails

# the order they run in: 5 before any host (a cold interpreter on a quiet machine); 6 after 4 (it edits
# 4's events); 3 and 7 late (their 10,000 rows stay in Azurite for whatever follows); 9 last (it restarts the
# worker host with its own settle settings)
FIGURES = (("1", figure1_intake), ("2", figure2_requests_per_change), ("4", figure4_throughput),
           ("6", figure6_propagation), ("3", figure3_renewal), ("7", figure7_catch_up),
           ("8", figure8_conflict_check), ("10", figure10_rooms_free_times), ("9", figure9_update_mails))
PREVIOUS_WALL, GOAL_WALL = 553, 300  # issue 19 part 6: `make bench` seconds


def selected() -> set[str]:
    """BENCH_ONLY=4 or 2,8: only these figures (for working on one); empty: all of them."""
    return set(filter(None, os.environ.get("BENCH_ONLY", "").split(",")))


def timed(world: World, number: str, figure) -> None:
    started = time.perf_counter()
    figure(world)
    world.report.wall[number] = time.perf_counter() - started


def run_all(world: World, only: set[str]) -> None:
    from ..stack import ORGANISER

    if not only or "5" in only:
        timed(world, "5", figure5_cold_start)
    progress("starting the worker host (host.json queue settings)")
    world.start_main_host()
    site = world.stack.sites["acme/sales"]
    world.meeting = site.sim.create_item("Meetings", title="Bench: intake", organiser_id=site.principals[ORGANISER])
    world.alice_sub = world.subscription("acme/sales", ORGANISER)
    world.settle()
    for number, figure in FIGURES:
        if not only or number in only:
            timed(world, number, figure)
    tokens_row(world)


def wall_time_row(world: World, total: float, only: set[str]) -> None:
    """Issue 19 part 6: the whole bench under 300 s, from 553 s; with BENCH_ONLY, a partial run's time."""
    report = world.report
    report.note("wall time per figure: " + ", ".join(f"{n} {s:.0f} s" for n, s in report.wall.items())
                + f"; starting and stopping the world {total - sum(report.wall.values()):.0f} s")
    if only:
        report.row(f"bench wall time (BENCH_ONLY={','.join(sorted(only))}: partial)", f"{total:.0f} s",
                   f"previous {PREVIOUS_WALL} s (all figures)", "—", f"< {GOAL_WALL} s for all figures", "—")
    else:
        report.row("bench wall time, all figures (issue 19)", f"{total:.0f} s", f"previous {PREVIOUS_WALL} s",
                   f"{total / PREVIOUS_WALL:.2f}×", f"< {GOAL_WALL} s", total < GOAL_WALL)


def bench() -> int:
    only, world, started = selected(), World(), time.perf_counter()
    world.start()
    try:
        run_all(world, only)
    finally:
        world.stop()
    total = time.perf_counter() - started
    wall_time_row(world, total, only)
    print_report(world.report, total)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=OVERVIEW, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child-host", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--no-triggers", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--overrides", default="", help=argparse.SUPPRESS)
    parser.add_argument("--sample", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_host:
        return serve_child(args)
    logging.basicConfig(level=logging.WARNING)
    return bench()


if __name__ == "__main__":
    sys.exit(main())
