"""The audit trail's words and shape (pure): why the app wrote, and one row per write it made.

Every change the app makes to Outlook or to a site is recorded (shared/storage/audit.py): when, which
site/item/event/mailbox, which fields — their NAMES, never their contents — and why. The reason rides on
the task (`why`, set where tasks are made); the worker makes it current while the task runs (`acting`),
the work queue gives it to the tasks a running task enqueues (`with_reason`), and the clients' write
methods read it when they record their row.
"""

from __future__ import annotations

import contextvars
import functools
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

WEBHOOK = "webhook"            # a site webhook (intake/webhooks.py)
NOTIFICATION = "notification"  # a Graph change or lifecycle notification (intake/notifications.py)
CATCH_UP = "catch-up"          # the site-side catch-up timer, and the scheduled Outlook delta reads
SYNC_NOW = "sync now"          # the "sync now" route or a site's "Sync with Outlook now" button
SWEEP = "sweep"                # an item gone from the site, found by the sweep
REPLAY = "replay"              # work that did not finish, replayed from its unfinished mark (jobs/unsettled.py)
RENEWAL = "renewal"            # the subscription renewal timer
MIGRATION = "migration"        # the one-off move of links and subscriptions to immutable ids
OPERATOR = "operator"          # an operator's route (ops/…): client-state rotation, held removals released
UNATTRIBUTED = "unattributed"  # a write made outside any of the above (a job queued by an older version)
REASONS = (WEBHOOK, NOTIFICATION, CATCH_UP, SYNC_NOW, SWEEP, REPLAY, RENEWAL, MIGRATION, OPERATOR, UNATTRIBUTED)

OUTLOOK, SITE = "outlook", "site"  # where a write went
# the list a task's item is of, by its op (an outlook.change is about the event's item, found by its link)
ITEM_LISTS = (("event.", "events"), ("sync.event", "events"), ("outlook.change", "events"), ("meeting.", "meetings"),
              ("sync.meeting", "meetings"), ("subscription_item.", "subscriptions"), ("agenda.", "agendas"))
MAX_ITEM_ID = 256


@dataclass(frozen=True)
class Acting:
    """What the running code acts for: the reason, and the site, item and job the task names."""

    why: str = UNATTRIBUTED
    site: str = ""
    item: str = ""
    job: str = ""
    op: str = ""
    list: str = ""  # the list the item is of ("events", "meetings"…: site_defaults.DEFAULT_LISTS' keys)


@dataclass(frozen=True)
class AuditRow:
    """One write the app made. `fields` are the names of what was written, never the values."""

    at: str                 # UTC, ISO 8601 with microseconds
    site: str               # tenant/site
    target: str             # OUTLOOK or SITE
    action: str             # "create event", "update item", "renew subscription"…
    why: str                # one of REASONS
    item: str = ""          # the site item the write is about (when known)
    event: str = ""         # the Outlook event id
    mailbox: str = ""
    list: str = ""          # the list `item` is of, as DEFAULT_LISTS names it ("events", "subscriptions"…)
    subscription: str = ""  # the Graph subscription id (subscription writes)
    fields: tuple[str, ...] = field(default_factory=tuple)
    op: str = ""            # the task that made the write
    job: str = ""

    def to_json(self) -> dict:
        return {"at": self.at, "site": self.site, "target": self.target, "action": self.action, "why": self.why,
                "item": self.item, "event": self.event, "mailbox": self.mailbox, "list": self.list,
                "subscription": self.subscription, "fields": list(self.fields), "op": self.op, "job": self.job}


_acting: contextvars.ContextVar[Acting | None] = contextvars.ContextVar("audit_acting", default=None)


def current() -> Acting:
    return _acting.get() or Acting()


@contextmanager
def acting(why: str, **about):
    """Make `why` (and the site, item, job, op in `about`) current for the code run inside."""
    if why not in REASONS:
        raise ValueError(f"unknown audit reason {why!r}: one of {', '.join(REASONS)}")
    token = _acting.set(Acting(why, **{k: str(v or "") for k, v in about.items()}))
    try:
        yield
    finally:
        _acting.reset(token)


def item_list(op: str) -> str:
    """The list a task's `item` is of, by the task's op."""
    return next((name for prefix, name in ITEM_LISTS if str(op or "").startswith(prefix)), "")


def acting_for(task: dict):
    """`acting` for a task of the work queue: its own `why`, else the one current (else unattributed)."""
    why = task.get("why") if task.get("why") in REASONS else current().why
    return acting(why, site=task.get("site"), item=task.get("item"), job=task.get("job"), op=task.get("op"),
                  list=item_list(task.get("op")) if task.get("item") or task.get("event") else "")


def acting_as(why: str):
    """A decorator: the function runs acting for `why` (an HTTP function or a timer that makes tasks)."""
    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            with acting(why):
                return fn(*args, **kwargs)
        return run
    return wrap


def set_acting(why: str) -> None:
    """Make `why` current for the rest of this thread's context (a pool's initializer: pool threads start
    with an empty context)."""
    _acting.set(Acting(why))


def about(item: str) -> None:
    """The running task found the site item it is about (an Outlook change: from its link)."""
    now = _acting.get()
    if now is not None and item and not now.item:
        _acting.set(replace(now, item=str(item)))


def with_reason(tasks: list[dict]) -> list[dict]:
    """Tasks to enqueue, each with a `why`: its own, else the current reason (tasks a running task enqueues
    inherit its reason). Unchanged when nothing is current."""
    now = _acting.get()
    if now is None or all(t.get("why") for t in tasks if isinstance(t, dict)):
        return tasks
    return [{**t, "why": now.why} if isinstance(t, dict) and not t.get("why") else t for t in tasks]


def because(why: str, tasks: list[dict]) -> list[dict]:
    """Tasks made for `why` (where tasks are made: a webhook, a notification, "sync now")."""
    return [{**t, "why": why} for t in tasks]


def row_key_at(moment: datetime) -> str:
    """The sortable prefix of an audit row's RowKey for an instant (microseconds, UTC)."""
    return f"{moment.astimezone(timezone.utc):%Y%m%dT%H%M%S.%f}Z"


def check_item_id(value: str) -> str:
    """An item id as a caller gave it (the status page's `?item=`, the audit route's `item`); ValueError
    naming the problem."""
    if not value or not value.strip():
        raise ValueError("item is empty")
    if len(value) > MAX_ITEM_ID:
        raise ValueError(f"item is {len(value)} characters long: at most {MAX_ITEM_ID}")
    if not value.isprintable():
        raise ValueError("item holds control characters")
    return value.strip()


def field_names(values) -> tuple[str, ...]:
    """The names of what a write carried (a dict's keys), sorted: the audit row never holds contents."""
    return tuple(sorted(str(k) for k in values)) if isinstance(values, dict) else ()
