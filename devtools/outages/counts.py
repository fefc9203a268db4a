"""What one outage scenario ends with, and the table `make chaos` prints of them all."""

from __future__ import annotations

from dataclasses import dataclass, fields

COLUMNS = ("scenario", "lost", "duplicated", "mismatched", "poisoned", "waiting for a person", "wrongly cancelled",
           "lapsed subscriptions", "recovery → agreed (app)", "(wall)")


@dataclass
class Counts:
    """Every count must be 0."""

    lost: int = 0
    duplicated: int = 0
    mismatched: int = 0
    poisoned: int = 0
    waiting_for_a_person: int = 0
    wrongly_cancelled: int = 0
    lapsed_subscriptions: int = 0

    def agreed(self) -> bool:
        """Both sides agree with each other and with the last edit (what the harness polls for)."""
        return not (self.lost or self.duplicated or self.mismatched or self.wrongly_cancelled)

    def ok(self) -> bool:
        return not any(getattr(self, f.name) for f in fields(self))

    def values(self) -> tuple[int, ...]:
        return tuple(getattr(self, f.name) for f in fields(self))


@dataclass
class Row:
    scenario: str
    counts: Counts
    app_seconds: float | None = None   # from recovery to both sides agreeing; None: they never agreed
    wall_seconds: float | None = None
    error: str | None = None           # the scenario could not run to its end (printed under the table)

    def ok(self) -> bool:
        return self.counts.ok() and self.app_seconds is not None and self.error is None

    def cells(self) -> tuple[str, ...]:
        agreed = _duration(self.app_seconds) if self.app_seconds is not None else "never"
        wall = f"{self.wall_seconds:.1f} s" if self.wall_seconds is not None else "-"
        return (self.scenario, *map(str, self.counts.values()), agreed, wall)


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min"


def table(rows: list[Row]) -> str:
    """A Markdown table, as the README shows it."""
    lines = [COLUMNS, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    out = ["| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths)))
           + " |" for line in lines]
    out.insert(1, "|" + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|")
    return "\n".join(out)
