"""Which failures are worth waiting out, and how long to wait before the next try."""

from __future__ import annotations

import random

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from ..model.errors import Throttled, TransientError


def is_transient(error: BaseException) -> bool:
    """A failure that says "not now" rather than "never": throttling, a 5xx, a timeout, a refused
    connection, and Table or Queue Storage not answering (in whatever form the SDK raised it)."""
    if isinstance(error, (Throttled, TransientError, ServiceRequestError, ServiceResponseError)):
        return True
    if isinstance(error, HttpResponseError):
        return (error.status_code or 0) >= 500 or error.status_code in (408, 429)
    return False


def reschedule_delay(error: BaseException, failures: int, cap: float) -> float:
    """A 429/503 says itself how long to wait; otherwise 2^failures seconds, up to `cap`, with some spread
    so that jobs failing together do not come back together."""
    if isinstance(error, Throttled):
        return min(error.retry_after, cap)
    wait = min(2.0 ** failures, cap)
    return wait * random.uniform(0.8, 1.0)
