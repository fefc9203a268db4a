"""Graph subscriptions: one per (site, organiser mailbox), shared by that organiser's meetings.

Created when a meeting is registered, renewed by the timer in $batch requests of 20, recreated when
Graph lost them, repaired by a delta catch-up after a gap; each meeting has a Meeting Subscriptions
item in its site carrying the subscription's id, resource and expiry.
"""

from __future__ import annotations

import logging
import secrets
import time
import uuid
from collections import defaultdict
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta

from ..config import SiteConfig
from ..model.errors import JobAbandoned, RemoteError, RemoteNotFound, Throttled
from ..clients.graph import BATCH_LIMIT
from ..sync.inbound import apply_outlook_change
from ..model.mapping import format_utc, parse_utc
from ..model.rapid_items import lookup_id, lookup_write
from ..storage.store import Conflict, Meeting, Subscription
from ..storage.work_queue import new_job
from ..services import Services
from ..sync.engine import organiser_id

log = logging.getLogger("rapid_meetings")
CLAIM_RETRY_SECONDS = 2
LEASE_WAIT_SECONDS = 5.0   # how long a job waits for a busy mailbox lease before it is rescheduled
LEASE_POLL_SECONDS = 0.2
RENEW_HORIZON = timedelta(hours=2)        # the timer runs every 30 minutes: three chances before expiry
CATCH_UP_WINDOW = (timedelta(days=-30), timedelta(days=730))
INACTIVE = {"inactive", "disabled", "off", "paused", "stopped", "cancelled", "false", "0"}


def _expiry(svc: Services) -> str:
    return format_utc(svc.clock() + timedelta(minutes=svc.settings.subscription_minutes - 1))


def _notification_url(svc: Services) -> str:
    url = svc.settings.notification_url or ""
    if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise JobAbandoned("NOTIFICATION_URL is not an https URL: cannot subscribe to Outlook changes")
    return url


def _object_id(svc: Services, site: SiteConfig, mailbox: str) -> str:
    """The organiser's object id, which Graph prefers in a subscription's resource (UPNs work but can give
    intermittent 503s). Reading a user needs User.Read.All (user-get.md, "Permissions"); without it the
    subscription is made by UPN, and the reason is logged."""
    try:
        return svc.graph(site).user_id(mailbox)
    except RemoteError as e:
        if e.status != 403:
            raise
        log.warning("site=%s mailbox=%s GET /users refused (%s): the app registration lacks the User.Read.All "
                    "application permission; subscribing by UPN instead (grant it to subscribe by object id)",
                    site.key, mailbox, e)
        return ""


def create_subscription(svc: Services, site: SiteConfig, mailbox: str, user_id: str = "", delta_link: str = "") -> Subscription:
    graph = svc.graph(site)
    user_id = user_id or _object_id(svc, site, mailbox)
    resource = f"users/{user_id or mailbox}/events"
    client_state = secrets.token_urlsafe(72)[:96]
    created = graph.create_subscription(resource, _notification_url(svc), client_state, _expiry(svc))
    sub = svc.store.put_subscription(Subscription(
        id=created["id"], site=site.key, mailbox=mailbox, user_id=user_id, resource=resource,
        client_state=client_state, expires=created.get("expirationDateTime", ""), aad_tenant=site.aad_tenant,
        delta_link=delta_link))
    log.info("site=%s mailbox=%s created subscription (sub=%s, expires %s)", site.key, mailbox, sub.id, sub.expires)
    return sub


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


def ensure_subscription(svc: Services, site: SiteConfig, mailbox: str) -> Subscription:
    """The live subscription for an organiser's calendar, creating or renewing it as needed.
    Runs under the mailbox's lease."""
    sub = svc.store.subscription_for(site.key, mailbox)
    if sub is None:
        return create_subscription(svc, site, mailbox)
    if parse_utc(sub.expires) > svc.clock() + RENEW_HORIZON:
        return sub
    try:
        renewed = svc.graph(site).renew_subscription(sub.id, _expiry(svc))
    except RemoteNotFound:
        return _recreate(svc, sub)
    return svc.store.save_subscription(replace(sub, expires=renewed["expirationDateTime"]))


def _subscription_fields(site: SiteConfig, sub: Subscription, meeting_id: str, title: str, active: bool) -> dict:
    col = site.col
    return {col("title"): title, **lookup_write(col("meeting"), meeting_id), col("sys_external_id"): _external_id(meeting_id),
            col("subscription_id"): sub.id, col("resource"): sub.resource, col("expires"): sub.expires,
            col("status"): "Active" if active else "Inactive"}


def _external_id(meeting_id: str) -> str:
    """Marks the Meeting Subscriptions item this app made for a meeting, so that a retried create finds it."""
    return f"rapid-meetings/meeting/{meeting_id}"


