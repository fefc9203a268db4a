"""Circuit breakers per (site, dependency), shared by every instance through Table Storage.

When Graph, a site or the identity platform fails FAILURES_TO_OPEN times in a row for a site (a 5xx, a
timeout, a refused connection, a 503: not a 429, which only says "slower"), its breaker opens: the site's
jobs park until the next probe time instead of each trying, so a dependency that is down is not hammered
by a backlog. One job claims each probe (an ETag-checked write); when it succeeds the breaker closes and
the parked jobs drain (within Graph's limits: the mailbox slots of clients/graph.py and Retry-After);
when it fails the next probe waits twice as long, up to the back-off cap. Rows are cached per process
for a few seconds, so a healthy site costs one table query per CACHE_SECONDS, and no write.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from ..model.errors import NotVisible, StorageUnavailable, Throttled, TransientError
from ..model.mapping import format_utc, parse_utc
from ..storage.health import Breaker, Conflict

log = logging.getLogger("rapid_meetings")
FAILURES_TO_OPEN = 3
FIRST_PROBE_SECONDS = 5   # the first probe soon (most outages are short), then twice as long each time
CACHE_SECONDS = 5.0


def down_dependency(error: BaseException) -> str:
    """The dependency an error says is down ("" when it says nothing of the kind: throttling, a refusal,
    our own storage — which cannot keep a breaker of itself —, a bug)."""
    if isinstance(error, Throttled):
        return error.dependency if error.status == 503 else ""
    if isinstance(error, TransientError) and not isinstance(error, (StorageUnavailable, NotVisible)):
        return error.dependency  # (a 404 that proves nothing is about one mailbox or list, not the service)
    return ""


@dataclass(frozen=True)
class Gate:
    """What a job may do now: "run", "probe" (it tests a dependency that was down) or "park" until `until`."""

    action: str = "run"
    dependency: str = ""
    until: datetime | None = None
    down_since: str = ""


def probe_wait(cap: float, probes: int) -> float:
    return min(FIRST_PROBE_SECONDS * 2.0 ** probes, cap)


class Breakers:
    def __init__(self, svc):
        self._svc = svc
        self._cache: dict[str, tuple[float, dict[str, Breaker]]] = {}
        self._lock = threading.Lock()

    def _rows(self, site: str, fresh: bool = False) -> dict[str, Breaker]:
        cached = self._cache.get(site)
        if cached and not fresh and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        rows = self._svc.health.breakers(site)
        with self._lock:
            self._cache[site] = (time.monotonic(), rows)
        return rows

    def _keep(self, breaker: Breaker) -> None:
        with self._lock:
            stamp, rows = self._cache.get(breaker.site, (time.monotonic(), {}))
            self._cache[breaker.site] = (stamp, {**rows, breaker.dependency: breaker})

    def _save(self, breaker: Breaker) -> Breaker | None:
        try:
            saved = self._svc.health.save_breaker(breaker)
        except Conflict:  # another instance wrote it first: its word stands, read it next time
            with self._lock:
                self._cache.pop(breaker.site, None)
            return None
        self._keep(saved)
        return saved

    def forget(self, site: str) -> None:
        """Read the site's breakers afresh next time."""
        with self._lock:
            self._cache.pop(site, None)

    def down(self, site: str) -> dict[str, Breaker]:
        """The site's open breakers (cached)."""
        return {d: b for d, b in self._rows(site).items() if b.open}

    def gate(self, site: str) -> Gate:
        now = self._svc.clock()
        for breaker in self.down(site).values():
            probe_at = parse_utc(breaker.probe_at)
            if now < probe_at:
                return Gate("park", breaker.dependency, probe_at, breaker.down_since)
            wait = probe_wait(self._svc.settings.backoff_cap_seconds, breaker.probes + 1)
            claimed = self._save(replace(breaker, probe_at=format_utc(now + timedelta(seconds=wait))))
            if claimed is None:
                return Gate("park", breaker.dependency, now + timedelta(seconds=FIRST_PROBE_SECONDS), breaker.down_since)
            log.info("site=%s %s was down since %s: this job probes it", site, breaker.dependency, breaker.down_since)
            return Gate("probe", breaker.dependency, None, breaker.down_since)
        return Gate()

    def failed(self, site: str, dependency: str, gate: Gate) -> None:
        """A job met `dependency` down: count it, open the breaker at FAILURES_TO_OPEN, or (a probe) wait longer."""
        now = format_utc(self._svc.clock())
        current = self._rows(site, fresh=True).get(dependency) or Breaker(site, dependency)
        if current.open:
            if gate.action == "probe" and gate.dependency == dependency:
                self._save(replace(current, probes=current.probes + 1))
            return
        failures = current.failures + 1
        opened = failures >= FAILURES_TO_OPEN
        if opened:
            log.warning("site=%s %s is down (since %s): its jobs wait for a probe", site, dependency,
                        current.down_since or now)
        probe_at = parse_utc(now) + timedelta(seconds=FIRST_PROBE_SECONDS)
        self._save(replace(current, failures=failures, down_since=current.down_since or now,
                           state="open" if opened else "closed", probe_at=format_utc(probe_at) if opened else "",
                           probes=0))

    def succeeded(self, site: str, gate: Gate, parked: bool) -> None:
        """A job ran without meeting a dependency down: a probe closes its breaker; a run of failures ends."""
        now = format_utc(self._svc.clock())
        for dependency, breaker in self._rows(site).items():
            if gate.action == "probe" and dependency == gate.dependency and breaker.open:
                log.warning("site=%s %s answers again (down since %s)", site, dependency, breaker.down_since)
                self._save(replace(breaker, state="closed", failures=0, probe_at="", probes=0, up_since=now,
                                   was_down_since=breaker.down_since, down_since="", drained_at=now))
            elif not breaker.open and breaker.failures:
                self._save(replace(breaker, failures=0, down_since=""))
            elif parked and not breaker.open and breaker.up_since and breaker.drained_at < now:
                self._save(replace(breaker, drained_at=now))  # the backlog's last job so far


def park_delay(gate: Gate, now: datetime) -> float:
    """Seconds until a parked job tries again: the probe time, spread a little so they do not all wake at once."""
    wait = max(1.0, (gate.until - now).total_seconds()) if gate.until else FIRST_PROBE_SECONDS
    return wait + random.uniform(0, 0.1 * wait + 1)


def breakers_of(svc) -> Breakers:
    """The process's breakers for these Services (one per process, as the Services are)."""
    return svc.part("breakers", lambda: Breakers(svc))
