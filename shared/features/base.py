"""The one interface every feature of the sync implements, and the one way their work runs.

A feature (Teams, the agenda, invitees' answers, conflicts, the status column, recognisable events) is a
`Feature`: each hook has a default that does nothing, so a feature writes only the hooks it needs. The
engine (shared/sync) loops over the site's enabled features (`features.registry.enabled_features`) and
names none of them:

- `columns(site)`: the item columns it reads, so the catch-up's list query `$select`s them;
- `contribute(site, item, link, target, ctx)`: what it adds to the event the item asks for (a body
  section, privacy, a Teams request) - with `ctx` None it may not read anything (a bulk comparison) and
  keeps what was last synced where it would have to;
- `differs(site, target, link)`: why Outlook must change although the content is as last synced;
- `create_fields` / `patch_fields`: the Graph fields it adds to a create or an update, and the link
  fields it records with them;
- `item_columns(site, link)`: site columns the item holds from its link (written with the Outlook id);
- `from_event(site, link, event)`: what it takes from an event read or written (site columns, link fields);
- `superseded(ctx, task)`: a queued sync of the item that a later one makes unnecessary;
- `caught_up(ctx, since, point_reads)` / `swept(ctx)`: items the site-side catch-up (and its sweep) must
  sync because of this feature's own items, as (item id, why);
- `after_sync(ctx, outcome)`: what it does once the sync's work is done and recorded - run through
  `run_after_sync`, which never lets it fail the sync and always leaves a failure visible;
- `after_task(svc, site, op, task, error)`: what it tells once any job task ran or failed (the status column);
- `schedule_window(site, synced, now)` / `after_schedule(ctx, item_id, read)`: a feature that works from the
  free/busy the conflicts check reads (features/conflicts.py) asks that one getSchedule to cover a wider
  window, and is given its answer (the times free for everyone, features/free_times.py);
- `handlers`: the job ops it owns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from ..model.errors import MailboxRefused, RemoteError, RemoteNotFound, Throttled, TransientError
from ..model.mapping import format_utc
from ..storage.ops_store import ItemState

if TYPE_CHECKING:
    from ..context import SiteContext
    from ..storage.store import EventLink

log = logging.getLogger("rapid_meetings")


@dataclass(frozen=True)
class Target:
    """Where and what a site item should be in Outlook: the organiser's mailbox, the mapped content, and
    what each feature asks for besides (`asks`, keyed by the feature's name)."""

    mailbox: str
    synced: object          # model.mapping.Synced
    meeting_id: str
    asks: dict = field(default_factory=dict)
    people: str = ""        # who the mailbox and attendees were read from (sync/target.people_key)

    def ask(self, name: str, default=None):
        return self.asks.get(name, default)


@dataclass(frozen=True)
class Outcome:
    """What one sync did, for the features' after-sync work."""

    kind: str                        # "created", "updated", "echo"
    link: "EventLink"
    event: dict
    before: object = None            # the content before a change (Synced), None after a create
    target: Target | None = None


class Feature:
    name = ""
    skipped = "not done"     # how a log line says its after-sync work did not happen ("conflicts not checked")
    handlers: dict[str, Callable] = {}

    def enabled(self, site) -> bool:
        return True

    def columns(self, site) -> tuple[str, ...]:
        return ()

    def contribute(self, site, item: dict, link, target: Target, ctx: "SiteContext | None") -> Target:
        return target

    def differs(self, site, target: Target, link) -> str | None:
        return None

    def create_fields(self, site, target: Target) -> tuple[dict, dict]:
        return {}, {}

    def patch_fields(self, site, target: Target, link) -> tuple[dict, dict]:
        return {}, {}

    def item_columns(self, site, link) -> dict:
        return {}

    def from_event(self, site, link, event: dict) -> tuple[dict, dict]:
        return {}, {}

    def superseded(self, ctx: "SiteContext", task: dict) -> bool:
        return False

    def caught_up(self, ctx: "SiteContext", since_filter: str | None, point_reads: int) -> list[tuple[str, str]]:
        return []

    def swept(self, ctx: "SiteContext") -> list[tuple[str, str]]:
        return []

    def after_task(self, svc, site, op: str, task: dict, error: BaseException | None) -> None:
        return None

    def after_sync(self, ctx: "SiteContext", outcome: Outcome) -> None:
        return None

    def schedule_window(self, site, synced, now) -> tuple | None:
        return None

    def after_schedule(self, ctx: "SiteContext", item_id: str, read) -> None:
        return None


def run_after_sync(ctx: "SiteContext", features, outcome: Outcome) -> None:
    """Each feature's after-sync work. The sync's own work is done and recorded: a failure here never fails
    it. A refusal, throttling or an outage is logged (the next change tries again); anything else is a bug,
    logged with its trace and noted among the site's failures (the status page shows it)."""
    for feature in features:
        try:
            feature.after_sync(ctx, outcome)
        except Exception as e:
            expected = isinstance(e, (RemoteError, Throttled, TransientError, MailboxRefused))
            log.warning("site=%s item=%s %s %s (%s): the sync's work stands; the next change tries again",
                        ctx.site.key, outcome.link.item_id, feature.name, feature.skipped, e, exc_info=not expected)
            if not expected:
                _note(ctx, f"after-sync.{feature.name}", outcome.link.item_id, e)


def _note(ctx: "SiteContext", op: str, item_id: str, error: Exception) -> None:
    try:
        ctx.ops.note_failure(ctx.site.key, ctx.now(), op, item_id, f"{type(error).__name__}: {error}")
    except Exception as noted:
        log.warning("site=%s could not note the failure (%s)", ctx.site.key, type(noted).__name__)


def write_column(ctx: "SiteContext", kind: str, item_id: str, column: str, key: str, words: Callable[[], str | None],
                 unwritten_key: str | None = None) -> bool:
    """The one column writer of the features: write `words()` to the item's `column` only when `key` (what
    the words say, without times) differs from the key last written (kept in the ops table under `kind`);
    `unwritten_key` is the key of a column never written (its empty state). `words()` may read the site and
    answer None to write nothing. True when written. An item gone from the site forgets the kept state."""
    ops, site = ctx.ops, ctx.site
    last = ops.written(kind, site.key, item_id)
    if (last.key if last else unwritten_key) == key:
        return False
    try:
        text = words()
        if text is None:
            return False
        ctx.rapid.update_item("events", item_id, {column: text})
    except RemoteNotFound:
        ops.forget_written(kind, site.key, item_id)
        return False
    ops.save_written(kind, site.key, item_id, ItemState(key, text, format_utc(ctx.now())))
    return True
