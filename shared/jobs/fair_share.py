"""Each site's fair share of the worker: at most SITE_TASKS_PER_MINUTE of a site's tasks start in a minute,
whichever instance runs them; a task over its site's share goes back to the queue for a later minute
without running and without counting as a failure (jobs/worker.py `deferred`).

Why: every site's jobs share one queue, taken roughly in order. Without a share, a site that floods it (a
burst of webhooks, a forged request, a big catch-up) makes every other site's work wait behind all of its
own. With one, a flooding site's surplus costs the worker a cheap put-back each, so another site's job is
reached after at most a minute's share of the flooding site's work, however long its backlog is; the
flooding site's backlog drains at its share per minute.

How: a row per site (`health`, `load|<site>`/`share`: the minute and the tasks granted in it), taken a block
(a tenth of the share) at a time by an ETag-checked write, so a busy site costs one table read and write per
block per process, and a quiet one a read and write a minute. A process remembers a spent share until the
minute ends (no I/O for the put-backs). Tasks put back are spread over the minutes after the next in turn
(by how many this process has put back), so a big backlog does not come back all at once to be put back
again. The share is protection, not correctness: when Storage does not answer or the row is fought over,
the task runs.
"""

from __future__ import annotations

import logging
import random
import threading

from ..model.errors import StorageUnavailable
from ..storage.health import Conflict

log = logging.getLogger("rapid_meetings")
WINDOW_SECONDS = 60
BLOCKS = 10        # a process takes a site's share a tenth at a time
CLAIM_TRIES = 3
SHARE_ROW = "share"


class Shares:
    def __init__(self, svc):
        self._svc = svc
        self._lock = threading.Lock()
        self._left: dict[str, tuple] = {}      # site → (minute, limit, tasks this process may still start; -1: spent)
        self._put_back: dict[str, tuple] = {}  # site → (minute, tasks this process put back in it)

    def wait(self, site: str) -> float | None:
        """None: the site's task may start now. Else the seconds it should wait: the site has had its share."""
        limit = self._svc.settings.site_tasks_per_minute
        if limit <= 0:
            return None
        now = self._svc.clock().timestamp()
        minute = int(now // WINDOW_SECONDS)
        with self._lock:
            held_minute, held_limit, left = self._left.get(site, (None, None, 0))
            current = (held_minute, held_limit) == (minute, limit)
            if current and left > 0:
                self._left[site] = (minute, limit, left - 1)
                return None
        if not (current and left < 0):
            try:
                granted = self._claim(site, minute, limit)
            except StorageUnavailable as e:  # a block granted uncounted: the next tasks do not wait on Storage
                log.warning("site=%s: its share could not be counted (%s): its tasks run", site, e)
                granted = max(1, limit // BLOCKS)
            with self._lock:
                self._left[site] = (minute, limit, granted - 1 if granted else -1)
            if granted:
                return None
        return self._later(site, minute, limit, now)

    def _claim(self, site: str, minute: int, limit: int) -> int:
        """Tasks this process may start for the site in this minute (a block of its share); 0 once it is spent."""
        health = self._svc.health
        for _ in range(CLAIM_TRIES):
            values, etag = health.load_row(site, SHARE_ROW) or ({}, None)
            taken = values.get("taken", 0) if values.get("minute") == minute else 0
            if taken >= limit:
                return 0
            grant = min(max(1, limit // BLOCKS), limit - taken)
            try:
                health.save_load_row(site, SHARE_ROW, {"minute": minute, "taken": taken + grant}, etag)
                return grant
            except Conflict:
                continue
        return 1  # the row is fought over: this task runs rather than wait on a race

    def _later(self, site: str, minute: int, limit: int, now: float) -> float:
        with self._lock:
            held, count = self._put_back.get(site, (minute, 0))
            count = count + 1 if held == minute else 1
            self._put_back[site] = (minute, count)
        if count == 1:
            log.warning("site=%s has had its share of the worker this minute (%d tasks): its further tasks wait",
                        site, limit)
        start = (minute + 1 + count // limit) * WINDOW_SECONDS - now
        return start + random.uniform(0, 0.9 * WINDOW_SECONDS)


def shares_of(svc) -> Shares:
    """The process's shares for these Services (one per process, as the Services are)."""
    return svc.part("shares", lambda: Shares(svc))
