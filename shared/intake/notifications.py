"""Graph change and lifecycle notifications: verify each one, turn the valid ones into tasks.

A notification is acted on only when its subscription is ours, its clientState matches (compared in
constant time), its tenant is the subscription's and its resource is the subscribed mailbox's.
Anything else is dropped with a logged reason that never contains the clientState.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections import Counter
from urllib.parse import unquote

from ..model.errors import BadRequest, PayloadTooLarge
from .webhooks import parse_json

log = logging.getLogger("rapid_meetings")
CHANGES = {"created", "updated", "deleted"}
LIFECYCLE = {"reauthorizationRequired", "subscriptionRemoved", "missed"}
MAX_NOTIFICATIONS = 1000    # per POST: Graph batches notifications, never this many
MAX_SUBSCRIPTIONS = 100     # distinct subscription ids per POST: read together, a query per 15 (store.get_subscriptions)
# Graph spells a notification's resource several ways (docs/platform-facts.md, "Notification resources come in several spellings"): Users/{guid}/Events/{id},
# users/{guid}@{tenant-guid}/events/{id}, Users('{guid}')/Events('{id}'); compared case-insensitively.
_KEY = r"(?:/([^/'()]+)|\('([^'/]+)'\))"
RESOURCE = re.compile(rf"^/?users{_KEY}/(?:calendar/)?events{_KEY}$", re.IGNORECASE)


def _text(note: dict, key: str) -> str | None:
    value = note.get(key)
    return value if isinstance(value, str) and value else None


def _usable_id(sub_id) -> bool:
    """Graph's subscription ids are printable ASCII (a GUID); anything else is never looked up."""
    return isinstance(sub_id, str) and 0 < len(sub_id) <= 200 and sub_id.isascii() and sub_id.isprintable()


def _is_mailbox(user: str, sub) -> bool:
    """The resource's user is the subscription's: its object id (alone or @ the tenant) or its UPN. A
    subscription made by UPN (no User.Read.All) knows no object id: the link's mailbox check decides."""
    user = unquote(user).lower()
    if not sub.user_id:
        return True
    names = {sub.mailbox.lower(), sub.user_id.lower(), f"{sub.user_id}@{sub.aad_tenant}".lower()}
    return user in names


def check(note, find_subscription) -> tuple[dict | None, str]:
    """A task for a valid notification, or None and the reason it was refused."""
    if not isinstance(note, dict):
        return None, "not an object"
    sub_id = _text(note, "subscriptionId")
    if not _usable_id(sub_id):
        return None, "no subscriptionId (Graph's are printable ASCII)"
    sub = find_subscription(sub_id)
    if sub is None:
        return None, f"unknown subscription {sub_id[:64]}"
    state = _text(note, "clientState") or ""
    if not hmac.compare_digest(state.encode("utf-8", "surrogatepass"), sub.client_state.encode()):
        return None, f"clientState does not match subscription {sub_id}"
    if (_text(note, "tenantId") or "").lower() != sub.aad_tenant.lower():
        return None, f"tenantId does not match subscription {sub_id}"
    lifecycle = _text(note, "lifecycleEvent")
    if lifecycle is not None:
        if lifecycle not in LIFECYCLE:
            return None, f"unknown lifecycleEvent for subscription {sub_id}"
        return {"op": "outlook.lifecycle", "sub": sub_id, "event": lifecycle}, ""
    change = _text(note, "changeType")
    if change not in CHANGES:
        return None, f"unknown changeType for subscription {sub_id}"
    match = RESOURCE.match(_text(note, "resource") or "")
    if match is None or not _is_mailbox(match.group(1) or match.group(2), sub):
        return None, f"resource is not the mailbox of subscription {sub_id}"
    data = note.get("resourceData") if isinstance(note.get("resourceData"), dict) else {}
    event_id = _text(data, "id") or ""  # the event id comes from resourceData.id, the mailbox from the subscription
    if not event_id or len(event_id) > 512 or not (event_id.isascii() and event_id.isprintable()):
        return None, f"resourceData of subscription {sub_id} names no Outlook event id"
    if event_id.lower() != unquote(match.group(3) or match.group(4)).lower():
        return None, f"resourceData.id is not the event of the resource of subscription {sub_id}"
    etag = data.get("@odata.etag") if isinstance(data.get("@odata.etag"), str) else ""
    return {"op": "outlook.change", "sub": sub_id, "change": change, "event": event_id, "etag": etag}, ""


def notification_tasks(body: bytes, lookup) -> tuple[list[dict], int, int]:
    """Tasks for the valid notifications of a POST, how many were refused, and how many lifecycle
    notifications repeated one already taken (merged: 1,000 identical `missed` are one catch-up). The work
    one request can cause is bounded: at most MAX_NOTIFICATIONS, MAX_SUBSCRIPTIONS distinct subscriptions
    looked up together (`lookup(ids)`: services.subscriptions_now), and one log line for all the refusals."""
    data = parse_json(body)
    if not isinstance(data, dict) or not isinstance(data.get("value"), list):
        raise BadRequest("body must be a JSON object with a 'value' list of notifications")
    if len(data["value"]) > MAX_NOTIFICATIONS:
        raise PayloadTooLarge(f"'value' lists {len(data['value'])} notifications; at most {MAX_NOTIFICATIONS} per request")
    ids = {n.get("subscriptionId") for n in data["value"] if isinstance(n, dict) and isinstance(n.get("subscriptionId"), str)}
    if len(ids) > MAX_SUBSCRIPTIONS:
        raise BadRequest(f"'value' names {len(ids)} subscriptions; at most {MAX_SUBSCRIPTIONS} per request")
    found = lookup({i for i in ids if _usable_id(i)})
    tasks, reasons, lifecycles = [], Counter(), set()
    for note in data["value"]:
        task, reason = check(note, found.get)
        if task is None:
            reasons[reason] += 1
        elif task["op"] != "outlook.lifecycle" or (task["sub"], task["event"]) not in lifecycles:
            lifecycles.add((task["sub"], task.get("event")))
            tasks.append(task)
    if reasons:
        log.warning("%d notification(s) refused and dropped: %s", sum(reasons.values()),
                    "; ".join(f"{reason} (×{count})" for reason, count in reasons.most_common(5)))
    refused = sum(reasons.values())
    return tasks, refused, len(data["value"]) - refused - len(tasks)
