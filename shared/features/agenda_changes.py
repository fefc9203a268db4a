"""Agenda items changed in the site: their event's Outlook invitation follows, and a burst costs one update.

The site's webhooks on Meeting Agendas (agenda/create, agenda/update, agenda/delete) enqueue an
`agenda.<action>` task per item, like every webhook: validated, persisted, 202 (functions/site_webhooks.py).
The body's profile names the item's event when it can (`agenda.events_of`: the single lookup or the
universal links), carried in the task as `events`. The worker then (`note_agenda_change`):

1. **Finds the events to update.** The events the body names, and the events the item was last seen with
   (the index below: an item moved to another event leaves the first one too). When the body names none
   (an "Items Deleted" body of ids only, docs/rapid-api.md, "The Items Deleted body is not published", or a site whose profiles carry no links), the index
   says; failing that, the item is read (a deleted one too, where the site still shows it).
2. **The index** (`opsstate`, partition `agenda|<site>`, agenda item → its events) is written whenever an
   event's agenda is read (`agenda.agenda_of`, one transaction per 100 items, skipped for what this
   process already wrote) and whenever a webhook names an event the index did not have. So a deleted
   item's event is known if the app ever saw the item. Rows of deleted items stay until the next sweep
   (a repeated deletion still finds its event); they are a few bytes each.
3. **Coalesces the event's update** (`schedule_event_update`). The update is an ordinary `event.update`
   job (the engine reads the event, its agenda and Outlook, and converges: one Graph read and at most one
   PATCH), sent with a settle delay (AGENDA_SETTLE_SECONDS, default 5) as the message's initial
   visibility timeout, so the queue hands it to no worker before then. The last such job of each event
   is kept in a row (`agendadue|<site>`, the event id: its job id and due time), written after the send.
   - A change is not sent when the row's job becomes visible more than CLOCK_MARGIN_SECONDS from now:
     that job cannot have started, so it reads the site after this change (RAPID posts a webhook
     after the change is made).
   - A job carries its id and when it was sent (`coalesce`). When it runs and the row names another job
     due more than the margin after this one was sent (`superseded`), it ends at once: that job was
     persisted before the row named it, and reads the site after every change this one was sent for.
     So changes that raced past the first check (several hosts or threads reading the row before any
     wrote it) cost a queue message and a table read each, not an Outlook update.

Why this is safe:
- *No change is lost*: a skip rests only on a job that was persisted (the row is written after the send)
  and that the queue's visibility timeout keeps from reading before the change; never on a worker
  clearing a flag. A job that already started never absorbs a later change: once a due time is near,
  every change sends its own job. A crash between send and row write leaves a job the row does not
  name: it runs (one extra update at worst, never a missing one).
- *No marker blocks forever*: a row is only believed until its due time; after that it is ignored and
  overwritten. There is nothing to clear, by a worker or anyone.
- *Several hosts, duplicate deliveries*: the row is written ETag-checked (created if absent, replaced at
  the ETag read); a writer that loses has already sent its job, which then ends as superseded. A
  duplicated webhook is one more change: not sent, or sent and superseded. A retried or rescheduled job
  keeps its id: it runs unless a later job covers it.
- The margin covers clock differences between hosts and the queue service (a few ms in Azure).
With AGENDA_SETTLE_SECONDS=0 every change sends its job at once (no coalescing).

When webhooks were lost, the site-side catch-up (shared/sync/catch_up.py) asks `changed_agendas`: the agenda
items modified since its last run give their events (the row's lookup, the index, or a read of the item),
and each linked one whose agenda, read again, renders differently from its invitation's is synced. The
sweep (`swept_agendas`) compares the index with the agenda items the site still has: the events of
items deleted meanwhile are compared the same way, and those index rows are dropped.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import timedelta

from .agenda import agenda_html, agenda_of, events_of
from ..model.mapping import format_utc, parse_utc
from ..model.rapid_items import sorted_ids
from ..context import SiteContext
from ..storage.work_queue import new_job
from .base import Feature

log = logging.getLogger("rapid_meetings")
CLOCK_MARGIN_SECONDS = 1.0


def schedule_event_update(ctx: SiteContext, event_id: str, why: str = "agenda changed") -> str | None:
    """An `event.update` of the event after the settle delay, unless one that has not started yet will
    read the site after now anyway. The id of the job sent, or None when one already covers this change."""
    site = ctx.site
    ops, now, settle = ctx.ops, ctx.now(), ctx.settings.agenda_settle_seconds
    due = ops.agenda_due(site.key, event_id)
    if due is not None and now < parse_utc(due.due) - timedelta(seconds=CLOCK_MARGIN_SECONDS):
        log.info("site=%s item=%s %s: the update due at %s covers it (job=%s)", site.key, event_id, why, due.due,
                 due.job)
        return None
    job_id = uuid.uuid4().hex
    task = {"op": "event.update", "site": site.key, "item": event_id, "coalesce": {"job": job_id, "sent": format_utc(now)}}
    ctx.queue.send(new_job([task], job_id=job_id), delay_seconds=settle)
    ops.set_agenda_due(site.key, event_id, format_utc(now + timedelta(seconds=settle)), job_id,
                       due.etag if due else None)
    log.info("site=%s item=%s %s: Outlook update in %ss (job=%s)", site.key, event_id, why, settle, job_id)
    return job_id


def superseded(ctx: SiteContext, task: dict) -> bool:
    """True when a coalesced update (`coalesce` in its task) is covered by a later one: the event's row
    names another job, due more than the margin after this one was sent."""
    site = ctx.site
    token = task.get("coalesce")
    if not isinstance(token, dict) or not token.get("job") or not token.get("sent"):
        return False
    due = ctx.ops.agenda_due(site.key, str(task["item"]))
    if due is None or due.job == token["job"]:
        return False
    if parse_utc(due.due) > parse_utc(token["sent"]) + timedelta(seconds=CLOCK_MARGIN_SECONDS):
        log.info("site=%s item=%s agenda update (job=%s) covered by the one due at %s (job=%s)", site.key,
                 task["item"], token["job"], due.due, due.job)
        return True
    return False


def note_agenda_change(ctx: SiteContext, task: dict) -> str:
    """An agenda item was created, changed or deleted: schedule its event(s)' update (see the docstring)."""
    site = ctx.site
    item_id, action = task["item"], task["op"].rpartition(".")[2]
    if not site.agenda:
        return "noop"  # switched off since the webhook was accepted
    before = ctx.ops.agenda_events(site.key, item_id)
    named = task.get("events")
    if named is None and not (action == "delete" and before is not None):
        item = ctx.rapid.get_item("agendas", item_id, deleted=True)
        named = events_of(item, site) if item is not None else None
    if named is not None and sorted_ids(named) != sorted_ids(before or []):
        ctx.ops.note_agenda_events(site.key, {item_id: sorted_ids(named)})
    events = sorted_ids([*(named or []), *(before or [])])
    if not events:
        # every item an invitation lists was indexed when it was read: one never seen is in no invitation
        log.info("site=%s agenda item %s %sd: no event known for it (the site does not say, and no invitation "
                 "this app wrote lists it): nothing to update", site.key, item_id, action)
        return "noop"
    sent = [schedule_event_update(ctx, event, f"agenda item {item_id} {action}d") for event in events]
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

    def superseded(self, ctx, task):
        return "coalesce" in task and superseded(ctx, task)  # a later agenda update covers it

    def caught_up(self, ctx, since_filter, point_reads):
        return [(i, "its agenda differs from the invitation's")
                for i in changed_agendas(ctx, since_filter, point_reads)]

    def swept(self, ctx):
        return [(i, "agenda items gone from the site") for i in swept_agendas(ctx)]
