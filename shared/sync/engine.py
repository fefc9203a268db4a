"""The sync engine: what happens when a site item or an Outlook event changed.

Webhooks and notifications are signals; the engine reads the current state of both sides when it
runs, so duplicated, late or reordered deliveries cannot roll anything back.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, replace

from ..features.agenda import agenda_html, agenda_of
from ..config import SiteConfig
from ..features.conflicts import note_conflicts
from ..model.errors import JobAbandoned, RemoteError, RemoteNotFound, Throttled, TransientError
from ..model.mapping import Synced, item_sensitivity, keep_outlook_parts, look_on_create, outlook_patch, outlook_payload, site_fields, synced_from_outlook, synced_from_site
from ..model.rapid_items import lookup_id
from .reconcile import Plan, reconcile
from ..services import Services
from ..storage.store import Conflict, EventLink
from ..features.teams import PROVIDER, UNAVAILABLE, await_join_url, join_url_columns, join_url_of, online_request, wants_teams

log = logging.getLogger("rapid_meetings")
TRANSACTION_NS = uuid.UUID("5f2b0c8e-7d8a-4f6e-9a51-2c1f3e4d5a6b")


@dataclass(frozen=True)
class Target:
    """Where and what a site item should be in Outlook."""

    mailbox: str
    synced: Synced
    meeting_id: str
    sensitivity: str = ""  # what the item asks for ("" = nothing asked: Outlook's own)
    online: bool = False   # the item asks for a Teams meeting


def _say(site: SiteConfig, item_id, decision: str, **ids):
    extra = " ".join(f"{k}={v}" for k, v in ids.items() if v)
    log.info("site=%s item=%s %s%s", site.key, item_id, decision, f" ({extra})" if extra else "")


def _emails(items: dict[str, dict], ids: list[str], column: str) -> list[str]:
    return [items[i][column] for i in ids if i in items and items[i].get(column)]


def organiser_id(site: SiteConfig, meeting: dict, where: str) -> str:
    """The Principals id of a Meeting's organiser; JobAbandoned when the meeting has none."""
    organiser = lookup_id(meeting, site.col("organiser"))
    if not organiser:
        raise JobAbandoned(f"{where}: meeting {meeting.get('id')} has no organiser")
    return organiser


def resolve_target(svc: Services, site: SiteConfig, item: dict) -> Target:
    """The organiser's mailbox and the mapped content; JobAbandoned when it cannot be known."""
    rapid, item_id, email = svc.rapid(site), item.get("id"), site.col("email")
    meeting_id = lookup_id(item, site.col("meeting"))
    if not meeting_id:
        raise JobAbandoned(f"item {item_id} has no meeting ({site.col('meeting')}_id is empty)")
    meeting = rapid.get_item("meetings", meeting_id)
    if meeting is None:
        raise JobAbandoned(f"item {item_id}: meeting {meeting_id} does not exist")
    organiser_ids = [organiser_id(site, meeting, f"item {item_id}")]
    invitee_ids = rapid.multi_lookup_ids("events", item, site.col("invitees"), "principals")
    principals = rapid.items_by_id("principals", organiser_ids + invitee_ids, (email,))  # one query for both
    organiser = _emails(principals, organiser_ids, email)
    if not organiser:
        raise JobAbandoned(f"item {item_id}: organiser {organiser_ids[0]} of meeting {meeting_id} has no email")
    attendees = _emails(principals, invitee_ids, email)
    guest_ids = (rapid.multi_lookup_ids("events", item, site.col("guests"), "contacts")
                 if site.guests_as_attendees else [])
    if guest_ids:
        attendees += _emails(rapid.items_by_id("contacts", guest_ids, (email,)), guest_ids, email)
    attendees = [a for a in attendees if a.lower() != organiser[0].lower()]
    try:
        synced = synced_from_site(item, site.col, tuple(attendees), site.zone)
    except ValueError as e:
        raise JobAbandoned(f"item {item_id}: {e}") from None
    if site.agenda:  # the event's agenda items, as the section at the end of its body (shared/features/agenda.py)
        synced = replace(synced, agenda=agenda_html(agenda_of(svc, site, item)))
    return Target(mailbox=organiser[0], synced=synced, meeting_id=meeting_id,
                  sensitivity=item_sensitivity(item, site.private_column, site.sensitivity),
                  online=wants_teams(site, item))


def _is_cancelled(site: SiteConfig, item: dict) -> bool:
    return str(item.get(site.col("status")) or "").strip().lower() == site.cancelled_status.lower()


