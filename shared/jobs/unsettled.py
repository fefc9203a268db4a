"""Work whose last run did not finish, kept until a run of it does (shared/storage/health.py marks).

A job that meets a dependency down is rescheduled and never given up (jobs/worker.py); the mark is the
second line: whatever happens to that job (a host crash after the outage, a poisoned message, a lost
delivery), the site's catch-up replays what is marked — the item synced both ways, the Outlook event read
again — however far its watermark moved meanwhile. A mark is cleared only by a finished run that carries
it (`unsettled: true`), so at worst one sync too many runs.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from ..model.audit import REPLAY
from ..model.mapping import format_utc, parse_utc
from ..storage.health import Mark

log = logging.getLogger("rapid_meetings")
SITE_ITEM_OPS = ("event.create", "event.update", "event.delete", "sync.event")


def mark_key(task: dict) -> str:
    if task.get("op") in SITE_ITEM_OPS and task.get("item"):
        return f"item:{task['item']}"
    if task.get("op") == "outlook.change" and task.get("event"):
        return f"event:{task['event']}"
    return ""


def replay_task(task: dict) -> dict:
    """What brings the marked thing in line from the state of both sides, whatever the first task was."""
    if task.get("op") == "outlook.change":
        return {"op": "outlook.change", "sub": task["sub"], "change": "updated", "event": task["event"], "why": REPLAY}
    return {"op": "sync.event", "site": task["site"], "item": str(task["item"]), "why": REPLAY}


def note_unfinished(svc, site: str, task: dict) -> bool:
    """Mark a task's item or event (once); True when the task is now marked."""
    key = mark_key(task)
    if not key:
        return False
    if not task.get("unsettled"):
        svc.health.mark(Mark(site, key, replay_task(task), format_utc(svc.clock())))
    return True


def note_finished(svc, site: str, task: dict) -> None:
    key = mark_key(task)
    if key and task.get("unsettled"):
        svc.health.unmark(site, key)


def replay(svc, site, interval: timedelta, down: bool) -> int:
    """Enqueue the marked work of a site not replayed within `interval` (nothing while a dependency of the
    site is down: the parked jobs wait for the probe, and so would these)."""
    if down:
        return 0
    now = svc.clock()
    due = [m for m in svc.health.marks(site.key) if parse_utc(m.replayed or m.since) + interval <= now]
    if due:
        svc.queue.enqueue([{**m.task, "unsettled": True, "fresh": True} for m in due])
        for m in due:
            svc.health.note_replayed(m, format_utc(now))
        log.warning("site=%s %d unfinished sync(s) replayed", site.key, len(due))
    return len(due)
