"""The one place that decides what happens to an event. Pure: no I/O.

A snapshot - the site item (or its absence), the Outlook event (or its absence), the link with what was
last synced, what the item asks for (`Target`), the site's settings and enabled features - goes in; small
actions come out, as vdirsyncer's `_get_actions` turns both sides and the status into Upload/Update/
Delete. What the snapshot does not hold yet and the decision needs is asked for with `Read(part)`: the
runner (sync/engine.py, sync/inbound.py) reads it and asks again, so nothing is read that the decision
does not need (an unchanged item never costs an Outlook read). Every entry - site webhook, Graph
notification, site catch-up, sweep, sync now, a retry - ends here; the catch-up's "does this differ?" is
`needs_sync`. `reconcile` is the field-level part.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..features.base import Target
from ..model.errors import ITEM_GONE, SERIES_ELSEWHERE, JobAbandoned
from ..model.mapping import Synced, synced_from_outlook
from ..model.rapid_items import lookup_id
from .reconcile import Plan, reconcile
from .target import row_target

UNREAD = object()  # a part of the snapshot not read (yet)


@dataclass(frozen=True)
class Snapshot:
    """What one decision looks at. `item`, `event` and `target` are UNREAD until the planner asks."""

    site: object                   # config.SiteConfig
    features: tuple                # the site's enabled features
    item_id: str = ""
    link: object = None            # storage.store.EventLink, or None
    item: object = UNREAD          # dict, None (the site has no such item) or UNREAD
    event: object = UNREAD         # dict, None (Outlook has no such event) or UNREAD
    target: object = UNREAD        # Target, a JobAbandoned (it cannot be known) or UNREAD
    action: str = "update"         # a site entry: what its webhook said ("create", "update", "delete")
    change: str = ""               # an Outlook entry: "created", "updated", "deleted"; "sync" (sync now's read)
    event_id: str = ""
    mailbox: str = ""              # an Outlook entry: the mailbox its subscription watches
    meeting_active: bool = True    # an Outlook entry: syncing back is on for the item's meeting
    occurrence: object = UNREAD    # the event became a series: the item's own occurrence (dict, None: none), or UNREAD
    fresh: bool = False            # a site entry that compares the site as it is now (catch-up, sync now): no
                                   # part of the target is taken from the link


# -- actions --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Read:
    part: str                      # "item", "target" or "event"


@dataclass(frozen=True)
class Nothing:
    why: str
    outcome: str = "noop"


@dataclass(frozen=True)
class Note:
    why: str                       # a decision worth a log line, then the next action


@dataclass(frozen=True)
class GiveUp:
    error: JobAbandoned


@dataclass(frozen=True)
class Remove:
    """Cancel (or delete) the item's Outlook event, then forget the link. `guarded`: a removal the site
    asked for (deleted or cancelled there), which the mass-removal guard counts (sync/removal_guard.py)."""

    why: str
    guarded: bool = False


@dataclass(frozen=True)
class Create:
    target: Target


@dataclass(frozen=True)
class WriteBack:
    """Site columns the item lacks (the Outlook id, what features record there), written before anything else."""

    columns: dict


@dataclass(frozen=True)
class CancelInSite:
    """Outlook no longer has the event: the item is cancelled (or deleted, per site), the link forgotten."""

    why: str


@dataclass(frozen=True)
class FollowOccurrence:
    """The linked event became a series in Outlook: the link follows the item's own occurrence (sync/series.py)."""

    occurrence: dict


def _series_made(snap: Snapshot) -> list:
    if snap.occurrence is UNREAD:
        return [Read("occurrence")]
    if snap.occurrence is None:
        return [GiveUp(JobAbandoned(f"item {snap.link.item_id}: its event became a series", SERIES_ELSEWHERE))]
    return [FollowOccurrence(snap.occurrence)]


@dataclass(frozen=True)
class Echo:
    """Outlook's change touches no mapped field: only what features take from the event, and the change key."""

    why: str


