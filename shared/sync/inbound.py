"""Outlook → site: a change to an Outlook event this app created flows back to its site item.

Only linked events are ever written to a site (SPEC §4 rule 1). A notification is a signal: the event
is read, and a change key equal to the one we last wrote or read is our own echo (or a duplicate).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from dataclasses import replace

from ..features.answers import show_answers
from ..model.errors import RemoteNotFound
from ..model.mapping import synced_from_outlook, synced_from_site
from ..storage.store import Subscription
from ..services import Services
from .engine import _say, converge, outlook_event_removed
from ..features.teams import join_url_columns, join_url_of

log = logging.getLogger("rapid_meetings")
_EXCHANGE_KEY_HEADER = b"\x09\x00\x00\x00\x16\x00\x00\x00"  # type 9, 22 bytes follow


def change_key_of(etag: str | None) -> str:
    match = re.fullmatch(r'(?:W/)?"(.*)"', (etag or "").strip())
    return match.group(1) if match else (etag or "")


def change_key_in_etag(etag: str | None) -> str | None:
    """UNPUBLISHED SHORTCUT, an optimisation only. A notification's etag is Exchange's change key
    (W/"CQAAABYAAAD…": an 8-byte header, then 22 bytes) while an event's changeKey is those 22 bytes in
    base64 (FACTS, "Notification etags are not changeKeys"). Microsoft documents neither form, so the
    decoded key may only ever save the read of an event whose changeKey we already hold; None (read the
    event: the fallback) whenever the etag is not of that form."""
    try:
        raw = base64.b64decode(change_key_of(etag), validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != len(_EXCHANGE_KEY_HEADER) + 22 or not raw.startswith(_EXCHANGE_KEY_HEADER):
        return None
    return base64.b64encode(raw[len(_EXCHANGE_KEY_HEADER):]).decode()


def apply_outlook_change(svc: Services, sub: Subscription, change: str, event_id: str, etag: str | None = None,
                         event: dict | None = None, job: str = "") -> str:
    """Apply one Outlook change (from a notification, or an event read by a catch-up)."""
    site = svc.site(sub.site)
    link = svc.store.get_link_by_event(site.key, event_id)
    if link is None or link.mailbox.lower() != sub.mailbox.lower():
        log.info("site=%s sub=%s event=%s not created by this app from this site: ignored", site.key, sub.id, event_id)
        return "ignored"
    if link.removing:
        _say(site, link.item_id, "Outlook change ignored: we are removing this event ourselves", event=event_id)
        return "ignored"
    meeting = svc.store.get_meeting(site.key, link.meeting_id) if link.meeting_id else None
    if meeting is not None and not meeting.active:
        _say(site, link.item_id, "Outlook change ignored: syncing back is off for this meeting",
             meeting=link.meeting_id, event=event_id)
        return "ignored"
    if change == "deleted":
        # believed only once Graph confirms it: a captured notification replayed must not delete anything
        try:
            event = svc.graph(site).get_event(link.mailbox, event_id)
        except RemoteNotFound:
            return outlook_event_removed(svc, site, link, "deleted in Outlook")
        if event.get("isCancelled"):
            return outlook_event_removed(svc, site, link, "cancelled in Outlook")
        _say(site, link.item_id, "a 'deleted' notification for an event Outlook still has: ignored", event=event_id)
        return "ignored"
    claimed = change_key_of(etag) if event is None else ""
    if claimed and svc.settings.decode_etags and change_key_in_etag(etag) == link.change_key:
        _say(site, link.item_id, "Outlook change already in sync (our echo or a duplicate; etag decoded)", event=event_id)
        return "echo"
    if claimed and not svc.store.claim_change(site.key, event_id, claimed, job or "?"):
        _say(site, link.item_id, "duplicate notification: another delivery is applying it", event=event_id)
        return "duplicate"
    try:
        return _apply(svc, site, sub, link, event_id, event)
    finally:
        if claimed:
            svc.store.release_change(site.key, event_id, claimed)


def _apply(svc: Services, site, sub: Subscription, link, event_id: str, event: dict | None) -> str:
    if event is None:
        try:
            event = svc.graph(site).get_event(link.mailbox, event_id)
        except RemoteNotFound:
            return outlook_event_removed(svc, site, link, "gone from Outlook")
    if event.get("isCancelled"):
        return outlook_event_removed(svc, site, link, "cancelled in Outlook")
    if event.get("changeKey") and event.get("changeKey") == link.change_key:
        _say(site, link.item_id, "Outlook change already in sync (our echo or a duplicate)", event=event_id)
        return "echo"
    outlook = synced_from_outlook(event, site.zone, link.synced.attendees, link.synced.texts())
    if not link.synced.changed_fields(outlook):
        # an invitee's answer lands here: Outlook reports it, the site's plan (time, invitees) stays
        if show_answers(svc, site, link.item_id, event):
            _say(site, link.item_id, "invitees' answers written to the site", event=event_id)
        join = join_url_columns(site, link, event)  # Teams filled in the join information late
        if join:
            try:
                svc.rapid(site).update_item("events", link.item_id, join)
                _say(site, link.item_id, "Teams join URL written to the site", event=event_id)
            except RemoteNotFound:
                pass
        svc.store.save_link(replace(link, change_key=event.get("changeKey", ""),
                                    join_url=join_url_of(event) or link.join_url))
        _say(site, link.item_id, "Outlook change touches no mapped field: site untouched", event=event_id)
        return "echo"
    item = svc.rapid(site).get_item("events", link.item_id)
    if item is None:
        _say(site, link.item_id, "Outlook change for an item the site no longer has: ignored", event=event_id)
        return "ignored"
    try:
        # the agenda section is the site's agenda items (not re-read for an Outlook change): as last synced
        site_now = replace(synced_from_site(item, site.col, link.synced.attendees, site.zone),
                           agenda=link.synced.agenda)
    except ValueError:
        site_now = link.synced  # the site's copy is unreadable: Outlook's change repairs it
    plan = converge(svc, site, link, site_now, item.get("modified"), event)
    _say(site, link.item_id, f"Outlook change applied to the site ({', '.join(sorted(plan.to_site)) or 'nothing'})",
         event=event_id, content=plan.synced.digest())
    return "applied"
