"""Microsoft Graph (Outlook calendars, subscriptions, change notifications) and the identity platform's
client-credentials token endpoint, over HTTPS with a trustme CA.

It follows Microsoft's published contract by default (pages of microsoftgraph/microsoft-graph-docs-contrib
named where each behaviour is made; Exchange's value forms are in exchange.py). Where the pages leave a
behaviour open, each variant is a switch (constructor argument and attribute of the same name):
  if_match                  "ignore" (default) | "412" | "409"   If-Match on PATCH /events
  cancel_without_attendees  "refuse" (default) | "allow"         POST /events/{id}/cancel, no attendees
  transaction_duplicate     "first" (default) | "conflict"       a POST /events repeating a transactionId
  resource_spelling         "rotate" (default) | one of exchange.RESOURCE_SPELLINGS
  etag_form                 "exchange" (default) | "opaque"      a notification's resourceData.@odata.etag
  delta_token_lifetime      seconds (default 7 days); expire_delta_tokens() forces 410 SyncStateNotFound

Local allowance: a notificationUrl on http://127.0.0.1 or http://localhost is accepted (real Graph only
takes https), because the local Functions host is plain HTTP.
"""

from __future__ import annotations

import base64
import html
import json
import os
import queue
import re
import secrets
import ssl
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import jwt
import requests
import trustme

from .base import (DEFAULT_TOKEN_KEY, HttpError, LogEntry, Request, Response, SimServer, make_headers,
                   mint_token, read_token, utcnow)
from .exchange import ResourceSpeller, exchange_html, new_change_key, notification_etag, zone, zone_known

GRAPH_AUDIENCE = "https://graph.microsoft.com"
MAX_SUBSCRIPTION_MINUTES = 4230
MIN_SUBSCRIPTION_MINUTES = 45
MAILBOX_CONCURRENCY = 4

# App roles (application permissions) each endpoint needs, from the "Permissions" table of its page:
# api-reference/v1.0/api/user-get.md (User.Read.All, least privileged; User.ReadBasic.All is refused for
# app-only reads in practice, ../shared/FACTS.md), event-get/-update/-delete/-cancel.md, user-list-events.md,
# event-delta.md, user-list-calendarview.md (Calendars.Read to read, Calendars.ReadWrite to write),
# subscription-post-subscriptions.md (events: Calendars.Read). A $batch's inner requests are each checked.
DEFAULT_ROLES = ("Calendars.ReadWrite",)
READ_USERS = ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")
READ_CALENDARS = ("Calendars.Read", "Calendars.ReadWrite")
WRITE_CALENDARS = ("Calendars.ReadWrite",)
DELTA_TOKEN_LIFETIME = 7 * 24 * 3600.0

_U = r"/v1\.0/users/(?P<u>[^/]+)"
_CAL = r"(?:/calendar)?"
_MAILBOX_PATH = re.compile(_U, re.IGNORECASE)
_EXT_FILTER = re.compile(
    r"singleValueExtendedProperties/any\(\s*(\w+)\s*:\s*\1/id\s+eq\s+'((?:[^']|'')*)'\s+and\s+"
    r"\1/value\s+eq\s+'((?:[^']|'')*)'\s*\)", re.IGNORECASE)
_EXT_EXPAND = re.compile(
    r"singleValueExtendedProperties(?:\(\s*\$filter\s*=\s*id\s+eq\s+'((?:[^']|'')*)'\s*\))?", re.IGNORECASE)
_SIMPLE_FILTER = re.compile(r"(\w+)\s+eq\s+'((?:[^']|'')*)'", re.IGNORECASE)
_RESOURCE = re.compile(r"/?users/([^/]+)/(?:calendar/)?events", re.IGNORECASE)
_CHANGE_TYPES = {"created", "updated", "deleted"}
_LIFECYCLE_EVENTS = {"reauthorizationRequired", "subscriptionRemoved", "missed"}
_TZ_PREFER = re.compile(r'outlook\.timezone\s*=\s*"?([^",]+)"?', re.IGNORECASE)
_PAGE_PREFER = re.compile(r"odata\.maxpagesize\s*=\s*(\d+)", re.IGNORECASE)


