"""The simulator's data (users, app registrations, events, subscriptions, deliveries) and the constants of
Graph's contract it follows."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

from ..base import utcnow
from .exchange import zone

GRAPH_AUDIENCE = "https://graph.microsoft.com"
MAX_SUBSCRIPTION_MINUTES = 4230
MIN_SUBSCRIPTION_MINUTES = 45
MAILBOX_CONCURRENCY = 4
# App roles (application permissions) each endpoint needs, from the "Permissions" table of its page:
# api-reference/v1.0/api/user-get.md (User.Read.All, least privileged; User.ReadBasic.All is refused for
# app-only reads in practice, docs/platform-facts.md, "Reading a user needs User.Read.All"),
# event-get/-update/-delete/-cancel.md, user-list-events.md, event-delta.md, user-list-calendarview.md
# (Calendars.Read to read, Calendars.ReadWrite to write), subscription-post-subscriptions.md (events:
# Calendars.Read), includes/permissions/calendar-getschedule-permissions.md (getSchedule:
# Calendars.ReadBasic, least privileged, then Calendars.Read, Calendars.ReadWrite; older revisions of
# calendar-getschedule.md list the last two only). A $batch's inner requests are each checked.
DEFAULT_ROLES = ("Calendars.ReadWrite",)
READ_USERS = ("User.Read.All", "User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")
READ_CALENDARS = ("Calendars.Read", "Calendars.ReadWrite")
WRITE_CALENDARS = ("Calendars.ReadWrite",)
FREE_BUSY_ROLES = ("Calendars.ReadBasic", "Calendars.Read", "Calendars.ReadWrite")
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
    # calendar.md: allowedOnlineMeetingProviders / defaultOnlineMeetingProvider (a user without a Teams
    # licence has none: set_online_providers(mailbox, ()))
    online_providers: tuple[str, ...] = ("teamsForBusiness",)

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
    join_info_after_reads: int = 0  # a Teams meeting whose join information Graph fills in late
    calendar: str = ""  # the organiser's calendar it is in (folders.py): "" is the default calendar

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
    immutable_ids: bool = False  # created with Prefer: IdType="ImmutableId" (folders.py)

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
