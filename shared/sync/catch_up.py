"""The site-side catch-up (docs/product-rules.md, "Rule 8. Catch up after gaps, on both sides"): webhooks can be
lost (the app down longer than the site retries, a webhook deleted, an edit by another application user,
which fires none), so each site is read on a schedule and Outlook brought back in line.

- `catch_up_schedule.schedule_due` (the timer) enqueues the task below for each site that is due.
- `catch_up_site` (the task): reads the Meeting Events and Meetings modified since the last successful
  run, less a margin for clock skew (`modified gt '…'` on `All$`, `$select`, paged past 250), and enqueues
  a sync only for items whose mapped content differs from the link's `synced`, never synced, or cancelled
  while linked; registers meetings without a subscription; follows a changed organiser. A run that finds
  no difference writes nothing and calls Graph 0 times.
- the sweep: every link is checked against the ids the site still has (an item deleted while its webhooks
  were lost gets its Outlook event cancelled, within removal_guard's limit); meetings get registered.
  `full=True` (a whole-site "sync now"): every item is compared, not only the recent ones.
- features with items of their own: their `caught_up` and `swept` hooks name the events those items
  changed (features/base.py); an event's own comparison keeps what they add as last synced.

Whether an item differs is the planner's own answer (planner.needs_sync over target.row_target, the
features reading nothing), in bulk: one query for the changed meetings and one for the people, and one
item GET only where the scalar columns are unchanged and the multi-lookups (which list reads do not
show: docs/rapid-api.md, "Multi-lookups are links, not columns") must be read.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from ..model.audit import SWEEP
from ..config import SiteConfig
from ..context import SiteContext
from ..features.registry import enabled_features
from ..model.addresses import usable_address
from ..model.errors import JobAbandoned
from ..model.mapping import format_utc, parse_utc
from . import removal_guard
from .planner import is_cancelled, needs_sync
from .target import row_target
from ..model.rapid_items import column_ids, lookup_id
from ..services import Services
from ..storage.store import EventLink

log = logging.getLogger("rapid_meetings")
READERS = 8            # parallel item GETs when multi-lookups must be read
POINT_READS = 200      # up to this many changed items, their links are read one by one; past it, all at once
SCHEDULE_OP = "site.catch_up"


@dataclass
class Findings:
    """What one catch-up run found and enqueued."""

    read_events: int = 0
    read_meetings: int = 0
    item_reads: int = 0
    tasks: list[dict] = field(default_factory=list)
    swept: int = 0

    def counts(self) -> dict:
        ops = {}
        for task in self.tasks:
            ops[task["op"]] = ops.get(task["op"], 0) + 1
        return {"events_read": self.read_events, "meetings_read": self.read_meetings,
                "item_reads": self.item_reads, "swept_links": self.swept, "enqueued": len(self.tasks), **ops}


def _event_columns(site: SiteConfig) -> tuple[str, ...]:
    col = site.col
    names = ["id", "modified", f"{col('meeting')}_id", col("status"), col("sys_external_id")]
    names += [col(n) for n in ("title", "description", "start_date", "end_date", "all_day", "location")]
    if site.multi_lookup == "column":
        names += [col("invitees"), col("guests")]
    names += [c for f in enabled_features(site) for c in f.columns(site)]  # what the item asks of Outlook besides
    return tuple(dict.fromkeys(names))


def _target(site: SiteConfig, row: dict, link: EventLink | None, attendees: tuple[str, ...]):
    """The row's target with the features reading nothing, or the JobAbandoned saying why it has none."""
    try:
        return row_target(site, row, link, attendees, enabled_features(site))
    except JobAbandoned as e:
        return e


