"""The mass-removal guard (docs/product-rules.md, "Rule 9. Never remove in bulk unasked"): a site that
suddenly lists far fewer items or gives 404 for many at once (the app's principal losing rights, a view
filter, a list restored from a backup) must not cancel its meetings in bulk and mail every attendee, and
a flood of Outlook-side deletions must not cancel the site's items in bulk.

- `admit` (before each removal the planner marks guarded: an item deleted or cancelled in the site, an
  event deleted or cancelled in Outlook): let it through while the site's removals of the last hour stay
  within `limit` (removal_fraction x its linked events, at least 5, at most removal_limit), counted in one ETag-checked
  row per site; past it, or while the site already has removals of that kind held, the removal is HELD
  (a row per item, storage/held_removals.py), logged, and the item's status says so (RemovalHeld).
- `sweep`: the sweep's candidates counted first; if they alone exceed the limit, all are held at once and
  no delete job is enqueued.
- `item_seen`, `event_seen`, and the sweep: a held removal is dropped when its item (or event) is back.
- `release` (the admin route): held removals marked released and their jobs enqueued; each job decides
  again from both sides as they are then, and a released removal goes through without being counted.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import timedelta

from ..context import SiteContext
from ..features.registry import enabled_features
from ..model.errors import REMOVAL_HELD, JobAbandoned, TransientError
from ..model.mapping import format_utc, parse_utc
from ..storage.held_removals import OUTLOOK, SITE, HeldRemoval, Window
from ..storage.tables import Conflict

log = logging.getLogger("rapid_meetings")
WINDOW_MINUTES = 60                     # "within an hour": removals counted per minute over the last 60
LINKS_RECOUNT = timedelta(minutes=15)   # the site's linked events are counted again at most this often
HOLDS_LOOKED = 30.0                     # seconds a process trusts its look at whether a site holds removals
WINDOW_TRIES = 8                        # ETag races on the window row before the job is retried later
WAITS = {OUTLOOK: "its removal from Outlook waits for an operator (too many removals at once)",
         SITE: "its cancellation from Outlook waits for an operator (too many at once)"}


class RemovalHeld(JobAbandoned):
    """A removal the guard holds: the job ends, the item's status says so (features/status.py WORDS)."""

    def __init__(self, item_id: str, direction: str, why: str):
        super().__init__(f"item {item_id}: removal held ({why})", REMOVAL_HELD, WAITS[direction])


def limit(site, links: int) -> int:
    """The most removals one hour may see for a site with `links` linked events: a share of them, but at least
    `removal_floor` (a small site may lose a few) and at most `removal_limit` (a big one may not lose hundreds)."""
    return min(site.removal_limit, max(site.removal_floor, math.ceil(site.removal_fraction * links)))


def over(site, done: int, more: int, links: int) -> bool:
    """Whether `more` removals on top of the hour's `done` exceed the site's limit. Pure."""
    return done + more > limit(site, links)


def admit(ctx: SiteContext, link, why: str, direction: str) -> bool:
    """Before a guarded removal: True when it is a released one (the caller forgets its row once done),
    False when it may go ahead as one of the hour's removals; raises RemovalHeld otherwise."""
    held, site = ctx.services.held, ctx.site
    row = held.get(site.key, link.item_id)
    if row is not None:
        if row.released:
            return True
        raise RemovalHeld(link.item_id, direction, row.why)  # held already: a repeated delivery stays held
    latched = held.any_held(site.key, direction)
    if latched or not _let_through(ctx, 1):
        reason = f"{why}; {'removals of this site are held' if latched else _beyond(ctx)}"
        hold(ctx, [link], reason, direction)
        raise RemovalHeld(link.item_id, direction, reason)
    return False


def _beyond(ctx: SiteContext) -> str:
    window = ctx.services.held.window(ctx.site.key)
    return f"more than {limit(ctx.site, window.links)} removals within an hour"


