"""Renewal: the timer keeps every Graph subscription alive, renewing those that expire within
RENEW_HORIZON in $batch requests of 20 and making again those Graph lost. Every DELTA_MINUTES it also
enqueues a delta read of every watched calendar (lifecycle.catch_up): Graph does not guarantee change
notifications, and drops those it could not deliver for 4 hours, so the Outlook side is read from its
state on a schedule, not only after a `missed` lifecycle notification."""

from __future__ import annotations

import logging
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta

from ..clients.graph import BATCH_LIMIT
from ..model.audit import CATCH_UP, current, set_acting
from ..model.errors import MailboxRefused, Throttled, TransientError
from ..model.mapping import format_utc, parse_utc
from ..services import Services
from ..storage.store import Subscription
from .graph_subscriptions import RENEW_HORIZON, new_expiry, recreate, update_meeting_items
from .immutable_ids import queue_migrations

log = logging.getLogger("rapid_meetings")
FULL_READ = timedelta(hours=24)


def run_renewal(svc: Services) -> dict:
    """One run of the timer: `renew_due`, recorded for the status page (its counts, or what failed)."""
    started = format_utc(svc.clock())
    try:
        outcome = renew_due(svc)
    except Exception as e:
        svc.ops.note_run("renewal", "*", started=started, finished=format_utc(svc.clock()),
                         outcome=f"{type(e).__name__}: {e}"[:500])
        raise
    outcome["calendars re-read"] = queue_delta_reads(svc)
    outcome["sites moved to immutable ids"] = queue_migrations(svc)  # nothing once each site is marked  # (no "delta" on the status page: it guards delta links)
    svc.ops.note_run("renewal", "*", started=started, finished=format_utc(svc.clock()), outcome="ok",
                     counts=outcome)
    return outcome


def queue_delta_reads(svc: Services) -> int:
    """Enqueue the delta read of every subscription's calendar when DELTA_MINUTES have passed since the last;
    once a day the whole window instead (`reread`: every event compared with its item, whatever both kinds
    of notification and the delta tokens missed)."""
    now = svc.clock()
    if not _due(svc, "delta", now, timedelta(minutes=svc.settings.delta_minutes)):
        return 0
    event = "reread" if _due(svc, "reread", now, FULL_READ) else "missed"
    subs = svc.store.subscriptions()
    if subs:
        svc.queue.enqueue([{"op": "outlook.lifecycle", "sub": s.id, "event": event, "why": CATCH_UP} for s in subs])
    for kind in ("delta", "reread") if event == "reread" else ("delta",):
        svc.ops.note_run(kind, "*", scheduled=format_utc(now))
    return len(subs)


def _due(svc: Services, kind: str, now, every: timedelta) -> bool:
    last = svc.ops.run(kind, "*").scheduled
    return not last or parse_utc(last) + every <= now


def renew_due(svc: Services, workers: int = 16) -> dict:
    """Renew every subscription expiring within the horizon, 20 per $batch; recreate what Graph lost."""
    horizon = svc.clock() + RENEW_HORIZON
    due = [s for s in svc.store.subscriptions() if not s.expires or parse_utc(s.expires) <= horizon]
    by_site = defaultdict(list)
    for sub in due:
        by_site[sub.site.lower()].append(sub)
    chunks = [(key, subs[i:i + BATCH_LIMIT]) for key, subs in by_site.items() for i in range(0, len(subs), BATCH_LIMIT)]
    totals, renewed = defaultdict(int), []
    with ThreadPoolExecutor(workers, initializer=set_acting, initargs=(current().why,)) as pool:
        for counts, subs in pool.map(lambda chunk: _renew_chunk(svc, *chunk), chunks):
            renewed += subs
            for key, count in counts.items():
                totals[key] += count
    _show_new_expiries(svc, renewed)
    log.info("renewal: %d due, %s", len(due), dict(totals))
    return {"due": len(due), **totals}


def _show_new_expiries(svc: Services, renewed: list[Subscription]) -> None:
    """The renewed expiries on the meetings' Meeting Subscriptions items: one read of each site's meetings."""
    for key in {sub.site.lower() for sub in renewed}:
        users = defaultdict(list)
        for meeting in svc.store.meetings(svc.settings.sites[key].key):
            users[meeting.subscription_id].append(meeting)
        for sub in renewed:
            if sub.site.lower() == key and users.get(sub.id):
                update_meeting_items(svc, sub, users[sub.id])


def _renew_chunk(svc: Services, site_key: str, subs: list[Subscription]) -> tuple[dict, list[Subscription]]:
    counts, renewed = defaultdict(int), []
    site = svc.settings.sites.get(site_key)
    if site is None:
        counts["skipped"] += len(subs)
        return counts, renewed
    subs = _inside_bounds(svc, site, subs, counts)
    if not subs:
        return counts, renewed
    expires = new_expiry(svc)
    answers = svc.graph(site).batch([
        {"id": str(n), "method": "PATCH", "url": f"/subscriptions/{sub.id}",
         "headers": {"Content-Type": "application/json"}, "body": {"expirationDateTime": expires}}
        for n, sub in enumerate(subs)])
    for n, sub in enumerate(subs):
        answer = answers.get(str(n), {})
        status = answer.get("status", 0)
        if status == 200:
            renewed.append(replace(sub, expires=(answer.get("body") or {}).get("expirationDateTime", expires)))
            counts["renewed"] += 1
        elif status == 404:
            try:
                recreate(svc, sub)
                counts["recreated"] += 1
            except Throttled:  # another job holds the mailbox (and is recreating it, or will see it)
                counts["busy"] += 1
            except MailboxRefused as e:  # outside the bounds (or Exchange's scope): not made again
                log.warning("site=%s sub=%s not recreated: %s", site.key, sub.id, e)
                counts["outside bounds"] += 1
        else:
            log.warning("site=%s sub=%s renewal answered %s: retried on the next run", site.key, sub.id, status)
            counts["failed"] += 1
    svc.store.set_expiries({sub.id: sub.expires for sub in renewed})  # while other workers wait on Graph
    return counts, renewed


def _inside_bounds(svc: Services, site, subs: list[Subscription], counts) -> list[Subscription]:
    """The subscriptions of mailboxes inside the site's bounds (clients/bounds.py): one whose organiser is
    outside now is left to lapse, never renewed (unless the site's group cannot be read just now)."""
    try:
        outside = {s.id for s in subs if not svc.graph(site).bounds.inside(s.mailbox)}
    except (MailboxRefused, TransientError, Throttled) as e:  # the group unread: one site never stops the run
        log.warning("site=%s renewal: bounds unknown (%s): renewing as before", site.key, e)
        return subs
    for sub in subs:
        if sub.id in outside:
            log.warning("site=%s sub=%s mailbox %s is outside the site's bounds: not renewed", site.key, sub.id,
                        sub.mailbox)
    counts["outside bounds"] += len(outside)
    return [s for s in subs if s.id not in outside]