def apply_site_event(svc: Services, site: SiteConfig, item_id: str, action: str) -> str:
    """Make Outlook follow a Meeting Event item. Returns the decision, for logs and tests.

    Every step leaves a durable trace in the link before Outlook is touched (a pending link before a
    create, a `removing` mark before a removal), so a failure or a crash at any point is finished by
    the retry, and no Outlook event outlives its item."""
    store, rapid = svc.store, svc.rapid(site)
    link = store.get_link(site.key, item_id)
    item = rapid.get_item("events", item_id)
    if item is None:  # a delete webhook is a signal too: only an item the site no longer has is deleted
        why = "deleted in the site" if action == "delete" else "item no longer exists"
        if link:
            return remove_outlook_event(svc, site, link, item_id, why)
        if action == "delete":
            _say(site, item_id, f"{why}; no Outlook event linked: nothing to do")
            return "noop"
        raise JobAbandoned(f"item {item_id} does not exist in {site.key}")
    if action == "delete":
        _say(site, item_id, "delete requested but the site still has the item: applying its current state")
    if _is_cancelled(site, item):
        if link:
            return remove_outlook_event(svc, site, link, item_id, "cancelled in the site")
        _say(site, item_id, "cancelled and never synced: nothing to do")
        return "noop"
    target = resolve_target(svc, site, item)
    if link and link.mailbox.lower() != target.mailbox.lower():
        remove_outlook_event(svc, site, link, item_id, f"organiser changed to {target.mailbox}")
        link = None
    if link and link.removing:  # a removal began, then the item came back: finish it, then start afresh
        remove_outlook_event(svc, site, link, item_id, "restored in the site while its event was being removed")
        link = None
    if link is None or link.pending:
        return _create(svc, site, item, target, link)
    return _update(svc, site, item, target, link)


def _tag(site: SiteConfig, item_id) -> str:
    return f"{site.key}|{item_id}"


def _create(svc: Services, site: SiteConfig, item: dict, target: Target, pending: EventLink | None) -> str:
    """Create the item's Outlook event. A pending link is written first (or found, from an attempt that
    failed after it): it names the mailbox, so whatever happens next, a retry knows where to look."""
    item_id = str(item["id"])
    tag = _tag(site, item_id)
    if pending is None:
        pending = svc.store.create_link(EventLink(site=site.key, item_id=item_id, event_id="", mailbox=target.mailbox,
                                                  synced=target.synced, meeting_id=target.meeting_id,
                                                  sensitivity=target.sensitivity))
    transaction = str(uuid.uuid5(TRANSACTION_NS, f"{tag}|{item.get('created', '')}"))
    graph = svc.graph(site)
    online_fields, online = online_request(svc, site, target.mailbox) if target.online else ({}, "")
    try:
        look = look_on_create(site.category, site.show_as, site.reminder_minutes, target.sensitivity)
        event = graph.create_event(target.mailbox, {**outlook_payload(target.synced, site.zone), **look,
                                                    **online_fields}, transaction, tag)
    except RemoteError as e:
        if e.status != 409:
            raise
        event = {"answer": str(e)}
    if not event.get("id"):
        # Graph knew the transactionId and did not answer with the event (what it answers is not documented,
        # FACTS "Corrections"): the event is the one carrying our tag
        event = _tagged_event(svc, site, target.mailbox, item_id, event.get("answer") or "no event")
    outlook = synced_from_outlook(event, site.zone, target.synced.attendees, target.synced.texts())
    if outlook != target.synced:  # a repeated transactionId gave back the first attempt's event, as it was then
        event = graph.update_event(target.mailbox, event["id"],
                                   keep_outlook_parts(outlook_patch(outlook, target.synced, site.zone), event))
    try:
        link = svc.store.complete_link(pending, event["id"], synced=target.synced, meeting_id=target.meeting_id,
                                       change_key=event.get("changeKey", ""), sensitivity=target.sensitivity,
                                       online=online, join_url=join_url_of(event))
    except Conflict:
        existing = svc.store.get_link(site.key, item_id)
        if existing is None:
            # a concurrent delete forgot the pending link while Outlook made the event: link it again (the
            # trace is back), and the item's state read below decides whether it stays
            link = svc.store.create_link(replace(pending, event_id=event["id"], change_key=event.get("changeKey", ""),
                                                 etag=None))
        elif existing.event_id != event["id"]:
            raise  # decide again from scratch; transactionId gives back this event if it is still wanted
        else:
            # another delivery of this create linked it first (Graph's transactionId made it the same event)
            _say(site, item_id, "already linked by a concurrent delivery: applying as update", event=event["id"])
            return _update(svc, site, item, target, existing)
    # The item may have been deleted or cancelled while we created its event: such a delete may have
    # found only the pending link, so the answer to this write (made after linking) decides.
    now = _write_external_id(svc, site, item, link, read_back=True)
    if now is None or now.get("deleted") or _is_cancelled(site, now):
        return remove_outlook_event(svc, site, link, item_id, "deleted or cancelled while its event was being created")
    if online == PROVIDER and not link.join_url and site.join_url_column:
        await_join_url(svc, site, item_id)  # Graph answered before Teams had the meeting: read it again later
    note_conflicts(svc, site, item_id, target.mailbox, target.synced, event)  # who is busy then (if the site asks)
    _say(site, item_id, "created Outlook event", event=event["id"], mailbox=target.mailbox,
         content=target.synced.digest())
    return "created"


