"""Agenda items changed in the site: their event's Outlook invitation follows, and a burst costs one update.

The site's webhooks on Meeting Agendas (agenda/create, agenda/update, agenda/delete) enqueue one
`agenda.<action>` task per request, carrying only the agenda item ids the body names (at most MAX_ITEMS,
functions/site_webhooks.py): validated, persisted, 202. Nothing else the body says is believed — a body may
claim any events, and a forged one once made a single POST fan out into thousands of event updates on the
queue every site shares. The worker then (`note_agenda_change`):

1. **Asks the site which events to update** (`confirmed_events`): which of the ids the site has (one
   `in(id, …)` query per 100), the events each of those names (its row's lookup, or a read of the item when
   it ties to its event by a universal link, which list rows do not show), and the events each was last
   seen with (the index below: an item moved to another event, or deleted, leaves the first one too). An id
   the site does not have and the index never saw is in no invitation (an "Items Deleted" body of ids only,
   docs/rapid-api.md, "The Items Deleted body is not published", is answered by the index alone). So a
   request costs at most one update per event the site or the index confirms, whatever its body claims.
2. **The index** (`opsstate`, partition `agenda|<site>`, agenda item → its events) is written whenever an
   event's agenda is read (`agenda.agenda_of`, one transaction per 100 items, skipped for what this
   process already wrote) and whenever the site names an event the index did not have. So a deleted
   item's event is known if the app ever saw the item. Rows of deleted items stay until the next sweep
   (a repeated deletion still finds its event); they are a few bytes each.
3. **Coalesces the event's update** (`coalesce.schedule_event_update`, AGENDA_SETTLE_SECONDS, default 5):
   an ordinary `event.update` job sent with a settle delay; changes within it cost no other update, and a
   later one supersedes an earlier one (features/coalesce.py says how, and why nothing is lost). Site edits
   of a meeting coalesce the same way, in the same row. With AGENDA_SETTLE_SECONDS=0 every change sends
   its job at once (no coalescing).

When webhooks were lost, the site-side catch-up (shared/sync/catch_up.py) asks `changed_agendas`: the agenda
items modified since its last run give their events (the row's lookup, the index, or a read of the item),
and each linked one whose agenda, read again, renders differently from its invitation's is synced. The
sweep (`swept_agendas`) compares the index with the agenda items the site still has: the events of
items deleted meanwhile are compared the same way, and those index rows are dropped.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from .agenda import agenda_html, agenda_of, events_of
from ..intake.webhooks import MAX_ITEMS
from ..model.rapid_items import sorted_ids
from ..context import SiteContext
from .base import Feature
from .coalesce import schedule_event_update

log = logging.getLogger("rapid_meetings")


def confirmed_events(ctx: SiteContext, agenda_ids: list[str]) -> list[str]:
    """The events these agenda items belong to, as the site and the index say: which items the site has (one
    query per 100 ids), the events each names (its row's lookup, or a read of the item for universal links),
    and the events each was last seen with (the index: an item moved or deleted leaves those too). An id the
    site does not have and the index never saw is in no invitation: it costs nothing more."""
    site = ctx.site
    rows = ctx.rapid.items_by_id("agendas", agenda_ids)
    touched, changed = set(), {}
    for agenda_id in agenda_ids:
        before = ctx.ops.agenda_events(site.key, agenda_id)
        named = events_of(rows[agenda_id], site) if agenda_id in rows else None
        if agenda_id in rows and named is None:  # links show only in the item's profile
            item = ctx.rapid.get_item("agendas", agenda_id)
            named = events_of(item, site) if item is not None else None
        if named is not None and sorted_ids(named) != sorted_ids(before or []):
            changed[agenda_id] = sorted_ids(named)
        touched.update(named or [], before or [])
    if changed:
        ctx.ops.note_agenda_events(site.key, changed)
    return sorted_ids(touched)


def note_agenda_change(ctx: SiteContext, task: dict) -> str:
    """Agenda items were created, changed or deleted: schedule their events' updates, one per event (see the
    docstring). A task of an older version names one `item` (its `events`, a claim of the body, is not read)."""
    site = ctx.site
    if not site.agenda:
        return "noop"  # switched off since the webhook was accepted
    agenda_ids = sorted_ids(str(i) for i in (task.get("items") or [task["item"]]))[:MAX_ITEMS]
    action = task["op"].rpartition(".")[2]
    events = confirmed_events(ctx, agenda_ids)
    what = f"agenda item {agenda_ids[0]}" if len(agenda_ids) == 1 else f"{len(agenda_ids)} agenda items"
    if not events:
        # every item an invitation lists was indexed when it was read: one never seen is in no invitation
        log.info("site=%s %s %sd: the site ties none to an event and no invitation this app wrote lists them: "
                 "nothing to update", site.key, what, action)
        return "noop"
    sent = [schedule_event_update(ctx, event, f"{what} {action}d", ctx.settings.agenda_settle_seconds)
            for event in events]
    return "scheduled" if any(sent) else "coalesced"


def _differing(ctx: SiteContext, event_ids) -> list[str]:
    """The linked events among these whose agenda, read now, is not the one their invitation shows."""
    site = ctx.site
    differ = []
    for event_id in sorted_ids(event_ids):
        link = ctx.store.get_link(site.key, event_id)
        if link is None or link.pending or link.removing:
            continue  # never synced, or going: the event's own sync decides
        if agenda_html(agenda_of(ctx, {"id": event_id})) != link.synced.agenda:
            differ.append(event_id)
    return differ


def changed_agendas(ctx: SiteContext, since_filter: str | None, point_reads: int = 200) -> list[str]:
    """Catch-up: events whose agenda items were modified (`since_filter`) and whose agenda now differs."""
    site = ctx.site
    rapid, touched, unknown = ctx.rapid, set(), []
    for row in rapid.query("agendas", since_filter):
        if "id" not in row:
            continue
        named = events_of(row, site)       # a lookup shows in list rows; links do not (docs/rapid-api.md, "Multi-lookups are links, not columns")
        before = ctx.ops.agenda_events(site.key, str(row["id"]))  # an item moved away leaves its old event too
        touched.update(named or [], before or [])
        if named is None and before is None:
            unknown.append(str(row["id"]))
    for agenda_id in unknown[:point_reads]:
        item = rapid.get_item("agendas", agenda_id)
        touched.update((events_of(item, site) or []) if item else [])
    return _differing(ctx, touched)


def swept_agendas(ctx: SiteContext) -> list[str]:
    """Sweep: events that lost agenda items while their webhooks were lost, and whose agenda now differs."""
    site = ctx.site
    alive = {str(r["id"]) for r in ctx.rapid.query("agendas", None, ("id",)) if "id" in r}
    dead = {i: events for i, events in ctx.ops.agenda_index(site.key).items() if i not in alive}
    differ = _differing(ctx, {e for events in dead.values() for e in events})
    ctx.ops.forget_agenda_items(site.key, sorted(dead))
    return differ


class Agenda(Feature):
    """The event's agenda items as a section of its invitation (SITES `agenda`)."""

    name = "agenda"
    handlers = {f"agenda.{action}": lambda svc, t: note_agenda_change(
        SiteContext.of(svc, svc.site(t.get("site", ""))), t) for action in ("create", "update", "delete")}

    def enabled(self, site):
        return site.agenda

    def contribute(self, site, item, link, target, ctx):
        if ctx is None:  # a bulk comparison: the agenda comes from other items (their own webhooks), as last synced
            agenda = link.synced.agenda if link is not None else ""
        else:
            agenda = agenda_html(agenda_of(ctx, item))
        return replace(target, synced=replace(target.synced, agenda=agenda))

    def caught_up(self, ctx, since_filter, point_reads):
        return [(i, "its agenda differs from the invitation's")
                for i in changed_agendas(ctx, since_filter, point_reads)]

    def swept(self, ctx):
        return [(i, "agenda items gone from the site") for i in swept_agendas(ctx)]
