"""Errors as types: raised in the core, turned into HTTP answers or queue reschedules at the edge."""


class BadRequest(Exception):
    """The caller sent something we cannot accept (HTTP 400)."""

    status = 400


class PayloadTooLarge(BadRequest):
    status = 413


class Forbidden(Exception):
    """The caller may not do this here (HTTP 403): e.g. a webhook without its site's token."""

    status = 403


class NotFound(Exception):
    """Unknown tenant/site or resource (HTTP 404)."""

    status = 404


class StorageUnavailable(Exception):
    """Work could not be persisted; the caller must retry (HTTP 503)."""

    status = 503


class Throttled(Exception):
    """A remote asked us to come back later (429/503 with Retry-After)."""

    def __init__(self, retry_after: float, message: str = "throttled"):
        super().__init__(f"{message} (retry after {retry_after:g}s)")
        self.retry_after = retry_after


class TransientError(Exception):
    """A remote failed in a way worth retrying (connection error, 5xx)."""


class RemoteError(Exception):
    """A remote refused the request for good (4xx other than 404/429)."""

    def __init__(self, status: int, message: str):
        super().__init__(f"{status}: {message}")
        self.status = status


class RemoteNotFound(RemoteError):
    def __init__(self, message: str = "not found"):
        super().__init__(404, message)


class PreconditionFailed(RemoteError):
    def __init__(self, message: str = "precondition failed"):
        super().__init__(412, message)


class JobAbandoned(Exception):
    """A job can never succeed (item gone, no organiser...): log the reason, do not retry."""
