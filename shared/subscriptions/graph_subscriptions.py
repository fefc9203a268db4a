"""The Graph subscription itself: one per (site, organiser mailbox), shared by that organiser's meetings.

Made when a first meeting of the organiser is registered, renewed when it nears its expiry, made again
when Graph lost it; each meeting's Meeting Subscriptions item shows its id, resource and expiry, kept
up to date by `update_meeting_items`. Whoever changes a subscription holds its mailbox's lease (lease.py).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import replace
from datetime import timedelta

from ..config import SiteConfig
from ..model.errors import JobAbandoned, RemoteError, RemoteNotFound
from ..model.mapping import format_utc, parse_utc
from ..services import Services
from ..storage.store import Meeting, Subscription
from ..storage.work_queue import new_job
from .lease import mailbox_lease

log = logging.getLogger("rapid_meetings")
# Renewed in the second half of its life (Graph's longest for events: 4230 minutes, 70.5 h), not only just
# before it ends: an outage of Graph or of our Storage of up to 36 hours cannot let a subscription lapse.
RENEW_HORIZON = timedelta(hours=36)


def new_expiry(svc: Services) -> str:
    """The expirationDateTime asked of Graph: the longest SUBSCRIPTION_MINUTES allow, less a minute."""
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
    graph.bounds.check(mailbox, "organiser mailbox")  # the resource may name an object id: checked by address here
    user_id = user_id or _object_id(svc, site, mailbox)
    resource = f"users/{user_id or mailbox}/events"
    client_state = secrets.token_urlsafe(72)[:96]
    created = graph.create_subscription(resource, _notification_url(svc), client_state, new_expiry(svc))
    sub = svc.store.put_subscription(Subscription(
        id=created["id"], site=site.key, mailbox=mailbox, user_id=user_id, resource=resource,
        client_state=client_state, expires=created.get("expirationDateTime", ""), aad_tenant=site.aad_tenant,
        delta_link=delta_link, immutable_ids=True))  # clients/graph.py asks for immutable ids on every request
    log.info("site=%s mailbox=%s created subscription (sub=%s, expires %s)", site.key, mailbox, sub.id, sub.expires)
    return sub


def ensure_subscription(svc: Services, site: SiteConfig, mailbox: str) -> Subscription:
    """The live subscription for an organiser's calendar, creating or renewing it as needed.
    Runs under the mailbox's lease."""
    svc.graph(site).bounds.check(mailbox, "organiser mailbox")  # outside the site's bounds: neither made nor renewed
    sub = svc.store.subscription_for(site.key, mailbox)
    if sub is None:
        return create_subscription(svc, site, mailbox)
    if parse_utc(sub.expires) > svc.clock() + RENEW_HORIZON:
        return sub
    try:
        renewed = svc.graph(site).renew_subscription(sub.id, new_expiry(svc))
    except RemoteNotFound:
        return recreate_under_lease(svc, sub)
    return svc.store.save_subscription(replace(sub, expires=renewed["expirationDateTime"]))


def update_meeting_items(svc: Services, sub: Subscription, meetings: list[Meeting] | None = None) -> None:
    """Show the subscription's id, resource and expiry on the Meeting Subscriptions items of the meetings
    that share it (`meetings`, or all of them read from the store)."""
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
        return recreate_under_lease(svc, old)


def recreate_under_lease(svc: Services, old: Subscription) -> Subscription:
    """`recreate` for a caller that already holds the mailbox's lease (the lease is not re-entrant)."""
    site = svc.site(old.site)
    current = svc.store.subscription_for(site.key, old.mailbox)
    if current is not None and current.id != old.id:
        sub = current
    else:
        sub = create_subscription(svc, site, old.mailbox, old.user_id, old.delta_link)
    moved = [replace(m, subscription_id=sub.id) for m in svc.store.meetings(site.key, old.id)]
    for meeting in moved:
        svc.store.put_meeting(meeting)
    update_meeting_items(svc, sub, moved)
    svc.store.delete_subscription(old)  # the mailbox index already names the new one and stays
    svc.queue.send(new_job([{"op": "outlook.lifecycle", "sub": sub.id, "event": "missed"}]))
    log.warning("site=%s mailbox=%s subscription %s recreated as %s", site.key, old.mailbox, old.id, sub.id)
    return sub
