"""A linked event that became a recurring series in Outlook: the site item follows its own occurrence.

The site holds one item per meeting occurrence and the app makes single events (docs/product-rules.md),
but an organiser can turn a synced event into a series in Outlook. The event then is the series master
(api-reference/v1.0/resources/event.md: `type` seriesMaster; the item keeps its id) and each date an
occurrence with its own id, `seriesMasterId` and `originalStart`. Writing the site's changes to the master
would change, and mail, the whole series (api/event-update.md); cancelling it would cancel every
occurrence (api/event-cancel.md). So the planner (sync/planner.py, `FollowOccurrence`) re-points the link
to the occurrence whose `originalStart` is the item's start, read with one /instances call around it
(api/event-list-instances.md); from then on the item and that occurrence sync as a single event does, and
the master's id still finds the link (change notifications of an occurrence may name the master:
devtools/sim/graph/series.py). The other occurrences stay only in Outlook.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from ..context import SiteContext
from . import perform
from .occurrences import find_own
from .perform import say
from .planner import UNREAD, Snapshot


def read_occurrence(ctx: SiteContext, snap: Snapshot) -> Snapshot:
    """The item's own occurrence of the series its event became (None when the series has none there)."""
    return replace(snap, occurrence=find_own(ctx.graph, snap.link, snap.event["id"]))


def follow(ctx: SiteContext, snap: Snapshot, occurrence: dict) -> Snapshot:
    """Re-point the link to the occurrence (its change key stays the last one synced: the occurrence is
    then compared as any change); the snapshot to plan again from, with the occurrence as the event."""
    link = ctx.store.follow_occurrence(snap.link, occurrence["id"], snap.event["id"])
    say(ctx.site, link.item_id, "the event became a recurring series in Outlook: the site item follows its own "
        "occurrence", series=link.series_id, event=link.event_id)
    return replace(snap, link=link, event=occurrence, occurrence=UNREAD)


def cancel_once(ctx: SiteContext, link, why: str) -> str:
    """The item's occurrence cancelled, or the whole series: Graph may notify the master and each occurrence
    for one cancellation (devtools/sim/graph/series.py, occurrence_notifications), and those jobs run side by
    side. One of them cancels the item (a claim row, as for duplicate deliveries); the others find it done."""
    store, site, claim = ctx.store, ctx.site.key, "cancel"
    claimed = f"{link.series_id}|cancel|{link.item_id}"  # its own claim: the master's change may hold the series'
    if not store.claim_change(site, claimed, claim, uuid.uuid4().hex):
        say(ctx.site, link.item_id, f"{why}: another job is cancelling the item", series=link.series_id)
        return "duplicate"
    try:
        current = store.get_link(site, link.item_id)
        if current is None or current.event_id != link.event_id:
            say(ctx.site, link.item_id, f"{why}: the item was already cancelled", series=link.series_id)
            return "noop"
        return perform.cancel_in_site(ctx, current, why)
    finally:
        store.release_change(site, claimed, claim)
