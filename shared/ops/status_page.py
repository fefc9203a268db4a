"""The operator's status page (`ops/status`): per site, what the stores hold about the sync — links,
meetings, subscriptions and their expiry, the last notification, the last renewal, catch-up and sweep
runs, the work queue and its oldest message, poisoned jobs with their reasons, the last failures, and the
removals the mass-removal guard holds (sync/removal_guard.py) with how to release them.

`status(svc, only)` gathers plain data (the JSON answer); `render_html` puts it through a Jinja2
template with autoescaping on. Nothing secret is read out: no client state, delta link, key or token.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path

from ..config import SiteConfig, StorageAccount
from ..model.audit import check_item_id
from ..model.mapping import format_utc, parse_utc
from ..services import Services
from ..storage.work_queue import message_key
from .audit_trail import item_audit

TEMPLATES = Path(__file__).parent / "templates"
PEEK = 32  # the most messages one peek shows (Queue service limit)


def _queue(svc: Services, name: str):
    from azure.storage.queue import QueueClient, TextBase64DecodePolicy

    storage = svc.settings.storage
    # an operator waits on the page: Storage that hangs ends it in seconds (the SDK's defaults are 20 s and 60 s)
    options = dict(message_decode_policy=TextBase64DecodePolicy(), connection_timeout=2, read_timeout=12, retry_total=1)
    if isinstance(storage, StorageAccount):
        return QueueClient(storage.url("queue"), name, credential=storage.credential(), **options)
    return QueueClient.from_connection_string(storage, name, **options)


def _peek(svc: Services, name: str, count: int) -> tuple[int, list]:
    from azure.core.exceptions import ResourceNotFoundError

    client = _queue(svc, name)
    try:
        length = client.get_queue_properties().approximate_message_count
        return length, list(client.peek_messages(max_messages=count))
    except ResourceNotFoundError:
        return 0, []


def _age(now: datetime, when) -> float | None:
    return round((now - when).total_seconds(), 1) if when else None


def _job_sites(svc: Services, text: str) -> tuple[set[str], str]:
    """The sites a queued job is about, and a one-line description of it."""
    try:
        job = json.loads(text)
        tasks = job.get("tasks", [])
    except (ValueError, AttributeError):
        return set(), f"not a job: {text[:60]!r}"
    sites = set()
    for task in tasks:
        if task.get("site"):
            sites.add(str(task["site"]).lower())
        elif task.get("sub"):
            sub = svc.store.get_subscription(task["sub"])
            if sub is not None:
                sites.add(sub.site.lower())
    ops = ", ".join(f"{t.get('op')} {t.get('item', t.get('event', ''))}".strip() for t in tasks[:3])
    return sites, f"job {job.get('id')}: {ops}{' …' if len(tasks) > 3 else ''}"


def status(svc: Services, only: str | None = None, item: str | None = None) -> dict:
    """Everything the page shows, as plain data: the work queue and its poison queue, the last renewal,
    then per site (every site, or only `only`) what the stores hold; with `item`, that item's audit rows."""
    now = svc.clock()
    sites = [s for s in svc.settings.sites.values() if only is None or s.key.lower() == only.lower()]
    queue_name = svc.settings.work_queue
    length, oldest = _peek(svc, queue_name, 1)
    poison_length, poison = _poisoned_jobs(svc, f"{queue_name}-poison")
    subscriptions = svc.store.subscriptions()
    renewal = svc.ops.run("renewal", "*")
    data = {
        "generated": format_utc(now),
        "queue": {"name": queue_name, "length": length,
                  "oldest_age_seconds": _age(now, oldest[0].inserted_on) if oldest else None,
                  "poison_length": poison_length},
        "renewal": _run(renewal),
        "sites": [_site_status(svc, now, site, subscriptions, poison) for site in sites],
        "audit": {"days": svc.settings.audit_days, "lost_rows_this_process": svc.audit.lost},
    }
    for site in data["sites"] if item else ():  # the item's audit trail (shared/ops/audit_trail.py)
        site["item"] = {"id": item, "audit": item_audit(svc, site["site"], item, now - timedelta(days=svc.settings.audit_days))}
    return data


