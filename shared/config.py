"""Settings for many sites, read from app settings (environment variables).

`SITES` is a JSON list; each entry is one RAPID site (shared/site_settings.py reads one entry into a
`SiteConfig`). Secrets are never in `SITES`: an entry names the app setting that holds its secret
(`client_secret_setting`), which in Azure is a Key Vault reference and locally a line of
local.settings.json. This module reads the app-wide settings around them; it re-exports the site
settings' names, so `from shared.config import SiteConfig, ConfigError` is the one import callers need.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from functools import cache

from .site_settings import (DEFAULT_COLUMNS, DEFAULT_LISTS, DEFAULT_RAPID_SCOPE, MULTI_LOOKUP_STRATEGIES,
                            SENSITIVITIES, SHOW_AS, ConfigError, SiteConfig, https_url, site_from)

__all__ = ["DEFAULT_COLUMNS", "DEFAULT_LISTS", "DEFAULT_RAPID_SCOPE", "KNOWN_AUTHORITIES", "MULTI_LOOKUP_STRATEGIES",
           "SENSITIVITIES", "SHOW_AS", "ConfigError", "Settings", "SiteConfig", "StorageAccount", "get_settings",
           "settings_from"]

# Microsoft Entra ID's cloud authorities (learn.microsoft.com/entra/identity-platform/authentication-national-cloud)
KNOWN_AUTHORITIES = ("https://login.microsoftonline.com", "https://login.microsoftonline.us",
                     "https://login.chinacloudapi.cn", "https://login.partner.microsoftonline.cn")
_LOCAL = re.compile(r"^https://(127\.0\.0\.1|localhost)(:\d+)?$")  # the local simulators, over https too


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
    edit_settle_seconds: int = 5    # site edits of a meeting with attendees within this long cost one update
    backoff_cap_seconds: int = 900   # a failing job waits at most this long between tries (it never gives up)
    delta_minutes: int = 60          # how often every watched calendar is read by delta (notifications can be lost)
    audit_days: int = 90             # how long the audit trail keeps a row (docs/operations.md, "The audit trail")
    site_tasks_per_minute: int = 600  # a site's share of the worker: tasks over it wait for the next minute (0: off)
    sync_site_minutes: int = 10      # a whole-site "sync now" runs at most once in this long per site

    def site(self, tenant: str, site: str) -> SiteConfig | None:
        return self.sites.get(f"{tenant}/{site}".lower())


def settings_from(env) -> Settings:
    """The app's settings from `env` (os.environ, or a dict in tests); ConfigError names what is wrong."""
    storage = _storage(env)
    sites = _sites(env)
    authority = _authority(env)
    secrets = _webhook_secrets(env, sites)
    return Settings(
        storage=storage,
        work_queue=env.get("WORK_QUEUE", "sync-jobs"),
        sites=sites,
        graph_url=https_url(env.get("GRAPH_URL", "https://graph.microsoft.com/v1.0"), "GRAPH_URL"),
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
        edit_settle_seconds=_whole(env, "EDIT_SETTLE_SECONDS", 5, low=0),
        backoff_cap_seconds=_whole(env, "BACKOFF_CAP_SECONDS", 900),
        delta_minutes=_whole(env, "DELTA_MINUTES", 60),
        audit_days=_whole(env, "AUDIT_DAYS", 90),
        site_tasks_per_minute=_whole(env, "SITE_TASKS_PER_MINUTE", 600, low=0),
        sync_site_minutes=_whole(env, "SYNC_SITE_MINUTES", 10, low=0),
    )


def _storage(env) -> "str | StorageAccount":
    """A connection string (Azurite, or a key), else the account an identity reaches."""
    storage = env.get("AzureWebJobsStorage")
    if not storage and env.get("AzureWebJobsStorage__accountName"):
        storage = StorageAccount(env["AzureWebJobsStorage__accountName"], env.get("AzureWebJobsStorage__clientId"),
                                 env.get("STORAGE_ENDPOINT_SUFFIX", "core.windows.net"))
    if not storage:
        raise ConfigError("app setting AzureWebJobsStorage (or AzureWebJobsStorage__accountName) is not set")
    return storage


def _sites(env) -> dict[str, SiteConfig]:
    """SITES, by lower-cased "tenant/site" (URLs name a site in any case; two entries may not meet)."""
    try:
        entries = json.loads(env.get("SITES", "[]"))
    except json.JSONDecodeError as e:
        raise ConfigError(f"app setting SITES is not JSON: {e}") from None
    if not isinstance(entries, list):
        raise ConfigError("app setting SITES must be a JSON list, one object per site")
    sites = {}
    for entry in entries:
        site = site_from(entry, env)
        if site.key.lower() in sites:
            raise ConfigError(f"SITES lists {site.key} twice")
        sites[site.key.lower()] = site
    return sites


def _authority(env) -> str:
    """Where tokens come from: a known Entra cloud, or a local simulator (a token is a secret)."""
    authority = env.get("AUTHORITY_HOST", KNOWN_AUTHORITIES[0]).rstrip("/")
    if authority not in KNOWN_AUTHORITIES and not _LOCAL.match(authority):
        raise ConfigError(f"AUTHORITY_HOST must be one of {', '.join(KNOWN_AUTHORITIES)} (or a local simulator "
                          f"on https://127.0.0.1), not {authority[:60]!r}")
    return authority


def _webhook_secrets(env, sites: dict) -> tuple[str, ...]:
    """WEBHOOK_SECRETS, newest first: needed as soon as there is a site, each too long to guess."""
    secrets = tuple(s.strip() for s in (env.get("WEBHOOK_SECRETS") or "").split(",") if s.strip())
    if sites and not secrets:
        raise ConfigError("app setting WEBHOOK_SECRETS is not set: site webhooks need it (docs/operations.md)")
    for value in secrets:
        if value.startswith("@Microsoft.KeyVault("):
            raise ConfigError("app setting WEBHOOK_SECRETS is an unresolved Key Vault reference")
        if len(value) < 32:
            raise ConfigError("app setting WEBHOOK_SECRETS: each secret needs at least 32 characters")
    return secrets


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