@dataclass(frozen=True)
class Update:
    """Bring both sides to `plan.synced`: PATCH `to_outlook`, write what the site lacks, record the link."""

    plan: Plan
    outlook: Synced                # Outlook's content before our write
    site_now: Synced
    site_modified: str | None
    to_outlook: dict
    link_fields: dict = field(default_factory=dict)
    known: tuple[str, ...] = ()    # texts Outlook may give back in Exchange's words
    decision: str = "updated"


# -- site → Outlook --------------------------------------------------------------------------------------

def is_cancelled(site, item: dict) -> bool:
    return str(item.get(site.col("status")) or "").strip().lower() == site.cancelled_status.lower()


def plan_site(snap: Snapshot) -> list:
    """A site item (changed, or said to be) and its link: what Outlook must do."""
    site, link, item = snap.site, snap.link, snap.item
    if item is UNREAD:
        return [Read("item")]
    if item is None:  # a delete webhook is a signal too: only an item the site no longer has is deleted
        why = "deleted in the site" if snap.action == "delete" else "item no longer exists"
        if link:
            return [Remove(why, guarded=True)]
        if snap.action == "delete":
            return [Nothing(f"{why}; no Outlook event linked: nothing to do")]
        return [GiveUp(JobAbandoned(f"item {snap.item_id} does not exist in {site.key}", ITEM_GONE))]
    steps = [Note("delete requested but the site still has the item: applying its current state")] \
        if snap.action == "delete" else []
    if is_cancelled(site, item):
        return steps + ([Remove("cancelled in the site", guarded=True)] if link else [Nothing("cancelled and never synced: nothing to do")])
    if snap.target is UNREAD:
        return steps + [Read("target")]
    if isinstance(snap.target, JobAbandoned):
        return steps + [GiveUp(snap.target)]
    target: Target = snap.target
    if link and link.mailbox.lower() != target.mailbox.lower():
        steps.append(Remove(f"organiser changed to {target.mailbox}"))
        link = None
    if link and link.removing:  # a removal began, then the item came back: finish it, then start afresh
        steps.append(Remove("restored in the site while its event was being removed"))
        link = None
    if link is None or link.pending:
        return steps + [Create(target)]
    return steps + _plan_update(snap, target)


def item_columns(snap: Snapshot, link) -> dict:
    """What the item should hold from its link (the Outlook id, what features record there) and lacks."""
    site = snap.site
    columns = {site.col("sys_external_id"): link.event_id}
    for feature in snap.features:
        columns.update(feature.item_columns(site, link))
    return {k: v for k, v in columns.items() if snap.item.get(k) != v}


def _plan_update(snap: Snapshot, target: Target) -> list:
    site, link = snap.site, snap.link
    steps = []
    columns = item_columns(snap, link)
    if columns:
        steps.append(WriteBack(columns))
    if differs(snap.site, target, link, snap.features) is None:
        return steps + [Nothing("no mapped change: Outlook untouched")]
    if snap.event is UNREAD:
        return steps + [Read("event")]
    if snap.event is None:
        return steps + [CancelInSite("Outlook event is gone")]
    if snap.event.get("type") == "seriesMaster":
        return steps + _series_made(snap)
    fields, link_fields = {}, {"people": target.people}
    for feature in snap.features:
        more, recorded = feature.patch_fields(site, target, link)
        fields.update(more)
        link_fields.update(recorded)
    return steps + [merge(site, link, target.synced, snap.item.get("modified"), snap.event, fields, link_fields)]


def differs(site, target: Target, link, features) -> str | None:
    """Why Outlook must change for this item, or None when it holds what the item asks for."""
    if target.synced != link.synced:
        return "content differs from Outlook's"
    for feature in features:
        why = feature.differs(site, target, link)
        if why:
            return why
    return None


def needs_sync(site, row: dict, link, target, features) -> str | None:
    """The catch-up's question for one list row (no reads): why a sync must run, None when none need.
    `target` is the row's Target, or the JobAbandoned that says why it cannot be read."""
    if link is None:
        return None if is_cancelled(site, row) else "never synced"
    if is_cancelled(site, row) or link.removing:
        return "cancelled in the site"
    if link.meeting_id and lookup_id(row, site.col("meeting")) != link.meeting_id:
        return "moved to another meeting"
    if isinstance(target, JobAbandoned):
        return "unreadable content"  # the worker says why, in the item's status
    return differs(site, target, link, features)


