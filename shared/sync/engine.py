"""Site → Outlook: what happens when a site item changed (or was said to).

Webhooks are signals: the runner takes a snapshot of both sides when it runs, so duplicated, late or
reordered deliveries cannot roll anything back. The planner (sync/planner.py) decides; the performers
(sync/perform.py) act; this module only reads what the planner asks for and runs its actions in order.
"""

from __future__ import annotations

from dataclasses import replace

from ..context import SiteContext
from ..features.registry import enabled_features
from ..model.errors import JobAbandoned, NotVisible, RemoteNotFound
from ..services import Services
from . import perform, removal_guard, series
from .perform import Replan, say
from .planner import (UNREAD, CancelInSite, Create, FollowOccurrence, GiveUp, Note, Nothing, Read, Remove, Snapshot,
                      Update, WriteBack, is_cancelled, item_columns, plan_site)
from .target import read_target


def apply_site_event(svc: Services, site, item_id: str, action: str, fresh: bool = False) -> str:
    """Make Outlook follow a Meeting Event item. Returns the decision, for logs and tests. `fresh`: read
    everything the item asks for from the site (the catch-up and sync now compare the site as it is now)."""
    ctx = SiteContext.of(svc, site)
    snap = Snapshot(site, enabled_features(site), item_id=str(item_id), action=action, fresh=fresh,
                    link=ctx.store.get_link(site.key, str(item_id)))
    while True:
        try:
            snap, decision = _run(ctx, snap)
        except Replan as again:
            snap, decision = replace(snap, link=again.link, event=UNREAD), None
        if decision is not None:
            return decision


def _linked_item(ctx: SiteContext, snap: Snapshot) -> dict | None:
    """The item, or None when the site says it is gone: deleted (RAPID deletes softly: the item comes back with
    `deleted`), or a 404 the list confirms. For a linked item a 404 is not believed while the list shows
    no item at all: that is what a view filter, lost rights or a restored backup look like, and believing
    it would cancel the site's meetings in Outlook (docs/product-rules.md, rule 9)."""
    item = ctx.rapid.get_item("events", snap.item_id, deleted=True)
    if item is not None:
        return None if item.get("deleted") else item
    if snap.link is not None and not snap.link.pending and not ctx.rapid.lists_anything("events"):
        raise NotVisible(f"site {ctx.site.key} events {snap.item_id}: its GET answered 404 and the list shows "
                         "no item at all; will look again later")
    return None


def read_part(ctx: SiteContext, snap: Snapshot, part: str) -> Snapshot:
    """The part of the snapshot the planner asked for."""
    if part == "item":
        item = _linked_item(ctx, snap)
        if item is not None and not is_cancelled(ctx.site, item):
            removal_guard.item_seen(ctx, snap.item_id)  # a held removal of its event is dropped
        return replace(snap, item=item)
    if part == "target":
        try:
            return replace(snap, target=read_target(ctx, snap.item, snap.link, snap.features, snap.fresh))
        except JobAbandoned as e:
            return replace(snap, target=e)
    if part == "event":
        try:
            event = ctx.graph.get_event(snap.link.mailbox, snap.link.event_id)
        except RemoteNotFound:
            moved = _moved_link(ctx, snap.link)
            return replace(snap, event=None) if moved is None else read_part(ctx, replace(snap, link=moved), part)
        if not event.get("isCancelled"):
            removal_guard.event_seen(ctx, snap.link.item_id)  # a held cancellation of its item is dropped
        return replace(snap, event=event)
    if part == "occurrence":
        return series.read_occurrence(ctx, snap)
    raise ValueError(f"the planner asked for an unknown part {part!r}")


def _run(ctx: SiteContext, snap: Snapshot) -> tuple[Snapshot, str | None]:
    """Run one plan: (the snapshot to plan again from, None) when it asked for more, else the decision."""
    decision, site, link = "noop", ctx.site, snap.link
    for step in plan_site(snap):
        if isinstance(step, Read):
            return read_part(ctx, replace(snap, link=link), step.part), None
        if isinstance(step, GiveUp):
            raise step.error
        if isinstance(step, FollowOccurrence):  # the event became a series: plan again with its occurrence
            return series.follow(ctx, replace(snap, link=link), step.occurrence), None
        if isinstance(step, (Nothing, Note)):
            say(site, snap.item_id, step.why, event=link.event_id if link else "")
        elif isinstance(step, Remove):
            decision, link = perform.remove(ctx, link, step.why, step.guarded), None
        elif isinstance(step, Create):
            decision = perform.create(ctx, snap.features, snap.item, step.target, link,
                                      lambda made: item_columns(snap, made))
        elif isinstance(step, WriteBack):
            snap = replace(snap, item=perform.write_back(ctx, snap.item, step.columns) or snap.item)
        elif isinstance(step, CancelInSite):
            decision = _event_gone(ctx, link, step.why)
        elif isinstance(step, Update):
            to_site = perform.update(ctx, snap.features, link, step, snap.event)
            say(site, snap.item_id, "updated Outlook event" + (", merged an Outlook change" if to_site else ""),
                event=link.event_id, content=step.plan.synced.digest())
            decision = "updated"
    return snap, decision


def _event_gone(ctx: SiteContext, link, why: str) -> str:
    """The event the link names is gone from Outlook: unless another job already dealt with it."""
    current = ctx.store.get_link(ctx.site.key, link.item_id)
    if current is None or current.event_id != link.event_id:
        say(ctx.site, link.item_id, "Outlook event already removed by another job", event=link.event_id)
        return "noop"
    return perform.cancel_in_site(ctx, current, why)


def remove_outlook_event(svc: Services, site, link, item_id, why: str) -> str:
    """Cancel (or delete) the item's Outlook event, then forget the link (perform.remove)."""
    return perform.remove(SiteContext.of(svc, site), link, why)


def outlook_event_removed(svc: Services, site, link, why: str) -> str:
    """An Outlook cancellation or deletion: the item cancelled (or deleted, per site) (perform.cancel_in_site)."""
    return perform.cancel_in_site(SiteContext.of(svc, site), link, why)


def _moved_link(ctx: SiteContext, link):
    """A link from before immutable ids (subscriptions/immutable_ids.py) whose event is not found (404) by its old
    default id may only have moved: to another calendar, or to Deleted Items and back; the default id changes
    then (concepts/outlook-immutable-id.md). Found by our tag, the link is re-keyed to the event's immutable id
    (a Conflict makes the worker decide again); None when the link is immutable or no event carries the tag."""
    if link.immutable or link.pending:
        return None
    found = ctx.graph.find_tagged(link.mailbox, perform.tag_of(ctx.site, link.item_id))
    if len(found) != 1:
        return None
    say(ctx.site, link.item_id, "its Outlook event moved (found by its tag): link re-keyed to its immutable id",
        event=found[0]["id"], was=link.event_id)
    return ctx.store.rekey_link(link, found[0]["id"])
