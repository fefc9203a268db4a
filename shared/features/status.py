"""What people and operators can see of the sync: each Meeting Event's sync state in plain words in an
optional column of the site, the last failures per site, and when Graph last notified us.

The status column (SITES `status_column`, off when unset) is written with webhooks=false and only when
the item's state changes: the state last written is kept in the ops table, so a healthy sync (state
"synced" again and again) adds no site writes. A state is a key without times ("synced",
"waiting:busy", "not-synced:no-email:12") and the words shown ("In Outlook since 10:32 on 3 Dec").
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime

from ..context import SiteContext
from ..model import errors
from ..model.errors import JobAbandoned, NotVisible, RemoteError, Throttled, TransientError
from ..model.mapping import format_utc, parse_utc
from ..services import Services
from ..storage.ops_store import ItemState
from .base import Feature, write_column
from .teams import UNAVAILABLE

log = logging.getLogger("rapid_meetings")
ITEM_OPS = {"event.create", "event.update", "event.delete", "sync.event"}
NOTIFICATION_NOTE_SECONDS = 30.0   # "last notification received" is kept to this precision, per process

# Why the engine gave up on an item (JobAbandoned.code) → the words shown; `{name}` is the organiser's display
# name, `{detail}` what the reason is about (JobAbandoned.about).
WORDS = {
    errors.NO_MEETING: "Not synced: the event has no meeting",
    errors.MEETING_GONE: "Not synced: its meeting no longer exists",
    errors.NO_ORGANISER: "Not synced: the meeting has no organiser",
    errors.NO_EMAIL: "Not synced: the organiser {name} has no email",
    errors.END_BEFORE_START: "Not synced: it ends before it starts",
    errors.BAD_DATE: "Not synced: {detail} is not a date and time",
    errors.REMOVAL_HELD: "Held: {detail}",   # sync/removal_guard.py; detail: which removal waits
    errors.UNSEEN: "Waiting: {detail} cannot be seen just now (a 404 that proves nothing); will look again",
    errors.OUTSIDE_BOUNDS: "Not synced: {detail} is outside the mailboxes this site may use; nothing was written "
                           "to Outlook (an administrator can widen the site's mailbox_domains or mailbox_group)",
    errors.OUT_OF_SCOPE: "Not synced: Exchange refuses the app access to {detail} (outside the app's scope in "
                         "Exchange); nothing was written to Outlook; an operator has been told",
    errors.BOUNDS_UNREAD: "Not synced: the site's group of mailboxes could not be read to check {detail}; an "
                          "operator has been told",
    errors.SERIES_ELSEWHERE: "Not synced: its event became a recurring series in Outlook that has no occurrence "
                             "at this item's time; Outlook is left as it is",
}
NOTHING_TO_SHOW = {errors.ITEM_GONE, errors.SITE_GONE}
# States of a synced item that need words of their own; `{time}` is when it was last synced.
SERIES = "synced:series"   # its event became a recurring series in Outlook (sync/series.py)
SYNCED_WORDS = {
    SERIES: "In Outlook since {time}, as one occurrence of a recurring series made in Outlook: this item follows "
            "that occurrence only; the series' other occurrences are only in Outlook",
}


def plain_reason(error: JobAbandoned) -> tuple[str, str, str | None]:
    """(state key, words, the id or column the words are about) for an abandoned item."""
    if error.code in WORDS:
        return f"not-synced:{error.code}:{error.about or ''}", WORDS[error.code], error.about
    short = str(error).split(": ", 1)[-1][:120]
    return f"not-synced:{short}", f"Not synced: {short}", None


def _local_time(ctx: SiteContext, when: datetime | None = None) -> str:
    now = (when or ctx.now()).astimezone(ctx.site.zone)
    return f"{now:%H:%M} on {now.day} {now:%b}"


WHO = {"site": "the site", "storage": "our storage", "identity": "Microsoft's sign-in service"}


def waiting(ctx: SiteContext, error: BaseException) -> ItemState:
    """Words for a job that will run again (jobs/worker.py never gives one up for these): who has not
    answered, since when (the site's breaker for it knows the outage's start), and that it will retry."""
    dependency = getattr(error, "dependency", "") or ("site" if str(error).startswith("site ") else "graph")
    who = WHO.get(dependency, "Outlook")
    at = format_utc(ctx.now())
    if isinstance(error, NotVisible):
        what = "the site item" if dependency == "site" else "the Outlook event"
        return ItemState(f"waiting:{errors.UNSEEN}:{dependency}", WORDS[errors.UNSEEN].format(detail=what), at)
    if isinstance(error, Throttled) and error.status == 429:
        return ItemState("waiting:busy", f"Waiting: {who} is busy; will retry", at)
    breaker = ctx.services.health.breakers(ctx.site.key).get(dependency) if dependency != "storage" else None
    since = parse_utc(breaker.down_since) if breaker is not None and breaker.down_since else ctx.now()
    return ItemState(f"waiting:{dependency}:{_local_time(ctx, since)}",
                     f"Waiting for {who}, which has not answered since {_local_time(ctx, since)}; will retry", at)


def state_after(ctx: SiteContext, item_id: str, error: BaseException | None) -> ItemState | None:
    """The item's state once its task ran (or failed with `error`); None when there is nothing to show
    (the item is gone, the site is no longer configured)."""
    at = format_utc(ctx.now())
    if error is None:
        link = ctx.store.get_link(ctx.site.key, item_id)
        if link is not None and not link.removing:
            if link.elsewhere:  # sync/inbound.py: moved in Outlook to a calendar the app does not watch
                return ItemState("synced:elsewhere", f"In Outlook since {_local_time(ctx)}, but moved to a calendar "
                                 "the app cannot watch: Outlook's edits come over only with sync now", at)
            if link.online == UNAVAILABLE:
                return ItemState("synced:no-teams", f"In Outlook since {_local_time(ctx)}, without Teams: the "
                                 "organiser's calendar offers no Teams meetings", at)
            if link.series_id:
                return ItemState(SERIES, SYNCED_WORDS[SERIES].format(time=_local_time(ctx)), at)
            return ItemState("synced", f"In Outlook since {_local_time(ctx)}", at)
        return ItemState("not-in-outlook", "Not in Outlook: cancelled or removed", at)
    if isinstance(error, (Throttled, TransientError)):
        return waiting(ctx, error)
    if isinstance(error, JobAbandoned):
        if error.code in NOTHING_TO_SHOW:
            return None
        key, words, about = plain_reason(error)
        if "{name}" in words:
            person = ctx.rapid.items_by_id("principals", [about], ("title",)).get(about) or {}
            words = words.format(name=person.get("title") or f"(Principals {about})")
        elif "{detail}" in words:
            words = words.format(detail=about)
        return ItemState(key, words, at)
    if isinstance(error, RemoteError):
        return ItemState(f"failed:{error.status}", f"Not synced: refused ({str(error)[:100]}); an operator "
                         "has been told", at)
    return ItemState("failed", "Not synced: an error occurred; an operator has been told", at)


def show_state(ctx: SiteContext, item_id: str, error: BaseException | None) -> bool:
    """Write the item's state to its status column if it changed; True when a site write was made."""
    site = ctx.site
    if not site.status_column:
        return False
    state = state_after(ctx, item_id, error)
    if state is None:
        return False
    written = write_column(ctx, "state", item_id, site.status_column, state.key, lambda: state.text)
    if written:
        log.info("site=%s item=%s sync state %s: %r", site.key, item_id, state.key, state.text)
    return written


class Status(Feature):
    """Each Meeting Event's sync state in plain words, in a column of the item (SITES `status_column`)."""

    name = "status"

    def enabled(self, site):
        return bool(site.status_column)

    def after_task(self, svc, site, op, task, error):
        if op in ITEM_OPS and task.get("item"):
            show_state(SiteContext.of(svc, site), str(task["item"]), error)
        elif op == "outlook.change" and task.get("change") == "deleted" and error is None:
            link = svc.store.get_link_by_event(site.key, task.get("event") or "")  # moved out of sight?
            if link is not None:
                show_state(SiteContext.of(svc, site), link.item_id, None)

    def after_sync(self, ctx, outcome):
        """An Outlook change that made the item follow one occurrence of a series: said at once (an Outlook
        change is no item task: after_task does not see it)."""
        if outcome.link.series_id:
            show_state(ctx, outcome.link.item_id, None)


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
