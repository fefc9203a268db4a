"""`python -m devtools.outages`: the outage table (see devtools/outages/__init__.py)."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from . import OUTAGE_SPEED, SETTLE_HOURS, WEEK_SPEED, __doc__ as about, run, say_to_stderr
from .counts import table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=about, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speed", type=float, default=OUTAGE_SPEED, help="app seconds per wall second (outages)")
    parser.add_argument("--week-speed", type=float, default=WEEK_SPEED, help="app seconds per wall second (week)")
    parser.add_argument("--only", action="append", default=[],
                        help="run only the scenarios whose name starts with this (repeatable)")
    parser.add_argument("--settle-hours", type=float, default=SETTLE_HOURS,
                        help="app hours after recovery both sides have to agree")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s %(message)s")
    rows = run(args.speed, args.week_speed, tuple(args.only), args.settle_hours, say_to_stderr(time.monotonic()))
    print(table(rows))
    for row in rows:
        if row.error:
            print(f"  {row.scenario}: {row.error}")
    ok = bool(rows) and all(row.ok() for row in rows)
    print("OK: every outage healed by itself" if ok else "FAILED: some outage did not heal by itself")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
