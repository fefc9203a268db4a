"""A burst of changes to one meeting reaches Outlook as one update, because every update is mail.

Exchange sends every update of an organiser's meeting to all its attendees, and Graph has no way to update
it quietly (docs/platform-facts.md, "Every update of a meeting is mailed to its attendees"). So changes that
arrive close together for one event wait a little and go as one `event.update`:
- **agenda changes** (features/agenda_changes.py): always, AGENDA_SETTLE_SECONDS (default 5);
- **site edits** of an event that is a meeting (its link has attendees): EDIT_SETTLE_SECONDS (default 5).
  A create, an edit of an event without attendees (no mail at stake), the catch-up's and "sync now"'s
  syncs (`fresh`), replays of unfinished work, and deletions go at once. An edit that changes nothing an
  attendee sees (the status column, a column the app does not map, the same values again) waits too, then
  ends in the planner's "no mapped change": no PATCH, no mail (sync/planner.py `differs`).

How (`schedule_event_update`): the update is an ordinary `event.update` job (the engine reads the item,
what it asks for and Outlook, and converges: one Graph read and at most one PATCH), sent with the settle
delay as the message's initial visibility timeout, so the queue hands it to no worker before then. The
last such job of each event is kept in a row (`agendadue|<site>`, the item id: its job id and due time; one
row for agenda changes and site edits, so they coalesce with each other), written after the send.
- A change is not sent when the row's job becomes visible more than CLOCK_MARGIN_SECONDS from now: that
  job cannot have started, so it reads the site after this change (RAPID posts a webhook after the change
  is made).
- A job carries its id and when it was sent (`coalesce`). When it runs and the row names another job due
  more than the margin after this one was sent (`superseded`), it ends at once: that job was persisted
  before the row named it, and reads the site after every change this one was sent for. So changes that
  raced past the first check (several hosts or threads reading the row before any wrote it) cost a queue
  message and a table read each, not an Outlook update.

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
A settle of 0 sends every change at once (no coalescing). The price is latency: an edit of a meeting
reaches Outlook the settle time later (README, "Propagation").
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from ..context import SiteContext
from ..model.mapping import format_utc, parse_utc
from ..storage.work_queue import new_job
from .base import Feature

log = logging.getLogger("rapid_meetings")
CLOCK_MARGIN_SECONDS = 1.0


def schedule_event_update(ctx: SiteContext, event_id: str, why: str, settle: int) -> str | None:
    """An `event.update` of the event after `settle` seconds, unless one that has not started yet will read
    the site after now anyway. The id of the job sent, or None when one already covers this change."""
    site = ctx.site
    ops, now = ctx.ops, ctx.now()
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
        log.info("site=%s item=%s coalesced update (job=%s) covered by the one due at %s (job=%s)", site.key,
                 task["item"], token["job"], due.due, due.job)
        return True
    return False


def settles(ctx: SiteContext, task: dict) -> bool:
    """A site edit that waits (see the docstring): an `event.update` straight from a webhook, of an item
    linked to a meeting with attendees, while EDIT_SETTLE_SECONDS is not 0."""
    settle = ctx.settings.edit_settle_seconds
    if settle <= 0 or task.get("op") != "event.update" or any(task.get(k) for k in ("coalesce", "fresh", "unsettled")):
        return False
    link = ctx.store.get_link(ctx.site.key, str(task["item"]))
    return link is not None and not link.pending and not link.removing and bool(link.synced.attendees)


class Coalesce(Feature):
    """Updates of one meeting within a settle time go to Outlook as one (always on)."""

    name = "coalesce"

    def enabled(self, site):
        return True

    def superseded(self, ctx, task):
        """A coalesced update a later one covers; or a site edit of a meeting, now handed to a coalesced
        update (the one scheduled here, or one already due)."""
        if "coalesce" in task:
            return superseded(ctx, task)
        if not settles(ctx, task):
            return False
        schedule_event_update(ctx, str(task["item"]), "site edit", ctx.settings.edit_settle_seconds)
        return True
