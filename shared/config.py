"""Settings for many sites, read from app settings (environment variables).

`SITES` is a JSON list; each entry is one RAPID site. Secrets are never in `SITES`: an entry names
the app setting that holds its secret (`client_secret_setting`), which in Azure is a Key Vault
reference and locally a line of local.settings.json.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from dataclasses import dataclass, field
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_COLUMNS = {
    "title": "title",
    "meeting": "meeting",
    "start_date": "start_date",
    "end_date": "end_date",
    "all_day": "all_day",
    "location": "location",
    "description": "description",
    "invitees": "invitees",
    "guests": "guests",
    "status": "status",
    "sys_external_id": "sys_external_id",
    "organiser": "organiser",
    "email": "email",
    "subscription_id": "subscription_id",
    "resource": "resource",
    "expires": "expires",
    # Meeting Agendas (issue 15): the order (`rank` is a String system field), the owner (single lookup to
    # Principals), the minutes, and the single lookup to the event when the site has one (else a link)
    "agenda_order": "rank",
    "agenda_owner": "owner",
    "agenda_duration": "duration",
    "agenda_event": "meeting_event",
}

# RAPID's own application (its API's resource id): the certified Power Platform connector's
# `resourceUri` (microsoft/PowerPlatformConnectors, certified-connectors/RAPID Platform/apiProperties.json)
DEFAULT_RAPID_SCOPE = "cd5db0ec-1419-4ae6-9434-21cfb83fc42d/.default"
# How a multi-lookup (invitees, guests) is read; RAPID does not publish the JSON of a link (SPEC §1a):
#   links  - the scoped links in the single item GET (`LinkedItems`)
#   query  - a list query on the target list: $filter=inScoped(<events list>, <column>, <item id>)
#   column - a plain column holding a list of ids (older or custom sites)
MULTI_LOOKUP_STRATEGIES = ("links", "query", "column")

# event.md ("Properties"): showAs is a freeBusyStatus, sensitivity a sensitivity
SHOW_AS = ("free", "tentative", "busy", "oof", "workingElsewhere", "unknown")
SENSITIVITIES = ("normal", "personal", "private", "confidential")

DEFAULT_LISTS = {
    "meetings": "Meetings",
    "events": "Meeting Events",
    "subscriptions": "Meeting Subscriptions",
    "principals": "Principals",
    "contacts": "External Contacts",
    "agendas": "Meeting Agendas",
}


class ConfigError(Exception):
    """The app settings are wrong; the message names the setting."""


@dataclass(frozen=True)
class SiteConfig:
    tenant: str
    site: str
    rapid_url: str
    rapid_scope: str
    aad_tenant: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    certificate: dict | None = field(default=None, repr=False)
    time_zone: str = "UTC"
    columns: dict = field(default_factory=dict)
    lists: dict = field(default_factory=dict)
    guests_as_attendees: bool = True
    on_outlook_delete: str = "cancel"  # or "delete"
    cancelled_status: str = "Cancelled"
    multi_lookup: str = "links"
    # optional Meeting Events column showing each item's sync state in plain words ("" = off)
    status_column: str = ""
    catch_up_minutes: int | None = None  # this site's site-side catch-up interval (None: CATCH_UP_MINUTES)
    # events people can recognise (applied when the event is created; "" / None = Outlook's own default)
    category: str = ""                    # an Outlook category name put on each event, e.g. "RAPID"
    show_as: str = ""                     # free | tentative | busy | oof | workingElsewhere | unknown
    reminder_minutes: int | None = None   # reminderMinutesBeforeStart
    sensitivity: str = ""                 # normal | personal | private | confidential
    private_column: str = ""              # optional Meeting Events column: truthy makes that event private
    # optional Meeting Events text column: the invitees' answers as Outlook tracks them ("" = off)
    answers_column: str = ""
    # Teams meetings (issue 14): the site's default, an optional per-item column (truthy/falsy overrides
    # the default), and an optional column the join URL is written to
    teams: bool = False
    teams_column: str = ""
    join_url_column: str = ""
    # optional Meeting Events text column: who is busy when the event is created or moved ("" = off)
    conflicts_column: str = ""
    agenda: bool = False  # the event's Meeting Agendas items, in rank order, at the end of its Outlook body

    @property
    def key(self) -> str:
        return f"{self.tenant}/{self.site}"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def col(self, name: str) -> str:
        return self.columns.get(name, DEFAULT_COLUMNS[name])

    def list_name(self, name: str) -> str:
        return self.lists.get(name, DEFAULT_LISTS[name])

    @property
    def credential(self):
        return self.certificate or self.client_secret


@dataclass(frozen=True)
class StorageAccount:
    """Identity-based storage (Azure): the account's name and the managed identity to use."""

    name: str
    client_id: str | None = None
    suffix: str = "core.windows.net"

    def url(self, service: str) -> str:
        return f"https://{self.name}.{service}.{self.suffix}"

    def credential(self):
        from azure.identity import ManagedIdentityCredential  # only in Azure: keeps cold start light

        return ManagedIdentityCredential(client_id=self.client_id) if self.client_id else ManagedIdentityCredential()


