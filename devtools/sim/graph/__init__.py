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
  join_info_after_reads     0 (default: in the create answer, as the online-meetings page shows) | N: a Teams
                            meeting's onlineMeeting and body block arrive on the Nth read of the event
  unsupported_provider      "ignore" (default: the event is made without) | "refuse" (400)  an online
                            meeting asked of a calendar that does not offer the provider
  free_busy_details         "subject" (default) | "none"          getSchedule items with or without subject
  notification_retry_window None (default: notification_retries attempts more) | seconds: redelivery as
                            published, for up to that long (4 h: delivery.NOTIFICATION_RETRY_WINDOW), then
                            dropped; waits capped at notification_backoff_cap (delivery.py)
  occurrence_notifications  "master" (default) | "occurrence"   which event a notification of an occurrence's
                            edit or cancellation names (series.py)
  delta_occurrences         "bare" (default) | "full"      what calendarView/delta gives of an occurrence (series.py)
  scope_refusal             "access-policy" (default) | "denied"   the 403 ErrorAccessDenied message of a mailbox
                            outside the app's Exchange scope (scope.py: scope_app, add_group)
  room_answers              "later" (default) | "at once"  when a room's answer reaches the organiser's event; with
                            room_answer_delay (seconds, 0.5; None: at deliver_room_answers()) and
                            room_answer_notified (True) (rooms.py)
Every time it keeps (expiries, token lifetimes, delta-token lifetime, retry waits, modified dates) is world
time (shared/clock.py via base.utcnow): devtools may run it on an accelerated clock shared with the app.
Outlook's limit of 4 concurrent requests per app and mailbox is enforced (429, counted per mailbox in
mailbox_concurrency_refusals); enforce_concurrency_limit=False only counts, for tests that need more.

Outlook-side actions for tests: outlook_create / outlook_update / outlook_cancel / outlook_delete (an
occurrence's id cancels or edits that occurrence), outlook_make_series (series.py), and
attendee_answers(mailbox, event_id, email, response, proposed_start=None, proposed_end=None), an invitee
answering the organiser's meeting; set_mailbox_state(mailbox, "de-licensed" | "soft-deleted" | "available"),
a mailbox every call to answers 404 MailboxNotEnabledForRESTAPI while its events stay (identity.py) (attendee.md, responsestatus.md; the organiser's event is updated and
notified). Events keep categories, showAs, sensitivity and reminders as event.md types them.
Rooms and working hours (rooms.py, working_hours.py; docs/platform-facts.md, "Rooms and working hours"):
add_room / add_room_list / set_room_policy, deliver_room_answers, replies_from_rooms, set_working_hours,
calendar_holds(mailbox) (schedule.py).

Local allowance: a notificationUrl on http://127.0.0.1 or http://localhost is accepted (real Graph only
takes https), because the local Functions host is plain HTTP.

