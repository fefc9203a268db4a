"""The bench's one output: a table of figures, each against its baseline, then notes.

Figures add rows and notes to a `Report` while they run; `print_report` prints them once at the end,
rows in figure order (a row's figure label starts with its number; unnumbered rows come last).
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from datetime import datetime

from .sizes import BULK_SUBS, LATENCY, RENEW_SAMPLE

HEADS = {"figure": "figure", "measured": "measured", "baseline": "baseline / limit", "ratio": "ratio",
         "goal": "goal", "met": "met?"}
CAPTION = (
    "Baselines: 1 one Azure queue send_message per notification, same Azurite, same 8 client threads; "
    f"2 the goal counts; 3 one PATCH (+ table update) per subscription, {RENEW_SAMPLE} measured × "
    f"{BULK_SUBS // RENEW_SAMPLE};\n"
    f"  4 Graph's ceiling: 50 mailboxes × 4 concurrent ÷ {LATENCY * 1000:.0f} ms; 5 importing azure.functions "
    "alone in a fresh interpreter; 6 same changes on a host with the Functions default queue polling "
    "(maxPollingInterval 1 min);\n"
    "  \"previous\": the figure before issue 19 (one snapshot per job), as the issue states it.\n"
    f"  Simulator latency {LATENCY * 1000:.0f} ms per API request: Graph and RAPID for 4, Graph for 3 and 7; none for "
    "1, 2, 5, 6 and 8. ratio = measured ÷ baseline.")


@dataclass
class Row:
    figure: str
    measured: str
    baseline: str
    ratio: str
    goal: str
    met: str

    @property
    def order(self) -> int:
        return int(self.figure[0]) if self.figure[:1].isdigit() else 10


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    wall: dict[str, float] = field(default_factory=dict)  # seconds per figure, in run order

    def row(self, figure: str, measured: str, baseline: str, ratio: str, goal: str, met: bool | str) -> None:
        """`met`: True / False for a goal, or a word ("met" for a figure measured for sizing)."""
        verdict = ("met" if met else "not met") if isinstance(met, bool) else met
        self.rows.append(Row(figure, measured, baseline, ratio, goal, verdict))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def failed(self, figure: str, error: Exception) -> None:
        self.row(figure, "ERROR", "", "", str(error)[:60], False)


def print_report(report: Report, total: float) -> None:
    rows = sorted(report.rows, key=lambda r: r.order)
    widths = {k: max(len(h), *(len(str(getattr(r, k))) for r in rows)) for k, h in HEADS.items()}

    def line(values) -> str:
        return " | ".join(str(values[k]).ljust(widths[k]) for k in HEADS)

    print(f"rapid-meetings benchmark — {datetime.now().astimezone():%Y-%m-%d %H:%M %Z} — "
          f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}, run time {total:.0f} s")
    print(CAPTION)
    print()
    print(line(HEADS))
    print("-+-".join("-" * widths[k] for k in HEADS))
    for r in rows:
        print(line(vars(r)))
    print()
    for note in report.notes:
        print(f"  - {note}")
    missed = [r.figure for r in rows if r.met not in ("met", "—")]  # "—": not a goal in this run
    print()
    print(f"goals not met: {len(missed)} of {len(rows)}" + (": " + "; ".join(missed) if missed else ""))
    print(f"total run time {total:.0f} s")
