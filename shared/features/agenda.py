"""The agenda in the invitation (issue 15, part 1): an event's Meeting Agendas items, in their rank order,
as a clearly marked section at the end of its Outlook body (SITES `agenda: true`; off by default, and then
nothing here is read). The section is written from the site's agenda and never read back into the site.

Reading (`agenda_of`): one list read per event sync, `All$?linkedTo=Meeting Events/<id>`, paged like every
list read. How the bundle ties an agenda item to its event is not published (docs/rapid-api.md, "The Meetings bundle":
"a link to the event"): a single lookup (`meeting_event_id`, named after its table like Meeting Events' `meeting`) or a
universal link (what RAPID makes when an item is created in another's context without a lookup,
Rapid-Docs "creating-items-within-items.md"). `linkedTo` finds both ("any items that are universally
linked, target and origin of a multi lookup or have single lookups pointing at the item", API Concepts,
"How to get a bunch of linked items"), so a site needs no setting for it; `events_of` reads either from a
webhook's profile. Owners are a single lookup to Principals: its display text (`owner`: docs/rapid-api.md, "Single lookups are three keys") is the
name; only owners shown without one are read from Principals (one more read, `items_by_id`).

Order: `rank` is a String system field (API Concepts, "How to get a tables schema"), so ranks that are
numbers sort as numbers ("9" before "10"), then other text, then items without a rank; ties by id.

Rendering (`agenda_html`): `<hr><p><b>Agenda (from RAPID)</b></p><ol><li>Title — Owner, 15 min</li>…</ol>`,
every site value escaped (markupsafe); no items, no section.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import SiteConfig
from ..model.html_body import AGENDA_HEADING  # how the body's splitter finds the section
from ..model.rapid_items import lookup_id, universal_link_ids

if TYPE_CHECKING:
    from ..context import SiteContext

log = logging.getLogger("rapid_meetings")
UNTITLED = "(untitled)"


@dataclass(frozen=True)
class AgendaEntry:
    id: str
    title: str
    owner: str = ""            # the owner's name, "" when none
    minutes: int | None = None  # the duration, None when not given


def events_of(item: dict, site: SiteConfig) -> list[str] | None:
    """The events an agenda item's profile names: its single lookup (`<agenda_event>_id`) when the site
    has one, else its universal links to Meeting Events. None when the body cannot tell (only an id, or a
    site whose profiles carry no links)."""
    column = site.col("agenda_event")
    if f"{column}_id" in item:
        event = lookup_id(item, column)
        if event:
            return [event]
    if isinstance(item.get("LinkedItems"), list):
        return universal_link_ids(item, site.list_name("events"))
    return [] if f"{column}_id" in item else None


def _minutes(value) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        minutes = round(float(str(value).strip()))
    except ValueError:
        return None
    return minutes if minutes > 0 else None


def _rank_key(value, item_id: str) -> tuple:
    text = "" if value is None else str(value).strip()
    try:
        rank = (0, float(text), "")
    except ValueError:
        rank = (1, 0.0, text.casefold()) if text else (2, 0.0, "")
    return (*rank, len(item_id), item_id)


def _text(value) -> str:
    return " ".join(value.split()) if isinstance(value, str) else ""


def agenda_of(ctx: SiteContext, event_item: dict) -> list[AgendaEntry]:
    """The event's agenda items in rank order (one site read; one more only for owners shown without a name).
    Remembers which event each item belongs to (shared/features/agenda_changes.py reads it when an item is deleted)."""
    site, rapid, event_id = ctx.site, ctx.rapid, str(event_item["id"])
    col = site.col
    lookup = col("agenda_event")
    rows = [r for r in rapid.query("agendas", linked_to=("events", event_id)) if "id" in r
            # an item whose own lookup names another event is only linked to this one in passing
            and lookup_id(r, lookup) in (None, event_id)]
    owner_col = col("agenda_owner")
    owners = {str(r["id"]): lookup_id(r, owner_col) for r in rows}
    names = {}
    for row in rows:
        owner = owners[str(row["id"])]
        shown = row.get(owner_col) if f"{owner_col}_id" in row else None  # `owner` is display text only beside `owner_id`
        if owner and _text(shown):
            names[owner] = _text(shown)
    unnamed = sorted({o for o in owners.values() if o and o not in names})
    if unnamed:
        names.update({i: _text(r.get("title")) for i, r in rapid.items_by_id("principals", unnamed, ("title",)).items()})
    order, duration = col("agenda_order"), col("agenda_duration")
    rows.sort(key=lambda r: _rank_key(r.get(order), str(r["id"])))
    entries = [AgendaEntry(id=str(r["id"]), title=_text(r.get(col("title"))),
                           owner=names.get(owners[str(r["id"])] or "", ""), minutes=_minutes(r.get(duration)))
               for r in rows]
    if entries:
        ctx.ops.note_agenda_events(site.key, {e.id: [event_id] for e in entries})
    return entries


def agenda_html(entries: list[AgendaEntry]) -> str:
    """The agenda section's HTML ("" without entries); every value from the site is escaped."""
    if not entries:
        return ""
    from markupsafe import Markup, escape  # Jinja2's; imported on first use (cold start)

    items = []
    for entry in entries:
        detail = ", ".join(part for part in (entry.owner, f"{entry.minutes} min" if entry.minutes else "") if part)
        text = escape(entry.title or UNTITLED) + (Markup(" \N{EM DASH} ") + escape(detail) if detail else "")
        items.append(Markup("<li>{}</li>").format(text))
    return str(Markup("<hr><p><b>{}</b></p><ol>{}</ol>").format(AGENDA_HEADING, Markup("").join(items)))
