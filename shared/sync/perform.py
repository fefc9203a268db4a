"""The performers: each planner action (sync/planner.py) run with the safety it needs. Every step leaves a
durable trace in the link before Outlook is touched (a pending link before a create, a `removing` mark
before a removal), so a failure or a crash at any point is finished by the retry, and no Outlook event
outlives its item. Rows are written with their ETag (storage.store.Conflict: decide again); a create
carries a transactionId, so a retried create gives back the first attempt's event."""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace

from ..context import SiteContext
from ..features.base import Outcome, Target, run_after_sync
from ..model.errors import OUT_OF_SCOPE, OUTSIDE_BOUNDS, MailboxRefused, RemoteError, RemoteNotFound, TransientError
from ..model.mapping import keep_outlook_parts, outlook_patch, outlook_payload, site_fields, synced_from_outlook
from ..storage.held_removals import OUTLOOK, SITE
from ..storage.store import Conflict, EventLink
from . import removal_guard
from .occurrences import find_own
from .planner import Update, is_cancelled, settle

log = logging.getLogger("rapid_meetings")
TRANSACTION_NS = uuid.UUID("5f2b0c8e-7d8a-4f6e-9a51-2c1f3e4d5a6b")


class Replan(Exception):
    """The link changed under a performer (another delivery linked the event first): decide again with it."""

    def __init__(self, link: EventLink):
        super().__init__("decide again")
        self.link = link


def say(site, item_id, decision: str, **ids) -> None:
    """One log line per decision, with the ids a person follows."""
    extra = " ".join(f"{k}={v}" for k, v in ids.items() if v)
    log.info("site=%s item=%s %s%s", site.key, item_id, decision, f" ({extra})" if extra else "")


def tag_of(site, item_id) -> str:
    return f"{site.key}|{item_id}"


def _asked(features, call) -> tuple[dict, dict]:
    """The event fields and link fields the features add (`call(feature)` gives each one's pair)."""
    fields, recorded = {}, {}
    for feature in features:
        more, kept = call(feature)
        fields.update(more)
        recorded.update(kept)
    return fields, recorded


def write_back(ctx: SiteContext, item: dict, columns: dict, read_back: bool = False) -> dict | None:
    """Write `columns` to the item in one write; the item as the site now has it (None when it is gone)."""
    if not columns:
        return item
    try:
        written = ctx.rapid.update_item("events", str(item["id"]), columns, read_back=read_back)
    except RemoteNotFound:
        return None
    return written if read_back else {**item, **columns}


def _create_event(ctx: SiteContext, item: dict, target: Target, fields: dict) -> dict:
    site, item_id = ctx.site, str(item["id"])
    transaction = str(uuid.uuid5(TRANSACTION_NS, f"{tag_of(site, item_id)}|{item.get('created', '')}"))
    try:
        event = ctx.graph.create_event(target.mailbox, {**outlook_payload(target.synced, site.zone), **fields},
                                       transaction, tag_of(site, item_id))
    except RemoteError as e:
        if e.status != 409:
            raise
        event = {"answer": str(e)}
    if not event.get("id"):
        # Graph knew the transactionId and did not answer with the event (what it says then is not documented:
        # docs/platform-facts.md, "transactionId drops a duplicate create"): the event is the one carrying our tag
        event = _tagged_event(ctx, target.mailbox, item_id, event.get("answer") or "no event")
    outlook = synced_from_outlook(event, site.zone, target.synced.attendees, target.synced.texts())
    if outlook != target.synced:  # a repeated transactionId gave back the first attempt's event, as it was then
        event = ctx.graph.update_event(target.mailbox, event["id"],
                                       keep_outlook_parts(outlook_patch(outlook, target.synced, site.zone), event))
    return event


def _event_keys(event: dict) -> dict:
    """What a link keeps of the event it was made for: its version, and its ids (every id the app gets is
    immutable: clients/graph.py; the iCalUId is the key it keeps across calendars)."""
    return {"change_key": event.get("changeKey", ""), "immutable": True, "ical_uid": event.get("iCalUId") or ""}


