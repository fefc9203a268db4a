"""Running a job from the work queue: its tasks in order, each idempotent.

A job that meets a dependency down — throttling, a 5xx, a timeout, a refused connection, our own Storage
failing — is rescheduled with its remaining tasks, after Retry-After or a back-off growing to
BACKOFF_CAP_SECONDS, and never given up: an outage of days is waited out (messages never expire). While a
site's dependency is known to be down (jobs/breakers.py) its jobs park until the next probe instead of
each trying. A task that can never succeed is logged and dropped; anything else raises, so the host
retries the message and, after maxDequeueCount, poisons it (a bug: its reason is on the status page).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from ..features.registry import enabled_features, feature_handlers
from ..sync.catch_up import SCHEDULE_OP, run_catch_up
from ..sync.catch_up_schedule import catch_up_interval
from ..model.audit import acting_for
from ..model.errors import JobAbandoned, PreconditionFailed, RemoteError, Throttled
from ..sync.inbound import apply_outlook_change
from ..services import Services
from ..context import SiteContext
from ..storage.store import Conflict
from ..subscriptions.lifecycle import handle_lifecycle
from ..subscriptions.meetings import apply_subscription_item, register_meeting, remove_subscription_item
from ..subscriptions.rotation import ROTATE_OP, rotate
from ..sync.engine import apply_site_event
from ..subscriptions.immutable_ids import HANDLERS as ID_HANDLERS
from .sync_now import HANDLERS as SYNC_NOW_HANDLERS
from ..storage.work_queue import new_job
from .breakers import breakers_of, down_dependency, park_delay
from .fair_share import shares_of
from .retries import is_transient, reschedule_delay
from .unsettled import note_finished, note_unfinished, replay
from ..storage.audit import purge_audit

log = logging.getLogger("rapid_meetings")
CONFLICT_RETRIES = 3
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


def _task_site(svc: Services, task: dict, look_up: bool = True):
    """The configured site a task is about (a subscription's, when `look_up`: cached, but not free)."""
    key = task.get("site")
    if not key and task.get("sub") and look_up:
        sub = svc.find_subscription(task["sub"])
        key = sub.site if sub is not None else None
    return svc.settings.sites.get(str(key).lower()) if key else None


def _told(svc: Services, op: str, task: dict, error: BaseException | None) -> None:
    """Tell what a task did: a failure among the site's failures (the status page), and every feature's
    `after_task` (the item's status column). Telling never fails the work itself."""
    try:
        # a subscription's site is looked up (cached) for a failure, replayed work, or a 'deleted' notification
        # (the status column may have to say the event moved out of sight: features/status.py)
        site = _task_site(svc, task, error is not None or bool(task.get("unsettled")) or task.get("change") == "deleted")
        if site is None:
            return
        if error is None or isinstance(error, JobAbandoned):
            note_finished(svc, site.key, task)
        if isinstance(error, (JobAbandoned, RemoteError)) or (error is not None and not is_transient(error)):
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


def _catch_up(svc: Services, task: dict) -> str:
    """The site-side catch-up, then what did not finish before, whatever the watermark says (jobs/unsettled.py)."""
    outcome = run_catch_up(svc, task)
    site = _site(svc, task)
    replayed = replay(svc, site, catch_up_interval(svc.settings, site), down=bool(breakers_of(svc).down(site.key)))
    purge_audit(svc, site)
    return f"{outcome}, {replayed} unfinished replayed" if replayed else outcome


# site-side catch-up and "sync now"; every handler tells its failures and the item's sync state
HANDLERS = observed({**HANDLERS, SCHEDULE_OP: _catch_up, **SYNC_NOW_HANDLERS, **ID_HANDLERS})


def run_task(svc: Services, task: dict) -> str:
    with acting_for(task):  # its reason is current while it runs: its writes' audit rows, the tasks it enqueues
        return _run_task(svc, task)


def _run_task(svc: Services, task: dict) -> str:
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
        site = _task_site(svc, task)
        gate = breakers_of(svc).gate(site.key) if site else None
        if gate is not None and gate.action == "park":
            outcomes.append(_reschedule(svc, job, tasks[i:], park_delay(gate, svc.clock()), "parked"))
            break
        probing = gate is not None and gate.action == "probe"  # the breaker's one probe runs, share or not
        wait = shares_of(svc).wait(site.key) if site is not None and not probing else None
        if wait is not None:  # the site has had its share of the worker this minute (jobs/fair_share.py)
            outcomes.append(_reschedule(svc, job, tasks[i:], wait, "deferred"))
            break
        try:
            outcomes.append(run_task(svc, {**task, "job": job.get("id", "")}))
        except Exception as e:
            if not is_transient(e):
                outcomes.append(_failed(svc, job, task, e))
                continue
            if site is not None:
                if down_dependency(e):
                    breakers_of(svc).failed(site.key, down_dependency(e), gate)
                # marked unfinished unless only throttled (a 429 is "slower", not "down": no table write for it)
                marked = not (isinstance(e, Throttled) and e.status == 429) and note_unfinished(svc, site.key, task)
                rest = [{**task, "unsettled": marked or task.get("unsettled", False)}, *tasks[i + 1:]]
            else:
                rest = tasks[i:]
            failures = job.get("failures", 0) + (not isinstance(e, Throttled))
            delay = reschedule_delay(e, failures, svc.settings.backoff_cap_seconds)
            log.warning("job=%s %s: %s", job.get("id"), "throttled" if isinstance(e, Throttled) else "transient failure", e)
            outcomes.append(_reschedule(svc, {**job, "failures": failures}, rest, delay))
            break
        else:
            if gate is not None:
                breakers_of(svc).succeeded(site.key, gate, parked=bool(job.get("parked")))
    return outcomes


def _reschedule(svc: Services, job: dict, rest: list[dict], delay: float, how: str = "rescheduled") -> str:
    """The rest of a job back on the queue after `delay`: "rescheduled" after a failure, "parked" while a
    dependency is down, "deferred" over its site's share (neither counts as an attempt or a failure)."""
    attempt = job.get("attempt", 0) + (how == "rescheduled")
    svc.queue.send({**new_job(rest, attempt=attempt, job_id=job.get("id")), "failures": job.get("failures", 0),
                    "parked": how == "parked" or job.get("parked", False)}, delay_seconds=delay)
    log.log(logging.INFO if how == "deferred" else logging.WARNING, "job=%s: %d task(s) %s in %gs (attempt %d)",
            job.get("id"), len(rest), how, delay, attempt)
    return how


def _failed(svc: Services, job: dict, task: dict, e: Exception) -> str:
    if isinstance(e, JobAbandoned):
        log.warning("job=%s task %s abandoned: %s", job.get("id"), task.get("op"), e)
        return "abandoned"
    if len(job.get("tasks", [])) <= 1:
        raise e  # the host retries this job alone, then poisons it
    # one bad task must not retry (or poison) the others that share its message: it goes alone
    svc.queue.send(new_job([task], attempt=job.get("attempt", 0)))
    log.warning("job=%s task %s failed (%s: %s): moved to a job of its own", job.get("id"),
                task.get("op"), type(e).__name__, e)
    return "split off"
