"""Outlook → site: a change to an Outlook event this app created flows back to its site item.

Only linked events are ever written to a site (docs/product-rules.md, "Rule 1. Only what the site
registered is synced"). A notification is a signal: the event is read, and a change key equal to the one
we last wrote or read is our own echo (or a duplicate). The planner (sync/planner.py `plan_outlook`)
decides; this module reads what it asks for, and keeps two deliveries of one change from applying it
side by side.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from dataclasses import replace

from ..model.audit import about
from ..context import SiteContext
from ..features.registry import enabled_features
from ..model.errors import Throttled
from ..services import Services
from ..storage.store import Subscription
from . import perform, series
from .engine import read_part
from .perform import say
from .planner import (UNREAD, CancelInSite, Echo, FollowOccurrence, GiveUp, Nothing, Read, Snapshot, Update,
                      plan_outlook)

log = logging.getLogger("rapid_meetings")
_EXCHANGE_KEY_HEADER = b"\x09\x00\x00\x00\x16\x00\x00\x00"  # type 9, 22 bytes follow


def change_key_of(etag: str | None) -> str:
    match = re.fullmatch(r'(?:W/)?"(.*)"', (etag or "").strip())
    return match.group(1) if match else (etag or "")


def change_key_in_etag(etag: str | None) -> str | None:
    """UNPUBLISHED SHORTCUT, an optimisation only. A notification's etag is Exchange's change key
    (W/"CQAAABYAAAD…": an 8-byte header, then 22 bytes) while an event's changeKey is those 22 bytes in
    base64 (docs/platform-facts.md, "Notification etags are not changeKeys"). Microsoft documents neither
    form, so the decoded key may only ever save the read of an event whose changeKey we already hold; None
    (read the event: the fallback) whenever the etag is not of that form."""
    try:
        raw = base64.b64decode(change_key_of(etag), validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != len(_EXCHANGE_KEY_HEADER) + 22 or not raw.startswith(_EXCHANGE_KEY_HEADER):
        return None
    return base64.b64encode(raw[len(_EXCHANGE_KEY_HEADER):]).decode()


def _series_not_followed(svc: Services, site, event: dict | None):
    """The link of a delta page's occurrence whose master is linked and not yet followed: a series master is
    in no calendar view (user-list-calendarview.md), its occurrences are what a delta read shows of it."""
    master = (event or {}).get("seriesMasterId")
    link = svc.store.get_link_by_event(site.key, master) if master else None
    return link if link is not None and link.event_id == master else None


def _snapshot(svc: Services, site, sub: Subscription, change: str, event_id: str, event: dict | None) -> Snapshot:
    link = svc.store.get_link_by_event(site.key, event_id) or _series_not_followed(svc, site, event)
    about(link.item_id if link else "")  # the item this Outlook change's writes are about (the audit trail)
    active = True
    if link is not None and link.mailbox.lower() == sub.mailbox.lower() and not link.removing and link.meeting_id:
        meeting = svc.store.get_meeting(site.key, link.meeting_id)
        active = meeting is None or meeting.active
    return Snapshot(site, enabled_features(site), item_id=link.item_id if link else "", link=link, change=change,
                    event_id=event_id, mailbox=sub.mailbox, meeting_active=active,
                    event=UNREAD if event is None or change == "deleted" or _partial(event, link) else event)


def _partial(event: dict, link) -> bool:
    """A delta page's event that is not the whole linked event: an occurrence (calendarView/delta gives those
    without their data: devtools/sim/graph/series.py), or a master named for the occurrence a link follows."""
    return "subject" not in event or (link is not None and event.get("id") != link.event_id)


def apply_outlook_change(svc: Services, sub: Subscription, change: str, event_id: str, etag: str | None = None,
                         event: dict | None = None, job: str = "") -> str:
    """Apply one Outlook change (from a notification, or an event read by a catch-up)."""
    site = svc.site(sub.site)
    ctx, snap = SiteContext.of(svc, site), _snapshot(svc, site, sub, change, event_id, event)
    first = plan_outlook(snap)
    if first != [Read("event")] or change == "deleted":
        return _run(ctx, snap, first)
    link, claimed = snap.link, change_key_of(etag) if event is None else ""
    if claimed and svc.settings.decode_etags and change_key_in_etag(etag) == link.change_key:
        say(site, link.item_id, "Outlook change already in sync (our echo or a duplicate; etag decoded)", event=event_id)
        return "echo"
    if claimed and not svc.store.claim_change(site.key, event_id, claimed, job or "?"):
        if svc.store.claimed_change(site.key, event_id) not in (claimed, None):  # an earlier change is applying
            raise Throttled(1.0, "another job is applying an earlier Outlook change of this event")
        say(site, link.item_id, "duplicate notification: another delivery is applying it", event=event_id)
        return "duplicate"
    try:
        return _run(ctx, snap, first)
    finally:
        if claimed:
            svc.store.release_change(site.key, event_id, claimed)


def _run(ctx: SiteContext, snap: Snapshot, steps: list) -> str:
    while True:
        step = steps[0]
        if isinstance(step, Read):
            snap = read_part(ctx, snap, step.part)
            steps = plan_outlook(snap)
            continue
        if isinstance(step, FollowOccurrence):  # the event became a series: plan again with its occurrence
            snap = series.follow(ctx, snap, step.occurrence)
            steps = plan_outlook(snap)
            continue
        return _perform(ctx, snap, step)


def _note_where(ctx: SiteContext, snap: Snapshot, step) -> Snapshot:
    """Whether the subscription still sees the linked event. A 'deleted' notification for an event Outlook
    still has is what a move to a calendar the subscription does not cover looks like (where users/{id}/events
    covers the default calendar only: devtools/sim/graph/folders.py, `events_cover`): Outlook's edits then
    reach the site only by "sync now", and the item's status says so. Any other notification of it: seen again."""
    link = snap.link
    if link is None or link.mailbox.lower() != snap.mailbox.lower() or link.removing or snap.change == "sync":
        return snap
    elsewhere = snap.change == "deleted" and isinstance(step, Nothing) and isinstance(snap.event, dict)
    if elsewhere == link.elsewhere or (not elsewhere and snap.change == "deleted"):
        return snap
    if elsewhere:
        say(ctx.site, link.item_id, "moved in Outlook to a calendar the app does not watch", event=link.event_id)
    return replace(snap, link=ctx.store.save_link(replace(link, elsewhere=elsewhere)))