def _existing_item(svc: Services, site: SiteConfig, meeting_id: str) -> dict | None:
    """The Meeting Subscriptions item this app made for the meeting, found by its external id."""
    flt = f"{site.col('sys_external_id')} eq '{_external_id(meeting_id)}'"
    rows = svc.rapid(site).query("subscriptions", flt, ("id", site.col("status")))
    return rows[0] if rows else None


def _is_inactive(site: SiteConfig, item: dict) -> bool:
    return str(item.get(site.col("status")) or "active").strip().lower() in INACTIVE


def register_meeting(svc: Services, site: SiteConfig, meeting_id: str) -> str:
    rapid = svc.rapid(site)
    item = rapid.get_item("meetings", meeting_id)
    if item is None:
        raise JobAbandoned(f"meeting {meeting_id} does not exist in {site.key}")
    organiser = organiser_id(site, item, f"meeting {meeting_id}")
    mailbox = (rapid.items_by_id("principals", [organiser], (site.col("email"),)).get(organiser) or {}).get(site.col("email"))
    if not mailbox:
        raise JobAbandoned(f"meeting {meeting_id}: organiser {organiser} has no email")
    with mailbox_lease(svc, site.key, mailbox):
        return _register(svc, site, item, meeting_id, mailbox)


def _register(svc: Services, site: SiteConfig, item: dict, meeting_id: str, mailbox: str) -> str:
    """Under the mailbox's lease. A meeting the site switched off (its Meeting Subscriptions item set
    Inactive, or deleted) stays off: a replayed or late meeting/create never switches it back on."""
    rapid, store = svc.rapid(site), svc.store
    meeting = store.get_meeting(site.key, meeting_id)
    if meeting is not None and not meeting.active:
        log.info("site=%s meeting=%s create again for a meeting switched off in the site: left off", site.key, meeting_id)
        return "left inactive"
    existing = None if meeting and meeting.subscription_item_id else _existing_item(svc, site, meeting_id)
    if existing is not None and _is_inactive(site, existing):
        store.put_meeting(Meeting(site=site.key, meeting_id=meeting_id, mailbox=mailbox,
                                  subscription_item_id=str(existing["id"]), active=False))
        log.info("site=%s meeting=%s its Meeting Subscriptions item %s is inactive: left off", site.key, meeting_id,
                 existing["id"])
        return "left inactive"
    sub = ensure_subscription(svc, site, mailbox)
    meeting = meeting or Meeting(site=site.key, meeting_id=meeting_id, mailbox=mailbox)
    fields = _subscription_fields(site, sub, meeting_id, f"Outlook sync: {item.get(site.col('title')) or meeting_id}", True)
    item_id = meeting.subscription_item_id or (str(existing["id"]) if existing else "")
    if item_id:
        rapid.update_item("subscriptions", item_id, fields)
    else:
        # a create whose answer carried no item (the connector's 201 may not) is found by its external id
        item_id = rapid.create_item("subscriptions", fields) or str((_existing_item(svc, site, meeting_id) or {}).get("id", ""))
        if not item_id:
            raise JobAbandoned(f"meeting {meeting_id}: the site accepted a Meeting Subscriptions item but cannot find it")
    store.put_meeting(replace(meeting, mailbox=mailbox, subscription_id=sub.id, subscription_item_id=item_id, active=True))
    log.info("site=%s meeting=%s registered: Outlook changes of %s flow back (sub=%s, item %s)", site.key,
             meeting_id, mailbox, sub.id, item_id)
    return "registered"


def _update_meeting_items(svc: Services, sub: Subscription, meetings: list[Meeting] | None = None) -> None:
    site = svc.site(sub.site)
    col = site.col
    for meeting in meetings if meetings is not None else svc.store.meetings(site.key, sub.id):
        if meeting.subscription_item_id:
            svc.rapid(site).update_item("subscriptions", meeting.subscription_item_id, {
                col("subscription_id"): sub.id, col("resource"): sub.resource, col("expires"): sub.expires})


def recreate(svc: Services, old: Subscription) -> Subscription:
    """Graph lost a subscription: make a new one (unless another job just did), move the meetings
    over, then forget the old one; the catch-up on the gap runs as a job of its own."""
    with mailbox_lease(svc, old.site, old.mailbox):
        return _recreate(svc, old)