def graph_time(when: datetime, z: bool = True) -> str:
    """`2026-11-22T01:02:03.1234567Z` (Graph's 7-digit fractions)."""
    text = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond:06d}0"
    return text + "Z" if z else text


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant; without an offset it is UTC."""
    value = datetime.fromisoformat(_trim_fraction(text.strip().replace("Z", "+00:00")))
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _trim_fraction(text: str) -> str:
    return re.sub(r"(\.\d{6})\d+", r"\1", text)


def _unq(text: str) -> str:
    return text.replace("''", "'")


@dataclass
class User:
    id: str
    tenant_id: str
    upn: str
    display_name: str

    def to_json(self) -> dict:
        return {"businessPhones": [], "displayName": self.display_name, "givenName": None, "jobTitle": None,
                "mail": self.upn, "mobilePhone": None, "officeLocation": None, "preferredLanguage": None,
                "surname": None, "userPrincipalName": self.upn, "id": self.id}


@dataclass
class App:
    tenant_id: str
    client_id: str
    secret: str | None
    certificate_pem: str | None = None
    roles: tuple[str, ...] = DEFAULT_ROLES


@dataclass
class Event:
    id: str
    mailbox: str
    fields: dict
    start: tuple[datetime, str]
    end: tuple[datetime, str]
    ext: dict[str, str]
    created: datetime
    modified: datetime
    change_key: str
    seq: int

    def window(self) -> tuple[datetime, datetime]:
        return tuple(naive.replace(tzinfo=zone(z)).astimezone(timezone.utc) for naive, z in (self.start, self.end))


@dataclass
class Subscription:
    id: str
    tenant_id: str
    app_id: str
    mailbox: str
    resource: str
    change_type: str
    notification_url: str
    lifecycle_url: str | None
    client_state: str | None
    expiration: datetime

    def active(self) -> bool:
        return self.expiration > utcnow()

    def to_json(self) -> dict:
        return {"id": self.id, "resource": self.resource, "applicationId": self.app_id,
                "changeType": self.change_type, "clientState": self.client_state,
                "notificationUrl": self.notification_url, "notificationQueryOptions": None,
                "lifecycleNotificationUrl": self.lifecycle_url,
                "expirationDateTime": graph_time(self.expiration), "creatorId": self.app_id,
                "includeResourceData": None, "latestSupportedTlsVersion": "v1_2",
                "encryptionCertificate": None, "encryptionCertificateId": None,
                "notificationUrlAppId": None}


@dataclass
class Cancellation:
    mailbox: str
    event_id: str
    attendees: list[str]
    comment: str | None
    subject: str
    via: str
    time: float = field(default_factory=time.time)


@dataclass
class Delivery:
    url: str
    body: dict
    status: int | None
    elapsed: float
    attempt: int
    error: str | None = None
    time: float = field(default_factory=time.time)


@dataclass
class _Job:
    url: str
    items: list[dict]


class GraphSimulator(SimServer):
    api_prefixes = ("/v1.0/",)
    json_type = "application/json; odata.metadata=minimal; odata.streaming=true; charset=utf-8"
    name = "Microsoft Graph simulator"

    def __init__(self, token_key: str = DEFAULT_TOKEN_KEY, latency: float = 0.0,
                 latency_paths: list[str] | None = None, enforce_concurrency_limit: bool = False,
                 duplicate_notifications: int = 1, batch_notifications: bool = False,
                 batch_window: float = 0.05, notification_retries: int = 3, notification_backoff: float = 0.2,
                 notification_timeout: float = 3.0, notification_workers: int = 4,
                 validation_timeout: float = 10.0, notification_verify: bool | str = True,
                 if_match: str = "ignore", cancel_without_attendees: str = "refuse",
                 transaction_duplicate: str = "first", resource_spelling: str = "rotate",
                 etag_form: str = "exchange", delta_token_lifetime: float = DELTA_TOKEN_LIFETIME):
        super().__init__(token_key, latency, latency_paths)
        self.if_match = if_match
        self.cancel_without_attendees = cancel_without_attendees
        self.transaction_duplicate = transaction_duplicate
        self.spell_resource = ResourceSpeller(resource_spelling)
        self.etag_form = etag_form
        self.delta_token_lifetime = delta_token_lifetime
        self.on_request = None  # tests: a callable run with each API request before it is served
        self.enforce_concurrency_limit = enforce_concurrency_limit
        self.duplicate_notifications = duplicate_notifications
        self.batch_notifications = batch_notifications
        self.batch_window = batch_window
        self.notification_retries = notification_retries
        self.notification_backoff = notification_backoff
        self.notification_timeout = notification_timeout
        self.notification_workers = notification_workers
        self.validation_timeout = validation_timeout
        self.notification_verify = notification_verify
        self.apps: dict[tuple[str, str], App] = {}
        self.users: dict[str, User] = {}
        self.calendars: dict[str, dict[str, Event]] = {}
        self.cancellations: list[Cancellation] = []
        self.notifications_sent: list[Delivery] = []
        self.validations: list[Delivery] = []
        self.batch_inner_requests: list[LogEntry] = []
        self._subs: dict[str, Subscription] = {}
        self._removed: dict[str, dict[str, tuple[int, Event]]] = {}
        self._delta_states: dict[str, dict] = {}
        self._tokens_issued: dict[str, int] = {}
        self._seq = 0
        self._inflight: dict[str, int] = {}
        self._max_inflight: dict[str, int] = {}
        self._paused: list[_Job] | None = None
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._pending = 0
        self._workers: list[threading.Thread] = []
        self._local = threading.local()
        self._ca = trustme.CA()
        self.ca_path = os.path.join(tempfile.mkdtemp(prefix="graph-sim-"), "ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_path)
        self._routes_init()

    # -- lifecycle, inspection -------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert("127.0.0.1", "localhost").configure_cert(ctx)
        return ctx

    def start(self, port: int = 0, host: str = "127.0.0.1"):
        super().start(port, host)
        for i in range(self.notification_workers):
            worker = threading.Thread(target=self._deliver_loop, name=f"graph-sim-notify-{i}", daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self) -> None:
        for _ in self._workers:
            self._jobs.put(None)
        self._workers.clear()
        super().stop()

    @property
    def graph_url(self) -> str:
        return self.base_url + "/v1.0"

    def authority(self, tenant: str) -> str:
        return f"{self.base_url}/{tenant}"

    def http_session(self) -> requests.Session:
        """A requests session that trusts this simulator's CA (and ignores REQUESTS_CA_BUNDLE)."""
        session = requests.Session()
        session.verify = self.ca_path
        session.trust_env = False
        return session

    @property
    def resource_spelling(self) -> str:
        return self.spell_resource.spelling

    @resource_spelling.setter
    def resource_spelling(self, value: str) -> None:
        self.spell_resource = ResourceSpeller(value)

    def register_app(self, tenant_id: str, client_id: str, secret: str | None = None,
                     certificate_pem: str | None = None, roles=DEFAULT_ROLES) -> App:
        """An app registration; `roles` are the application permissions an admin consented to."""
        app = App(tenant_id, client_id, secret, certificate_pem, tuple(roles))
        with self.lock:
            self.apps[(tenant_id, client_id)] = app
        return app

    def add_user(self, tenant_id: str, upn: str, display_name: str | None = None, id: str | None = None) -> str:
        user = User(id or str(uuid.uuid4()), tenant_id, upn, display_name or upn.split("@")[0])
        with self.lock:
            self.users[user.id] = user
            self.calendars.setdefault(user.id, {})
            self._removed.setdefault(user.id, {})
        return user.id

    def mint_token(self, tenant_id: str, app_id: str = "sim-app", aud: str = GRAPH_AUDIENCE, roles=None) -> str:
        """A token as the token endpoint would issue it: the registered app's roles unless `roles` is given."""
        if roles is None:
            with self.lock:
                app = self.apps.get((tenant_id, app_id))
            roles = app.roles if app else DEFAULT_ROLES
        return mint_token(self.token_key, aud, tenant_id, app_id, roles=roles)

    def expire_delta_tokens(self) -> None:
        """Every delta and skip token issued so far now answers 410 SyncStateNotFound."""
        with self.lock:
            self._delta_states.clear()

    def token_requests(self, tenant: str | None = None) -> int:
        """Tokens issued by the token endpoint (for one tenant, or all)."""
        with self.lock:
            return self._tokens_issued.get(tenant, 0) if tenant else sum(self._tokens_issued.values())

    def user(self, mailbox: str, tenant_id: str | None = None) -> User | None:
        key = mailbox.lower()
        with self.lock:
            for u in self.users.values():
                if (u.id.lower() == key or u.upn.lower() == key) and tenant_id in (None, u.tenant_id):
                    return u
        return None

    def events(self, mailbox: str) -> list[dict]:
        user = self._must_user(mailbox)
        with self.lock:
            return [self._render(ev, expand="") for ev in self.calendars[user.id].values()]

    def get_event(self, mailbox: str, event_id: str) -> dict | None:
        user = self._must_user(mailbox)
        with self.lock:
            ev = self.calendars[user.id].get(event_id)
            return self._render(ev, expand="") if ev else None

    @property
    def subscriptions(self) -> dict[str, dict]:
        with self.lock:
            return {s.id: {**s.to_json(), "tenantId": s.tenant_id, "active": s.active()}
                    for s in self._subs.values()}

    def expire_subscription(self, subscription_id: str) -> None:
        with self.lock:
            self._subs[subscription_id].expiration = utcnow() - timedelta(seconds=1)

    def max_concurrency(self, mailbox: str | None = None) -> int:
        with self.lock:
            if mailbox is None:
                return max(self._max_inflight.values(), default=0)
            return self._max_inflight.get(self._mailbox_key(mailbox), 0)

    def count(self, method: str | None = None, path_contains: str | None = None, mailbox: str | None = None,
              batch_inner: bool = False) -> int:
        key = self._mailbox_key(mailbox) if mailbox else None
        with self.lock:
            entries = self.batch_inner_requests if batch_inner else self.log
            return sum(1 for e in entries
                       if (method is None or e.method == method.upper())
                       and (path_contains is None or path_contains.lower() in e.path.lower())
                       and (key is None or e.mailbox == key))

    def reset_log(self) -> None:
        with self.lock:
            self.log.clear()
            self.batch_inner_requests.clear()
            self.notifications_sent.clear()
            self.validations.clear()
            self._max_inflight.clear()

    def state(self) -> dict:
        with self.lock:
            return {
                "users": [{**u.to_json(), "tenantId": u.tenant_id} for u in self.users.values()],
                "apps": [{"tenantId": a.tenant_id, "clientId": a.client_id} for a in self.apps.values()],
                "calendars": {self.users[m].upn: [self._render(ev, expand="") for ev in evs.values()]
                              for m, evs in self.calendars.items()},
                "subscriptions": self.subscriptions,
                "cancellations": [vars(c) for c in self.cancellations],
                "notificationsSent": len(self.notifications_sent),
                "requests": len(self.log),
                "tokensIssued": dict(self._tokens_issued),
            }

    # -- "Outlook user" helpers ------------------------------------------------------------

    def outlook_create(self, mailbox: str, **fields) -> dict:
        user = self._must_user(mailbox)
        with self.lock:
            ev, _ = self._create(user, fields)
            return self._render(ev, expand="")

    def outlook_update(self, mailbox: str, event_id: str, **fields) -> dict:
        user = self._must_user(mailbox)
        with self.lock:
            return self._render(self._update(user, event_id, fields), expand="")

    def outlook_cancel(self, mailbox: str, event_id: str, comment: str | None = None) -> None:
        user = self._must_user(mailbox)
        with self.lock:
            self._remove(user, event_id, comment, "outlook_cancel", always_record=True)

    def outlook_delete(self, mailbox: str, event_id: str) -> None:
        user = self._must_user(mailbox)
        with self.lock:
            self._remove(user, event_id, None, "outlook_delete")

    # -- notifications control -------------------------------------------------------------

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
        """Poll until every queued notification has been delivered (or given up on)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self._pending == 0:
                    return
            time.sleep(0.01)
        raise TimeoutError(f"{self._pending} notification deliveries still pending after {timeout}s")

    # -- routing ---------------------------------------------------------------------------

    def _routes_init(self) -> None:
        r = self.route
        r("GET", r"/(?P<tenant>[^/_][^/]*)/v2\.0/\.well-known/openid-configuration", self._openid)
        r("POST", r"/(?P<tenant>[^/_][^/]*)/oauth2/v2\.0/token", self._token)
        r("GET", r"/(?P<tenant>[^/_][^/]*)/discovery/v2\.0/keys", lambda req: Response(200, {"keys": []}))
        r("POST", r"/v1\.0/\$batch", self._batch)
        r("GET", _U, self._get_user)
        r("GET", _U + _CAL + r"/events", self._list_events)
        r("POST", _U + _CAL + r"/events", self._post_event)
        r("GET", _U + _CAL + r"/events/(?P<id>[^/]+)", self._get_event)
        r("PATCH", _U + _CAL + r"/events/(?P<id>[^/]+)", self._patch_event)
        r("DELETE", _U + _CAL + r"/events/(?P<id>[^/]+)", self._delete_event)
        r("POST", _U + _CAL + r"/events/(?P<id>[^/]+)/cancel", self._cancel_event)
        r("GET", _U + _CAL + r"/calendarView", self._calendar_view)
        r("GET", _U + _CAL + r"/calendarView/delta", self._delta)
        r("GET", r"/v1\.0/subscriptions", self._list_subs)
        r("POST", r"/v1\.0/subscriptions", self._post_sub)
        r("GET", r"/v1\.0/subscriptions/(?P<id>[^/]+)", self._get_sub)
        r("PATCH", r"/v1\.0/subscriptions/(?P<id>[^/]+)", self._patch_sub)
        r("DELETE", r"/v1\.0/subscriptions/(?P<id>[^/]+)", self._delete_sub)
        r("POST", r"/v1\.0/subscriptions/(?P<id>[^/]+)/reauthorize", self._reauthorize_sub)

    def error_body(self, code: str, message: str) -> dict:
        return {"error": {"code": code, "message": message, "innerError": {
            "date": utcnow().strftime("%Y-%m-%dT%H:%M:%S"), "request-id": str(uuid.uuid4()),
            "client-request-id": str(uuid.uuid4())}}}

    def extra_headers(self, req: Request) -> dict[str, str]:
        rid = str(uuid.uuid4())
        return {"request-id": rid, "client-request-id": req.header("client-request-id") or rid,
                "Strict-Transport-Security": "max-age=31536000"}

    def invoke(self, req: Request) -> Response:
        if self.on_request is not None:  # a test's "meanwhile in Outlook…", run before the request is served
            self.on_request(req)
        m = _MAILBOX_PATH.match(req.path)
        if not m:
            return super().invoke(req)
        key = req.mailbox = self._mailbox_key(unquote(m.group("u")))
        with self.lock:
            n = self._inflight.get(key, 0) + 1
            if self.enforce_concurrency_limit and n > MAILBOX_CONCURRENCY:
                return self.error(429, "ApplicationThrottled",
                                  "Application is over its MailboxConcurrency limit.", retry_after=1)
            self._inflight[key] = n
            self._max_inflight[key] = max(n, self._max_inflight.get(key, 0))
        try:
            return super().invoke(req)
        finally:
            with self.lock:
                self._inflight[key] -= 1

    def _mailbox_key(self, ident: str) -> str:
        user = self.user(ident)
        return user.id if user else ident.lower()

    def _must_user(self, mailbox: str) -> User:
        user = self.user(mailbox)
        if not user:
            raise KeyError(f"unknown mailbox {mailbox!r}")
        return user

    # -- identity platform -----------------------------------------------------------------

    def _tenant_known(self, tenant: str) -> bool:
        with self.lock:
            return any(a.tenant_id == tenant for a in self.apps.values()) or \
                any(u.tenant_id == tenant for u in self.users.values())

    def _aad_error(self, status: int, error: str, code: int, description: str) -> Response:
        now = utcnow()
        return Response(status, {
            "error": error, "error_description": f"AADSTS{code}: {description} Trace ID: {uuid.uuid4()} "
                                                 f"Correlation ID: {uuid.uuid4()} Timestamp: {now:%Y-%m-%d %H:%M:%SZ}",
            "error_codes": [code], "timestamp": f"{now:%Y-%m-%d %H:%M:%SZ}", "trace_id": str(uuid.uuid4()),
            "correlation_id": str(uuid.uuid4()), "error_uri": f"{self.base_url}/error?code={code}"})

    def _openid(self, req: Request) -> Response:
        tenant = req.params["tenant"]
        if not self._tenant_known(tenant):
            return self._aad_error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found. Check to make "
                                   "sure you have the correct tenant ID and are signing into the correct cloud.")
        t = f"{self.base_url}/{tenant}"
        return Response(200, {
            "token_endpoint": f"{t}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{t}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{t}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{self.base_url}/oidc/userinfo",
            "authorization_endpoint": f"{t}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{t}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{t}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "tid"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
        }, content_type="application/json; charset=utf-8")

    def _token(self, req: Request) -> Response:
        tenant = req.params["tenant"]
        form = req.body() if isinstance(req.body(), dict) else {}
        if not self._tenant_known(tenant):
            return self._aad_error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found. Check to make "
                                   "sure you have the correct tenant ID and are signing into the correct cloud.")
        if form.get("grant_type") != "client_credentials":
            return self._aad_error(400, "unsupported_grant_type", 70003,
                                   "The app requested an unsupported grant type.")
        client_id = form.get("client_id", "")
        with self.lock:
            app = self.apps.get((tenant, client_id))
        if app is None:
            return self._aad_error(400, "unauthorized_client", 700016,
                                   f"Application with identifier '{client_id}' was not found in the directory "
                                   f"'{tenant}'.")
        if not self._client_authenticated(app, form):
            return self._aad_error(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the "
                                   f"secret being sent in the request is the client secret value, not the client "
                                   f"secret ID, for a secret added to app '{client_id}'.")
        scopes = form.get("scope", "").split()
        resource = next((s[: -len("/.default")] for s in scopes if s.endswith("/.default")), None)
        if resource is None:
            return self._aad_error(400, "invalid_scope", 1002012, f"The provided value for scope "
                                   f"{form.get('scope', '')} is not valid. Client credential flows must have a "
                                   f"scope value with /.default suffixed to the resource identifier "
                                   f"(application ID URI).")
        with self.lock:
            self._tokens_issued[tenant] = self._tokens_issued.get(tenant, 0) + 1
        return Response(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                              "access_token": mint_token(self.token_key, resource, tenant, client_id,
                                                         roles=app.roles if resource == GRAPH_AUDIENCE else ())},
                        headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"},
                        content_type="application/json; charset=utf-8")

    def _client_authenticated(self, app: App, form: dict) -> bool:
        if "client_assertion" in form:
            if not app.certificate_pem:
                return False
            from cryptography import x509
            key = x509.load_pem_x509_certificate(app.certificate_pem.encode()).public_key()
            try:
                claims = jwt.decode(form["client_assertion"], key, algorithms=["RS256", "PS256"],
                                    options={"verify_aud": False})
            except jwt.PyJWTError:
                return False
            return claims.get("iss") == app.client_id and claims.get("sub") == app.client_id
        return app.secret is not None and secrets.compare_digest(form.get("client_secret", ""), app.secret)

    # -- Graph helpers ---------------------------------------------------------------------

    def _auth(self, req: Request, roles: tuple[str, ...] = ()) -> dict:
        """The token's claims; 403 when it carries none of `roles` (the endpoint's permissions)."""
        authorization = req.header("Authorization")
        if not authorization:
            raise HttpError(401, "InvalidAuthenticationToken", "Access token is empty.")
        claims = read_token(self.token_key, authorization)
        if claims is None:
            raise HttpError(401, "InvalidAuthenticationToken", "Access token validation failure.")
        if claims.get("aud") not in (GRAPH_AUDIENCE, GRAPH_AUDIENCE + "/"):
            raise HttpError(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
        if roles and not set(claims.get("roles") or ()) & set(roles):
            if roles == READ_USERS:
                raise HttpError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
            raise HttpError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        return claims

    def _mailbox(self, req: Request, roles: tuple[str, ...] = WRITE_CALENDARS) -> tuple[dict, User]:
        claims = self._auth(req, roles)
        ident = req.params["u"]
        user = self.user(ident, claims["tid"])
        if user is None:
            raise HttpError(404, "ErrorInvalidUser", f"The requested user '{ident}' is invalid.")
        return claims, user

    def _prefer(self, req: Request, pattern: re.Pattern) -> str | None:
        m = pattern.search(",".join(req.headers.get_all("Prefer") or []))
        return m.group(1).strip() if m else None

    def _tz(self, req: Request) -> str | None:
        name = self._prefer(req, _TZ_PREFER)
        if name:
            try:
                zone(name)
            except HttpError:
                return None
        return name

    def _event_or_404(self, user: User, event_id: str) -> Event:
        ev = self.calendars[user.id].get(event_id)
        if ev is None:
            raise HttpError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        return ev

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _context(self, user: User, suffix: str) -> str:
        return f"{self.graph_url}/$metadata#users('{user.id}')/{suffix}"

    # -- events ----------------------------------------------------------------------------

    def _parse_time(self, value, name: str) -> tuple[datetime, str]:
        if not isinstance(value, dict) or not value.get("dateTime"):
            raise HttpError(400, "ErrorInvalidRequest", f"Property '{name}' requires dateTime and timeZone.")
        tz_name = value.get("timeZone") or "UTC"
        zone(tz_name)
        try:
            parsed = datetime.fromisoformat(_trim_fraction(value["dateTime"].replace("Z", "+00:00")))
        except ValueError:
            raise HttpError(400, "ErrorInvalidRequest",
                            f"Cannot convert the literal '{value['dateTime']}' to the expected type.") from None
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(zone(tz_name)).replace(tzinfo=None)
        return parsed, tz_name

    def _apply(self, ev_fields: dict, data: dict, start, end) -> tuple:
        for key, value in data.items():
            if key.startswith("@") or key in ("id", "changeKey", "createdDateTime", "lastModifiedDateTime",
                                              "iCalUId", "organizer", "singleValueExtendedProperties"):
                continue
            if key == "start":
                start = self._parse_time(value, "start")
            elif key == "end":
                end = self._parse_time(value, "end")
            elif key == "body":
                ev_fields["body"] = _body(value)
            elif key == "location":
                ev_fields["location"] = _location(value)
                ev_fields["locations"] = [ev_fields["location"]] if ev_fields["location"]["displayName"] else []
            elif key == "attendees":
                ev_fields["attendees"] = [_attendee(a) for a in value or []]
            else:
                ev_fields[key] = value
        if start is None or end is None:
            raise HttpError(400, "ErrorInvalidRequest", "The event must have a start and an end.")
        if ev_fields.get("isAllDay"):
            midnight = all(t.time() == datetime.min.time() for t, _ in (start, end))
            if not midnight or end[0].date() <= start[0].date():
                raise HttpError(400, "ErrorInvalidRequest",
                                "Your request can't be completed. If the event is an all-day event, the start "
                                "and end times must be at midnight, and the event must be at least one day long.")
        return start, end

    def _create(self, user: User, data: dict) -> tuple[Event, bool]:
        txn = data.get("transactionId")
        if txn:
            # api-reference/v1.0/resources/event.md, transactionId: "avoids unnecessary retries on the server";
            # what the duplicate POST answers is not documented: the first event (default) or a refusal.
            for ev in self.calendars[user.id].values():
                if ev.fields.get("transactionId") == txn:
                    if self.transaction_duplicate == "conflict":
                        raise HttpError(409, "ErrorDuplicateTransactionId",
                                        "An event with this transactionId already exists.")
                    return ev, False
        fields = {"subject": "", "body": {"contentType": "text", "content": ""}, "location": _location(None),
                  "locations": [], "attendees": [], "isAllDay": False, "isCancelled": False,
                  "transactionId": None,
                  "iCalUId": "040000008200E00074C5B7101A82E00800000000" + secrets.token_hex(28).upper()}
        start, end = self._apply(fields, data, None, None)
        now = utcnow()
        ext = {p["id"]: p.get("value") for p in data.get("singleValueExtendedProperties") or []}
        ev = Event(_event_id(), user.id, fields, start, end, ext, now, now, new_change_key(), self._next_seq())
        self.calendars[user.id][ev.id] = ev
        self._changed(ev, "created")
        return ev, True

    def _update(self, user: User, event_id: str, data: dict) -> Event:
        ev = self._event_or_404(user, event_id)
        fields = dict(ev.fields)
        ev.start, ev.end = self._apply(fields, data, ev.start, ev.end)
        ev.fields = fields
        for p in data.get("singleValueExtendedProperties") or []:
            ev.ext[p["id"]] = p.get("value")
        ev.modified, ev.change_key, ev.seq = utcnow(), new_change_key(), self._next_seq()
        self._changed(ev, "updated")
        return ev

    def _remove(self, user: User, event_id: str, comment: str | None, via: str, always_record=False) -> None:
        ev = self._event_or_404(user, event_id)
        attendees = [a["emailAddress"]["address"] for a in ev.fields.get("attendees", [])]
        if attendees or always_record:
            self.cancellations.append(Cancellation(user.upn, ev.id, attendees, comment,
                                                   ev.fields.get("subject", ""), via))
        del self.calendars[user.id][ev.id]
        ev.seq = self._next_seq()
        self._removed[user.id][ev.id] = (ev.seq, ev)
        self._changed(ev, "deleted")

    def _render(self, ev: Event, tz: str | None = None, select: str | None = None,
                expand: str | None = None) -> dict:
        user = self.users[ev.mailbox]
        f = ev.fields
        out = {
            "@odata.etag": f'W/"{ev.change_key}"', "id": ev.id,
            "createdDateTime": graph_time(ev.created), "lastModifiedDateTime": graph_time(ev.modified),
            "changeKey": ev.change_key, "categories": [], "transactionId": None,
            "originalStartTimeZone": ev.start[1], "originalEndTimeZone": ev.end[1],
            "iCalUId": f["iCalUId"], "uid": f["iCalUId"], "reminderMinutesBeforeStart": 15,
            "isReminderOn": True, "hasAttachments": False, "subject": "",
            "bodyPreview": _preview(f["body"]), "importance": "normal", "sensitivity": "normal",
            "isAllDay": False, "isCancelled": False, "isOrganizer": True, "responseRequested": True,
            "seriesMasterId": None, "showAs": "busy", "type": "singleInstance",
            "webLink": f"https://outlook.office365.com/owa/?itemid={quote(ev.id, safe='')}&exvsurl=1&path=/calendar/item",
            "onlineMeetingUrl": None, "isOnlineMeeting": False, "onlineMeetingProvider": "unknown",
            "allowNewTimeProposals": True, "occurrenceId": None, "isDraft": False, "hideAttendees": False,
            "responseStatus": {"response": "organizer", "time": "0001-01-01T00:00:00Z"},
            "recurrence": None, "onlineMeeting": None,
            "organizer": {"emailAddress": {"name": user.display_name, "address": user.upn}},
        }
        out.update(f)
        out["start"], out["end"] = (self._render_time(ev, t, tz) for t in (ev.start, ev.end))
        if select:
            wanted = {s.strip().lower() for s in select.split(",")}
            out = {k: v for k, v in out.items() if k in ("@odata.etag", "id") or k.lower() in wanted}
        if expand is not None:
            m = _EXT_EXPAND.search(expand) if expand else None
            if expand == "" or m:
                wanted_id = _unq(m.group(1)).lower() if m and m.group(1) else None
                props = [{"id": k, "value": v} for k, v in ev.ext.items()
                         if wanted_id is None or _norm(k) == _norm(wanted_id)]
                if props:
                    out["singleValueExtendedProperties"] = props
        return out

    def _render_time(self, ev: Event, value: tuple[datetime, str], tz: str | None) -> dict:
        naive, zone_name = value
        if ev.fields.get("isAllDay"):
            local = naive
        else:
            local = naive.replace(tzinfo=zone(zone_name)).astimezone(zone(tz or "UTC")).replace(tzinfo=None)
        return {"dateTime": graph_time(local, z=False), "timeZone": tz or "UTC"}

    def _changed(self, ev: Event, change_type: str) -> None:
        user = self.users[ev.mailbox]
        for sub in self._subs.values():
            if sub.mailbox != ev.mailbox or not sub.active() or change_type not in sub.change_type.split(","):
                continue
            resource = self.spell_resource(user.id, user.tenant_id, ev.id)
            item = {"subscriptionId": sub.id, "subscriptionExpirationDateTime": graph_time(sub.expiration),
                    "changeType": change_type, "resource": resource,
                    "resourceData": {"@odata.type": "#Microsoft.Graph.Event", "@odata.id": resource,
                                     "@odata.etag": notification_etag(ev.change_key, self.etag_form),
                                     "id": ev.id},
                    "clientState": sub.client_state, "tenantId": sub.tenant_id}
            for _ in range(max(1, self.duplicate_notifications)):
                self._enqueue(_Job(sub.notification_url, [item]))

    # -- event handlers --------------------------------------------------------------------

    def _get_user(self, req: Request) -> Response:
        _, user = self._mailbox(req, READ_USERS)
        out = {"@odata.context": f"{self.graph_url}/$metadata#users/$entity", **user.to_json()}
        if req.query.get("$select"):
            wanted = {s.strip().lower() for s in req.query["$select"].split(",")}
            out = {k: v for k, v in out.items() if k.startswith("@") or k == "id" or k.lower() in wanted}
        return Response(200, out)

    def _post_event(self, req: Request) -> Response:
        _, user = self._mailbox(req)
        data = req.json()
        with self.lock:
            ev, _ = self._create(user, data)
            out = self._render(ev, self._tz(req))
        return Response(201, {"@odata.context": self._context(user, "events/$entity"), **out})

    def _get_event(self, req: Request) -> Response:
        _, user = self._mailbox(req, READ_CALENDARS)
        with self.lock:
            ev = self._event_or_404(user, req.params["id"])
            out = self._render(ev, self._tz(req), req.query.get("$select"), req.query.get("$expand"))
        return Response(200, {"@odata.context": self._context(user, "events/$entity"), **out})

    def _list_events(self, req: Request) -> Response:
        _, user = self._mailbox(req, READ_CALENDARS)
        match = _event_filter(req.query.get("$filter"))
        top, skip = min(_int_param(req, "$top", 10), 1000), _int_param(req, "$skip", 0)
        with self.lock:
            found = [ev for ev in self.calendars[user.id].values() if match(ev)]
            page = [self._render(ev, self._tz(req), req.query.get("$select"), req.query.get("$expand"))
                    for ev in found[skip: skip + top]]
        out = {"@odata.context": self._context(user, "events"), "value": page}
        if skip + top < len(found):
            query = {**req.query, "$top": str(top), "$skip": str(skip + top)}
            out["@odata.nextLink"] = f"{self.base_url}{req.path}?{urlencode(query, quote_via=quote)}"
        return Response(200, out)

    def _patch_event(self, req: Request) -> Response:
        _, user = self._mailbox(req)
        data = req.json()
        match = req.header("If-Match")
        with self.lock:
            current = self._event_or_404(user, req.params["id"])
            # api-reference/v1.0/api/event-update.md, "Request headers": Authorization and Content-Type
            # only. If-Match is not part of the contract: ignored by default; the switch offers the two
            # answers Exchange is known to give when it does check a change key.
            stale = match and match not in ("*", f'W/"{current.change_key}"', current.change_key)
            if stale and self.if_match in ("412", "409"):
                raise HttpError(int(self.if_match), "ErrorIrresolvableConflict",
                                "The send or update operation could not be performed because the change key passed "
                                "in the request does not match the current change key for the item.")
            out = self._render(self._update(user, req.params["id"], data), self._tz(req))
        return Response(200, {"@odata.context": self._context(user, "events/$entity"), **out})

    def _delete_event(self, req: Request) -> Response:
        _, user = self._mailbox(req)
        with self.lock:
            self._remove(user, req.params["id"], None, "delete")
        return Response(204)

    def _cancel_event(self, req: Request) -> Response:
        _, user = self._mailbox(req)
        data = req.body() if req.raw else {}
        comment = data.get("Comment", data.get("comment")) if isinstance(data, dict) else None
        with self.lock:
            ev = self._event_or_404(user, req.params["id"])
            # api-reference/v1.0/api/event-cancel.md: "the organizer of a meeting" sends a cancellation;
            # what it answers for an event that is no meeting (no attendees) is not documented. Default:
            # refused like an attendee's call (400); DELETE (event-delete.md) removes any event.
            if not ev.fields.get("attendees") and self.cancel_without_attendees == "refuse":
                raise HttpError(400, "ErrorInvalidRequest", "Your request can't be completed. This event has no "
                                "attendees to send a cancellation to.")
            self._remove(user, req.params["id"], comment, "cancel", always_record=True)
        return Response(202)

    def _window(self, req: Request) -> tuple[datetime, datetime]:
        try:
            return parse_instant(req.query["startDateTime"]), parse_instant(req.query["endDateTime"])
        except (KeyError, ValueError):
            raise HttpError(400, "ErrorInvalidParameter", "This request requires a time window specified by the "
                            "query string parameters StartDateTime and EndDateTime.") from None

    def _in_window(self, ev: Event, start: datetime, end: datetime) -> bool:
        s, e = ev.window()
        return s < end and e > start

    def _calendar_view(self, req: Request) -> Response:
        _, user = self._mailbox(req, READ_CALENDARS)
        start, end = self._window(req)
        top, skip = min(_int_param(req, "$top", 10), 1000), _int_param(req, "$skip", 0)
        with self.lock:
            found = sorted((ev for ev in self.calendars[user.id].values() if self._in_window(ev, start, end)),
                           key=lambda ev: ev.window()[0])
            page = [self._render(ev, self._tz(req), req.query.get("$select")) for ev in found[skip: skip + top]]
        out = {"@odata.context": self._context(user, "calendarView"), "value": page}
        if skip + top < len(found):
            query = {**req.query, "$top": str(top), "$skip": str(skip + top)}
            out["@odata.nextLink"] = f"{self.base_url}{req.path}?{urlencode(query, quote_via=quote)}"
        return Response(200, out)

    def _delta(self, req: Request) -> Response:
        _, user = self._mailbox(req, READ_CALENDARS)
        size = max(1, int(self._prefer(req, _PAGE_PREFER) or 50))
        token = req.query.get("$skiptoken") or req.query.get("$deltatoken")
        with self.lock:
            if token:
                # api-reference/v1.0/api/event-delta.md and concepts/delta-query-overview.md: state tokens
                # expire; the client then starts over with a full read (410 SyncStateNotFound).
                state = self._delta_states.get(token)
                if (state is None or state["mailbox"] != user.id
                        or time.monotonic() - state["issued"] > self.delta_token_lifetime):
                    raise HttpError(410, "SyncStateNotFound", "The sync state generation is not found.")
                if "$skiptoken" in req.query:
                    items, seq = state["items"], state["seq"]
                else:
                    items, seq = self._changes_since(user, state), self._seq
                start, end = state["start"], state["end"]
            else:
                start, end = self._window(req)
                items = [("event", ev.id) for ev in sorted(self.calendars[user.id].values(),
                                                           key=lambda ev: ev.window()[0])
                         if self._in_window(ev, start, end)]
                seq = self._seq
            page, rest = items[:size], items[size:]
            value = []
            for kind, event_id in page:
                ev = self.calendars[user.id].get(event_id)
                if kind == "event" and ev:
                    value.append(self._render(ev, self._tz(req)))
                else:
                    value.append({"@odata.type": "#microsoft.graph.event", "id": event_id,
                                  "@removed": {"reason": "deleted"}})
            new_token = secrets.token_urlsafe(24)
            self._delta_states[new_token] = {"mailbox": user.id, "start": start, "end": end, "seq": seq,
                                             "items": rest, "issued": time.monotonic()}
        link = f"{self.graph_url}/users/{user.id}/calendarView/delta?"
        out = {"@odata.context": self._context(user, "calendarView(event)"), "value": value}
        if rest:
            out["@odata.nextLink"] = link + "$skiptoken=" + new_token
        else:
            out["@odata.deltaLink"] = link + "$deltatoken=" + new_token
        return Response(200, out, headers={"Preference-Applied": f"odata.maxpagesize={size}"})

    def _changes_since(self, user: User, state: dict) -> list[tuple[str, str]]:
        changes = []
        for ev in self.calendars[user.id].values():
            if ev.seq > state["seq"]:
                inside = self._in_window(ev, state["start"], state["end"])
                changes.append((ev.seq, ("event" if inside else "removed", ev.id)))
        for event_id, (seq, _) in self._removed[user.id].items():
            if seq > state["seq"]:
                changes.append((seq, ("removed", event_id)))
        return [item for _, item in sorted(changes)]

    # -- subscriptions ---------------------------------------------------------------------

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
                           ",".join(change_types), url, lifecycle, client_state, expiration)
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

    # -- $batch ----------------------------------------------------------------------------

    def _batch(self, req: Request) -> Response:
        self._auth(req)
        data = req.json()
        requests_ = data.get("requests") if isinstance(data, dict) else None
        if not isinstance(requests_, list) or not requests_:
            raise HttpError(400, "BadRequest", "Invalid batch payload format.")
        if len(requests_) > 20:
            raise HttpError(400, "BadRequest", "Number of batch requests exceeds the limit of 20.")
        ids = [str(r.get("id")) for r in requests_]
        if len(set(ids)) != len(ids) or any(not r.get("method") or not r.get("url") for r in requests_):
            raise HttpError(400, "BadRequest", "Batch requests need a unique id, a method and a url.")
        if any(r.get("dependsOn") for r in requests_):
            results: dict[str, dict] = {}
            for r in requests_:
                failed = [d for d in r.get("dependsOn") or [] if results.get(str(d), {}).get("status", 424) >= 400]
                results[str(r["id"])] = (self._inner(req, r) if not failed else
                                         {"id": str(r["id"]), "status": 424, "headers": {},
                                          "body": self.error_body("FailedDependency", "A dependency failed.")})
            responses = list(results.values())
        else:
            with ThreadPoolExecutor(max_workers=MAILBOX_CONCURRENCY) as pool:
                responses = list(pool.map(lambda r: self._inner(req, r), requests_))
        return Response(200, {"responses": responses})

    def _inner(self, outer: Request, spec: dict) -> dict:
        url = spec["url"] if spec["url"].startswith("/") else "/" + spec["url"]
        parts = urlsplit(url)
        headers = {"Authorization": outer.header("Authorization") or "", **(spec.get("headers") or {})}
        body = spec.get("body")
        if body is not None and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
        raw = b"" if body is None else body.encode() if isinstance(body, str) else json.dumps(body).encode()
        inner = Request(spec["method"].upper(), "/v1.0" + unquote(parts.path),
                        dict(parse_qsl(parts.query, keep_blank_values=True)), make_headers(headers), raw,
                        url=url, inner=True)
        try:
            resp = self.process(inner)
        except Exception as e:
            resp = self.error(500, "InternalServerError", f"Simulator error: {e!r}")
        try:
            logged_body = inner.body()
        except HttpError:
            logged_body = raw.decode("utf-8", "replace")
        with self.lock:
            self.batch_inner_requests.append(LogEntry(time.time(), inner.method, inner.path, dict(inner.query),
                                                      dict(inner.headers.items()), logged_body, resp.status,
                                                      inner.mailbox))
        out_headers = dict(resp.headers)
        if resp.body is not None:
            out_headers["Content-Type"] = resp.content_type or "application/json"
        return {"id": str(spec["id"]), "status": resp.status, "headers": out_headers, "body": resp.body}

    # -- delivery --------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.trust_env = False
            session.verify = self.notification_verify
        return session

    def _enqueue(self, job: _Job) -> None:
        with self.lock:
            if self._paused is not None and "lifecycleEvent" not in job.items[0]:
                self._paused.append(job)
                return
            self._pending += 1
        self._jobs.put(job)

    def _deliver_loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            jobs = [job]
            if self.batch_notifications:
                deadline = time.monotonic() + self.batch_window
                while len(jobs) < 100:
                    try:
                        more = self._jobs.get(timeout=max(0.0, deadline - time.monotonic()))
                    except queue.Empty:
                        break
                    if more is None:
                        self._jobs.put(None)
                        break
                    jobs.append(more)
            groups: dict[str, list[dict]] = {}
            for j in jobs:
                groups.setdefault(j.url, []).extend(j.items)
            for url, items in groups.items():
                self._post_notification(url, items)
            with self.lock:
                self._pending -= len(jobs)

    def _post_notification(self, url: str, items: list[dict]) -> None:
        with self.lock:
            items = [i for i in items if "lifecycleEvent" in i
                     or (i["subscriptionId"] in self._subs and self._subs[i["subscriptionId"]].active())]
        if not items:
            return
        body = {"value": items}
        for attempt in range(1, self.notification_retries + 2):
            started = time.monotonic()
            status, error = None, None
            try:
                resp = self._session().post(url, json=body, timeout=self.notification_timeout)
                status = resp.status_code
            except requests.RequestException as e:
                error = f"{type(e).__name__}: {e}"
            with self.lock:
                self.notifications_sent.append(Delivery(url, body, status, time.monotonic() - started, attempt,
                                                        error))
            if status is not None and (status < 500 and status != 429):
                return
            if attempt <= self.notification_retries:
                time.sleep(self.notification_backoff * 2 ** (attempt - 1))


def _int_param(req: Request, name: str, default: int) -> int:
    try:
        return max(0, int(req.query.get(name, default)))
    except ValueError:
        raise HttpError(400, "BadRequest", f"Invalid value for {name}: '{req.query[name]}'.") from None


def _event_id() -> str:
    return "AAMkAD" + base64.urlsafe_b64encode(os.urandom(104)).decode()


def _norm(ext_id: str) -> str:
    return " ".join(ext_id.lower().split())


def _body(value) -> dict:
    value = value or {}
    ctype = str(value.get("contentType", "text")).lower()
    content = value.get("content") or ""
    if ctype == "html":
        content = exchange_html(content)  # Exchange keeps its own document, not what it was sent
    return {"contentType": "html" if ctype == "html" else "text", "content": content}


def _preview(body: dict) -> str:
    text = body.get("content", "")
    if body.get("contentType") == "html":
        text = re.sub(r"<head>.*?</head>", "", text, flags=re.S | re.I)
        text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    return " ".join(text.split())[:255]


def _location(value) -> dict:
    value = value or {}
    return {"displayName": value.get("displayName") or "", "locationType": value.get("locationType", "default"),
            "uniqueIdType": "unknown", "address": value.get("address") or {},
            "coordinates": value.get("coordinates") or {}}


def _attendee(value: dict) -> dict:
    email = value.get("emailAddress") or {}
    if not email.get("address"):
        raise HttpError(400, "ErrorInvalidRecipients", "At least one recipient isn't valid.")
    return {"type": value.get("type", "required"),
            "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
            "emailAddress": {"name": email.get("name", email["address"]), "address": email["address"]}}


def _event_filter(text: str | None):
    if not text:
        return lambda ev: True
    m = _EXT_FILTER.fullmatch(text.strip())
    if m:
        prop_id, value = _norm(_unq(m.group(2))), _unq(m.group(3))
        return lambda ev: any(_norm(k) == prop_id and v == value for k, v in ev.ext.items())
    m = _SIMPLE_FILTER.fullmatch(text.strip())
    if m:
        key, value = m.group(1), _unq(m.group(2))
        return lambda ev: ev.fields.get(key) == value
    raise HttpError(400, "ErrorInvalidUrlQueryFilter", f"The query filter contains one or more invalid nodes: {text}")


def _url_allowed(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost"))
