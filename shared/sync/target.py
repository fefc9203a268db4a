"""What a site item asks of Outlook, read from the site: the organiser's mailbox (through the item's
meeting), the attendees (invitees, and guests where the site invites them), the mapped content, and what
each enabled feature adds (features/base.py `contribute`). The reads of one snapshot, done once per job."""

from __future__ import annotations

import logging
from dataclasses import replace

from ..context import SiteContext
from ..features.base import Target
from ..model import errors
from ..model.addresses import shown, usable_address
from ..model.errors import JobAbandoned
from ..model.mapping import synced_from_site
from ..model.rapid_items import lookup_id

log = logging.getLogger("rapid_meetings")


def organiser_id(site, meeting: dict, where: str) -> str:
    """The Principals id of a Meeting's organiser; JobAbandoned when the meeting has none."""
    organiser = lookup_id(meeting, site.col("organiser"))
    if not organiser:
        raise JobAbandoned(f"{where}: meeting {meeting.get('id')} has no organiser", errors.NO_ORGANISER,
                           str(meeting.get("id")))
    return organiser


def _emails(items: dict[str, dict], ids: list[str], column: str) -> list[str]:
    """The usable addresses of these people; one that is not a plain address is left out (and said, quoted:
    a value with a line feed never becomes a log line of its own, nor a Graph request)."""
    found = []
    for i in ids:
        value = items.get(i, {}).get(column)
        if value and (address := usable_address(value)) is None:
            log.warning("person %s: %s is not one e-mail address; left out", shown(i), shown(value))
        elif value:
            found.append(address)
    return found


def people_key(organiser: str, invitees: list[str], guests: list[str]) -> str:
    """Who an item's mailbox and attendees come from: the organiser's, the invitees' and the guests' ids."""
    return f"{organiser}|{','.join(sorted(invitees))}|{','.join(sorted(guests))}"


def _people(ctx: SiteContext, item: dict, meeting: dict, meeting_id: str, link, fresh: bool
            ) -> tuple[str, tuple[str, ...], str]:
    """(the organiser's mailbox, the attendees' addresses without the organiser, who they come from). The
    same people as the link was made from are taken from the link, unless the job must read afresh (the
    catch-up and sync now: what they compare is the people's addresses now)."""
    site, rapid, item_id, email = ctx.site, ctx.rapid, item.get("id"), ctx.site.col("email")
    organiser_ids = [organiser_id(site, meeting, f"item {item_id}")]
    invitee_ids = rapid.multi_lookup_ids("events", item, site.col("invitees"), "principals")
    guest_ids = (rapid.multi_lookup_ids("events", item, site.col("guests"), "contacts")
                 if site.guests_as_attendees else [])
    key = people_key(organiser_ids[0], invitee_ids, guest_ids)
    if not fresh and link is not None and not link.pending and link.people == key and link.meeting_id == meeting_id:
        return link.mailbox, link.synced.attendees, key
    principals = rapid.items_by_id("principals", organiser_ids + invitee_ids, (email,))  # one query for both
    organiser = _emails(principals, organiser_ids, email)
    if not organiser:
        raise JobAbandoned(f"item {item_id}: organiser {organiser_ids[0]} of meeting {meeting_id} has no email "
                           "(none, or not one plain address)",
                           errors.NO_EMAIL, organiser_ids[0])
    attendees = _emails(principals, invitee_ids, email)
    if guest_ids:
        attendees += _emails(rapid.items_by_id("contacts", guest_ids, (email,)), guest_ids, email)
    return organiser[0], tuple(a for a in attendees if a.lower() != organiser[0].lower()), key


def read_target(ctx: SiteContext, item: dict, link, features, fresh: bool = False) -> Target:
    """The organiser's mailbox and the mapped content; JobAbandoned (with its reason's code) when they
    cannot be known."""
    site, item_id = ctx.site, item.get("id")
    meeting_id = lookup_id(item, site.col("meeting"))
    if not meeting_id:
        raise JobAbandoned(f"item {item_id} has no meeting ({site.col('meeting')}_id is empty)", errors.NO_MEETING)
    meeting = ctx.rapid.get_item("meetings", meeting_id)
    if meeting is None:
        raise JobAbandoned(f"item {item_id}: meeting {meeting_id} does not exist", errors.MEETING_GONE, meeting_id)
    mailbox, attendees, people = _people(ctx, item, meeting, meeting_id, link, fresh)
    target = row_target(site, item, link, attendees, features, ctx, mailbox=mailbox, meeting_id=meeting_id)
    return replace(target, people=people)


def row_target(site, row: dict, link, attendees: tuple[str, ...], features, ctx: SiteContext | None = None,
               mailbox: str = "", meeting_id: str = "") -> Target:
    """The target of an item (or a list row) whose attendees are known; with `ctx` None the features read
    nothing (a bulk comparison). JobAbandoned when its content cannot be read."""
    try:
        synced = synced_from_site(row, site.col, attendees, site.zone)
    except ValueError as e:
        raise JobAbandoned(f"item {row.get('id')}: {e}", getattr(e, "code", ""), getattr(e, "about", None)) from None
    target = Target(mailbox=mailbox or (link.mailbox if link else ""), synced=synced,
                    meeting_id=meeting_id or (link.meeting_id if link else ""))
    for feature in features:
        target = feature.contribute(site, row, link, target, ctx)
    return target