@dataclass(frozen=True)
class Settings:
    storage: "str | StorageAccount" = field(repr=False)  # a connection string (it holds a key) or an account
    work_queue: str
    sites: dict[str, SiteConfig]
    graph_url: str = "https://graph.microsoft.com/v1.0"
    authority_host: str = "https://login.microsoftonline.com"
    ca_bundle: str | None = None
    notification_url: str | None = None
    subscription_minutes: int = 4230
    decode_etags: bool = True  # the unpublished etag shortcut (inbound.change_key_in_etag); off: always read
    catch_up_minutes: int = 15       # site-side catch-up: how often each site's recent changes are read
    catch_up_margin_minutes: int = 5  # read this much before the last run's start (clock skew between us and RAPID)
    sweep_hours: int = 24            # how often every link is checked against the site (deletions)
    webhook_secrets: tuple[str, ...] = field(default=(), repr=False)  # newest first; tokens of each are accepted
    agenda_settle_seconds: int = 5  # agenda changes within this long of the first cost one Outlook update

    def site(self, tenant: str, site: str) -> SiteConfig | None:
        return self.sites.get(f"{tenant}/{site}".lower())


# tenant and site names as RAPID's URLs carry them: nothing that could make two keys meet ("a/b" + "c")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
# Microsoft Entra ID's cloud authorities (learn.microsoft.com/entra/identity-platform/authentication-national-cloud)
KNOWN_AUTHORITIES = ("https://login.microsoftonline.com", "https://login.microsoftonline.us",
                     "https://login.chinacloudapi.cn", "https://login.partner.microsoftonline.cn")
_LOCAL = re.compile(r"^https://(127\.0\.0\.1|localhost)(:\d+)?$")  # the local simulators, over https too


def _secret(env, name: str, what: str, where: str) -> str:
    """A secret setting's value; unset, or an unresolved Key Vault reference, named as such."""
    value = env.get(name) or ""
    if not value:
        raise ConfigError(f"{where}: app setting {name} ({what}) is not set")
    if value.lstrip().startswith("@Microsoft.KeyVault("):
        raise ConfigError(f"{where}: app setting {name} ({what}) is an unresolved Key Vault reference: the app "
                          f"cannot read that secret (its identity's access, the vault's network, the secret's name)")
    return value


def _https(value: str, name: str) -> str:
    if not value.lower().startswith("https://"):
        raise ConfigError(f"{name} must be an https:// URL, not {value[:60]!r}")
    return value.rstrip("/")


