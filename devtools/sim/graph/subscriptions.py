"""Subscriptions and notifications: api-reference/v1.0/resources/subscription.md, api/subscription-post-
subscriptions.md, subscription-update.md, subscription-delete.md, subscription-reauthorize.md;
concepts/change-notifications-delivery-webhooks.md (validation; delivery and retries are in delivery.py),
concepts/change-notifications-lifecycle-events.md, concepts/outlook-change-notifications-overview.md.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit

import requests

from ..base import HttpError, Request, Response, utcnow
from .exchange import ResourceSpeller, notification_etag
from .folders import IMMUTABLE_PREFER
from .model import (MAX_SUBSCRIPTION_MINUTES, MIN_SUBSCRIPTION_MINUTES, READ_CALENDARS, _RESOURCE, _CHANGE_TYPES,
    _LIFECYCLE_EVENTS, graph_time, parse_instant, Event, Subscription, Delivery, _Job)


class SubscriptionsAndNotifications:
    """Subscriptions, their validation, and the delivery of change and lifecycle notifications."""

    @property
    def resource_spelling(self) -> str:
        return self.spell_resource.spelling

    @resource_spelling.setter
    def resource_spelling(self, value: str) -> None:
        self.spell_resource = ResourceSpeller(value)

    @property
    def subscriptions(self) -> dict[str, dict]:
        with self.lock:
            return {s.id: {**s.to_json(), "tenantId": s.tenant_id, "active": s.active()}
                    for s in self._subs.values()}

    def expire_subscription(self, subscription_id: str) -> None:
        with self.lock:
            self._subs[subscription_id].expiration = utcnow() - timedelta(seconds=1)

    def pause_notifications(self) -> None:
        with self.lock:
            if self._paused is None:
                self._paused = []

    def resume_notifications(self, drop: bool = True) -> None:
        with self.lock:
            held, self._paused = self._paused or [], None
            if not drop:
                for job in held:
                    self._enqueue(job)

    def send_lifecycle(self, subscription_id: str, event: str) -> None:
        if event not in _LIFECYCLE_EVENTS:
            raise ValueError(f"lifecycle event must be one of {sorted(_LIFECYCLE_EVENTS)}")
        with self.lock:
            sub = self._subs[subscription_id]
            item = {"subscriptionId": sub.id, "subscriptionExpirationDateTime": graph_time(sub.expiration),
                    "tenantId": sub.tenant_id, "clientState": sub.client_state, "lifecycleEvent": event}
            self._enqueue(_Job(sub.lifecycle_url or sub.notification_url, [item]))
            if event == "subscriptionRemoved":
                del self._subs[subscription_id]

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Poll until every queued notification, retries included, has been delivered (or given up on)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self._pending == 0:
                    return
            time.sleep(0.01)
        raise TimeoutError(f"{self._pending} notification deliveries still pending after {timeout}s")

    def _changed(self, ev: Event, change_type: str) -> None:
        user = self.users[ev.mailbox]
        for sub in self._subs.values():
            if sub.mailbox != ev.mailbox or not sub.active() or change_type not in sub.change_type.split(","):
                continue
            if not self.covered(ev):
                continue  # in a calendar the subscription does not cover (folders.py, events_cover)
            shown = self.shown_id(ev.id, sub.immutable_ids)  # the id form the subscription was made with
            resource = self.spell_resource(user.id, user.tenant_id, shown)
            item = {"subscriptionId": sub.id, "subscriptionExpirationDateTime": graph_time(sub.expiration),
                    "changeType": change_type, "resource": resource,
                    "resourceData": {"@odata.type": "#Microsoft.Graph.Event", "@odata.id": resource,
                                     "@odata.etag": notification_etag(ev.change_key, self.etag_form),
                                     "id": shown},
                    "clientState": sub.client_state, "tenantId": sub.tenant_id}
            for _ in range(max(1, self.duplicate_notifications)):
                self._enqueue(_Job(sub.notification_url, [item]))

    def _visible_sub(self, req: Request) -> tuple[dict, Subscription]:
        claims = self._auth(req, READ_CALENDARS)
        with self.lock:
            sub = self._subs.get(req.params["id"])
        if sub is None or not sub.active() or sub.app_id != claims.get("appid") or sub.tenant_id != claims["tid"]:
            raise HttpError(404, "ResourceNotFound", "The object was not found.")
        return claims, sub

    def _expiration(self, value) -> datetime:
        try:
            when = parse_instant(value)
        except (TypeError, ValueError, AttributeError):
            raise HttpError(400, "InvalidRequest", "Could not process subscription creation payload. Are all "
                            "property names spelled and camelCased properly? Also are the dateTimeOffest "
                            "properties in a valid internet format?") from None
        now = utcnow()
        if when > now + timedelta(minutes=MAX_SUBSCRIPTION_MINUTES):
            raise HttpError(400, "ExtensionError",
                            f"Subscription expiration can only be {MAX_SUBSCRIPTION_MINUTES} minutes in the future.")
        if when <= now:
            raise HttpError(400, "ExtensionError", "Subscription expiration time must be in the future.")
        return max(when, now + timedelta(minutes=MIN_SUBSCRIPTION_MINUTES))

    def _post_sub(self, req: Request) -> Response:
        claims = self._auth(req, READ_CALENDARS)
        data = req.json()
        required = ("changeType", "notificationUrl", "resource", "expirationDateTime")
        if not isinstance(data, dict) or any(not data.get(k) for k in required):
            raise HttpError(400, "InvalidRequest", "Could not process subscription creation payload. Are all "
                            "property names spelled and camelCased properly? Also are the dateTimeOffest "
                            "properties in a valid internet format?")
        change_types = [c.strip() for c in data["changeType"].split(",")]
        if not change_types or any(c not in _CHANGE_TYPES for c in change_types):
            raise HttpError(400, "InvalidRequest", f"Invalid 'changeType' attribute: '{data['changeType']}'.")
        m = _RESOURCE.fullmatch(data["resource"])
        if not m:
            raise HttpError(400, "ExtensionError", f"Resource '{data['resource']}' is not supported.")
        user = self.user(m.group(1), claims["tid"])
        if user is None:
            raise HttpError(404, "ExtensionError", f"Operation: Create; Exception: [Status Code: NotFound; "
                            f"Reason: The requested user '{m.group(1)}' is invalid.]")
        expiration = self._expiration(data["expirationDateTime"])
        client_state = data.get("clientState")
        if client_state is not None and len(client_state) > 128:
            raise HttpError(400, "InvalidRequest", "clientState value length exceeds the maximum of 128 characters.")
        url, lifecycle = data["notificationUrl"], data.get("lifecycleNotificationUrl")
        for u in filter(None, (url, lifecycle)):
            if not _url_allowed(u):
                raise HttpError(400, "InvalidRequest", f"Invalid notification URL '{u}': it must use HTTPS.")
        # concepts/change-notifications-delivery-webhooks.md, "Notification endpoint validation": Graph
        # validates the notificationUrl and, when given, the lifecycleNotificationUrl: each one, even if equal.
        for u in filter(None, (url, lifecycle)):
            self._validate_endpoint(u)
        sub = Subscription(str(uuid.uuid4()), claims["tid"], claims.get("appid", ""), user.id, data["resource"],
                           ",".join(change_types), url, lifecycle, client_state, expiration,
                           immutable_ids=bool(IMMUTABLE_PREFER.search(",".join(req.headers.get_all("Prefer") or []))))
        with self.lock:
            self._subs[sub.id] = sub
        return Response(201, {"@odata.context": f"{self.graph_url}/$metadata#subscriptions/$entity",
                              **sub.to_json()})

    def _validate_endpoint(self, url: str) -> None:
        token = f"Validation: Testing client application reachability for subscription Request-Id: {uuid.uuid4()}"
        target = url + ("&" if urlsplit(url).query else "?") + urlencode({"validationToken": token})
        started = time.monotonic()
        status, error = None, None
        try:
            resp = self._session().post(target, data=b"", timeout=self.validation_timeout,
                                        headers={"Content-Type": "text/plain; charset=utf-8"})
            status = resp.status_code
            if status != 200:
                error = "Notification endpoint must respond with 200 OK to validation request."
            elif not resp.headers.get("Content-Type", "").lower().startswith("text/plain"):
                error = "Notification endpoint must respond with a text/plain content type."
            elif resp.text != token:
                error = "Response must exactly match validationToken query parameter."
        except requests.Timeout:
            error = "Subscription validation request timed out."
        except requests.RequestException as e:
            error = f"Notification endpoint is not reachable ({type(e).__name__})."
        with self.lock:
            self.validations.append(Delivery(target, {}, status, time.monotonic() - started, 1, error))
        if error:
            raise HttpError(400, "ValidationError", f"Subscription validation request failed. {error}")

    def _list_subs(self, req: Request) -> Response:
        claims = self._auth(req, READ_CALENDARS)
        with self.lock:
            value = [s.to_json() for s in self._subs.values()
                     if s.active() and s.app_id == claims.get("appid") and s.tenant_id == claims["tid"]]
        return Response(200, {"@odata.context": f"{self.graph_url}/$metadata#subscriptions", "value": value})

    def _get_sub(self, req: Request) -> Response:
        _, sub = self._visible_sub(req)
        return Response(200, {"@odata.context": f"{self.graph_url}/$metadata#subscriptions/$entity",
                              **sub.to_json()})

    def _patch_sub(self, req: Request) -> Response:
        _, sub = self._visible_sub(req)
        data = req.json()
        if "expirationDateTime" in data:
            expiration = self._expiration(data["expirationDateTime"])
            with self.lock:
                sub.expiration = expiration
        return Response(200, {"@odata.context": f"{self.graph_url}/$metadata#subscriptions/$entity",
                              **sub.to_json()})

    def _delete_sub(self, req: Request) -> Response:
        _, sub = self._visible_sub(req)
        with self.lock:
            self._subs.pop(sub.id, None)
        return Response(204)

    def _reauthorize_sub(self, req: Request) -> Response:
        self._visible_sub(req)
        return Response(204)


def _url_allowed(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost"))