def _write_external_id(svc: Services, site: SiteConfig, item: dict, link: EventLink,
                       read_back: bool = False) -> dict | None:
    """Record the Outlook id (and the Teams join URL, where the site has a column for it) in the item, in
    one write; the item as the site now has it (None when it is gone)."""
    columns = {site.col("sys_external_id"): link.event_id}
    if site.join_url_column and link.join_url:
        columns[site.join_url_column] = link.join_url
    columns = {k: v for k, v in columns.items() if item.get(k) != v}
    if not columns:
        return item
    try:
        return svc.rapid(site).update_item("events", str(item["id"]), columns, read_back=read_back)
    except RemoteNotFound:
        return None


def _tagged_event(svc: Services, site: SiteConfig, mailbox: str, item_id: str, answer: str) -> dict:
    found = svc.graph(site).find_tagged(mailbox, _tag(site, item_id))
    if not found:
        raise TransientError(f"item {item_id}: create answered {answer!r} and no tagged event exists (yet)")
    _say(site, item_id, f"create answered {answer!r}: taking the tagged event", event=found[0]["id"],
         others=len(found) - 1)
    return found[0]


def _update(svc: Services, site: SiteConfig, item: dict, target: Target, link: EventLink) -> str:
    item_id = link.item_id
    _write_external_id(svc, site, item, link)
    # asked for Teams after the event was made, or made without because the organiser had no Teams then and
    # now has (their calendar's providers are read at most hourly); once online it stays online
    go_online = target.online and (not link.online or (
        link.online == UNAVAILABLE and PROVIDER in svc.graph(site).online_providers(link.mailbox)))
    if target.synced == link.synced and target.sensitivity == link.sensitivity and not go_online:
        _say(site, item_id, "no mapped change: Outlook untouched", event=link.event_id)
        return "noop"
    try:
        event = svc.graph(site).get_event(link.mailbox, link.event_id)
    except RemoteNotFound:
        current = svc.store.get_link(site.key, item_id)
        if current is None or current.event_id != link.event_id:
            _say(site, item_id, "Outlook event already removed by another job", event=link.event_id)
            return "noop"
        return outlook_event_removed(svc, site, current, "Outlook event is gone")
    online = online_request(svc, site, link.mailbox) if go_online else None
    plan = converge(svc, site, link, target.synced, item.get("modified"), event, sensitivity=target.sensitivity,
                    online=online)
    decision = "updated Outlook event" + (", merged an Outlook change" if plan.to_site else "")
    _say(site, item_id, decision, event=link.event_id, content=plan.synced.digest())
    return "updated"


def _log_conflicts(site: SiteConfig, link: EventLink, plan: Plan) -> None:
    if plan.conflicts:
        log.warning("site=%s item=%s conflict on %s: %s wins (event=%s)", site.key, link.item_id,
                    ",".join(plan.conflicts), plan.winner, link.event_id)


