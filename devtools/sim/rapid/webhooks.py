"""The site's internal webhooks, their delivery (a thread, retries with back-off), and remote actions.

- Triggers and bodies: Rapid-Docs "docs/Rapid/4-Developer Manual/Omnichannel/outlook-integration/
  outlook-integration.md" (the integration guide: "Item Created", "Item Updated", "Item Deleted",
  "Items Deleted" webhooks with callback URLs); the body is the item profile (docs/rapid-api.md, "Site
  webhooks"); the "Items Deleted" body is unpublished (`RapidVariant.deleted_body`).
- `webhooks=true|false` and its default (false for application users): Rapid-Docs
  "blog/2023-07-20-1.30.12 - Rapid Platform", "Breaking Change - API user webhook control".
- Bulk creates fire nothing unless `bulkEvents=true`: Rapid-Docs "docs/Rapid/4-Developer Manual/API
  Concepts/API Concepts.md", "Creating several items and triggering a webhook for each".
- Environment headers: Rapid-Docs "blog/2023-03-23-1.29.0 - Rapid Platform", "Environment Headers"
  ("Webhooks and Service tasks … now will carry environment information in their headers"). The header
  NAME is unpublished: the simulator sends `X-Rapid-Environment: <environment>` (ENVIRONMENT_HEADER).
- The remote-action envelope: Rapid-Docs "docs/Rapid/3-Keyper Manual/2-Designer/3-Menus/Menu Actions/
  perform-remote-action/perform-remote-action.md", "Post Body" (`site`, `tenant`, `environment`,
  `requestor`, `item`, `formData`; `item` an array with "Single Request" ON, else one request per item).
"""

from __future__ import annotations

import copy
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from shared import clock

TRIGGERS = ("Item Created", "Item Updated", "Item Deleted", "Items Deleted")
ENVIRONMENT_HEADER = "X-Rapid-Environment"  # unpublished name (blog 1.29.0 only says "environment headers")
MEETINGS_WEBHOOKS = (
    ("Meetings", "Item Created", "meeting/create"),
    ("Meeting Events", "Item Created", "event/create"),
    ("Meeting Events", "Item Updated", "event/update"),
    ("Meeting Events", "Item Deleted", "event/delete"),
    ("Meeting Events", "Items Deleted", "event/delete"),
    ("Meeting Subscriptions", "Item Updated", "subscriptions/update"),
    ("Meeting Subscriptions", "Items Deleted", "subscriptions/delete"),
)

# Not in the integration guide: the webhooks this app's agenda section needs (issue 15; docs/operations.md).
# A single deletion fires "Item Deleted", several "Items Deleted": both reach agenda/delete.
AGENDA_WEBHOOKS = (
    ("Meeting Agendas", "Item Created", "agenda/create"),
    ("Meeting Agendas", "Item Updated", "agenda/update"),
    ("Meeting Agendas", "Item Deleted", "agenda/delete"),
    ("Meeting Agendas", "Items Deleted", "agenda/delete"),
)


@dataclass
class Webhook:
    table: str
    trigger: str
    url: str


@dataclass
class WebhookDelivery:
    url: str
    trigger: str
    table: str
    body: Any
    status: int | None
    attempt: int
    error: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    time: float = field(default_factory=time.time)


def envelope(tenant: str, site: str, environment: str, requestor: int, item, form_data: dict | None = None,
             action_id: str | None = None) -> dict:
    """The body RAPID posts for a remote action (perform-remote-action.md, "Post Body")."""
    body = {"site": site, "tenant": tenant, "environment": environment, "requestor": requestor}
    if action_id is not None:
        body["actionId"] = action_id
    body.update({"item": item, "formData": form_data or {}})
    return body


def items_deleted_body(shape: str, profiles: list[dict], tenant: str, site: str, environment: str,
                       requestor: int) -> Any:
    """The unpublished "Items Deleted" body, per `RapidVariant.deleted_body`."""
    if shape == "ids":
        return [p["id"] for p in profiles]
    if shape == "envelope":
        return envelope(tenant, site, environment, requestor, profiles)
    return profiles


def parse_flag(value: str | None, default: bool, name: str = "webhooks") -> bool:
    """`webhooks=true|false` (blog 1.30.12); anything else is a 400 (raised by the caller)."""
    if value is None or value == "":
        return default
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise ValueError(f"{name} must be true or false, not {value!r}")


class Deliverer:
    """One thread per site posting queued webhook bodies; 5xx and network errors are retried
    `retries` times with exponential back-off from `backoff` seconds."""

    def __init__(self, name: str, lock: threading.RLock, headers: dict[str, str]):
        self.lock = lock
        self.headers = headers                      # live dict: the site's webhook_headers
        self.deliveries: list[WebhookDelivery] = []
        self.retries, self.backoff, self.timeout = 3, 0.2, 10.0
        self.pending = 0
        self._queue: queue.Queue = queue.Queue()
        self._session = requests.Session()
        self._session.trust_env = False
        threading.Thread(target=self._loop, name=name, daemon=True).start()

    def put(self, hook: Webhook, body: Any, headers: dict[str, str]) -> None:
        with self.lock:
            self.pending += 1
        self._queue.put((hook, copy.deepcopy(body), dict(headers)))

    def stop(self) -> None:
        self._queue.put(None)

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            hook, body, headers = job
            try:
                self._deliver(hook, body, headers)
            finally:
                with self.lock:
                    self.pending -= 1

    def _deliver(self, hook: Webhook, body: Any, headers: dict[str, str]) -> None:
        for attempt in range(1, self.retries + 2):
            status, error = None, None
            try:
                resp = self._session.post(hook.url, json=body, timeout=self.timeout, headers=headers)
                status = resp.status_code
            except requests.RequestException as e:
                error = f"{type(e).__name__}: {e}"
            with self.lock:
                self.deliveries.append(WebhookDelivery(hook.url, hook.trigger, hook.table, body, status, attempt,
                                                       error, headers))
            if status is not None and status < 500:
                return
            if attempt <= self.retries:
                time.sleep(clock.wall_seconds(self.backoff * 2 ** (attempt - 1)))  # back-off in world time