def _recreate(svc: Services, old: Subscription) -> Subscription:
    site = svc.site(old.site)
    current = svc.store.subscription_for(site.key, old.mailbox)
    if current is not None and current.id != old.id:
        sub = current
    else:
        sub = create_subscription(svc, site, old.mailbox, old.user_id, old.delta_link)
    moved = [replace(m, subscription_id=sub.id) for m in svc.store.meetings(site.key, old.id)]
    for meeting in moved:
        svc.store.put_meeting(meeting)
    _update_meeting_items(svc, sub, moved)
    svc.store.delete_subscription(old)  # the mailbox index already names the new one and stays
    svc.queue.send(new_job([{"op": "outlook.lifecycle", "sub": sub.id, "event": "missed"}]))
    log.warning("site=%s mailbox=%s subscription %s recreated as %s", site.key, old.mailbox, old.id, sub.id)
    return sub


ROTATE_OP = "subscription.rotate"


def rotate(svc: Services, sub_id: str) -> str:
    """A new clientState for a subscription. Graph's update changes only expirationDateTime and
    notificationUrl (resources/subscription.md, "Update subscription"), so the subscription is made
    again: the new one first (for a moment both notify; a duplicate is claimed once), the meetings moved,
    the old one forgotten and deleted from Graph, and a catch-up covers the swap. An operator rotates
    after a clientState may have leaked (a log, a captured body): `POST ops/rotate-client-states`."""
    old = svc.store.get_subscription(sub_id)
    if old is None:
        return "noop"
    site = svc.site(old.site)
    with mailbox_lease(svc, old.site, old.mailbox):
        current = svc.store.get_subscription(sub_id)
        if current is None:
            return "noop"
        new = _recreate(svc, current)
    if new.id != current.id and not svc.graph(site).delete_subscription(current.id):
        log.info("site=%s subscription %s was already gone from Graph", site.key, current.id)
    log.warning("site=%s mailbox=%s clientState rotated: subscription %s replaced by %s", site.key, old.mailbox,
                old.id, new.id)
    return "rotated"


def catch_up(svc: Services, sub: Subscription) -> int:
    """Read the calendar's changes since the last delta link and apply them to linked items."""
    site = svc.site(sub.site)
    graph = svc.graph(site)
    now = svc.clock()
    start, end = (format_utc(now + offset) for offset in CATCH_UP_WINDOW)
    applied, delta_link = 0, sub.delta_link
    try:
        pages = list(graph.delta_pages(sub.mailbox, start, end, delta_link))
    except RemoteError as e:
        if e.status not in (400, 404, 410) or not delta_link:
            raise
        log.warning("site=%s sub=%s delta link expired (%s): reading the whole window", site.key, sub.id, e)
        pages = list(graph.delta_pages(sub.mailbox, start, end))
    for page in pages:
        for event in page.get("value", []):
            if "@removed" in event:
                outcome = apply_outlook_change(svc, sub, "updated", event["id"])  # reads it: moved away or gone?
            else:
                outcome = apply_outlook_change(svc, sub, "updated", event["id"], event=event)
            applied += outcome in ("applied", "removed")
        delta_link = page.get("@odata.deltaLink", delta_link)
    for _ in range(3):
        current = svc.store.get_subscription(sub.id)
        if current is None:
            break
        try:
            svc.store.save_subscription(replace(current, delta_link=delta_link))
            break
        except Conflict:
            continue
    log.info("site=%s sub=%s caught up: %d change(s) applied", site.key, sub.id, applied)
    return applied


def handle_lifecycle(svc: Services, sub_id: str, event: str) -> str:
    sub = svc.store.get_subscription(sub_id)
    if sub is None:
        raise JobAbandoned(f"lifecycle {event} for unknown subscription {sub_id}")
    site = svc.site(sub.site)
    log.info("site=%s sub=%s lifecycle %s", site.key, sub.id, event)
    if event == "reauthorizationRequired":
        try:
            renewed = svc.graph(site).renew_subscription(sub.id, _expiry(svc))
        except RemoteNotFound:
            recreate(svc, sub)
            return "recreated"
        sub = svc.store.save_subscription(replace(sub, expires=renewed["expirationDateTime"]))
        _update_meeting_items(svc, sub)
        return "renewed"
    if event == "subscriptionRemoved":
        recreate(svc, sub)
        return "recreated"
    if event == "missed":
        catch_up(svc, sub)
        return "caught up"
    raise JobAbandoned(f"unknown lifecycle event {event!r}")


