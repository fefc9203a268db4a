"""Poisoned jobs that an outage put there go back to work by themselves.

Jobs reschedule themselves through any outage of Graph or a site (jobs/worker.py). Only when our own
Storage failed so that even the reschedule could not be written does the host retry a message until it
poisons it; its failure record then names a Storage error — or is missing, when the table was down too.
The catch-up timer calls `requeue_outage_poison`: reading the poison queue proves Storage answers again,
so those messages go back to the work queue. A message poisoned by anything else (a bug, a body that can
never be valid) stays, with its reason on the status page, for a person: `python -m devtools.poison`.
"""

from __future__ import annotations

import logging

from ..storage.work_queue import PoisonQueue, message_key

log = logging.getLogger("rapid_meetings")
OUTAGE_ERRORS = ("StorageUnavailable", "TransientError", "Throttled", "ServiceRequestError", "ServiceResponseError",
                 "ServiceResponseTimeoutError", "ServiceRequestTimeoutError", "AzureError")


def from_an_outage(reason: str | None) -> bool:
    """A failure record that names a dependency not answering (or none at all: storage was down)."""
    return reason is None or reason.split(":", 1)[0].strip() in OUTAGE_ERRORS


def requeue_outage_poison(svc, limit: int = 320) -> int:
    poison = PoisonQueue(svc.queue)
    requeued = 0
    while requeued < limit:
        messages = poison.take()
        if not messages:
            break
        kept = 0
        for message in messages:
            failure = svc.store.failure(message_key(message.content))
            if from_an_outage(failure.get("reason") if failure else None):
                poison.requeue(message)
                svc.store.forget_failure(message_key(message.content))
                requeued += 1
            else:
                poison.release(message)
                kept += 1
        if kept == len(messages):
            break
    if requeued:
        log.warning("%d job(s) poisoned during an outage requeued", requeued)
    return requeued