# -- both ways: one content from two sides ---------------------------------------------------------------

def merge(site, link, site_now: Synced, site_modified: str | None, event: dict, fields: dict | None = None,
          link_fields: dict | None = None, decision: str = "updated") -> Update:
    """The site (`site_now`) and Outlook (`event`, as read) to one content, from the content last synced:
    what changed on one side only goes to the other, a conflict to the later modification. `fields` are
    the features' own additions to the PATCH."""
    base = link.synced
    known = (*base.texts(), *site_now.texts())
    outlook = synced_from_outlook(event, site.zone, base.attendees, known)
    plan = reconcile(base, site_now, site_modified, outlook, event.get("lastModifiedDateTime"), site.zone, site.col)
    return Update(plan=plan, outlook=outlook, site_now=site_now, site_modified=site_modified,
                  to_outlook={**plan.to_outlook, **(fields or {})}, link_fields=dict(link_fields or {}),
                  known=known, decision=decision)


def settle(site, update: Update, answer: dict) -> Synced:
    """The content after our PATCH: its answer is the whole event after our write (event-update.md), so an
    Outlook edit that landed between our read and our PATCH shows there and is merged, not overwritten
    or taken for our echo."""
    merged = update.plan.synced
    after = synced_from_outlook(answer, site.zone, merged.attendees, (*merged.texts(), *update.known))
    if after == merged:
        return merged
    return reconcile(update.outlook, merged, update.site_modified, after, answer.get("lastModifiedDateTime"),
                     site.zone, site.col).synced


# -- Outlook → site --------------------------------------------------------------------------------------

def plan_outlook(snap: Snapshot) -> list:
    """An Outlook change to an event: what the site must do. Only linked events are ever written to a site."""
    link, event = snap.link, snap.event
    if link is None or link.mailbox.lower() != snap.mailbox.lower():
        return [Nothing("not created by this app from this site: ignored", "ignored")]
    if link.removing:
        return [Nothing("Outlook change ignored: we are removing this event ourselves", "ignored")]
    if not snap.meeting_active:
        return [Nothing("Outlook change ignored: syncing back is off for this meeting", "ignored")]
    if event is UNREAD:
        return [Read("event")]
    gone = "deleted in Outlook" if snap.change == "deleted" else "gone from Outlook"
    if event is None:
        return [CancelInSite(gone)]
    if event.get("isCancelled"):
        return [CancelInSite("cancelled in Outlook")]
    if event.get("type") == "seriesMaster":  # made a series in Outlook: the item follows its own occurrence
        return _series_made(snap)
    if snap.change == "deleted":  # believed only once Graph confirms it: a replayed notification deletes nothing
        return [Nothing("a 'deleted' notification for an event Outlook still has: ignored", "ignored")]
    if event.get("changeKey") and event.get("changeKey") == link.change_key:
        return [Nothing("Outlook change already in sync (our echo or a duplicate)", "echo")]
    outlook = synced_from_outlook(event, snap.site.zone, link.synced.attendees, link.synced.texts())
    if not link.synced.changed_fields(outlook):
        return [Echo("Outlook change touches no mapped field: site untouched")]
    if snap.item is UNREAD:
        return [Read("item")]
    if snap.item is None:
        return [Nothing("Outlook change for an item the site no longer has: ignored", "ignored")]
    return [merge(snap.site, link, site_content(snap), snap.item.get("modified"), event, decision="applied")]


def site_content(snap: Snapshot) -> Synced:
    """The item's content for an Outlook change: its columns, with the attendees and what the features
    keep without reading (sections other items make) as last synced; an unreadable copy is repaired by
    Outlook's change."""
    link = snap.link
    try:
        return row_target(snap.site, snap.item, link, link.synced.attendees, snap.features).synced
    except JobAbandoned:
        return link.synced