def _site_from(entry: dict, env) -> SiteConfig:
    if not isinstance(entry, dict):
        raise ConfigError("SITES must be a list of objects, one per site")
    where = f"SITES[{entry.get('tenant')}/{entry.get('site')}]"
    missing = [k for k in ("tenant", "site", "rapid_url", "aad_tenant", "client_id") if not entry.get(k)]
    if missing:
        raise ConfigError(f"{where} is missing {', '.join(missing)}")
    for key in ("tenant", "site"):
        if not _NAME.match(str(entry[key])):
            raise ConfigError(f"{where}: {key} may hold only letters, digits, '.', '_' and '-'")
    _https(str(entry["rapid_url"]), f"{where}: rapid_url")
    secret = None
    certificate = None
    if name := entry.get("client_secret_setting"):
        secret = _secret(env, name, "client secret", where)
    elif name := entry.get("certificate_setting"):
        raw = _secret(env, name, "certificate", where)
        try:
            certificate = json.loads(raw)
        except json.JSONDecodeError:
            raise ConfigError(f"{where}: app setting {name} (certificate) is not JSON") from None
    else:
        raise ConfigError(f"{where} needs client_secret_setting or certificate_setting")
    try:
        zone = ZoneInfo(entry.get("time_zone", "UTC"))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: unknown time_zone {entry.get('time_zone')!r}") from None
    from .model.mapping import windows_zone

    try:
        windows_zone(zone)  # all-day events reach Graph under it
    except ValueError as e:
        raise ConfigError(f"{where}: {e}; choose an IANA zone that has one") from None
    try:
        uuid.UUID(entry["aad_tenant"])
    except ValueError:
        # Graph's notifications carry the tenant's GUID (tenantId): a domain name would refuse them all.
        raise ConfigError(f"{where}: aad_tenant must be the directory (tenant) ID, a GUID, not "
                          f"{entry['aad_tenant']!r}: Entra admin center > Overview > Tenant ID") from None
    if entry.get("on_outlook_delete", "cancel") not in ("cancel", "delete"):
        raise ConfigError(f"{where}: on_outlook_delete must be 'cancel' or 'delete'")
    if entry.get("multi_lookup", "links") not in MULTI_LOOKUP_STRATEGIES:
        raise ConfigError(f"{where}: multi_lookup must be one of {', '.join(MULTI_LOOKUP_STRATEGIES)}")
    status_column = entry.get("status_column") or ""
    if not isinstance(status_column, str) or status_column in {entry.get("columns", {}).get(k, v)
                                                             for k, v in DEFAULT_COLUMNS.items()}:
        raise ConfigError(f"{where}: status_column must be the name of a text column of its own, not "
                          f"{status_column!r}")
    own_columns = {entry.get("columns", {}).get(k, v) for k, v in DEFAULT_COLUMNS.items()}
    extra_columns = ("private_column", "answers_column", "teams_column", "join_url_column", "conflicts_column")
    for key in extra_columns:
        value = entry.get(key) or ""
        if not isinstance(value, str) or value in own_columns or (value and value == status_column):
            raise ConfigError(f"{where}: {key} must be the name of a column of its own, not {value!r}")
    named = [entry[key] for key in extra_columns if entry.get(key)]
    if len(named) != len(set(named)):
        raise ConfigError(f"{where}: {', '.join(extra_columns)} must be different columns")
    if not isinstance(entry.get("teams", False), bool):
        raise ConfigError(f"{where}: teams must be true or false, not {entry.get('teams')!r}")
    category = entry.get("category") or ""
    if not isinstance(category, str) or len(category) > 255 or any(c in category for c in ",;\r\n"):
        raise ConfigError(f"{where}: category must be one Outlook category name (no commas), not {category!r}")
    if (entry.get("show_as") or "") not in ("",) + SHOW_AS:
        raise ConfigError(f"{where}: show_as must be one of {', '.join(SHOW_AS)}, not {entry.get('show_as')!r}")
    if (entry.get("sensitivity") or "") not in ("",) + SENSITIVITIES:
        raise ConfigError(f"{where}: sensitivity must be one of {', '.join(SENSITIVITIES)}, "
                          f"not {entry.get('sensitivity')!r}")
    reminder = entry.get("reminder_minutes")
    if reminder is not None and (isinstance(reminder, bool) or not isinstance(reminder, int)
                                 or not 0 <= reminder <= 40320):
        raise ConfigError(f"{where}: reminder_minutes must be a whole number of minutes from 0 to 40320 (4 weeks)")
    if not isinstance(entry.get("agenda", False), bool):
        raise ConfigError(f"{where}: agenda must be true or false, not {entry.get('agenda')!r}")
    catch_up = entry.get("catch_up_minutes")
    if catch_up is not None and (isinstance(catch_up, bool) or not isinstance(catch_up, int) or catch_up < 1):
        raise ConfigError(f"{where}: catch_up_minutes must be a whole number of minutes, at least 1")
    unknown = set(entry.get("columns", {})) - set(DEFAULT_COLUMNS)
    if unknown:
        raise ConfigError(f"{where}: unknown column overrides {sorted(unknown)}")
    return SiteConfig(
        tenant=entry["tenant"],
        site=entry["site"],
        rapid_url=entry["rapid_url"].rstrip("/"),
        rapid_scope=entry.get("rapid_scope") or DEFAULT_RAPID_SCOPE,
        aad_tenant=str(uuid.UUID(entry["aad_tenant"])),
        client_id=entry["client_id"],
        client_secret=secret,
        certificate=certificate,
        time_zone=entry.get("time_zone", "UTC"),
        columns=dict(entry.get("columns", {})),
        lists=dict(entry.get("lists", {})),
        guests_as_attendees=bool(entry.get("guests_as_attendees", True)),
        on_outlook_delete=entry.get("on_outlook_delete", "cancel"),
        cancelled_status=entry.get("cancelled_status", "Cancelled"),
        multi_lookup=entry.get("multi_lookup", "links"),
        status_column=status_column,
        catch_up_minutes=catch_up,
        category=category,
        show_as=entry.get("show_as") or "",
        reminder_minutes=reminder,
        sensitivity=entry.get("sensitivity") or "",
        private_column=entry.get("private_column") or "",
        answers_column=entry.get("answers_column") or "",
        teams=entry.get("teams", False),
        teams_column=entry.get("teams_column") or "",
        join_url_column=entry.get("join_url_column") or "",
        conflicts_column=entry.get("conflicts_column") or "",
        agenda=entry.get("agenda", False),
    )


