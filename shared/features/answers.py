"""Invitees' answers back to the site (issue 14, part 2): the responses Outlook tracks on the
organiser's event flow to an optional Meeting Events column (SITES `answers_column`, off when unset) as
a short summary: "Bob: accepted (2 Dec 14:05) · Carol: declined (2 Dec 15:10), proposes 3 Dec
10:00–11:00 · Gina (guest): no answer".

The site plans, Outlook reports: answers never change the event's time or its invitees and never cause
an Outlook write; they are read from an event the sync reads or writes anyway (no extra Graph request).
The column is written with webhooks=false and only when an answer changed: the answers last written
(a key of who answered what, when, proposing what) and the words are kept in the ops table, so a
repeated notification or a site edit writes nothing. Names come from the site (Principals and External
Contacts titles, read only when an answer changed); a guest is marked as one.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from ..model.addresses import usable_address
from ..model.mapping import format_utc, parse_utc, zone_named
from ..context import SiteContext
from .base import Feature, write_column

log = logging.getLogger("rapid_meetings")
MAX_TEXT = 2000
NO_TIME = "0001-01-01"  # responsestatus.md `time` of an attendee who never answered
# resources/responsestatus.md: none, organizer, tentativelyAccepted, accepted, declined, notResponded
WORDS = {"accepted": "accepted", "tentativelyaccepted": "tentative", "declined": "declined",
         "none": "no answer", "notresponded": "no answer"}


@dataclass(frozen=True)
class Answer:
    email: str
    name: str            # what Outlook calls them (used when the site does not know them)
    response: str        # one of WORDS' keys
    time: str            # UTC ISO instant, "" when they never answered
    proposed: tuple[str, str] | None = None  # a new (start, end) they proposed, UTC ISO instants


def _instant(value: dict) -> str:
    moment = parse_utc(value["dateTime"]).replace(tzinfo=None)
    return format_utc(moment.replace(tzinfo=zone_named(value.get("timeZone") or "UTC")))


def answers_of(event: dict) -> tuple[Answer, ...] | None:
    """The answers an Outlook event tracks (attendee.md, responsestatus.md); None when the event was
    read without its attendees (nothing can be said)."""
    if not isinstance(event.get("attendees"), list):
        return None
    out = []
    for attendee in event["attendees"]:
        email = ((attendee.get("emailAddress") or {}).get("address") or "").strip().lower()
        status = attendee.get("status") or {}
        response = str(status.get("response") or "none").lower()
        if not email or response == "organizer" or attendee.get("type") == "resource":
            continue
        when = str(status.get("time") or "")
        proposed = None
        slot = attendee.get("proposedNewTime")
        try:
            when = "" if not when or when.startswith(NO_TIME) else format_utc(parse_utc(when))
            if slot and slot.get("start") and slot.get("end"):
                proposed = (_instant(slot["start"]), _instant(slot["end"]))
        except (ValueError, KeyError, TypeError):
            pass  # a form we cannot read says nothing more than the answer itself
        out.append(Answer(email, (attendee.get("emailAddress") or {}).get("name") or email,
                          response if response in WORDS else "none", when, proposed))
    return tuple(out)


def answers_key(answers: tuple[Answer, ...]) -> str:
    """What the answers are, without names: equal keys, nothing to write."""
    text = "|".join(f"{a.email}:{a.response}:{a.time}:{a.proposed or ''}" for a in answers)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _local(instant: str, zone) -> datetime:
    return parse_utc(instant).astimezone(zone)


def short_names(whole: dict[str, str]) -> dict[str, str]:
    """email → the given name of each whole name, or the whole name where two people share a given name."""
    firsts = Counter(name.split(" ")[0] for name in whole.values())
    return {email: name.split(" ")[0] if firsts[name.split(" ")[0]] == 1 else name for email, name in whole.items()}


def summary(answers: tuple[Answer, ...], people: dict[str, tuple[str, bool]], zone) -> str:
    """The words shown. `people`: email → (the site's title, is a guest). Given names are used, or the
    whole title where two attendees share one."""
    short = short_names({a.email: (people.get(a.email, (a.name, False))[0] or a.email).strip() for a in answers})
    parts = []
    for a in answers:
        name = short[a.email] + (" (guest)" if people.get(a.email, ("", False))[1] else "")
        text = f"{name}: {WORDS[a.response]}"
        if a.time and a.response not in ("none", "notresponded"):
            at = _local(a.time, zone)
            text += f" ({at.day} {at:%b %H:%M})"
        if a.proposed:
            start, end = (_local(t, zone) for t in a.proposed)
            until = f"{end:%H:%M}" if end.date() == start.date() else f"{end.day} {end:%b %H:%M}"
            text += f", proposes {start.day} {start:%b %H:%M}–{until}"
        parts.append(text)
    words = " · ".join(parts)
    return words if len(words) <= MAX_TEXT else words[:MAX_TEXT - 1] + "…"


def site_people(ctx: SiteContext, item: dict, principals: tuple[str, ...] = ()) -> dict[str, tuple[str, bool]]:
    """email → (title, is a guest) of the item's invitees and guests, and of more `principals` (ids, e.g.
    the organiser's) read in the same query, as the site names them."""
    site, rapid = ctx.site, ctx.rapid
    email = site.col("email")
    people = {}
    lists = (("invitees", "principals", False),) + ((("guests", "contacts", True),) if site.guests_as_attendees else ())
    for column, list_name, guest in lists:
        ids = rapid.multi_lookup_ids("events", item, site.col(column), list_name)
        ids = ids + [i for i in principals if list_name == "principals" and i not in ids]
        if ids:
            for row in rapid.items_by_id(list_name, ids, (email, "title")).values():
                if address := usable_address(row.get(email)):
                    people.setdefault(address.lower(), (row.get("title") or "", guest))
    return people


def show_answers(ctx: SiteContext, item_id: str, event: dict, rooms: tuple[str, ...] = ()) -> bool:
    """Write the event's answers to the item's answers column if they changed; True when written. A room
    (`rooms`, the `resource` attendees) is never among them. Never writes to Outlook."""
    site = ctx.site
    answers = answers_of(event)
    if not site.answers_column or answers is None:
        return False
    answers = tuple(a for a in answers if a.email not in rooms)
    key = answers_key(answers)
    quiet = all(a.response in ("none", "notresponded") for a in answers)  # nobody has answered yet: nothing to say

    def words() -> str | None:
        item = ctx.rapid.get_item("events", item_id)
        return None if item is None else summary(answers, site_people(ctx, item), site.zone)

    written = write_column(ctx, "answers", item_id, site.answers_column, key, words, unwritten_key=key if quiet else None)
    if written:
        log.info("site=%s item=%s invitees' answers written (event=%s)", site.key, item_id, event.get("id"))
    return written


class Answers(Feature):
    """The invitees' answers Outlook tracks, in a column of the item (SITES `answers_column`)."""

    name = "answers"
    skipped = "not written"

    def enabled(self, site):
        return bool(site.answers_column)

    def after_sync(self, ctx, outcome):
        if outcome.kind in ("updated", "echo"):  # read from the event the sync read or wrote anyway
            show_answers(ctx, outcome.link.item_id, outcome.event, (outcome.link.room_address,))
