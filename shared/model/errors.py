"""Errors as types: raised in the core, turned into HTTP answers or queue reschedules at the edge."""


class ConfigError(Exception):
    """The app settings are wrong; the message names the setting."""


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


class Throttled(Exception):
    """A remote asked us to come back later (429/503 with Retry-After)."""

    dependency = ""  # "graph", "site" or "identity": set by the client that met it (jobs/breakers.py)

    def __init__(self, retry_after: float, message: str = "throttled", status: int = 429):
        super().__init__(f"{message} (retry after {retry_after:g}s)")
        self.retry_after = retry_after
        self.status = status


class TransientError(Exception):
    """A remote failed in a way worth retrying (connection error, timeout, 5xx)."""

    dependency = ""  # "graph", "site" or "identity": set by the client that met it (jobs/breakers.py)


class StorageUnavailable(TransientError):
    """Our own Storage (tables, queue) did not answer: an HTTP caller gets 503, a job is retried later."""

    status = 503
    dependency = "storage"


class UnexpectedAnswer(TransientError):
    """A remote answered 2xx with a body of a shape its contract does not have (an HTML page from a proxy,
    an object where a list of rows belongs): never read as "nothing there" — the run fails and is retried,
    and the site's failures say what came back."""

    dependency = "site"


class RemoteError(Exception):
    """A remote refused the request for good (4xx other than 404/429); `code` is the remote's own error code
    (Graph's `error.code`), when it gave one."""

    def __init__(self, status: int, message: str, code: str = ""):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.code = code


class RemoteNotFound(RemoteError):
    """A 404 that proves the thing itself is gone (`gone`), for a call that says what proof is: an event's
    `ErrorItemNotFound`, an item missing from a list that answers (clients/graph.py, clients/rapid.py).
    `code` is the remote's own error code, when it gave one."""

    def __init__(self, message: str = "not found", code: str = ""):
        super().__init__(404, message)
        self.code = code
        self.gone = True


class NotVisible(TransientError):
    """A 404 that proves nothing about the item: its mailbox de-licensed, soft-deleted or moving, the
    site's list renamed (docs/platform-facts.md, "A 404 is not always a deletion"). Never read as a
    deletion: the job is retried later, and the status column can say so (`code`: UNSEEN)."""

    def __init__(self, message: str, remote_code: str = ""):
        super().__init__(message)
        self.remote_code = remote_code
        self.code = UNSEEN


class PreconditionFailed(RemoteError):
    def __init__(self, message: str = "precondition failed"):
        super().__init__(412, message)


class JobAbandoned(Exception):
    """A job can never succeed (item gone, no organiser...): log the reason, do not retry.

    `code` says why in a word people's words are made from (features/status.py, one table); `about` is the
    id or column the reason names. A JobAbandoned without a code is shown by its message."""

    def __init__(self, message: str, code: str = "", about: str | None = None):
        super().__init__(message)
        self.code = code
        self.about = about


class MailboxRefused(JobAbandoned):
    """A mailbox this site may not use, met before or by a Graph call made for the site: outside the site's
    bounds (SITES `mailbox_domains` / `mailbox_group`: never asked of Graph, code OUTSIDE_BOUNDS), refused by
    Exchange (403 ErrorAccessDenied: the app's access is scoped to other mailboxes, code OUT_OF_SCOPE), or
    the site's group could not be read (BOUNDS_UNREAD). Never retried: the item's status says which mailbox
    and why (docs/operations.md, "Scoping the app to a group of mailboxes")."""

    status = 403

    def __init__(self, message: str, code: str, mailbox: str):
        super().__init__(message, code, mailbox)
        self.mailbox = mailbox


# The reasons the sync engine gives up on an item, as codes (JobAbandoned.code).
NO_MEETING = "no-meeting"               # the event names no meeting
MEETING_GONE = "meeting-gone"           # its meeting no longer exists (about: the meeting id)
NO_ORGANISER = "no-organiser"           # the meeting has no organiser (about: the meeting id)
NO_EMAIL = "no-email"                   # the organiser has no email (about: the Principals id)
END_BEFORE_START = "end-before-start"   # about: the end
BAD_DATE = "bad-date"                   # a date column is not a date-time (about: the column)
BAD_CONTENT = "bad-content"             # another column the mapping cannot read (about: the column)
ITEM_GONE = "item-gone"                 # the item no longer exists: nothing to show
SITE_GONE = "site-gone"                 # the site is no longer configured: nothing to show
REMOVAL_HELD = "removal-held"           # too many removals at once: this one waits (sync/removal_guard.py)
UNSEEN = "unseen"                       # a 404 that proves nothing (NotVisible): retried later
SERIES_ELSEWHERE = "series-elsewhere"   # its event became an Outlook series with no occurrence at its time
OUTSIDE_BOUNDS = "outside-bounds"       # the mailbox is outside the site's bounds (about: the address)
OUT_OF_SCOPE = "out-of-scope"           # Exchange refused the mailbox: 403 ErrorAccessDenied (about: the address)
BOUNDS_UNREAD = "bounds-unread"         # the site's Entra group could not be read (about: the address)