def settings_from(env) -> Settings:
    storage = env.get("AzureWebJobsStorage")
    if not storage and env.get("AzureWebJobsStorage__accountName"):
        storage = StorageAccount(env["AzureWebJobsStorage__accountName"], env.get("AzureWebJobsStorage__clientId"),
                                 env.get("STORAGE_ENDPOINT_SUFFIX", "core.windows.net"))
    if not storage:
        raise ConfigError("app setting AzureWebJobsStorage (or AzureWebJobsStorage__accountName) is not set")
    try:
        entries = json.loads(env.get("SITES", "[]"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"app setting SITES is not JSON: {e}") from None
    if not isinstance(entries, list):
        raise ConfigError("app setting SITES must be a JSON list, one object per site")
    sites = {}
    for entry in entries:
        site = _site_from(entry, env)
        if site.key.lower() in sites:
            raise ConfigError(f"SITES lists {site.key} twice")
        sites[site.key.lower()] = site
    authority = env.get("AUTHORITY_HOST", KNOWN_AUTHORITIES[0]).rstrip("/")
    if authority not in KNOWN_AUTHORITIES and not _LOCAL.match(authority):
        raise ConfigError(f"AUTHORITY_HOST must be one of {', '.join(KNOWN_AUTHORITIES)} (or a local simulator "
                          f"on https://127.0.0.1), not {authority[:60]!r}")
    secrets = tuple(s.strip() for s in (env.get("WEBHOOK_SECRETS") or "").split(",") if s.strip())
    if sites and not secrets:
        raise ConfigError("app setting WEBHOOK_SECRETS is not set: site webhooks need it (docs/operations.md)")
    for value in secrets:
        if value.startswith("@Microsoft.KeyVault("):
            raise ConfigError("app setting WEBHOOK_SECRETS is an unresolved Key Vault reference")
        if len(value) < 32:
            raise ConfigError("app setting WEBHOOK_SECRETS: each secret needs at least 32 characters")
    return Settings(
        storage=storage,
        work_queue=env.get("WORK_QUEUE", "sync-jobs"),
        sites=sites,
        graph_url=_https(env.get("GRAPH_URL", "https://graph.microsoft.com/v1.0"), "GRAPH_URL"),
        authority_host=authority,
        ca_bundle=env.get("HTTP_CA_BUNDLE") or None,
        notification_url=env.get("NOTIFICATION_URL") or None,
        subscription_minutes=int(env.get("SUBSCRIPTION_MINUTES", "4230")),
        decode_etags=env.get("DECODE_EXCHANGE_ETAGS", "true").strip().lower() not in ("0", "false", "no", "off"),
        catch_up_minutes=_whole(env, "CATCH_UP_MINUTES", 15),
        catch_up_margin_minutes=_whole(env, "CATCH_UP_MARGIN_MINUTES", 5, low=0),
        sweep_hours=_whole(env, "SWEEP_HOURS", 24),
        webhook_secrets=secrets,
        agenda_settle_seconds=_whole(env, "AGENDA_SETTLE_SECONDS", 5, low=0),
    )


def _whole(env, name: str, default: int, low: int = 1) -> int:
    raw = env.get(name) or str(default)
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"app setting {name} must be a whole number, not {raw!r}") from None
    if value < low:
        raise ConfigError(f"app setting {name} must be at least {low}")
    return value


@cache
def get_settings() -> Settings:
    return settings_from(os.environ)
