""""Sync now": a person (a "Sync with Outlook now" button) or an operator asks for an event, a meeting
or a whole site to be brought in line, in both directions.

The HTTP body (validated here, without I/O) is one of:
  - nothing, or `{}`: the whole site;
  - `{"event": 12}` or `{"meeting": 5}`;
  - an item profile (`{"id": 12, "__metadata": {"type": "Meeting Events"}, …}`);
  - RAPID's "Perform Remote Action" envelope `{site, tenant, environment, requestor, item}` (Include
    Item ON; `item` one profile, or an array with Single Request ON), whose tenant and site must be the
    route's (Rapid-Docs perform-remote-action.md, "Post Body").
The tasks, run by the worker:
  - `sync.event`: the item's state to Outlook (sync.apply_site_event), then Outlook's event read and any
    change there brought back (inbound.apply_outlook_change), registering the meeting first if needed;
  - `sync.meeting`: the meeting registered (its subscription made or renewed), then `sync.event` for
    each of its events the site has and each one linked that the site no longer has;
  - `sync.site`: a full site-side catch-up with a sweep (catch_up.py), and a delta catch-up of every
    Outlook calendar the site's subscriptions watch; at most once per SYNC_SITE_MINUTES per site, and asked
    again while one waits, merged into it (site_sync.py).
"""

from __future__ import annotations

import logging

from ..sync.catch_up import catch_up_site
from ..config import Settings
from ..model.errors import BadRequest
from ..intake.webhooks import envelope_item, item_id, known_site, parse_json
from ..model.rapid_items import filter_value, is_envelope
from ..context import SiteContext
from ..services import Services
from ..subscriptions.meetings import register_meeting
from ..sync.engine import apply_site_event
from .site_sync import claim

log = logging.getLogger("rapid_meetings")
MAX_ITEMS = 100


def sync_now_tasks(settings: Settings, tenant: str, site: str, body: bytes) -> list[dict]:
    config = known_site(settings, tenant, site)
    data = parse_json(body) if body.strip() else {}
    kinds = {config.list_name("events").lower(): "sync.event", config.list_name("meetings").lower(): "sync.meeting"}
    if is_envelope(data):
        items = envelope_item(data, config)
        items = items if isinstance(items, list) else [items]
    elif isinstance(data, dict) and not data:
        return [{"op": "sync.site", "site": config.key}]
    elif isinstance(data, dict) and "id" not in data and set(data) & {"event", "meeting"}:
        if len(data) != 1:
            raise BadRequest("name one of 'event' or 'meeting' (or send nothing to sync the whole site)")
        [(kind, value)] = data.items()
        return [{"op": f"sync.{kind}", "site": config.key, "item": item_id({"id": value}, kind)}]
    elif isinstance(data, dict):
        items = [data]
    else:
        raise BadRequest(f"body must be a JSON object ({{}} for the whole site, {{\"event\": id}}, "
                         f"{{\"meeting\": id}}, an item or a remote-action envelope), not {type(data).__name__}")
    if len(items) > MAX_ITEMS:
        raise BadRequest(f"{len(items)} items: at most {MAX_ITEMS} per call")
    tasks, seen = [], set()
    for n, item in enumerate(items):
        where = f"item {n}" if len(items) > 1 else "item"
        key = item_id(item, where)
        kind = str(((item.get("__metadata") or {}).get("type")) or "") if isinstance(item.get("__metadata"), dict) else ""
        op = kinds.get(kind.lower())
        if op is None:
            raise BadRequest(f"{where}: __metadata.type is {kind[:60]!r}; \"sync now\" takes items of "
                             f"{config.list_name('events')!r} or {config.list_name('meetings')!r}")
        if (op, key) not in seen:
            seen.add((op, key))
            tasks.append({"op": op, "site": config.key, "item": key})
    return tasks


def sync_event(svc: Services, task: dict) -> str:
    site = svc.site(task["site"])
    item = str(task["item"])
    to_outlook = apply_site_event(svc, site, item, "update", fresh=True)
    link = svc.store.get_link(site.key, item)
    if link is None or link.removing or link.pending:
        return f"sync now: {to_outlook}"
    meeting = svc.store.get_meeting(site.key, link.meeting_id) if link.meeting_id else None
    if meeting is None or not meeting.subscription_id:
        register_meeting(svc, site, link.meeting_id)
        meeting = svc.store.get_meeting(site.key, link.meeting_id)
    sub = svc.store.get_subscription(meeting.subscription_id) if meeting else None
    if sub is None or not meeting.active:
        log.info("site=%s item=%s sync now: Outlook changes do not flow back for this meeting", site.key, item)
        return f"sync now: {to_outlook}"
    from ..sync.inbound import apply_outlook_change

    # "sync": a read asked for, not a notification (inbound._note_where learns nothing from it about where it is)
    back = apply_outlook_change(svc, sub, "sync", link.event_id, job=task.get("job", ""))
    return f"sync now: {to_outlook}, from Outlook {back}"


def sync_meeting(svc: Services, task: dict) -> str:
    site = svc.site(task["site"])
    meeting_id = str(task["item"])
    register_meeting(svc, site, meeting_id)
    col = site.col
    flt = f"{col('meeting')}_id eq {filter_value(meeting_id)}"
    items = {str(r["id"]) for r in svc.rapid(site).query("events", flt, ("id",)) if "id" in r}
    items |= {link.item_id for link in svc.store.links(site.key) if link.meeting_id == meeting_id}
    tasks = [{"op": "sync.event", "site": site.key, "item": i} for i in sorted(items, key=lambda i: (len(i), i))]
    if tasks:
        svc.queue.enqueue(tasks)
    return f"sync now: meeting registered, {len(tasks)} event(s) enqueued"


def sync_site(svc: Services, task: dict) -> str:
    site = svc.site(task["site"])
    merged = claim(svc, site.key, task.get("job", ""))
    if merged:  # a later request's job waits to run it (jobs/site_sync.py)
        return f"sync now: merged into job {merged}"
    found = catch_up_site(SiteContext.of(svc, site), sweep=True, full=True)
    subs = [s for s in svc.store.subscriptions() if s.site.lower() == site.key.lower()]
    if subs:  # the delta catch-up of each calendar, as after a "missed" lifecycle notification
        svc.queue.enqueue([{"op": "outlook.lifecycle", "sub": s.id, "event": "missed"} for s in subs])
    return f"sync now: {len(found.tasks)} item(s) enqueued, {len(subs)} calendar(s) caught up"


HANDLERS = {"sync.event": sync_event, "sync.meeting": sync_meeting, "sync.site": sync_site}