def _link_created(ctx: SiteContext, pending: EventLink, event: dict, target: Target, recorded: dict) -> EventLink:
    try:
        return ctx.store.complete_link(pending, event["id"], synced=target.synced, meeting_id=target.meeting_id,
                                       people=target.people, **_event_keys(event), **recorded)
    except Conflict:
        existing = ctx.store.get_link(ctx.site.key, pending.item_id)
        if existing is None:
            # a concurrent delete forgot the pending link while Outlook made the event: link it again (the
            # trace is back), and the item's state read after decides whether it stays
            return ctx.store.create_link(replace(pending, event_id=event["id"], **_event_keys(event), etag=None))
        if existing.event_id != event["id"]:
            raise  # decide again from scratch; transactionId gives back this event if it is still wanted
        # another delivery of this create linked it first (Graph's transactionId made it the same event)
        say(ctx.site, pending.item_id, "already linked by a concurrent delivery: applying as update", event=event["id"])
        raise Replan(existing) from None


def create(ctx: SiteContext, features, item: dict, target: Target, pending: EventLink | None, item_columns) -> str:
    """Create the item's Outlook event. A pending link is written first (or found, from an attempt that
    failed after it): it names the mailbox, so whatever happens next, a retry knows where to look."""
    site, item_id = ctx.site, str(item["id"])
    fields, recorded = _asked(features, lambda f: f.create_fields(site, target))
    ctx.graph.bounds.check(target.mailbox, "organiser mailbox")  # before a pending link that could never be undone
    if pending is None:
        pending = ctx.store.create_link(EventLink(site=site.key, item_id=item_id, event_id="", mailbox=target.mailbox,
                                                  synced=target.synced, meeting_id=target.meeting_id,
                                                  people=target.people, **recorded))
    event = _create_event(ctx, item, target, fields)
    recorded.update(_asked(features, lambda f: ({}, f.from_event(site, pending, event)[1]))[1])
    link = _link_created(ctx, pending, event, target, recorded)
    # The item may have been deleted or cancelled while we created its event: such a delete may have
    # found only the pending link, so the answer to this write (made after linking) decides.
    now = write_back(ctx, item, item_columns(link), read_back=True)
    if now is None or now.get("deleted") or is_cancelled(site, now):
        return remove(ctx, link, "deleted or cancelled while its event was being created")
    run_after_sync(ctx, features, Outcome("created", link, event, target=target))
    say(site, item_id, "created Outlook event", event=event["id"], mailbox=target.mailbox,
        content=target.synced.digest())
    return "created"


def _tagged_event(ctx: SiteContext, mailbox: str, item_id: str, answer: str) -> dict:
    found = ctx.graph.find_tagged(mailbox, tag_of(ctx.site, item_id))
    if not found:
        raise TransientError(f"item {item_id}: create answered {answer!r} and no tagged event exists (yet)")
    say(ctx.site, item_id, f"create answered {answer!r}: taking the tagged event", event=found[0]["id"],
        others=len(found) - 1)
    return found[0]


def not_held(patch: dict, event: dict) -> dict:
    """The PATCH less the plain values the event already holds (what a feature asks for and the organiser
    already set in Outlook): Exchange mails every PATCH of a meeting to all its attendees, so nothing goes
    that changes nothing. The mapped fields come diffed against the event already (reconcile); isAllDay
    always travels with the times (Graph checks them together)."""
    return {k: v for k, v in patch.items() if k == "isAllDay" or isinstance(v, (dict, list)) or event.get(k) != v}


def update(ctx: SiteContext, features, link: EventLink, plan: Update, event: dict) -> dict:
    """Bring both sides to one content (planner.merge): PATCH Outlook, merge an Outlook edit that landed
    just before our write, write the site's share, record the link. The site columns written."""
    site, merged = ctx.site, plan.plan.synced
    if plan.plan.conflicts:
        log.warning("site=%s item=%s conflict on %s: %s wins (event=%s)", site.key, link.item_id,
                    ",".join(plan.plan.conflicts), plan.plan.winner, link.event_id)
    to_outlook = not_held(plan.to_outlook, event)
    if to_outlook:
        event = ctx.graph.update_event(link.mailbox, link.event_id, keep_outlook_parts(to_outlook, event))
        settled = settle(site, plan, event)
        if settled != merged:
            say(site, link.item_id, f"an Outlook edit landed just before our write: merged "
                f"({', '.join(sorted(merged.changed_fields(settled))) or 'nothing'})", event=link.event_id)
            merged = settled
    to_site = site_fields(merged, merged.changed_fields(plan.site_now), site.col)
    columns, recorded = _asked(features, lambda f: f.from_event(site, link, event))
    if to_site or columns:
        ctx.rapid.update_item("events", link.item_id, {**to_site, **columns})
    saved = ctx.store.save_link(replace(link, synced=merged, change_key=event.get("changeKey", ""),
                                        **{**plan.link_fields, **recorded}))
    run_after_sync(ctx, features, Outcome("updated", saved, event, before=link.synced))
    return to_site


