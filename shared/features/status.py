"""What people and operators can see of the sync: each Meeting Event's sync state in plain words in an
optional column of the site, the last failures per site, and when Graph last notified us.

The status column (SITES `status_column`, off when unset) is written with webhooks=false and only when
the item's state changes: the state last written is kept in the ops table, so a healthy sync (state
"synced" again and again) adds no site writes. A state is a key without times ("synced",
"waiting:busy", "not-synced:no-email:12") and the words shown ("In Outlook since 10:32 on 3 Dec").
"""

from __future__ import annotations

import logging
import re
import threading
import time
from datetime import datetime

from ..model.errors import JobAbandoned, PreconditionFailed, RemoteError, RemoteNotFound, Throttled, TransientError
from ..model.mapping import format_utc
from ..storage.ops_store import ItemState
from ..services import Services
from ..storage.store import Conflict
from .teams import UNAVAILABLE

log = logging.getLogger("rapid_meetings")
ITEM_OPS = {"event.create", "event.update", "event.delete", "sync.event"}
NOTIFICATION_NOTE_SECONDS = 30.0   # "last notification received" is kept to this precision, per process

# JobAbandoned messages of the sync engine (shared/sync/engine.py) → (state key, plain words); `{name}` is the
# organiser's display name. tests/test_sync_status.py pins these against the engine's real messages.
REASONS = (
    (re.compile(r"has no meeting"), "no-meeting", "Not synced: the event has no meeting"),
    (re.compile(r"meeting (\S+) does not exist"), "meeting-gone", "Not synced: its meeting no longer exists"),
    (re.compile(r"meeting (\S+) has no organiser"), "no-organiser", "Not synced: the meeting has no organiser"),
    (re.compile(r"organiser (\S+) of meeting \S+ has no email"), "no-email",
     "Not synced: the organiser {name} has no email"),
    (re.compile(r"end (\S+) is before start"), "end-before-start", "Not synced: it ends before it starts"),
    (re.compile(r"column '([^']+)' is not an ISO 8601"), "bad-date", "Not synced: {detail} is not a date and time"),
)


def plain_reason(message: str) -> tuple[str, str, str | None]:
    """(state key, words, the id or column the words are about) for an abandoned item."""
    for pattern, code, words in REASONS:
        match = pattern.search(message)
        if match:
            return f"not-synced:{code}:{match.group(1) if match.groups() else ''}", words, \
                match.group(1) if match.groups() else None
    short = message.split(": ", 1)[-1][:120]
    return f"not-synced:{short}", f"Not synced: {short}", None


def _local_time(svc: Services, site) -> str:
    now = svc.clock().astimezone(site.zone)
    return f"{now:%H:%M} on {now.day} {now:%b}"


def state_after(svc: Services, site, item_id: str, error: BaseException | None) -> ItemState | None:
    """The item's state once its task ran (or failed with `error`); None when there is nothing to show
    (the item is gone, the site is no longer configured)."""
    at = format_utc(svc.clock())
    if error is None:
        link = svc.store.get_link(site.key, item_id)
        if link is not None and not link.removing:
            if link.online == UNAVAILABLE:
                return ItemState("synced:no-teams", f"In Outlook since {_local_time(svc, site)}, without Teams: the "
                                 "organiser's calendar offers no Teams meetings", at)
            return ItemState("synced", f"In Outlook since {_local_time(svc, site)}", at)
        return ItemState("not-in-outlook", "Not in Outlook: cancelled or removed", at)
    if isinstance(error, Throttled):
        who = "the site" if str(error).startswith("site ") else "Outlook"
        return ItemState("waiting:busy", f"Waiting: {who} is busy, retrying", at)
    if isinstance(error, TransientError):
        who = "the site" if str(error).startswith("site ") else "Outlook"
        return ItemState("waiting:unreachable", f"Waiting: {who} did not answer, retrying", at)
    if isinstance(error, JobAbandoned):
        message = str(error)
        if "does not exist in" in message or "no longer configured" in message:
            return None
        key, words, about = plain_reason(message)
        if "{name}" in words:
            person = svc.rapid(site).items_by_id("principals", [about], ("title",)).get(about) or {}
            words = words.format(name=person.get("title") or f"(Principals {about})")
        elif "{detail}" in words:
            words = words.format(detail=about)
        return ItemState(key, words, at)
    if isinstance(error, RemoteError):
        return ItemState(f"failed:{error.status}", f"Not synced: refused ({str(error)[:100]}); an operator "
                         "has been told", at)
    return ItemState("failed", "Not synced: an error occurred; an operator has been told", at)


