"""Microsoft Graph: every Graph detail lives here (URLs, headers, paging, $batch); callers never
build a Graph URL. Errors come out typed (see remote.checked)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, unquote

import requests

from .. import clock
from ..config import Settings, SiteConfig
from ..model.audit import OUTLOOK
from ..model import errors
from ..model.errors import MailboxRefused, RemoteError, RemoteNotFound
from ..storage.audit import NO_AUDIT, batch_writes, subscription_mailbox
from .bounds import MailboxBounds
from .remote import Tokens, met, send

log = logging.getLogger("rapid_meetings")
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# Tags the Outlook events this app owns with "<tenant>/<site>|<item id>".
TAG_ID = "String {9c6c4a4e-3f7e-4b1e-8d2a-6a1f5f0c2b7d} Name RapidMeetingsItem"
UTC_PREFER = 'outlook.timezone="UTC"'
# On every request: ids that survive moves between folders (a calendar is one; so is Deleted Items). The
# preference applies only to the request that carries it; a subscription made with it notifies immutable ids
# (concepts/outlook-immutable-id.md; docs/platform-facts.md, "Immutable ids").
IMMUTABLE_PREFER = 'IdType="ImmutableId"'
TRANSLATE_LIMIT = 1000  # translateExchangeIds: ids per call (api/user-translateexchangeids.md)
BATCH_LIMIT = 20
SCHEDULE_LIMIT = 20  # getSchedule: schedules per request


MAILBOX_CONCURRENCY = 4  # Outlook's limit per app and mailbox
# The 404 codes that prove the event itself is gone (docs/platform-facts.md, "A 404 is not always a
# deletion"): Exchange's ErrorItemNotFound, and Graph's generic itemNotFound (concepts/errors.md). Any
# other 404 of an event call - MailboxNotEnabledForRESTAPI (mailbox de-licensed, soft-deleted, or on
# premises mid-migration), ErrorInvalidUser, ResourceNotFound... - says nothing about the event.
EVENT_GONE_CODES = frozenset({"erroritemnotfound", "itemnotfound"})


def _event_gone(code: str) -> bool:
    return code.lower() in EVENT_GONE_CODES


def _never_gone(code: str) -> bool:
    """A 404 of a list or search in a mailbox: no item it could prove gone."""
    return False
# A mailbox the app's Exchange scope leaves out answers 403 ErrorAccessDenied (concepts/auth-limit-mailbox-access.md,
# "Handling API errors"; docs/platform-facts.md, "A mailbox outside the app's Exchange scope")
SCOPE_REFUSAL = "ErrorAccessDenied"
PROVIDERS_CACHE_SECONDS = 3600  # what a calendar offers for online meetings changes with licences: rarely
ROOMS_CACHE = timedelta(hours=1)  # the tenant's room list (api/place-list.md): rooms are added rarely


def _user(mailbox: str) -> str:
    return f"/users/{quote(mailbox, safe='@')}"


class MailboxLimiter:
    """At most 4 requests in flight to one mailbox from this process, as Outlook allows."""

    def __init__(self, limit: int = MAILBOX_CONCURRENCY):
        self._limit = limit
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    def slot(self, mailbox: str) -> threading.BoundedSemaphore:
        with self._lock:
            return self._slots.setdefault(mailbox.lower(), threading.BoundedSemaphore(self._limit))


class GraphClient:
    def __init__(self, settings: Settings, site: SiteConfig, session: requests.Session, tokens: Tokens,
                 limiter: MailboxLimiter | None = None, audit=None):
        self._base = settings.graph_url
        self._audit = audit or NO_AUDIT  # every write is recorded after it succeeded (storage/audit.py)
        self._site = site
        self._session = session
        self._tokens = tokens
        self._limiter = limiter or MailboxLimiter()
        self._providers: dict[str, tuple[float, tuple[str, ...]]] = {}
        self.bounds = MailboxBounds(site, self.group_members)  # the mailboxes this site may use
        self._rooms: tuple[datetime, tuple[dict, ...]] | None = None

    def _call(self, method: str, path: str, what: str, headers: dict | None = None, proof=None, **kwargs):
        url = path if "://" in path else self._base + path
        if not url.startswith(self._base + "/"):  # an @odata.nextLink or a stored delta link elsewhere
            raise RemoteError(400, f"Graph {what}: refusing to send the Graph token to {url.split('?')[0][:80]}")
        mailbox = url[len(self._base):].split("/")[2] if url.startswith(self._base + "/users/") else None
        address = unquote(mailbox.split("?")[0]) if mailbox else ""
        if "@" in address:  # an address: checked against the site's bounds before anything is sent
            self.bounds.check(address)
        headers = {**(headers or {})}
        headers["Prefer"] = ", ".join(filter(None, (headers.get("Prefer"), IMMUTABLE_PREFER)))
        for fresh in (False, True):
            try:
                with met("graph"):
                    token = self._tokens.token(self._site, GRAPH_SCOPE, fresh=fresh)
                    with self._limiter.slot(mailbox) if mailbox else contextlib.nullcontext():
                        return send(self._session, method, url, f"Graph {what}", proof,
                                    headers={"Authorization": f"Bearer {token}", **headers}, **kwargs)
            except RemoteError as e:
                if e.status == 403 and e.code == SCOPE_REFUSAL and address:
                    raise MailboxRefused(f"Graph {what}: Exchange refused mailbox {address} (403 {e.code}): the app's "
                                         "access is scoped to other mailboxes", errors.OUT_OF_SCOPE, address) from e
                # 401 InvalidAuthenticationToken: the cached token expired or was revoked before MSAL thought
                # so (clock skew, a restart of the identity platform's keys); a refused request is safe to resend
                if e.status != 401 or fresh:
                    raise
                log.info("Graph %s answered 401 (%s): retrying once with a fresh token", what, e)
        raise AssertionError("unreachable")

    # -- events

    def create_event(self, mailbox: str, payload: dict, transaction_id: str, tag: str) -> dict:
        body = {**payload, "transactionId": transaction_id,
                "singleValueExtendedProperties": [{"id": TAG_ID, "value": tag}]}
        event = self._call("POST", f"{_user(mailbox)}/events", "create event", json=body,
                           headers={"Prefer": UTC_PREFER}, proof=_never_gone).json()
        self._audit.wrote(self._site, OUTLOOK, "create event", mailbox=mailbox, event=event.get("id"), fields=payload)
        return event

    def get_event(self, mailbox: str, event_id: str) -> dict:
        return self._call("GET", f"{_user(mailbox)}/events/{quote(event_id, safe='')}", "get event",
                          headers={"Prefer": UTC_PREFER}, proof=_event_gone).json()

    def update_event(self, mailbox: str, event_id: str, patch: dict) -> dict:
        """PATCH an event; the answer is the whole event after the write. No If-Match: event-update.md
        documents none, and Graph may honour it, refuse with 409 or ignore it (docs/platform-facts.md, "If-Match on PATCH /events is not documented")."""
        event = self._call("PATCH", f"{_user(mailbox)}/events/{quote(event_id, safe='')}", "update event",
                           json=patch, headers={"Prefer": UTC_PREFER}, proof=_event_gone).json()
        self._audit.wrote(self._site, OUTLOOK, "update event", mailbox=mailbox, event=event_id, fields=patch)
        return event

    def remove_event(self, mailbox: str, event_id: str, comment: str) -> bool:
        """Cancel (attendees get the cancellation); when Graph refuses to cancel (event-cancel.md leaves
        events without attendees open), DELETE, which the organiser may always do (event-delete.md).
        False when the event was already gone."""
        path = f"{_user(mailbox)}/events/{quote(event_id, safe='')}"
        try:
            try:
                self._call("POST", f"{path}/cancel", "cancel event", json={"Comment": comment}, proof=_event_gone)
                action = "cancel event"
            except RemoteError as e:
                if e.status != 400:
                    raise
                log.info("mailbox=%s event=%s cancel refused (%s): deleting it instead", mailbox, event_id, e)
                self._call("DELETE", path, "delete event (cancel refused)", proof=_event_gone)
                action = "delete event"
        except RemoteNotFound:
            return False
        self._audit.wrote(self._site, OUTLOOK, action, mailbox=mailbox, event=event_id)
        return True

    def instances(self, mailbox: str, series_id: str, start: str, end: str) -> list[dict]:
        """The occurrences and exceptions of a series master between two instants (event-list-instances.md;
        the window is required), in UTC; one page of up to 50 is all a window of a few days holds."""
        return self._call("GET", f"{_user(mailbox)}/events/{quote(series_id, safe='')}/instances", "list instances",
                          params={"startDateTime": start, "endDateTime": end, "$top": "50"},
                          headers={"Prefer": UTC_PREFER}, proof=_event_gone).json().get("value", [])

    def online_providers(self, mailbox: str) -> tuple[str, ...]:
        """The online meeting providers the mailbox's calendar offers (calendar.md,
        allowedOnlineMeetingProviders), read at most once an hour per mailbox and process."""
        now, key = time.monotonic(), mailbox.lower()
        cached = self._providers.get(key)
        if cached and now - cached[0] < PROVIDERS_CACHE_SECONDS:
            return cached[1]
        calendar = self._call("GET", f"{_user(mailbox)}/calendar?$select=allowedOnlineMeetingProviders",
                              "get calendar").json()
        providers = tuple(calendar.get("allowedOnlineMeetingProviders") or ())
        self._providers[key] = (now, providers)
        return providers

    def rooms(self) -> tuple[dict, ...]:
        """The tenant's rooms (api/place-list.md: GET /places/microsoft.graph.room, Place.Read.All; 100 a
        page, then @odata.nextLink), read at most once an hour (app clock) per site and process."""
        now = clock.now()
        if self._rooms and timedelta(0) <= now - self._rooms[0] < ROOMS_CACHE:
            return self._rooms[1]
        found, url = [], "/places/microsoft.graph.room"
        params = {"$select": "emailAddress,displayName", "$top": "100"}
        while url:
            page = self._call("GET", url, "list rooms", params=params).json()
            found += page.get("value", [])
            url, params = page.get("@odata.nextLink"), None
        self._rooms = (now, tuple(found))
        return self._rooms[1]

    def find_tagged(self, mailbox: str, tag: str) -> list[dict]:
        flt = f"singleValueExtendedProperties/Any(ep: ep/id eq '{TAG_ID}' and ep/value eq '{tag.replace(chr(39), chr(39) * 2)}')"
        return self._call("GET", f"{_user(mailbox)}/events", "find tagged events", params={"$filter": flt},
                          headers={"Prefer": UTC_PREFER}, proof=_never_gone).json().get("value", [])

    def immutable_ids(self, mailbox: str, rest_ids: list[str]) -> dict[str, str]:
        """Default (REST) ids of one mailbox's events → their immutable ids; an id Graph cannot convert (the
        event is gone) is left out (api/user-translateexchangeids.md, resources/convertidresult.md). Needs
        User.Read.All: a 403 is a RemoteError the caller may answer another way."""
        out: dict[str, str] = {}
        for at in range(0, len(rest_ids), TRANSLATE_LIMIT):
            body = {"inputIds": rest_ids[at:at + TRANSLATE_LIMIT], "sourceIdType": "restId",
                    "targetIdType": "restImmutableEntryId"}
            answer = self._call("POST", f"{_user(mailbox)}/translateExchangeIds", "translate ids", json=body).json()
            out.update({r["sourceId"]: r["targetId"] for r in answer.get("value", []) if r.get("targetId")})
        return out

    def user_id(self, mailbox: str) -> str:
        return self._call("GET", _user(mailbox), "get user", params={"$select": "id"}).json()["id"]

    def group_members(self, group_id: str) -> list[str]:
        """The addresses (mail and userPrincipalName) of a group's users, nested groups included
        (api-reference/v1.0/api/group-list-transitivemembers.md: GroupMember.Read.All), every page."""
        url, params, found = f"/groups/{quote(group_id, safe='')}/transitiveMembers", {
            "$select": "mail,userPrincipalName", "$top": "999"}, []
        while url:
            page = self._call("GET", url, "list group members", params=params).json()
            found += [a for m in page.get("value", []) if m.get("@odata.type", "#microsoft.graph.user").endswith(".user")
                      for a in (m.get("mail"), m.get("userPrincipalName")) if a]
            url, params = page.get("@odata.nextLink"), None
        return found

    # -- free/busy

    def get_schedule(self, mailbox: str, schedules: list[str], start: datetime, end: datetime,
                     interval: int, rooms: frozenset = frozenset()) -> list[dict]:
        """The free/busy of up to 20 addresses between two instants, read through `mailbox`'s calendar: one
        scheduleInformation each, in UTC (api-reference/v1.0/api/calendar-getschedule.md; at most 20
        entities and a period under 62 days, concepts/outlook-get-free-busy-schedule.md). `rooms`: those of
        the addresses the caller found in the tenant's room list (features/rooms.tenant_rooms): not people."""
        assert len(schedules) <= SCHEDULE_LIMIT
        for address in schedules:  # free/busy is read only of people inside the site's bounds
            if address.lower() not in rooms:
                self.bounds.check(address, "free/busy of")
        body = {"schedules": schedules, "availabilityViewInterval": interval,
                **{name: {"dateTime": f"{moment.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%S}", "timeZone": "UTC"}
                   for name, moment in (("startTime", start), ("endTime", end))}}
        return self._call("POST", f"{_user(mailbox)}/calendar/getSchedule", "get schedule", json=body,
                          headers={"Prefer": UTC_PREFER}).json().get("value", [])

    # -- subscriptions

    def create_subscription(self, resource: str, notification_url: str, client_state: str, expires: str) -> dict:
        body = {"changeType": "created,updated,deleted", "notificationUrl": notification_url,
                "lifecycleNotificationUrl": notification_url, "resource": resource,
                "expirationDateTime": expires, "clientState": client_state,
                "latestSupportedTlsVersion": "v1_2"}
        sub = self._call("POST", "/subscriptions", "create subscription", json=body).json()
        self._audit.wrote(self._site, OUTLOOK, "create subscription", mailbox=subscription_mailbox(resource),
                          subscription=sub.get("id"), fields=body)
        return sub

    def renew_subscription(self, sub_id: str, expires: str) -> dict:
        sub = self._call("PATCH", f"/subscriptions/{sub_id}", "renew subscription",
                         json={"expirationDateTime": expires}).json()
        self._audit.wrote(self._site, OUTLOOK, "renew subscription", subscription=sub_id, fields={"expirationDateTime": 0})
        return sub

    def delete_subscription(self, sub_id: str) -> bool:
        try:
            self._call("DELETE", f"/subscriptions/{sub_id}", "delete subscription")
        except RemoteNotFound:
            return False
        self._audit.wrote(self._site, OUTLOOK, "delete subscription", subscription=sub_id)
        return True

    def batch(self, requests_: list[dict]) -> dict[str, dict]:
        """Run up to 20 requests in one $batch; answers by request id ({status, headers, body})."""
        assert len(requests_) <= BATCH_LIMIT
        answer = self._call("POST", "/$batch", "batch", json={"requests": requests_}).json()
        answers = {r["id"]: r for r in answer.get("responses", [])}
        batch_writes(self._audit, self._site, requests_, answers)  # each write in it that succeeded
        return answers

    # -- catch-up

    def delta_pages(self, mailbox: str, start: str, end: str, delta_link: str = ""):
        """Yield pages of calendarView/delta; the last page carries @odata.deltaLink."""
        url = delta_link or f"{self._base}{_user(mailbox)}/calendarView/delta"
        params = None if delta_link else {"startDateTime": start, "endDateTime": end}
        while url:
            page = self._call("GET", url, "calendar delta", params=params,
                              headers={"Prefer": f"{UTC_PREFER}, odata.maxpagesize=100"}).json()
            yield page
            url, params = page.get("@odata.nextLink"), None