def _let_through(ctx: SiteContext, count: int) -> bool:
    """Count `count` removals in the site's window unless they would exceed its limit (ETag-checked)."""
    held, site, now = ctx.services.held, ctx.site, ctx.now()
    minute = int(now.timestamp() // 60)
    for _ in range(WINDOW_TRIES):
        window = held.window(site.key)
        recent = {m: n for m, n in window.minutes.items() if m > minute - WINDOW_MINUTES}
        links, links_at = window.links, window.links_at
        if not links_at or now - parse_utc(links_at) >= LINKS_RECOUNT:
            links, links_at = len(ctx.store.links(site.key)), format_utc(now)
        if over(site, sum(recent.values()), count, links):
            return False
        recent[minute] = recent.get(minute, 0) + count
        try:
            held.save_window(site.key, Window(recent, links, links_at, window.etag))
            return True
        except Conflict:
            continue
    raise TransientError(f"site {site.key}: removal window contended; will count again")


def hold(ctx: SiteContext, links: list, why: str, direction: str) -> int:
    """Hold these links' removals: a row each, a log line, and each item's status. How many were new."""
    site, since = ctx.site, format_utc(ctx.now())
    rows = [HeldRemoval(site.key, link.item_id, link.event_id, link.mailbox, direction, since, why) for link in links]
    written = ctx.services.held.hold(rows)
    _holding[ctx.site.key] = (time.monotonic(), True)
    log.warning("site=%s removals HELD: %d %s (%s); release with POST ops/held-removals/release?site=%s",
                site.key, len(written), "Outlook event(s)" if direction == OUTLOOK else "site cancellation(s)",
                why, site.key)
    for row in written:
        log.warning("site=%s item=%s removal held (%s, event=%s, mailbox=%s)", site.key, row.item_id, why,
                    row.event_id, row.mailbox)
        _tell(ctx, row.item_id, RemovalHeld(row.item_id, direction, why))
    return len(written)


def _tell(ctx: SiteContext, item_id: str, error: BaseException | None) -> None:
    """The item's status, through the features' own after-task hook (the worker's, for a task of its own)."""
    task = {"op": "event.delete", "site": ctx.site.key, "item": item_id}
    for feature in enabled_features(ctx.site):
        try:
            feature.after_task(ctx.services, ctx.site, "event.delete", task, error)
        except Exception as e:
            log.warning("site=%s item=%s could not tell the held removal (%s: %s)", ctx.site.key, item_id,
                        type(e).__name__, e)


def done(ctx: SiteContext, item_id: str) -> None:
    """A released removal was performed: its row goes, and the item's status says what it is now."""
    ctx.services.held.forget(ctx.site.key, item_id)
    log.info("site=%s item=%s released removal performed", ctx.site.key, item_id)
    _tell(ctx, item_id, None)


def _drop(ctx: SiteContext, row: HeldRemoval, why: str) -> None:
    ctx.services.held.forget(ctx.site.key, row.item_id)
    log.info("site=%s item=%s held removal dropped: %s (event=%s)", ctx.site.key, row.item_id, why, row.event_id)
    _tell(ctx, row.item_id, None)


_holding: dict[str, tuple[float, bool]] = {}  # site -> (when looked, whether it had held removals)


def holding(ctx: SiteContext) -> bool:
    """Whether the site may have held removals: looked up at most every HOLDS_LOOKED seconds per process, so
    a job that reads an item costs no table read for the guard on a site that holds nothing."""
    looked = _holding.get(ctx.site.key)
    if looked is None or time.monotonic() - looked[0] > HOLDS_LOOKED:
        looked = _holding[ctx.site.key] = (time.monotonic(), bool(ctx.services.held.held(ctx.site.key)))
    return looked[1]


def _seen(ctx: SiteContext, item_id: str, direction: str, why: str) -> None:
    if holding(ctx):
        row = ctx.services.held.get(ctx.site.key, item_id)
        if row is not None and row.direction == direction:
            _drop(ctx, row, why)


def item_seen(ctx: SiteContext, item_id: str) -> None:
    """The site has the item (not cancelled): a held removal of its Outlook event is dropped."""
    _seen(ctx, item_id, OUTLOOK, "the item is back in the site")


def event_seen(ctx: SiteContext, item_id: str) -> None:
    """Outlook has the event (not cancelled): a held cancellation of its site item is dropped."""
    _seen(ctx, item_id, SITE, "the event is back in Outlook")


def sweep(ctx: SiteContext, links: list, alive: set[str], back: set[str]) -> list:
    """The sweep's removals: the links whose items the site no longer lists (`alive`), less those held.
    Held removals whose items are listed again, not cancelled (`back`), or whose links are gone, are
    dropped. When the candidates alone exceed the limit (or the site's removals are held already), all
    are held and none is returned."""
    held = {row.item_id: row for row in ctx.services.held.held(ctx.site.key, OUTLOOK)}
    linked = {link.item_id for link in links}
    for item_id, row in held.items():
        if item_id in back or item_id not in linked:
            _drop(ctx, row, "the item is back in the site" if item_id in back else "no longer linked")
    candidates = [link for link in links if link.item_id not in alive
                  and (link.item_id not in held or held[link.item_id].released)]
    fresh = [link for link in candidates if link.item_id not in held]
    latched = any(not row.released and row.item_id in linked and row.item_id not in back for row in held.values())
    if fresh and (latched or over(ctx.site, 0, len(fresh), len(links))):
        why = (f"sweep: {len(fresh)} of {len(links)} linked items missing from the site's list; "
               f"{'removals of this site are held' if latched else f'more than {limit(ctx.site, len(links))} at once'}")
        hold(ctx, fresh, why, OUTLOOK)
        return [link for link in candidates if link.item_id in held]  # the released ones still go
    return candidates


def task_for(svc, row: HeldRemoval) -> dict | None:
    """The job that performs a released removal: the item's delete, or Outlook's deletion replayed."""
    if row.direction == OUTLOOK:
        return {"op": "event.delete", "site": row.site, "item": row.item_id}
    sub = svc.store.subscription_for(row.site, row.mailbox)
    if sub is None:
        return None
    return {"op": "outlook.change", "sub": sub.id, "change": "deleted", "event": row.event_id}


def release(svc, site, item_id: str | None = None) -> dict:
    """Release a site's held removals (or one item's): marked released, their jobs enqueued. Each job
    decides again from both sides as they are then, so an item back meanwhile is not removed."""
    ctx, held = SiteContext.of(svc, site), svc.held
    rows = [r for r in ([held.get(site.key, item_id)] if item_id else held.held(site.key)) if r is not None]
    tasks, left = [], []
    for row in rows:
        if svc.store.get_link(site.key, row.item_id) is None:
            _drop(ctx, row, "no longer linked: nothing to remove")
            continue
        task = task_for(svc, row)
        if task is None:
            left.append({"item": row.item_id, "why": f"no subscription for {row.mailbox}"})
            continue
        try:
            if not row.released:
                held.release(row)
        except Conflict:
            left.append({"item": row.item_id, "why": "changed meanwhile; release again"})
            continue
        tasks.append(task)
    jobs = svc.queue.enqueue(tasks) if tasks else []
    log.warning("site=%s %d held removal(s) released by an operator%s", site.key, len(tasks),
                f" (item {item_id})" if item_id else "")
    return {"released": len(tasks), "jobs": jobs, "not_released": left}
