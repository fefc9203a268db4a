"""The app's clock: what time it is, and how long a wait of app time really takes.

In Azure both are the real ones. Tests and `make chaos` install an accelerated clock (devtools only), so
an outage of hours or a week of renewals runs in minutes on one time line shared by the app, the local
host and the simulators: app time = origin + (wall time - wall origin) * speed, and a queue message
delayed by an hour of app time becomes visible after an hour / speed of wall time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone


@dataclass(frozen=True)
class Accelerated:
    """App time running `speed` times faster than the wall clock, from `origin` (app) at `wall_origin`."""

    origin: datetime
    wall_origin: float
    speed: float

    def now(self) -> datetime:
        return self.origin + timedelta(seconds=(time.time() - self.wall_origin) * self.speed)

    def wall_seconds(self, seconds: float) -> float:
        return seconds / self.speed

    def text(self) -> str:
        """The form `parse` reads back (how one process hands its clock to another)."""
        return f"{self.origin.isoformat()},{self.wall_origin!r},{self.speed!r}"

    @classmethod
    def parse(cls, text: str) -> "Accelerated":
        origin, wall_origin, speed = text.split(",")
        return cls(datetime.fromisoformat(origin), float(wall_origin), float(speed))


_installed: Accelerated | None = None


def install(clock: Accelerated | None) -> None:
    """Run this process on `clock` (None: the real one again). Devtools only."""
    global _installed
    _installed = clock


def now() -> datetime:
    return _installed.now() if _installed else datetime.now(timezone.utc)


def wall_seconds(seconds: float) -> float:
    """How long `seconds` of app time take on the wall clock (a queue delay, a timer's sleep)."""
    return _installed.wall_seconds(seconds) if _installed else seconds