def catch_up_site(ctx: SiteContext, sweep: bool = False, full: bool = False) -> Findings:
    """One catch-up run for one site; enqueues what must be synced and records the run."""
    site = ctx.site
    ops, now = ctx.ops, ctx.now()
    run = ops.run("catch_up", site.key)
    since = None if full or not run.watermark else \
        parse_utc(run.watermark) - timedelta(minutes=ctx.settings.catch_up_margin_minutes)
    ops.note_run("catch_up", site.key, started=format_utc(now))
    found = Findings()
    sweep = sweep or full or removal_guard.holding(ctx)  # while removals are held, each run looks for their items
    try:
        _compare(ctx, since, found)
        if sweep:
            ops.note_run("sweep", site.key, started=format_utc(now))
            _sweep(ctx, found)
        if found.tasks:
            ctx.queue.enqueue(found.tasks)
    except Exception as e:
        ops.note_run("catch_up", site.key, finished=format_utc(ctx.now()), outcome=f"{type(e).__name__}: {e}"[:500])
        raise
    finished = format_utc(ctx.now())
    ops.note_run("catch_up", site.key, finished=finished, outcome="ok", counts=found.counts(),
                 watermark=format_utc(now))
    if sweep:
        ops.note_run("sweep", site.key, finished=finished, outcome="ok", counts={"links": found.swept})
    log.info("site=%s catch-up%s since %s: %s", site.key, " (full)" if full else "",
             format_utc(since) if since else "the beginning", found.counts())
    return found


def _compare(ctx: SiteContext, since, found: Findings) -> None:
    site = ctx.site
    rapid, col = ctx.rapid, site.col
    flt = f"modified gt '{format_utc(since)}'" if since else None
    meetings = rapid.query("meetings", flt, ("id", "modified", f"{col('organiser')}_id"))
    rows = rapid.query("events", flt, _event_columns(site))
    found.read_meetings, found.read_events = len(meetings), len(rows)
    queued = set()

    def enqueue(op: str, item_id: str, why: str) -> None:
        if (op, item_id) not in queued:
            queued.add((op, item_id))
            # an item the catch-up found different is synced from the site as it is now (no link memo)
            found.tasks.append({"op": op, "site": site.key, "item": item_id, **({"fresh": True} if op == "event.update"
                                                                                 else {})})
            log.info("site=%s item=%s catch-up: %s", site.key, item_id, why)

    _compare_meetings(ctx, meetings, enqueue)
    _compare_events(ctx, rows, found, enqueue)
    for feature in enabled_features(site):  # events whose features' own items changed
        for item_id, why in feature.caught_up(ctx, flt, POINT_READS):
            enqueue("event.update", item_id, why)


def _compare_meetings(ctx: SiteContext, meetings: list[dict], enqueue) -> None:
    """Meetings: registered, and still with the organiser their events are in."""
    site = ctx.site
    store, col = ctx.store, site.col
    organisers = {str(m["id"]): lookup_id(m, col("organiser")) for m in meetings if "id" in m}
    emails = _emails(ctx, "principals", [o for o in organisers.values() if o])
    moved = set()
    for meeting_id, organiser in organisers.items():
        known = store.get_meeting(site.key, meeting_id)
        mailbox = emails.get(organiser or "")
        if known is None or not known.subscription_id:
            if organiser:
                enqueue("meeting.create", meeting_id, "meeting never registered")
        elif known.active and mailbox and mailbox.lower() != known.mailbox.lower():
            enqueue("meeting.create", meeting_id, f"organiser changed to {mailbox}")
            moved.add(meeting_id)
    if moved:
        for link in store.links(site.key):
            if link.meeting_id in moved:
                enqueue("event.update", link.item_id, "its meeting's organiser changed")


def _compare_events(ctx: SiteContext, rows: list[dict], found: Findings, enqueue) -> None:
    """Events: a sync only where the planner says the item differs from what was last synced."""
    site = ctx.site
    store, features = ctx.store, enabled_features(site)
    if len(rows) > POINT_READS:  # a long window (a first or full run): one query for every link
        every = {link.item_id: link for link in store.links(site.key)}
        links = {str(r["id"]): every.get(str(r["id"])) for r in rows if "id" in r}
    else:
        links = {str(r["id"]): store.get_link(site.key, str(r["id"])) for r in rows if "id" in r}
    unsure = []
    for row in rows:
        item_id = str(row.get("id", ""))
        if not item_id:
            continue
        link = links.get(item_id)
        why = needs_sync(site, row, link, _target(site, row, link, link.synced.attendees if link else ()), features)
        if why:
            enqueue("event.update", item_id, why)
        elif link is not None and not is_cancelled(site, row):
            unsure.append((row, link))
    for item_id, why in _attendee_changes(ctx, unsure, found):
        enqueue("event.update", item_id, why)


def _emails(ctx: SiteContext, list_name: str, ids: list[str]) -> dict[str, str]:
    site = ctx.site
    if not ids:
        return {}
    email = site.col("email")
    found = {i: usable_address(r.get(email)) for i, r in ctx.rapid.items_by_id(list_name, ids, (email,)).items()}
    return {i: address for i, address in found.items() if address}  # as target._emails reads them


