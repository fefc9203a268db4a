"""A meeting's side of its subscription: registering a meeting (its organiser's Graph subscription, its
Meeting Subscriptions item in the site), and the site switching it off, on again, or deleting the item.

A meeting the site switched off stays off: only a change of its Meeting Subscriptions item turns it on.
A subscription no active meeting uses any more is deleted from Graph.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from ..config import SiteConfig
from ..model.addresses import usable_address
from ..model.errors import JobAbandoned
from ..model.rapid_items import filter_value, lookup_id, lookup_write
from ..services import Services
from ..storage.store import Meeting, Subscription
from ..sync.target import organiser_id
from .graph_subscriptions import ensure_subscription, update_meeting_items
from .lease import mailbox_lease

log = logging.getLogger("rapid_meetings")
INACTIVE = {"inactive", "disabled", "off", "paused", "stopped", "cancelled", "false", "0"}


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
    flt = f"{site.col('sys_external_id')} eq {filter_value(_external_id(meeting_id))}"
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
    mailbox = usable_address((rapid.items_by_id("principals", [organiser], (site.col("email"),)).get(organiser)
                              or {}).get(site.col("email")))
    if not mailbox:
        raise JobAbandoned(f"meeting {meeting_id}: organiser {organiser} has no email (none, or not one plain address)")
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
                update_meeting_items(svc, sub)
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
    """Under the mailbox's lease: a subscription no active meeting uses is deleted, from Graph and here."""
    if not sub_id or any(m.active for m in svc.store.meetings(site.key, sub_id)):
        return
    sub = svc.store.get_subscription(sub_id)
    svc.graph(site).delete_subscription(sub_id)
    if sub is not None:
        svc.store.delete_subscription(sub)
    log.info("site=%s sub=%s no meeting uses it any more: deleted", site.key, sub_id)