def show_state(svc: Services, site, item_id: str, error: BaseException | None) -> bool:
    """Write the item's state to its status column if it changed; True when a site write was made."""
    if not site.status_column:
        return False
    state = state_after(svc, site, item_id, error)
    if state is None:
        return False
    ops = svc.ops
    last = ops.written("state", site.key, item_id)
    if last is not None and last.key == state.key:
        return False
    try:
        svc.rapid(site).update_item("events", item_id, {site.status_column: state.text})
    except RemoteNotFound:
        ops.forget_written("state", site.key, item_id)
        return False
    ops.save_written("state", site.key, item_id, state)
    log.info("site=%s item=%s sync state %s: %r", site.key, item_id, state.key, state.text)
    return True


def _site_of(svc: Services, task: dict):
    key = task.get("site")
    if not key and task.get("sub"):
        sub = svc.find_subscription(task["sub"])
        key = sub.site if sub is not None else None
    return svc.settings.sites.get(str(key).lower()) if key else None


def _after(svc: Services, op: str, task: dict, error: BaseException | None) -> None:
    if error is None and op not in ITEM_OPS:
        return  # the healthy path of other tasks costs nothing
    try:
        site = _site_of(svc, task)
        if site is None:
            return
        if isinstance(error, (JobAbandoned, RemoteError)) or (
                error is not None and not isinstance(error, (Throttled, TransientError))):
            svc.ops.note_failure(site.key, svc.clock(), op, str(task.get("item") or task.get("event") or ""),
                                 f"{type(error).__name__}: {error}")
        if op in ITEM_OPS and task.get("item"):
            show_state(svc, site, str(task["item"]), error)
    except Exception as e:  # telling must never fail the work itself
        log.warning("task %s: could not record its outcome (%s: %s)", op, type(e).__name__, e)


def observed(handlers: dict) -> dict:
    """The worker's handlers, each telling what happened: failures per site, and the item's state in
    its status column. Conflicts are the worker's own retries and tell nothing."""
    def wrap(op, handler):
        def run(svc: Services, task: dict):
            try:
                outcome = handler(svc, task)
            except (Conflict, PreconditionFailed):
                raise
            except Exception as e:
                _after(svc, op, task, e)
                raise
            _after(svc, op, task, None)
            return outcome
        return run
    return {op: wrap(op, handler) for op, handler in handlers.items()}


_noted: dict[str, float] = {}
_noted_lock = threading.Lock()


def note_notifications(svc: Services, tasks: list[dict], when: datetime | None = None) -> None:
    """Remember when each site last got a Graph notification: one table write per site per
    NOTIFICATION_NOTE_SECONDS per process, so intake stays fast."""
    now = time.monotonic()
    sites = set()
    for task in tasks:
        sub = svc.find_subscription(task.get("sub", "")) if task.get("sub") else None
        if sub is not None:
            sites.add(sub.site)
    for key in sites:
        with _noted_lock:
            if now - _noted.get(key, -1e9) < NOTIFICATION_NOTE_SECONDS:
                continue
            _noted[key] = now
        try:
            svc.ops.note_notification(key, when or svc.clock())
        except Exception as e:
            log.warning("site=%s could not note the notification time (%s)", key, type(e).__name__)