def renew_due(svc: Services, workers: int = 16) -> dict:
    """Renew every subscription expiring within the horizon, 20 per $batch; recreate what Graph lost."""
    horizon = svc.clock() + RENEW_HORIZON
    due = [s for s in svc.store.subscriptions() if not s.expires or parse_utc(s.expires) <= horizon]
    by_site = defaultdict(list)
    for sub in due:
        by_site[sub.site.lower()].append(sub)
    chunks = [(key, subs[i:i + BATCH_LIMIT]) for key, subs in by_site.items() for i in range(0, len(subs), BATCH_LIMIT)]
    totals, renewed = defaultdict(int), []
    with ThreadPoolExecutor(workers) as pool:
        for counts, subs in pool.map(lambda chunk: _renew_chunk(svc, *chunk), chunks):
            renewed += subs
            for key, count in counts.items():
                totals[key] += count
    for key in {sub.site.lower() for sub in renewed}:
        users = defaultdict(list)
        for meeting in svc.store.meetings(svc.settings.sites[key].key):
            users[meeting.subscription_id].append(meeting)
        for sub in renewed:
            if sub.site.lower() == key and users.get(sub.id):
                _update_meeting_items(svc, sub, users[sub.id])
    log.info("renewal: %d due, %s", len(due), dict(totals))
    return {"due": len(due), **totals}


def _renew_chunk(svc: Services, site_key: str, subs: list[Subscription]) -> tuple[dict, list[Subscription]]:
    counts, renewed = defaultdict(int), []
    site = svc.settings.sites.get(site_key)
    if site is None:
        counts["skipped"] += len(subs)
        return counts, renewed
    expires = _expiry(svc)
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
        else:
            log.warning("site=%s sub=%s renewal answered %s: retried on the next run", site.key, sub.id, status)
            counts["failed"] += 1
    svc.store.set_expiries({sub.id: sub.expires for sub in renewed})  # while other workers wait on Graph
    return counts, renewed


def apply_subscription_item(svc: Services, site: SiteConfig, item_id: str) -> str:
    """A changed Meeting Subscriptions item: status on/off, or a new expiry."""
    item = svc.rapid(site).get_item("subscriptions", item_id)
    if item is None:
        raise JobAbandoned(f"Meeting Subscriptions item {item_id} does not exist in {site.key}")
    meeting_id = lookup_id(item, site.col("meeting"))
    meeting = svc.store.get_meeting(site.key, meeting_id) if meeting_id else None
    if meeting is None or meeting.subscription_item_id != str(item_id):
        raise JobAbandoned(f"Meeting Subscriptions item {item_id} belongs to no registered meeting")
    active = not _is_inactive(site, item)
    with mailbox_lease(svc, site.key, meeting.mailbox):
        meeting = svc.store.get_meeting(site.key, meeting.meeting_id)  # as it is now that no one else changes it
        if active != meeting.active:
            meeting = svc.store.put_meeting(replace(meeting, active=active))
            log.info("site=%s meeting=%s syncing back from Outlook %s", site.key, meeting.meeting_id,
                     "resumed" if active else "stopped")
        if active:
            sub = ensure_subscription(svc, site, meeting.mailbox)
            if sub.id != meeting.subscription_id:
                svc.store.put_meeting(replace(meeting, active=True, subscription_id=sub.id))
                _update_meeting_items(svc, sub)
        else:
            _drop_unused_subscription(svc, site, meeting.subscription_id)
    return "active" if active else "inactive"


def remove_subscription_item(svc: Services, site: SiteConfig, item_id: str, meeting_id: str | None) -> str:
    """A deleted Meeting Subscriptions item: that meeting stops syncing back from Outlook."""
    if svc.rapid(site).get_item("subscriptions", item_id) is not None:
        raise JobAbandoned(f"Meeting Subscriptions item {item_id} still exists in {site.key}: not stopping anything")
    candidates = [svc.store.get_meeting(site.key, meeting_id)] if meeting_id else svc.store.meetings(site.key)
    meetings = [m for m in candidates if m is not None and m.subscription_item_id == str(item_id)]
    if not meetings:
        log.info("site=%s Meeting Subscriptions item %s belongs to no registered meeting: nothing to do", site.key, item_id)
        return "noop"
    for meeting in meetings:
        with mailbox_lease(svc, site.key, meeting.mailbox):
            meeting = svc.store.get_meeting(site.key, meeting.meeting_id) or meeting
            svc.store.put_meeting(replace(meeting, active=False, subscription_item_id=""))
            log.info("site=%s meeting=%s subscription item deleted: syncing back from Outlook stopped", site.key,
                     meeting.meeting_id)
            _drop_unused_subscription(svc, site, meeting.subscription_id)
    return "stopped"


def _drop_unused_subscription(svc: Services, site: SiteConfig, sub_id: str) -> None:
    if not sub_id or any(m.active for m in svc.store.meetings(site.key, sub_id)):
        return
    sub = svc.store.get_subscription(sub_id)
    svc.graph(site).delete_subscription(sub_id)
    if sub is not None:
        svc.store.delete_subscription(sub)
    log.info("site=%s sub=%s no meeting uses it any more: deleted", site.key, sub_id)
