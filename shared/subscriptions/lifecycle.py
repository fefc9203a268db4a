"""Graph's lifecycle notifications for a subscription, and the delta catch-up they can call for.

`reauthorizationRequired` renews it, `subscriptionRemoved` makes it again, `missed` (notifications
Graph could not deliver, and the gap after a subscription is made again; also the renewer's scheduled
read) reads the calendar's changes since the last delta link and applies them as if notified; `reread`
(the renewer's, daily) reads the whole window afresh.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

from ..model.errors import JobAbandoned, RemoteError, RemoteNotFound
from ..model.mapping import format_utc
from ..services import Services
from ..intake.lifecycle_once import started
from ..storage.store import Conflict, Subscription
from ..sync.inbound import apply_outlook_change
from .graph_subscriptions import new_expiry, recreate, update_meeting_items

log = logging.getLogger("rapid_meetings")
CATCH_UP_WINDOW = (timedelta(days=-30), timedelta(days=730))


def handle_lifecycle(svc: Services, sub_id: str, event: str) -> str:
    started(svc, sub_id, event)  # a notification from now on queues this again (intake/lifecycle_once.py)
    sub = svc.store.get_subscription(sub_id)
    if sub is None:
        raise JobAbandoned(f"lifecycle {event} for unknown subscription {sub_id}")
    site = svc.site(sub.site)
    log.info("site=%s sub=%s lifecycle %s", site.key, sub.id, event)
    if event == "reauthorizationRequired":
        # outside the site's bounds now: never renewed (renewal.py), it lapses; MailboxRefused says why
        svc.graph(site).bounds.check(sub.mailbox, "organiser mailbox")
        try:
            renewed = svc.graph(site).renew_subscription(sub.id, new_expiry(svc))
        except RemoteNotFound:
            recreate(svc, sub)
            return "recreated"
        sub = svc.store.save_subscription(replace(sub, expires=renewed["expirationDateTime"]))
        update_meeting_items(svc, sub)
        return "renewed"
    if event == "subscriptionRemoved":
        recreate(svc, sub)
        return "recreated"
    if event == "missed":
        catch_up(svc, sub)
        return "caught up"
    if event == "reread":  # not Graph's: the renewer's daily read of the whole window (renewal.py)
        catch_up(svc, replace(sub, delta_link=""))
        return "read again"
    raise JobAbandoned(f"unknown lifecycle event {event!r}")


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
            applied += _caught_up(svc, sub, event) in ("applied", "removed")
        delta_link = page.get("@odata.deltaLink", delta_link)
    _save_delta_link(svc, sub.id, delta_link)
    log.info("site=%s sub=%s caught up: %d change(s) applied", site.key, sub.id, applied)
    return applied


def _caught_up(svc: Services, sub: Subscription, event: dict) -> str:
    """One delta entry applied; one that can never be (e.g. its event became a series with no occurrence at
    the item's time) is logged and does not stop the rest of the calendar's catch-up."""
    try:
        if "@removed" in event:
            return apply_outlook_change(svc, sub, "updated", event["id"])  # reads it: moved away or gone?
        return apply_outlook_change(svc, sub, "updated", event["id"], event=event)
    except JobAbandoned as e:
        log.warning("site=%s sub=%s event=%s not caught up: %s", sub.site, sub.id, event["id"], e)
        return "abandoned"


def _save_delta_link(svc: Services, sub_id: str, delta_link: str) -> None:
    """Keep where the next catch-up starts; a renewal that wrote the subscription meanwhile is read again."""
    for _ in range(3):
        current = svc.store.get_subscription(sub_id)
        if current is None:
            break
        try:
            svc.store.save_subscription(replace(current, delta_link=delta_link))
            break
        except Conflict:
            continue