def _attendee_changes(ctx: SiteContext, rows: list[tuple[dict, EventLink]],
                      found: Findings) -> list[tuple[str, str]]:
    """Items whose columns are as last synced: do their invitees and guests still give its attendees?"""
    site = ctx.site
    if not rows:
        return []
    rapid, col = ctx.rapid, site.col

    def targets(pair):
        row, _ = pair
        if site.multi_lookup == "column":
            source = row
        else:
            source = rapid.get_item("events", str(row["id"])) if site.multi_lookup == "links" else row
            if source is None:
                return None
        invitees = rapid.multi_lookup_ids("events", source, col("invitees"), "principals")
        guests = (rapid.multi_lookup_ids("events", source, col("guests"), "contacts")
                  if site.guests_as_attendees else [])
        return invitees, guests

    if site.multi_lookup == "column":
        resolved = [(column_ids(r, col("invitees")), column_ids(r, col("guests")) if site.guests_as_attendees else [])
                    for r, _ in rows]
    else:
        with ThreadPoolExecutor(min(READERS, len(rows))) as pool:
            resolved = list(pool.map(targets, rows))
        found.item_reads += len(rows)
    people = _emails(ctx, "principals", sorted({i for r in resolved if r for i in r[0]}))
    guests = _emails(ctx, "contacts", sorted({i for r in resolved if r for i in r[1]}))
    changed = []
    for (row, link), ids in zip(rows, resolved):
        if ids is None:
            continue  # deleted meanwhile: the sweep or its webhook deals with it
        attendees = [people[i] for i in ids[0] if i in people] + [guests[i] for i in ids[1] if i in guests]
        attendees = [a for a in attendees if a.lower() != link.mailbox.lower()]
        if needs_sync(site, row, link, _target(site, row, link, tuple(attendees)), enabled_features(site)):
            changed.append((str(row["id"]), "invitees or guests differ from Outlook's attendees"))
    return changed


def _sweep(ctx: SiteContext, found: Findings) -> None:
    """Every link against the ids the site still has: an item gone from the site loses its Outlook event,
    unless the mass-removal guard holds the sweep's removals (sync/removal_guard.py)."""
    site = ctx.site
    rapid, store = ctx.rapid, ctx.store
    rows = [r for r in rapid.query("events", None, ("id", site.col("status"))) if "id" in r]
    alive = {str(r["id"]) for r in rows}
    links = store.links(site.key)
    found.swept = len(links)
    queued = {(t["op"], t["item"]) for t in found.tasks}
    back = {str(r["id"]) for r in rows if not is_cancelled(site, r)}
    for link in removal_guard.sweep(ctx, links, alive, back):
        if ("event.delete", link.item_id) in queued:
            continue
        found.tasks.append({"op": "event.delete", "site": site.key, "item": link.item_id, "why": SWEEP})
        log.info("site=%s item=%s sweep: gone from the site, its Outlook event goes too (event=%s)",
                 site.key, link.item_id, link.event_id)
    for feature in enabled_features(site):  # the features' own items deleted while their webhooks were lost
        for item_id, why in feature.swept(ctx):
            if ("event.update", item_id) not in queued:
                found.tasks.append({"op": "event.update", "site": site.key, "item": item_id, "why": SWEEP})
                log.info("site=%s item=%s sweep: %s", site.key, item_id, why)
    registered = {m.meeting_id for m in store.meetings(site.key) if m.subscription_id}
    col = site.col
    for row in rapid.query("meetings", None, ("id", f"{col('organiser')}_id")):
        meeting_id = str(row.get("id", ""))
        if meeting_id and meeting_id not in registered and lookup_id(row, col("organiser")) \
                and ("meeting.create", meeting_id) not in queued:
            found.tasks.append({"op": "meeting.create", "site": site.key, "item": meeting_id, "why": SWEEP})
            log.info("site=%s meeting=%s sweep: never registered", site.key, meeting_id)


def run_catch_up(svc: Services, task: dict) -> str:
    ctx = SiteContext.of(svc, svc.site(task.get("site", "")))
    found = catch_up_site(ctx, sweep=bool(task.get("sweep")), full=bool(task.get("full")))
    return f"caught up ({len(found.tasks)} enqueued)"
