"""Running a job from the work queue: its tasks in order, each idempotent.

Throttling reschedules the rest of the job after Retry-After, and a transient failure (connection
error, 5xx) after an exponential back-off, instead of blocking the worker or burning the host's
retries; a task that can never succeed is logged and dropped; anything else (or too many
reschedules) raises so the host retries the message and, after maxDequeueCount, poisons it.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from ..features.registry import enabled_features, feature_handlers
from ..sync.catch_up import SCHEDULE_OP, run_catch_up
from ..model.errors import JobAbandoned, PreconditionFailed, RemoteError, Throttled, TransientError
from ..sync.inbound import apply_outlook_change
from ..services import Services
from ..context import SiteContext
from ..storage.store import Conflict
from ..subscriptions.lifecycle import handle_lifecycle
from ..subscriptions.meetings import apply_subscription_item, register_meeting, remove_subscription_item
from ..subscriptions.rotation import ROTATE_OP, rotate
from ..sync.engine import apply_site_event
from .sync_now import HANDLERS as SYNC_NOW_HANDLERS
from ..storage.work_queue import new_job

log = logging.getLogger("rapid_meetings")
CONFLICT_RETRIES = 3
MAX_RESCHEDULES = 12       # throttled or transient: rescheduled with back-off this many times, then the host retries
MAX_BACKOFF_SECONDS = 300
PARALLEL_GROUPS = 4


def _site(svc: Services, task: dict):
    return svc.site(task.get("site", ""))


def _site_event(action: str):
    def handler(svc: Services, task: dict) -> str:
        site = _site(svc, task)
        ctx = SiteContext.of(svc, site)
        if any(f.superseded(ctx, task) for f in enabled_features(site)):  # a later queued sync covers this one
            return "coalesced"
        return apply_site_event(svc, site, task["item"], action, fresh=bool(task.get("fresh")))
    return handler


def _outlook_change(svc: Services, task: dict) -> str:
    sub = svc.find_subscription(task["sub"])
    if sub is None:
        raise JobAbandoned(f"subscription {task['sub']} is no longer ours")
    return apply_outlook_change(svc, sub, task["change"], task["event"], task.get("etag"), job=task.get("job", ""))


def _task_site(svc: Services, task: dict, error: BaseException | None):
    """The configured site a task is about (a subscription's, looked up only when something failed)."""
    key = task.get("site")
    if not key and task.get("sub") and error is not None:
        sub = svc.find_subscription(task["sub"])
        key = sub.site if sub is not None else None
    return svc.settings.sites.get(str(key).lower()) if key else None


def _told(svc: Services, op: str, task: dict, error: BaseException | None) -> None:
    """Tell what a task did: a failure among the site's failures (the status page), and every feature's
    `after_task` (the item's status column). Telling never fails the work itself."""
    try:
        site = _task_site(svc, task, error)
        if site is None:
            return
        if isinstance(error, (JobAbandoned, RemoteError)) or (
                error is not None and not isinstance(error, (Throttled, TransientError))):
            svc.ops.note_failure(site.key, svc.clock(), op, str(task.get("item") or task.get("event") or ""),
                                 f"{type(error).__name__}: {error}")
        for feature in enabled_features(site):
            feature.after_task(svc, site, op, task, error)
    except Exception as e:
        log.warning("task %s: could not record its outcome (%s: %s)", op, type(e).__name__, e)


def observed(handlers: dict) -> dict:
    """The worker's handlers, each telling what happened. Conflicts are the worker's own retries and tell
    nothing."""
    def wrap(op, handler):
        def run(svc: Services, task: dict):
            try:
                outcome = handler(svc, task)
            except (Conflict, PreconditionFailed):
                raise
            except Exception as e:
                _told(svc, op, task, e)
                raise
            _told(svc, op, task, None)
            return outcome
        return run
    return {op: wrap(op, handler) for op, handler in handlers.items()}


HANDLERS = {
    "event.create": _site_event("create"),
    "event.update": _site_event("update"),
    "event.delete": _site_event("delete"),
    "meeting.create": lambda svc, t: register_meeting(svc, _site(svc, t), t["item"]),
    "subscription_item.update": lambda svc, t: apply_subscription_item(svc, _site(svc, t), t["item"]),
    "subscription_item.delete": lambda svc, t: remove_subscription_item(svc, _site(svc, t), t["item"], t.get("meeting")),
    "outlook.change": _outlook_change,
    "outlook.lifecycle": lambda svc, t: handle_lifecycle(svc, t["sub"], t["event"]),
    ROTATE_OP: lambda svc, t: rotate(svc, t["sub"]),
    **feature_handlers(),
}
# site-side catch-up and "sync now"; every handler tells its failures and the item's sync state
HANDLERS = observed({**HANDLERS, SCHEDULE_OP: run_catch_up, **SYNC_NOW_HANDLERS})


def run_task(svc: Services, task: dict) -> str:
    handler = HANDLERS.get(task.get("op"))
    if handler is None:
        raise JobAbandoned(f"unknown task op {task.get('op')!r}")
    for attempt in range(CONFLICT_RETRIES):
        try:
            return handler(svc, task)
        except (Conflict, PreconditionFailed):  # our table or the Outlook event changed meanwhile
            if attempt == CONFLICT_RETRIES - 1:
                raise
            log.info("task %s: state changed meanwhile, deciding again", task)
    raise AssertionError("unreachable")


def _key(task: dict) -> tuple:
    """Tasks about the same thing run in order; tasks about different things may run side by side."""
    return (task.get("site") or task.get("sub"), task.get("item") or task.get("event") or task.get("op"))


def run_job(svc: Services, job: dict) -> list[str]:
    """Run a job's tasks (several notifications or items may share one job): one outcome per task run."""
    groups: dict[tuple, list[dict]] = {}
    for task in job.get("tasks", []):
        groups.setdefault(_key(task), []).append(task)
    if len(groups) <= 1:
        return [o for group in groups.values() for o in _run_in_order(svc, job, group)]
    with ThreadPoolExecutor(min(PARALLEL_GROUPS, len(groups)), thread_name_prefix="job") as pool:
        return [o for outcomes in pool.map(lambda g: _run_in_order(svc, job, g), groups.values()) for o in outcomes]


def _run_in_order(svc: Services, job: dict, tasks: list[dict]) -> list[str]:
    outcomes = []
    for i, task in enumerate(tasks):
        try:
            outcomes.append(run_task(svc, {**task, "job": job.get("id", "")}))
        except (Throttled, TransientError) as e:
            attempt = job.get("attempt", 0) + 1
            if attempt > MAX_RESCHEDULES:
                raise  # the host retries, then moves it to the poison queue
            # the back-off grows with transient failures only: a 429 says itself how long to wait
            failures = job.get("failures", 0) + (not isinstance(e, Throttled))
            delay = e.retry_after if isinstance(e, Throttled) else min(2.0 ** failures, MAX_BACKOFF_SECONDS)
            rest = tasks[i:]
            svc.queue.send({**new_job(rest, attempt=attempt, job_id=job.get("id")), "failures": failures},
                           delay_seconds=delay)
            log.warning("job=%s %s: %s; %d task(s) rescheduled in %gs (attempt %d)", job.get("id"),
                        "throttled" if isinstance(e, Throttled) else "transient failure", e, len(tasks) - i,
                        delay, attempt)
            outcomes.append("rescheduled")
            break
        except JobAbandoned as e:
            log.warning("job=%s task %s abandoned: %s", job.get("id"), task.get("op"), e)
            outcomes.append("abandoned")
        except Exception as e:
            if len(job.get("tasks", [])) <= 1:
                raise  # the host retries this job alone, then poisons it
            # one bad task must not retry (or poison) the others that share its message: it goes alone
            svc.queue.send(new_job([task], attempt=job.get("attempt", 0)))
            log.warning("job=%s task %s failed (%s: %s): moved to a job of its own", job.get("id"),
                        task.get("op"), type(e).__name__, e)
            outcomes.append("split off")
    return outcomes