def _perform(ctx: SiteContext, snap: Snapshot, step) -> str:
    snap = _note_where(ctx, snap, step)
    site, link = ctx.site, snap.link
    if isinstance(step, Nothing):
        if link is None or link.mailbox.lower() != snap.mailbox.lower():
            log.info("site=%s event=%s %s", site.key, snap.event_id, step.why)
        else:
            say(site, link.item_id, step.why, event=snap.event_id)
        return step.outcome
    if isinstance(step, GiveUp):  # the event became a series with no occurrence at the item's time
        raise step.error
    if isinstance(step, CancelInSite):  # a series' link may be named by several notifications of one cancellation
        return (series.cancel_once if link.series_id else perform.cancel_in_site)(ctx, link, step.why)
    if isinstance(step, Echo):
        perform.echo(ctx, snap.features, link, snap.event)
        say(site, link.item_id, step.why, event=snap.event_id)
        return "echo"
    if isinstance(step, Update):
        to_site = perform.update(ctx, snap.features, link, step, snap.event)
        say(site, link.item_id, f"Outlook change applied to the site ({', '.join(sorted(to_site)) or 'nothing'})",
            event=snap.event_id, content=step.plan.synced.digest())
        return "applied"
    raise AssertionError(f"unexpected step {step!r}")

