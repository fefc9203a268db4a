"""The per-mailbox lease: one job at a time changes an organiser's Graph subscription and the meetings
that share it, whichever instance it runs on."""

from __future__ import annotations

import time
import uuid
from contextlib import contextmanager

from ..model.errors import Throttled
from ..services import Services

CLAIM_RETRY_SECONDS = 2
LEASE_WAIT_SECONDS = 5.0   # how long a job waits for a busy mailbox lease before it is rescheduled
LEASE_POLL_SECONDS = 0.2


@contextmanager
def mailbox_lease(svc: Services, site_key: str, mailbox: str):
    """One job at a time changes a mailbox's subscription and the meetings that share it: registering,
    deactivating and recreating all take this ETag-checked lease; a job that finds it held comes back
    later (Throttled reschedules it), so concurrent deliveries cannot interleave their reads and writes."""
    name, holder = f"{site_key}|{mailbox.lower()}", uuid.uuid4().hex
    deadline = time.monotonic() + LEASE_WAIT_SECONDS
    # a lease is held for one registration's few requests: many meetings of one organiser registered at
    # once (a catch-up) take turns here, rather than rescheduling each other until their retries run out
    while (etag := svc.store.acquire_lease(name, holder, time.time())) is None:
        if time.monotonic() >= deadline:
            raise Throttled(CLAIM_RETRY_SECONDS, f"the subscription of {mailbox} is being changed by another job")
        time.sleep(LEASE_POLL_SECONDS)
    try:
        yield
    finally:
        svc.store.release_lease(name, etag)
