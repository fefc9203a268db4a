"""A lifecycle notification's work is queued once per subscription: while a `missed` catch-up (or a
renewal, or a re-creation) of a subscription waits in the queue, identical notifications add nothing to it,
whichever process takes them. The mark is a lease row named for the subscription and the event
(store.acquire_lease); the worker gives it back as it starts the work (subscriptions/lifecycle.py), so a
notification arriving once the work runs queues it again: what the running catch-up had already read past
is read by the next one. A mark whose job was lost expires after MARK_SECONDS."""

from __future__ import annotations

import contextlib
import uuid

from ..services import Services

LIFECYCLE_OP = "outlook.lifecycle"
MARK_SECONDS = 600.0


def mark_name(sub_id: str, event: str) -> str:
    return f"lifecycle|{sub_id}|{event}"


def enqueue_once(svc: Services, tasks: list[dict], enqueue) -> tuple[list, int]:
    """`enqueue(tasks)`'s answer for the tasks whose lifecycle work is not queued yet, and how many were
    already queued (merged). Marks taken for work that then could not be stored (a mark or the queue failed)
    are given back, each on its own, so Graph's retry of the request queues it; one that cannot be given back
    either (Storage down) lapses after MARK_SECONDS, and the scheduled delta read and the renewal cover it."""
    now, keep, taken = svc.clock().timestamp(), [], []
    try:
        for task in tasks:
            if task.get("op") == LIFECYCLE_OP:
                name = mark_name(task["sub"], task["event"])
                if svc.store.acquire_lease(name, uuid.uuid4().hex, now, MARK_SECONDS) is None:
                    continue
                taken.append(name)
            keep.append(task)
        return (enqueue(keep) if keep else []), len(tasks) - len(keep)
    except BaseException:
        for name in taken:
            with contextlib.suppress(Exception):
                svc.store.drop_lease(name)
        raise


def started(svc: Services, sub_id: str, event: str) -> None:
    """The lifecycle work is running: a notification from now on queues it again."""
    svc.store.drop_lease(mark_name(sub_id, event))