One module per published resource: identity (tokens, users), events, delta, subscriptions (and
notifications), batch, schedule (getSchedule, free/busy), rooms (places, resource booking), mail (what attendees are mailed for a PATCH,
counted by update_mails(mailbox, event_id, kind)); exchange holds the forms Exchange gives values; model the data.
"""

from __future__ import annotations

import os
import queue
import ssl
import tempfile
import threading
import uuid
from urllib.parse import unquote

import requests
import trustme

from ..base import DEFAULT_TOKEN_KEY, LogEntry, Request, Response, SimServer, read_token, utcnow
from .exchange import ResourceSpeller
from .model import (MAILBOX_CONCURRENCY, DELTA_TOKEN_LIFETIME, _U, _CAL, _MAILBOX_PATH, User, App, Event,
    Subscription, Cancellation, Delivery, _Job)
from .batch import Batching
from .delivery import NOTIFICATION_BACKOFF_CAP, NotificationDelivery
from .delta import CalendarDelta
from .events import Calendars
from .folders import Folders
from .identity import IdentityPlatform
from .mail import AttendeeMail, AttendeeMailing
from .pages import register as register_pages
from .rooms import BookingPolicy, Rooms
from .schedule import FreeBusy
from .scope import AppScopes
from .series import Series
from .subscriptions import SubscriptionsAndNotifications
from .working_hours import WorkingHours

__all__ = ["GraphSimulator", "Subscription", "User", "Event", "App", "Cancellation", "Delivery", "AttendeeMail",
           "BookingPolicy"]


class GraphSimulator(IdentityPlatform, Folders, Series, Calendars, AttendeeMailing, CalendarDelta, SubscriptionsAndNotifications,
                     NotificationDelivery, Batching, Rooms, WorkingHours, FreeBusy, AppScopes, SimServer):
    api_prefixes = ("/v1.0/",)
    json_type = "application/json; odata.metadata=minimal; odata.streaming=true; charset=utf-8"
    name = "Microsoft Graph simulator"

    def __init__(self, token_key: str = DEFAULT_TOKEN_KEY, latency: float = 0.0,
                 latency_paths: list[str] | None = None, enforce_concurrency_limit: bool = True,
                 duplicate_notifications: int = 1, batch_notifications: bool = False,
                 batch_window: float = 0.05, notification_retries: int = 3, notification_backoff: float = 0.2,
                 notification_timeout: float = 3.0, notification_workers: int = 4,
                 validation_timeout: float = 10.0, notification_verify: bool | str = True,
                 if_match: str = "ignore", cancel_without_attendees: str = "refuse",
                 transaction_duplicate: str = "first", resource_spelling: str = "rotate",
                 etag_form: str = "exchange", delta_token_lifetime: float = DELTA_TOKEN_LIFETIME,
                 join_info_after_reads: int = 0, unsupported_provider: str = "ignore",
                 free_busy_details: str = "subject", notification_retry_window: float | None = None,
                 notification_backoff_cap: float = NOTIFICATION_BACKOFF_CAP,
                 occurrence_notifications: str = "master", delta_occurrences: str = "bare",
                 room_answers: str = "later", room_answer_delay: float | None = 0.5, room_answer_notified: bool = True,
                 scope_refusal: str = "access-policy"):
        super().__init__(token_key, latency, latency_paths)
        self.occurrence_notifications = occurrence_notifications  # series.py
        self.delta_occurrences = delta_occurrences
        self.if_match = if_match
        self.cancel_without_attendees = cancel_without_attendees
        self.transaction_duplicate = transaction_duplicate
        self.spell_resource = ResourceSpeller(resource_spelling)
        self.etag_form = etag_form
        self.delta_token_lifetime = delta_token_lifetime
        self.join_info_after_reads = join_info_after_reads
        self.unsupported_provider = unsupported_provider
        self.free_busy_details = free_busy_details
        self.on_request = None  # tests: a callable run with each API request before it is served
        self.enforce_concurrency_limit = enforce_concurrency_limit
        self.duplicate_notifications = duplicate_notifications
        self.batch_notifications = batch_notifications
        self.batch_window = batch_window
        self.notification_retries = notification_retries
        self.notification_backoff = notification_backoff
        self.notification_retry_window = notification_retry_window
        self.notification_backoff_cap = notification_backoff_cap
        self.notification_timeout = notification_timeout
        self.notification_workers = notification_workers
        self.validation_timeout = validation_timeout
        self.notification_verify = notification_verify
        self.apps: dict[tuple[str, str], App] = {}
        self.users: dict[str, User] = {}
        self.unavailable: dict[str, str] = {}  # user id -> why its mailbox answers 404 (set_mailbox_state)
        self.calendars: dict[str, dict[str, Event]] = {}
        self.cancellations: list[Cancellation] = []
        self.attendee_mails: list[AttendeeMail] = []  # mail.py: Exchange's mail to attendees for app PATCHes
        self.notifications_sent: list[Delivery] = []
        self.notifications_dropped: list[Delivery] = []  # given up on after the retry window
        self.validations: list[Delivery] = []
        self.batch_inner_requests: list[LogEntry] = []
        self._subs: dict[str, Subscription] = {}
        self._removed: dict[str, dict[str, tuple[int, Event]]] = {}
        self._delta_states: dict[str, dict] = {}
        self._tokens_issued: dict[str, int] = {}
        self._seq = 0
        self._folders_init()
        self._working_hours_init()
        self._inflight: dict[tuple[str, str], int] = {}      # (app id, mailbox) → requests in flight
        self._max_inflight: dict[str, int] = {}              # mailbox → most in flight at once (one app)
        self.mailbox_concurrency_refusals: dict[str, int] = {}  # mailbox → 429s for a request over the limit
        self._app_of_token: dict[str, str] = {}
        self._paused: list[_Job] | None = None
        self._jobs: queue.Queue = queue.Queue()  # fresh _Job, a delivery._Retry, or None (stop)
        self._pending = 0
        self._workers: list[threading.Thread] = []
        self._local = threading.local()
        self._ca = trustme.CA()
        self.ca_path = os.path.join(tempfile.mkdtemp(prefix="graph-sim-"), "ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_path)
        self._routes_init()
        self._rooms_init(room_answers, room_answer_delay, room_answer_notified)  # rooms.py: rooms, GET /places
        self._scopes_init(scope_refusal)  # scope.py: an app scoped to some mailboxes, Entra groups

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

    def max_concurrency(self, mailbox: str | None = None) -> int:
        with self.lock:
            if mailbox is None:
                return max(self._max_inflight.values(), default=0)
            return self._max_inflight.get(self._mailbox_key(mailbox), 0)

    def mailbox_concurrency_429s(self, mailbox: str | None = None) -> int:
        """How many requests were refused (429 MailboxConcurrency) because 4 were already in flight."""
        with self.lock:
            if mailbox is None:
                return sum(self.mailbox_concurrency_refusals.values())
            return self.mailbox_concurrency_refusals.get(self._mailbox_key(mailbox), 0)

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
            self.notifications_dropped.clear()
            self.validations.clear()
            self._max_inflight.clear()
            self.mailbox_concurrency_refusals.clear()

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

    def _routes_init(self) -> None:
        r = self.route
        r("GET", r"/(?P<tenant>[^/_][^/]*)/v2\.0/\.well-known/openid-configuration", self._openid)
        r("POST", r"/(?P<tenant>[^/_][^/]*)/oauth2/v2\.0/token", self._token)
        r("GET", r"/(?P<tenant>[^/_][^/]*)/discovery/v2\.0/keys", lambda req: Response(200, {"keys": []}))
        r("POST", r"/v1\.0/\$batch", self._batch)
        r("POST", _U + r"/translateExchangeIds", self._translate_ids)
        r("GET", _U, self._get_user)
        r("GET", _U + r"/calendar", self._get_calendar)
        r("GET", _U + _CAL + r"/events", self._list_events)
        r("POST", _U + _CAL + r"/events", self._post_event)
        r("GET", _U + _CAL + r"/events/(?P<id>[^/]+)", self._get_event)
        r("PATCH", _U + _CAL + r"/events/(?P<id>[^/]+)", self._patch_event)
        r("DELETE", _U + _CAL + r"/events/(?P<id>[^/]+)", self._delete_event)
        r("POST", _U + _CAL + r"/events/(?P<id>[^/]+)/cancel", self._cancel_event)
        r("GET", _U + _CAL + r"/events/(?P<id>[^/]+)/instances", self._list_instances)
        r("GET", _U + _CAL + r"/calendarView", self._calendar_view)
        r("GET", _U + _CAL + r"/calendarView/delta", self._delta)
        r("POST", _U + r"/calendar/getSchedule", self._get_schedule)
        r("GET", r"/v1\.0/subscriptions", self._list_subs)
        r("POST", r"/v1\.0/subscriptions", self._post_sub)
        r("GET", r"/v1\.0/subscriptions/(?P<id>[^/]+)", self._get_sub)
        r("PATCH", r"/v1\.0/subscriptions/(?P<id>[^/]+)", self._patch_sub)
        r("DELETE", r"/v1\.0/subscriptions/(?P<id>[^/]+)", self._delete_sub)
        r("POST", r"/v1\.0/subscriptions/(?P<id>[^/]+)/reauthorize", self._reauthorize_sub)
        register_pages(self)  # the playground: /_sim/calendars (pages.py)

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
        return self.ids_as_asked(req, lambda: self._invoke_for_mailbox(req))  # folders.py: the id form asked for

    def _invoke_for_mailbox(self, req: Request) -> Response:
        m = _MAILBOX_PATH.match(req.path)
        if not m:
            return super().invoke(req)
        key = req.mailbox = self._mailbox_key(unquote(m.group("u")))
        slot = (self._app_id(req), key)
        # Outlook's limit: 4 concurrent requests per app and mailbox (throttling-limits.md, "Outlook service
        # limits"; docs/platform-facts.md, "Outlook throttling"). A 5th is refused with 429, code
        # ApplicationThrottled and the message "Application is over its MailboxConcurrency limit." (Microsoft
        # Q&A 734143 and 1660054), Retry-After set. Inner requests of a $batch count like any other
        # (json-batching.md: Outlook runs them in parallel).
        with self.lock:
            n = self._inflight.get(slot, 0) + 1
            if self.enforce_concurrency_limit and n > MAILBOX_CONCURRENCY:
                self.mailbox_concurrency_refusals[key] = self.mailbox_concurrency_refusals.get(key, 0) + 1
                return self.error(429, "ApplicationThrottled",
                                  "Application is over its MailboxConcurrency limit.", retry_after=1)
            self._inflight[slot] = n
            self._max_inflight[key] = max(n, self._max_inflight.get(key, 0))
        try:
            return super().invoke(req)
        finally:
            with self.lock:
                self._inflight[slot] -= 1

    def _app_id(self, req: Request) -> str:
        """The calling app (the token's appid; unchecked here, the endpoint checks the token)."""
        authorization = req.header("Authorization") or ""
        app = self._app_of_token.get(authorization)
        if app is None:
            claims = read_token(self.token_key, authorization) or {}
            app = self._app_of_token[authorization] = f"{claims.get('tid', '')}/{claims.get('appid', '')}"
        return app