def checked_item(site: str | None, item: str | None) -> tuple[str | None, str]:
    """The status page's `item` parameter: the id, or why it is refused (it needs `site`)."""
    if item is None:
        return None, ""
    if not site:
        return None, "parameter item needs parameter site (tenant/site)"
    try:
        return check_item_id(item), ""
    except ValueError as e:
        return None, f"parameter {e}"


def _poisoned_jobs(svc: Services, name: str) -> tuple[int, list[dict]]:
    """The poison queue's length and its first PEEK jobs, each with the sites it is about and the reason
    the worker recorded when it gave up on it."""
    length, poisoned = _peek(svc, name, PEEK)
    reasons = svc.ops.job_failures() if poisoned else {}
    poison = []
    for message in poisoned:
        about, what = _job_sites(svc, message.content)
        failure = reasons.get(message_key(message.content), {})
        poison.append({"id": message.id, "inserted": format_utc(message.inserted_on), "job": what,
                       "sites": sorted(about), "tries": failure.get("dequeue_count"),
                       "reason": failure.get("reason", "unknown (no failure recorded)")})
    return length, poison


def _site_status(svc: Services, now: datetime, site: SiteConfig, subscriptions: list, poison: list[dict]) -> dict:
    """What the stores hold about one site: its links, meetings, subscriptions, runs, poisoned jobs, failures."""
    store, ops = svc.store, svc.ops
    links = store.links(site.key)
    meetings = store.meetings(site.key)
    subs = sorted((s for s in subscriptions if s.site.lower() == site.key.lower()), key=lambda s: s.expires)
    runs = ops.runs(site.key)
    return {
        "site": site.key,
        "links": {"count": len(links), "removing": sum(1 for link in links if link.removing),
                  "by_mailbox": dict(sorted(Counter(link.mailbox for link in links).items()))},
        "meetings": {"count": len(meetings), "active": sum(1 for m in meetings if m.active),
                     "without_subscription": sum(1 for m in meetings if not m.subscription_id)},
        "subscriptions": [{"id": s.id, "mailbox": s.mailbox, "expires": s.expires,
                           "expires_in_minutes": _minutes(now, s.expires)} for s in subs],
        "last_notification": ops.last_notification(site.key) or None,
        "runs": {kind: _run(run) for kind, run in runs.items()},
        "status_column": site.status_column or None,
        "poison": [p for p in poison if site.key.lower() in p["sites"]],
        "failures": [{k: f[k] for k in ("at", "op", "item", "reason")} for f in ops.failures(site.key)],
        "dependencies": _dependencies(svc, site),
        "unfinished": len(svc.health.marks(site.key)),
        "held_removals": [{"item": h.item_id, "event": h.event_id, "mailbox": h.mailbox, "direction": h.direction,
                           "since": h.since, "why": h.why, "released": h.released} for h in svc.held.held(site.key)],
    }


def _dependencies(svc: Services, site: SiteConfig) -> list[dict]:
    """Graph, the site and the sign-in service as this site's jobs last met them (shared/jobs/breakers.py):
    up or down since when, and after an outage how long it lasted and how long its backlog took to drain."""
    out = []
    for name, b in sorted(svc.health.breakers(site.key).items()):
        drained = _seconds_between(b.up_since, b.drained_at) if b.up_since and b.drained_at else None
        out.append({"dependency": name, "state": "down" if b.open else "up",
                    "since": (b.down_since if b.open else b.up_since) or None,
                    "failures_in_a_row": b.failures, "next_probe": b.probe_at or None,
                    "last_outage": {"from": b.was_down_since, "to": b.up_since, "drain_seconds": drained}
                    if b.was_down_since else None})
    return out


def _seconds_between(start: str, end: str) -> float | None:
    try:
        return round((parse_utc(end) - parse_utc(start)).total_seconds(), 1)
    except ValueError:
        return None


def _minutes(now: datetime, expires: str) -> int | None:
    try:
        return int((parse_utc(expires) - now).total_seconds() // 60)
    except ValueError:
        return None


def _run(run) -> dict:
    data = asdict(run)
    data.pop("site")
    return data


def render_html(data: dict) -> str:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True,
                      undefined=StrictUndefined)
    return env.get_template("status.html.j2").render(**data)
