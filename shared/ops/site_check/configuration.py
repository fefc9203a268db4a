"""The app settings, before anything is asked of a site: the app-wide settings, each SITES entry on its
own (so one bad entry does not hide the others), and the notification URL, which must answer Graph's
validation handshake (a POST to this app that writes nothing)."""

from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from ...config import DEFAULT_RAPID_SCOPE, ConfigError, Settings, SiteConfig, settings_from
from ...model.redact import redact
from .findings import FAIL, OK, WARN, Section

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


def read_app_settings(app: Section, env) -> tuple[Settings, list] | None:
    """The app-wide settings (SITES left out) and the raw SITES entries; None when either is unusable."""
    try:
        settings = settings_from({**env, "SITES": "[]"})
    except ConfigError as e:
        app.add(FAIL, "app settings", str(e), "fix the named app setting")
        return None
    try:
        entries = json.loads(env.get("SITES") or "[]")
        assert isinstance(entries, list) and all(isinstance(e, dict) for e in entries)
    except (ValueError, AssertionError):
        app.add(FAIL, "app setting SITES", "is not a JSON list of objects", "see README, Configuration")
        return None
    if not entries:
        app.add(FAIL, "app setting SITES", "no site is configured", "add one entry per site")
    return settings, entries


def validated_sites(env, entries: list, only: str | None) -> tuple[list[Section], dict[str, SiteConfig]]:
    """One section per SITES entry (or only `only`'s) with its settings checked, and the valid sites by
    lower-case key."""
    sections, sites = [], {}
    storage = {"AzureWebJobsStorage": env.get("AzureWebJobsStorage") or "set"}  # checked above, once
    for entry in entries:
        key = f"{entry.get('tenant')}/{entry.get('site')}"
        if only and key.lower() != only.lower():
            continue
        section = Section(key)
        sections.append(section)
        try:
            site = next(iter(settings_from({**env, **storage, "SITES": json.dumps([entry])}).sites.values()))
        except (ConfigError, ValueError) as e:
            section.add(FAIL, "settings", str(e), "fix this entry of SITES")
            continue
        if site.key.lower() in sites:
            section.add(FAIL, "settings", f"{site.key} is configured twice", "keep one entry per site")
            continue
        sites[site.key.lower()] = site
        check_site_settings(section, site, entry)
    return sections, sites


def check_site_settings(section: Section, site: SiteConfig, entry: dict) -> None:
    notes = [f"multi_lookup {site.multi_lookup}", f"time zone {site.time_zone}"]
    if site.rapid_scope != DEFAULT_RAPID_SCOPE:
        notes.append(f"rapid_scope {site.rapid_scope}")
    section.add(OK, "settings valid", ", ".join(notes))
    url = urlsplit(site.rapid_url)
    if url.scheme != "https":
        local = url.hostname in ("127.0.0.1", "localhost")
        section.add(WARN if local else FAIL, "rapid_url", f"{site.rapid_url} is not https",
                    "use https://api.rapidplatform.com/api/<tenant>/<site>")
    if not GUID.match(site.aad_tenant):
        section.add(FAIL, "aad_tenant", f"{site.aad_tenant!r} is not a tenant id (GUID); Graph notifications "
                    "carry the GUID, so every notification would be refused",
                    "set aad_tenant to the directory (tenant) id of the Microsoft 365 tenant")
    if entry.get("client_secret_setting") and "@Microsoft.KeyVault" in str(site.client_secret or ""):
        section.add(FAIL, "client secret", "the Key Vault reference was not resolved",
                    "give the app's identity 'get' on the vault's secrets (Key Vault Secrets User)")


def check_notification_url(app: Section, settings: Settings) -> None:
    url = settings.notification_url
    if not url:
        app.add(FAIL, "NOTIFICATION_URL", "is not set: no Outlook calendar can be subscribed",
                "set NOTIFICATION_URL to https://<app>/graph/notifications?code=<function key>")
        return
    parts = urlsplit(url)
    if parts.scheme != "https":
        local = parts.hostname in ("127.0.0.1", "localhost")
        app.add(WARN if local else FAIL, "notification URL", f"{redact(url)} is not https; Graph only calls https",
                "fine for the local simulators; in Azure use the app's https URL")
    from ...clients.remote import new_session

    token = "site-check"
    try:
        answer = new_session(settings.ca_bundle).post(url + ("&" if "?" in url else "?") + f"validationToken={token}",
                                                      timeout=10)
    except Exception as e:
        app.add(FAIL, "notification URL unreachable", f"{redact(url)}: {type(e).__name__}",
                "check the URL, the function key in it (?code=) and that the app is running")
        return
    kind = answer.headers.get("Content-Type", "")
    if answer.status_code == 200 and kind.startswith("text/plain") and answer.text == token:
        app.add(OK, "notification URL answers Graph's validation handshake", redact(url))
    else:
        app.add(FAIL, "notification URL refuses Graph's validation handshake",
                f"POST ?validationToken= answered {answer.status_code} {kind or '(no type)'}",
                "point NOTIFICATION_URL at graph/notifications with a valid function key (?code=)")