def converge(svc: Services, site: SiteConfig, link: EventLink, site_now: Synced, site_modified: str | None,
             event: dict, sensitivity: str | None = None, online: tuple[dict, str] | None = None) -> Plan:
    """Bring the site (`site_now`) and Outlook (`event`, as just read) to one content, from the content
    last synced; what changed on one side only goes to the other, a conflict to the later modification.

    The PATCH answer is the whole event after our write (event-update.md): an Outlook edit that landed
    between our read and our PATCH shows there, and is merged rather than overwritten or taken for our
    echo. Correctness never rests on If-Match, which Graph does not document for events.

    `sensitivity` is what the item now asks for (None: not known, leave it): sent only when it differs
    from what we last set, so an Outlook user's own category or sensitivity is never overwritten by an
    edit of other fields."""
    base = link.synced
    known = (*base.texts(), *site_now.texts())
    outlook = synced_from_outlook(event, site.zone, base.attendees, known)
    plan = reconcile(base, site_now, site_modified, outlook, event.get("lastModifiedDateTime"), site.zone, site.col)
    _log_conflicts(site, link, plan)
    merged = plan.synced
    to_outlook = dict(plan.to_outlook)
    if sensitivity is not None and sensitivity != link.sensitivity and sensitivity:
        to_outlook["sensitivity"] = sensitivity
    if online:
        to_outlook.update(online[0])
    if to_outlook:
        event = svc.graph(site).update_event(link.mailbox, link.event_id, keep_outlook_parts(to_outlook, event))
        after = synced_from_outlook(event, site.zone, merged.attendees, (*merged.texts(), *known))
        if after != merged:
            late = reconcile(outlook, merged, site_modified, after, event.get("lastModifiedDateTime"), site.zone,
                             site.col)
            _say(site, link.item_id, f"an Outlook edit landed just before our write: merged "
                 f"({', '.join(sorted(merged.changed_fields(late.synced))) or 'nothing'})", event=link.event_id)
            merged = late.synced
    to_site = site_fields(merged, merged.changed_fields(site_now), site.col)
    join = join_url_columns(site, link, event)
    if to_site or join:
        svc.rapid(site).update_item("events", link.item_id, {**to_site, **join})
    svc.store.save_link(replace(link, synced=merged, change_key=event.get("changeKey", ""),
                                sensitivity=link.sensitivity if sensitivity is None else sensitivity,
                                online=online[1] if online else link.online,
                                join_url=join_url_of(event) or link.join_url))
    _note_answers(svc, site, link.item_id, event)
    if (merged.start, merged.end, merged.all_day) != (base.start, base.end, base.all_day):  # moved, either side
        note_conflicts(svc, site, link.item_id, link.mailbox, merged, event, before=base)
    return replace(plan, to_site=to_site, synced=merged)


def _note_answers(svc: Services, site: SiteConfig, item_id: str, event: dict) -> None:
    """The invitees' answers in the event just read or written, to the site's answers column (if set).
    The sync's work is done and recorded: a failure here is logged, and the next change tells again."""
    from ..features.answers import show_answers

    try:
        show_answers(svc, site, item_id, event)
    except (Throttled, TransientError) as e:
        log.warning("site=%s item=%s answers not written (%s): the next change of the event tells again",
                    site.key, item_id, e)


def remove_outlook_event(svc: Services, site: SiteConfig, link: EventLink, item_id, why: str) -> str:
    """Cancel (or delete) the item's Outlook event; the link is forgotten only once Outlook no longer has
    the event. Until then it is marked `removing`: a failed removal is retried from it, and the
    "deleted" notification of our own removal meets the mark and is ignored. A pending link (a create
    whose answer never came) names the mailbox: the event, if any, carries our tag there."""
    graph, comment = svc.graph(site), f"This meeting was {why.split(' ')[0]}."
    if link.pending:
        found = graph.find_tagged(link.mailbox, _tag(site, item_id))
        for event in found:
            graph.remove_event(link.mailbox, event["id"], comment)
        svc.store.delete_link(link)
        _say(site, item_id, f"{why}: {len(found)} Outlook event(s) of an unanswered create removed", mailbox=link.mailbox)
        return "deleted" if found else "noop"
    if not link.removing:
        link = svc.store.save_link(replace(link, removing=True))
    found = graph.remove_event(link.mailbox, link.event_id, comment)
    svc.store.delete_link(link)
    _say(site, item_id, f"{why}: Outlook event removed" if found else f"{why}: Outlook event already gone",
         event=link.event_id)
    return "deleted"


def outlook_event_removed(svc: Services, site: SiteConfig, link: EventLink, why: str) -> str:
    """An Outlook cancellation or deletion: mark the item cancelled (or delete it, per site)."""
    rapid = svc.rapid(site)
    if site.on_outlook_delete == "delete":
        rapid.delete_item("events", link.item_id)
    else:
        try:
            rapid.update_item("events", link.item_id, {site.col("status"): site.cancelled_status})
        except RemoteNotFound:
            pass  # the site deleted it meanwhile: nothing left to cancel
    svc.store.delete_link(link)
    _say(site, link.item_id, f"{why}: site item {'deleted' if site.on_outlook_delete == 'delete' else 'cancelled'}",
         event=link.event_id)
    return "removed"