def echo(ctx: SiteContext, features, link: EventLink, event: dict) -> None:
    """An Outlook change that touches no mapped field (an invitee's reply, information Outlook added): what
    the features take from the event, and the change key."""
    columns, recorded = _asked(features, lambda f: f.from_event(ctx.site, link, event))
    if columns:
        try:
            ctx.rapid.update_item("events", link.item_id, columns)
            say(ctx.site, link.item_id, f"{', '.join(sorted(columns))} written to the site", event=link.event_id)
        except RemoteNotFound:
            pass
    saved = ctx.store.save_link(replace(link, change_key=event.get("changeKey", ""), **recorded))
    run_after_sync(ctx, features, Outcome("echo", saved, event))


def remove(ctx: SiteContext, link: EventLink, why: str, guarded: bool = False) -> str:
    """Cancel (or delete) the item's Outlook event; the link is forgotten only once Outlook no longer has
    the event. Until then it is marked `removing`: a failed removal is retried from it, and the
    "deleted" notification of our own removal meets the mark and is ignored. A pending link (a create
    whose answer never came) names the mailbox: the event, if any, carries our tag there. A `guarded`
    removal passes the mass-removal guard first (RemovalHeld when it is held)."""
    site, graph, comment = ctx.site, ctx.graph, f"This meeting was {why.split(' ')[0]}."
    released = guarded and not link.pending and not link.removing and removal_guard.admit(ctx, link, why, OUTLOOK)
    if link.pending:
        try:
            found = graph.find_tagged(link.mailbox, tag_of(site, link.item_id))
        except MailboxRefused as e:
            if e.code not in (OUTSIDE_BOUNDS, OUT_OF_SCOPE):
                raise
            found = []  # the mailbox was never ours to write: its create was refused, no event of ours is there
        for event in found:
            graph.remove_event(link.mailbox, event["id"], comment)
        ctx.store.delete_link(link)
        say(site, link.item_id, f"{why}: {len(found)} Outlook event(s) of an unanswered create removed",
            mailbox=link.mailbox)
        return "deleted" if found else "noop"
    if not link.removing:
        link = ctx.store.save_link(replace(link, removing=True))
    cancel = _what_to_cancel(ctx, link)
    found = graph.remove_event(link.mailbox, cancel, comment) if cancel else False
    ctx.store.delete_link(link)
    if released:
        removal_guard.done(ctx, link.item_id)
    say(site, link.item_id, f"{why}: Outlook event removed" if found else f"{why}: Outlook event already gone",
        event=link.event_id)
    return "deleted"


def _what_to_cancel(ctx: SiteContext, link: EventLink) -> str:
    """The event a removal cancels: the link's, unless it became a series in Outlook that the sync has not
    followed yet: then the item's own occurrence, never the master (event-cancel.md: cancelling a master
    cancels, and mails, every occurrence); "" when the series has none at the item's time (sync/series.py)."""
    if link.series_id:
        return link.event_id
    try:
        event = ctx.graph.get_event(link.mailbox, link.event_id)
    except RemoteNotFound:
        return link.event_id
    if event.get("type") != "seriesMaster":
        return link.event_id
    own = find_own(ctx.graph, link, link.event_id)
    say(ctx.site, link.item_id, "its event became a recurring series in Outlook: only the item's own occurrence "
        "is cancelled" if own else "its event became a recurring series in Outlook with no occurrence at the "
        "item's time: the series is left as it is", event=link.event_id)
    return own["id"] if own else ""


def cancel_in_site(ctx: SiteContext, link: EventLink, why: str) -> str:
    """An Outlook cancellation or deletion: mark the item cancelled (or delete it, per site), once the
    mass-removal guard lets it through (RemovalHeld when it is held)."""
    site = ctx.site
    released = removal_guard.admit(ctx, link, why, SITE)
    if site.on_outlook_delete == "delete":
        ctx.rapid.delete_item("events", link.item_id)
    else:
        try:
            ctx.rapid.update_item("events", link.item_id, {site.col("status"): site.cancelled_status})
        except RemoteNotFound:
            pass  # the site deleted it meanwhile: nothing left to cancel
    ctx.store.delete_link(link)
    if released:
        removal_guard.done(ctx, link.item_id)
    say(site, link.item_id, f"{why}: site item {'deleted' if site.on_outlook_delete == 'delete' else 'cancelled'}",
        event=link.event_id)
    return "removed"
