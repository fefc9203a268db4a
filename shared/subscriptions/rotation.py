"""Rotating clientStates: after one may have leaked (a log, a captured body), an operator gives every
Graph subscription, or one site's, a new one (`POST ops/rotate-client-states`, docs/operations.md)."""

from __future__ import annotations

import logging

from ..services import Services
from .graph_subscriptions import recreate_under_lease
from .lease import mailbox_lease

log = logging.getLogger("rapid_meetings")
ROTATE_OP = "subscription.rotate"


def queue_rotations(svc: Services, only: str | None = None) -> int:
    """One queued rotation per subscription (of the site keyed `only`, or of all); how many were queued."""
    subs = [s for s in svc.store.subscriptions() if only is None or s.site.lower() == only.lower()]
    if subs:
        svc.queue.enqueue([{"op": ROTATE_OP, "site": s.site, "sub": s.id} for s in subs])
    return len(subs)


def rotate(svc: Services, sub_id: str) -> str:
    """A new clientState for a subscription. Graph's update changes only expirationDateTime and
    notificationUrl (resources/subscription.md, "Update subscription"), so the subscription is made
    again: the new one first (for a moment both notify; a duplicate is claimed once), the meetings moved,
    the old one forgotten and deleted from Graph, and a catch-up covers the swap."""
    old = svc.store.get_subscription(sub_id)
    if old is None:
        return "noop"
    site = svc.site(old.site)
    if not svc.graph(site).bounds.inside(old.mailbox):  # outside the site's bounds: not made again, the old one goes
        svc.graph(site).delete_subscription(old.id)
        svc.store.delete_subscription(old)
        log.warning("site=%s mailbox=%s is outside the site's bounds: subscription %s deleted, not rotated",
                    site.key, old.mailbox, old.id)
        return "dropped"
    with mailbox_lease(svc, old.site, old.mailbox):
        current = svc.store.get_subscription(sub_id)
        if current is None:
            return "noop"
        new = recreate_under_lease(svc, current)
    if new.id != current.id and not svc.graph(site).delete_subscription(current.id):
        log.info("site=%s subscription %s was already gone from Graph", site.key, current.id)
    log.warning("site=%s mailbox=%s clientState rotated: subscription %s replaced by %s", site.key, old.mailbox,
                old.id, new.id)
    return "rotated"
