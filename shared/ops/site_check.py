"""The site check (SPEC §6): what a configured site and its Microsoft 365 tenant really look like,
read with the app's own settings, identity and network. It changes nothing: GETs to the site and to
Graph, the notification URL's validation handshake (a POST to this app that writes nothing), and for a
site with a conflicts column one getSchedule (a POST to Graph that only reads free/busy).

Used by `python -m devtools.site_check` and by the admin-level HTTP function (functions/admin.py).
Every check becomes a Finding (ok / warn / fail, with the fix); a network failure is a finding too,
never a traceback.
"""

from __future__ import annotations

import base64
import difflib
import json
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, urlsplit

from ..config import DEFAULT_RAPID_SCOPE, ConfigError, Settings, SiteConfig, settings_from
from ..model.errors import RemoteError, Throttled, TransientError
from ..model.rapid_items import column_ids, has_links, linked_ids, lookup_id, rows_of

OK, WARN, FAIL = "ok", "warn", "fail"
MARKS = {OK: "✓", WARN: "!", FAIL: "✗"}
SAMPLE_EVENTS = 3       # single GETs of the newest Meeting Events, to see their links
SAMPLE_MEETINGS = 50    # organisers of the newest meetings
MAX_MAILBOXES = 20
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
NETWORK_ERRORS = (RemoteError, TransientError, Throttled)
# getSchedule (conflicts_column): includes/permissions/calendar-getschedule-permissions.md, least privileged first
FREE_BUSY_ROLES = ("Calendars.ReadBasic", "Calendars.Read", "Calendars.ReadWrite")
FREE_BUSY_CHECK = "free/busy for conflicts_column (getSchedule)"
FREE_BUSY_FIX = "Calendars.ReadBasic (least privileged; Calendars.Read or Calendars.ReadWrite also allow it)"

# The columns the app reads or writes, per list (SPEC §2), as keys of SiteConfig.col()
LIST_COLUMNS = {
    "meetings": ("title", "organiser"),
    "events": ("title", "meeting", "start_date", "end_date", "all_day", "location", "description",
               "invitees", "guests", "status", "sys_external_id"),
    "subscriptions": ("title", "meeting", "subscription_id", "resource", "expires", "status"),
    "principals": ("email",),
    "contacts": ("email",),
    "agendas": ("title",),  # read only by sites with `agenda` (owner and duration are shown where present)
}
SINGLE_LOOKUPS = (("events", "meeting", "meetings"), ("meetings", "organiser", "principals"),
                  ("subscriptions", "meeting", "meetings"))
MULTI_LOOKUPS = (("invitees", "principals"), ("guests", "contacts"))
SYSTEM_COLUMNS = {"id", "sys_external_id", "created", "modified", "deleted", "parent_id", "rank"}
# optional Meeting Events columns a site names in SITES (features it switches on): each must exist when set
EXTRA_COLUMNS = ("status_column", "private_column", "answers_column", "teams_column", "join_url_column",
                 "conflicts_column")


@dataclass
class Finding:
    level: str
    what: str
    detail: str = ""
    fix: str = ""


@dataclass
class Section:
    name: str
    findings: list[Finding] = field(default_factory=list)

    def add(self, level: str, what: str, detail: str = "", fix: str = "") -> Finding:
        finding = Finding(level, what, _redact(detail), fix)
        self.findings.append(finding)
        return finding


class _Stop(Exception):
    """The rest of a section cannot be checked (its finding is already recorded)."""


# -- entry points ---------------------------------------------------------------------------------

def check_env(env, only: str | None = None) -> list[Section]:
    """Validate the app settings site by site, then check every valid site (or only `only`)."""
    app = Section("app")
    try:
        settings = settings_from({**env, "SITES": "[]"})
    except ConfigError as e:
        app.add(FAIL, "app settings", str(e), "fix the named app setting")
        return [app]
    try:
        entries = json.loads(env.get("SITES") or "[]")
        assert isinstance(entries, list) and all(isinstance(e, dict) for e in entries)
    except (ValueError, AssertionError):
        app.add(FAIL, "app setting SITES", "is not a JSON list of objects", "see README, Configuration")
        return [app]
    if not entries:
        app.add(FAIL, "app setting SITES", "no site is configured", "add one entry per site")
    sections, sites = [app], {}
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
        _check_site_settings(section, site, entry)
    if only and len(sections) == 1:
        app.add(FAIL, f"site {only}", "is not configured in SITES")
    _check_notification_url(app, settings)
    for section in sections[1:]:
        site = sites.get(section.name.lower())
        if site is not None:
            section.findings += check_site(_services(replace(settings, sites={site.key.lower(): site})), site)
    return sections


def check_all(settings: Settings) -> list[Section]:
    """Check already-parsed settings: the notification URL, then each site."""
    app = Section("app")
    _check_notification_url(app, settings)
    return [app] + [Section(site.key, check_site(_services(settings), site)) for site in settings.sites.values()]


def check_site(svc, site: SiteConfig) -> list[Finding]:
    """Everything about one site: RAPID (token, lists, columns, lookups, links), then Graph."""
    section = Section(site.key)
    organisers: list[str] = []
    for part in (_check_rapid, _check_graph):
        try:
            organisers = part(section, svc, site, organisers) or organisers
        except _Stop:
            pass
        except Exception as e:  # a check must report, never crash
            section.add(FAIL, f"{part.__name__[7:]} check", f"unexpected {type(e).__name__}: {e}",
                        "report this with the output of the check")
    return section.findings


def failed(sections: list[Section]) -> bool:
    return any(f.level == FAIL for s in sections for f in s.findings)


def to_json(sections: list[Section]) -> dict:
    return {"ok": not failed(sections),
            "sections": [{"name": s.name, "findings": [asdict(f) for f in s.findings]} for s in sections]}


def to_text(sections: list[Section]) -> str:
    lines = []
    for s in sections:
        lines.append(s.name if s.name != "app" else "app settings")
        for f in s.findings:
            lines.append(f"  {MARKS[f.level]} {f.what}" + (f": {f.detail}" if f.detail else ""))
            if f.fix and f.level != OK:
                lines.append(f"      fix: {f.fix}")
        lines.append("")
    counts = {lvl: sum(f.level == lvl for s in sections for f in s.findings) for lvl in (OK, WARN, FAIL)}
    lines.append(f"{counts[OK]} ok, {counts[WARN]} warnings, {counts[FAIL]} problems")
    return "\n".join(lines) + "\n"


# -- settings -------------------------------------------------------------------------------------

def _services(settings: Settings):
    from ..services import Services  # a fresh one per site: its own token, proving its own credential

    return Services(settings)


def _check_site_settings(section: Section, site: SiteConfig, entry: dict) -> None:
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


def _check_notification_url(app: Section, settings: Settings) -> None:
    url = settings.notification_url
    if not url:
        app.add(FAIL, "NOTIFICATION_URL", "is not set: no Outlook calendar can be subscribed",
                "set NOTIFICATION_URL to https://<app>/graph/notifications?code=<function key>")
        return
    parts = urlsplit(url)
    if parts.scheme != "https":
        local = parts.hostname in ("127.0.0.1", "localhost")
        app.add(WARN if local else FAIL, "notification URL", f"{_redact(url)} is not https; Graph only calls https",
                "fine for the local simulators; in Azure use the app's https URL")
    from ..clients.remote import new_session

    token = "site-check"
    try:
        answer = new_session(settings.ca_bundle).post(url + ("&" if "?" in url else "?") + f"validationToken={token}",
                                                      timeout=10)
    except Exception as e:
        app.add(FAIL, "notification URL unreachable", f"{_redact(url)}: {type(e).__name__}",
                "check the URL, the function key in it (?code=) and that the app is running")
        return
    kind = answer.headers.get("Content-Type", "")
    if answer.status_code == 200 and kind.startswith("text/plain") and answer.text == token:
        app.add(OK, "notification URL answers Graph's validation handshake", _redact(url))
    else:
        app.add(FAIL, "notification URL refuses Graph's validation handshake",
                f"POST ?validationToken= answered {answer.status_code} {kind or '(no type)'}",
                "point NOTIFICATION_URL at graph/notifications with a valid function key (?code=)")


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'s' * (count != 1)}"


def _redact(text: str) -> str:
    return re.sub(r"(?i)\b(code|sig)=[^&\s]+", r"\1=***", text)


# -- RAPID ----------------------------------------------------------------------------------------

def _check_rapid(section: Section, svc, site: SiteConfig, _organisers) -> list[str]:
    try:
        token = svc.tokens.token(site, site.rapid_scope)
    except NETWORK_ERRORS as e:
        section.add(FAIL, "RAPID token", str(e), _token_fix(site))
        raise _Stop from None
    claims = jwt_claims(token)
    section.add(OK, "RAPID token obtained", f"scope {site.rapid_scope}")
    client = svc.rapid(site)
    principal_fix = (f"add the app (client id {site.client_id}, object id {claims.get('oid', '?')}) to the site as a "
                     "Principal with rights on the Meetings lists; check rapid_scope")

    def get(path: str, what: str, **params):
        try:
            return client._call("GET", path, f"GET {path}", params=params).json()
        except RemoteError as e:
            if e.status in (401, 403):
                section.add(FAIL, f"site refused {what}", str(e), principal_fix)
                raise _Stop from None
            raise
        except (TransientError, Throttled, ValueError) as e:
            section.add(FAIL, f"site did not answer {what}", str(e), "check rapid_url and the site's status")
            raise _Stop from None

    try:
        names = [str(n) for n in _names(get("/openapi/lists", "the list of tables"))]
    except RemoteError as e:  # 404/400: no /openapi on this site; each list is probed below
        names = None
        section.add(WARN, "list of tables", f"GET /openapi/lists: {e}")
    schemas, pages = {}, {}
    for key in LIST_COLUMNS:
        if key == "agendas" and not site.agenda:
            continue
        name = site.list_name(key)
        setting = f"lists.{key}" + (f" = {name!r}" if key in site.lists else "")
        optional = key == "contacts" and not site.guests_as_attendees
        if names is not None and name not in names:
            close = difflib.get_close_matches(name, names, 3, 0.5)
            section.add(WARN if optional else FAIL, f"list {name} not found", f"({setting}) the site has "
                        f"{len(names)} tables" + (f"; close: {', '.join(close)}" if close else ""),
                        f"set {setting.split(' ')[0]} in SITES to the site's name for it")
            continue
        try:
            schemas[key] = schema_columns(get(f"/openapi/{quote(name)}/schema", f"the schema of {name}"))
        except RemoteError as e:
            schemas[key] = None
            if names is None and e.status == 404:
                pass  # the page read below decides whether the list exists
            else:
                section.add(WARN, f"schema of {name}", str(e))
        try:
            body = get(f"/lists/{quote(name)}/All$/items", f"the items of {name}")
        except RemoteError as e:  # 404, or a 400 naming an unknown list
            section.add(FAIL, f"list {name} not found", str(e), f"set lists.{key} in SITES to the site's name for it")
            continue
        pages[key] = rows_of(body)
        shape = "a JSON array" if isinstance(body, list) else "an object with value" if isinstance(body, dict) else "?"
        section.add(OK, f"list {name} found", f"{_n(len(pages[key]), 'item')} on the first page (answered as {shape})")
    _check_columns(section, site, schemas, pages)
    _check_extra_columns(section, site, schemas)
    _guarded(section, "single lookups", _check_single_lookups, section, site, client, pages)
    if "events" in pages:
        _guarded(section, "multi-lookups", _check_links, section, svc, site, client, pages["events"])
    return _guarded(section, "organisers", _organiser_emails, section, site, client, pages) or []


def _guarded(section: Section, what: str, check, *args):
    """One part of the RAPID checks; its failure is a finding and the other parts still run."""
    try:
        return check(*args)
    except NETWORK_ERRORS as e:
        section.add(FAIL, what, f"could not be read: {e}", "check the site's status, then run the check again")
    except Exception as e:
        section.add(FAIL, what, f"unexpected {type(e).__name__}: {e}", "report this with the output of the check")


def _token_fix(site: SiteConfig) -> str:
    return (f"check aad_tenant ({site.aad_tenant}), client_id ({site.client_id}) and the client secret or certificate "
            "setting; the secret must be the secret's value, not its id, and not expired")


def _names(body) -> list:
    """Table names from GET /openapi/lists: an array of names (the connector's GetLists), or of objects."""
    rows = body.get("value", body.get("lists", [])) if isinstance(body, dict) else body
    out = []
    for row in rows if isinstance(rows, list) else []:
        out.append(row if isinstance(row, str) else
                   next((row[k] for k in ("name", "Name", "Title", "title") if isinstance(row, dict) and k in row), ""))
    return out


def schema_columns(doc) -> dict[str, str]:
    """Column name → FieldType ('' when not said) from GET /openapi/{list}/schema. The document is
    published only in fragments: RAPID's column JSON (`ColumnName`, `FieldType`) and the connector's
    JSON schema under `Schema`. A single lookup X may show only as the property `X_id`."""
    columns: dict[str, str] = {}
    if not isinstance(doc, dict):
        return columns
    for spec in doc.get("Fields") or doc.get("fields") or doc.get("Columns") or []:
        if isinstance(spec, str):
            columns[spec] = ""
        elif isinstance(spec, dict) and (name := spec.get("ColumnName") or spec.get("name") or spec.get("Name")):
            columns[str(name)] = str(spec.get("FieldType") or spec.get("type") or "")
    schema = doc.get("Schema") if isinstance(doc.get("Schema"), dict) else doc
    for name in (schema.get("properties") or {}):
        columns.setdefault(name, "")
        if name.endswith("_id") and len(name) > 3:
            columns.setdefault(name[:-3], "Lookup")
    return columns


def _check_columns(section: Section, site: SiteConfig, schemas: dict, pages: dict) -> None:
    for key, wanted in LIST_COLUMNS.items():
        if key not in pages and key not in schemas:
            continue
        list_name = site.list_name(key)
        schema = schemas.get(key)
        if schema:
            known, source = schema, "schema"
        else:  # no schema: the keys of the sampled items (multi-lookups never show there: see links below)
            known, source = {}, "sample items"
            for row in pages.get(key, []):
                known.update({k: "" for k in row} | {k[:-3]: "Lookup" for k in row if k.endswith("_id")})
        missing = []
        for col_key in wanted:
            column = site.col(col_key)
            if column in known or column in SYSTEM_COLUMNS:
                continue
            multi = col_key in ("invitees", "guests")
            if not schema and (multi or not pages.get(key)):
                continue
            # a schema that shows no multi-lookup at all may just not list them: the links check decides
            optional = (col_key == "guests" and not site.guests_as_attendees) or (
                multi and "MultiLookup" not in known.values())
            missing.append(col_key)
            setting = f"columns.{col_key}" + (f" = {column!r}" if col_key in site.columns else "")
            close = difflib.get_close_matches(column, list(known), 3, 0.6)
            section.add(WARN if optional or not schema else FAIL, f"column {column} not in {list_name}",
                        f"({setting}) per the {source}" + (f"; close: {', '.join(close)}" if close else ""),
                        f"set {setting.split(' ')[0]} in SITES to the site's column name")
        kinds = [f"{site.col(c)} ({known[site.col(c)]})" for c in wanted
                 if c not in missing and known.get(site.col(c)) in ("Lookup", "MultiLookup")]
        if len(missing) < len(wanted):
            section.add(OK, f"columns of {list_name} present",
                        f"{len(wanted) - len(missing)} of {len(wanted)} per the {source}"
                        + (f"; lookups: {', '.join(kinds)}" if kinds else ""))


def _check_extra_columns(section: Section, site: SiteConfig, schemas: dict) -> None:
    named = [(key, getattr(site, key)) for key in EXTRA_COLUMNS if getattr(site, key)]
    list_name = site.list_name("events")
    if not named:
        return
    if not schemas.get("events"):
        section.add(WARN, f"optional columns of {list_name}", f"no schema to check {', '.join(c for _, c in named)} "
                    "against", "open the list in the designer and check that these columns exist")
        return
    missing = [(key, column) for key, column in named if column not in schemas["events"]]
    for key, column in missing:
        section.add(FAIL, f"column {column} not in {list_name}", f"(SITES {key}) per the schema",
                    f"add a column named {column} to {list_name}, or change {key} in SITES")
    if len(missing) < len(named):
        section.add(OK, f"optional columns of {list_name} present",
                    ", ".join(f"{c} ({k})" for k, c in named if (k, c) not in missing))


def _check_single_lookups(section: Section, site: SiteConfig, client, pages: dict) -> None:
    for list_key, col_key, target_key in SINGLE_LOOKUPS:
        rows = pages.get(list_key)
        if rows is None:
            continue
        column, list_name = site.col(col_key), site.list_name(list_key)
        what = f"{list_name}.{column} (single lookup)"
        if not rows:
            if list_key == "subscriptions":  # this app writes them: none before the first meeting is synced
                section.add(OK, what, f"no {list_name} items yet (this app writes them)")
            else:
                section.add(WARN, what, f"no {list_name} items to read yet",
                            "create one, then run the check again to see how the site shows lookups")
            continue
        with_id = [r for r in rows if r.get(f"{column}_id") not in (None, "")]
        if with_id:
            keys = [k for k in (f"{column}_id", column, f"{column}$type") if k in with_id[0]]
            target_id = lookup_id(with_id[0], column)
            if target_key not in pages:  # its list was not found (reported above): nothing to compare with
                section.add(OK, what, f"read as {', '.join(keys)}; {len(with_id)} of {_n(len(rows), 'item')} set it")
                continue
            target = client.get_item(target_key, target_id) if target_id else None
            if target is None:
                section.add(FAIL, what, f"{column}_id {target_id} of item {with_id[0].get('id')} is not an item of "
                            f"{site.list_name(target_key)}",
                            f"check columns.{col_key} and lists.{target_key}")
                continue
            section.add(OK, what, f"read as {', '.join(keys)}; {len(with_id)} of {len(rows)} items set it; "
                        f"{column}_id {target_id} is {site.list_name(target_key)} item {target.get('title')!r}")
            continue
        values = [r[column] for r in rows if r.get(column) not in (None, "")]
        ids = [i for r in rows if (i := lookup_id(r, column))]
        if ids:
            section.add(WARN, what, f"no {column}_id: {column} holds the id ({values[0]!r}), an older shape the "
                        "reader accepts")
        elif values:
            section.add(FAIL, what, f"{column} holds text ({str(values[0])[:40]!r}) and no item has {column}_id: "
                        "the target id cannot be read", f"check columns.{col_key}: it must name the lookup column")
        elif any(column in r or f"{column}_id" in r for r in rows):
            section.add(WARN, what, f"none of the {len(rows)} items sets it")
        else:
            section.add(FAIL, what, f"no item has {column}_id or {column}",
                        f"set columns.{col_key} in SITES to the site's lookup column")


def link_shape(link, column: str) -> str | None:
    """How one entry of `LinkedItems` names its multi-lookup column (unpublished, SPEC §1a)."""
    if not isinstance(link, dict):
        return None
    if column in link and column != "id":
        value = link[column]
        return "path" if isinstance(value, str) and "/" in value else "column-key"
    if str(link.get("column") or link.get("scope") or link.get("ColumnName") or "").lower() == column.lower():
        return "descriptor"
    return None


def _check_links(section: Section, svc, site: SiteConfig, client, events: list[dict]) -> None:
    """Multi-lookups as the newest events' single GETs show them, read by each strategy of the app's
    reader (`links`, `column`: pure; `query`: RapidClient.multi_lookup_ids), against the configured one."""
    from ..clients.rapid import RapidClient

    items = [i for r in events[:SAMPLE_EVENTS] if "id" in r and (i := client.get_item("events", r["id"]))]
    events_list = site.list_name("events")
    if not items:
        section.add(WARN, f"links of {events_list}", "no Meeting Events to read yet",
                    "create one with an invitee, then run the check again")
        return
    query_reader = RapidClient(replace(site, multi_lookup="query"), svc.session, svc.tokens)
    with_links = [i for i in items if has_links(i)]
    for col_key, target_key in MULTI_LOOKUPS:
        if col_key == "guests" and not site.guests_as_attendees:
            continue
        column, target_list = site.col(col_key), site.list_name(target_key)
        what = f"{events_list}.{column} (multi-lookup)"
        links = [link for i in with_links for link in i["LinkedItems"] if link_shape(link, column)]
        shapes = sorted({link_shape(link, column) for link in links})
        read = {"links": sum(len(linked_ids(i, column, target_list)) for i in with_links),
                "query": 0, "column": sum(len(column_ids(i, column)) for i in items)}
        refused = ""
        try:
            read["query"] = sum(len(query_reader.multi_lookup_ids("events", i, column, target_key)) for i in items)
        except NETWORK_ERRORS as e:
            if site.multi_lookup == "query":
                section.add(FAIL, what, f"the inScoped query failed: {e}", "set multi_lookup to 'links' in SITES")
                continue
            refused = f" (the inScoped query was refused: {str(e)[:80]})"
        seen = (f"LinkedItems in {len(with_links)} of {len(items)} item GETs" if with_links
                else "no LinkedItems in the item GET")
        if links:
            seen += f", shape {'/'.join(shapes)}, {_n(len(links), 'link')} of {column}"
        if read["column"]:
            seen += f"; also a plain column {column}"
        seen += "; ids read by " + ", ".join(f"{s} {n}" for s, n in read.items()) + refused
        configured = site.multi_lookup
        working = [s for s in ("links", "query", "column") if read[s]]
        if configured == "links" and read["links"] < len(links):
            section.add(FAIL, what, f"{seen}: the link reader misses {len(links) - read['links']} of them "
                        f"(their list is not {target_list}?)",
                        f"check lists.{target_key}; or set multi_lookup to 'query' in SITES")
        elif read[configured]:
            section.add(OK, what, f"{seen} (multi_lookup {configured!r} reads them)")
        elif working:
            section.add(FAIL, what, f"{seen}: multi_lookup {configured!r} reads nothing here",
                        f"set multi_lookup to {working[0]!r} for this site in SITES")
        elif configured == "links" and not with_links:
            section.add(FAIL, what, f"{seen}: multi_lookup 'links' cannot work on this site",
                        "set multi_lookup to 'query' for this site in SITES")
        else:
            section.add(WARN, what, f"{seen}: none of the {len(items)} newest events has one",
                        f"give an event a value for {column} (or check columns.{col_key}), then run the check again")


def _organiser_emails(section: Section, site: SiteConfig, client, pages: dict) -> list[str]:
    meetings = pages.get("meetings") or []
    ids = sorted({i for r in meetings[:SAMPLE_MEETINGS] if (i := lookup_id(r, site.col("organiser")))})
    if not ids or "principals" not in pages:
        return []
    email = site.col("email")
    try:
        people = client.items_by_id("principals", ids, (email,))
    except NETWORK_ERRORS as e:
        section.add(FAIL, "organisers", f"reading {len(ids)} Principals: {e}", f"check columns.email ({email!r})")
        return []
    emails = sorted({p[email] for p in people.values() if p.get(email)})
    without = [i for i in ids if not (people.get(i) or {}).get(email)]
    if without:
        section.add(WARN, "organisers without an email", f"Principals {', '.join(without[:10])}",
                    "their meetings cannot be synced until the Principal has an email")
    return emails


# -- Graph ----------------------------------------------------------------------------------------

def _check_teams(section: Section, svc, site: SiteConfig, mailboxes: list[str], headers: dict) -> None:
    """Which organisers' calendars offer Teams meetings (calendar.md, allowedOnlineMeetingProviders)."""
    from ..clients.remote import send

    without = []
    for mailbox in mailboxes:
        try:
            calendar = send(svc.session, "GET", f"{svc.settings.graph_url}/users/{quote(mailbox, safe='@')}/calendar",
                            "Graph get calendar", headers=headers,
                            params={"$select": "allowedOnlineMeetingProviders"}).json()
        except NETWORK_ERRORS as e:
            section.add(FAIL, f"calendar of {mailbox}", str(e), "grant Calendars.ReadWrite")
            continue
        if "teamsForBusiness" not in (calendar.get("allowedOnlineMeetingProviders") or ()):
            without.append(mailbox)
    if without:
        section.add(WARN, "Teams meetings", f"{_n(len(without), 'organiser')} cannot have Teams meetings (their "
                    f"calendar offers none): {', '.join(without[:5])}" + (" …" if len(without) > 5 else ""),
                    "their events are made without Teams (the status column says so); give them a Teams licence")
    elif mailboxes:
        section.add(OK, "Teams meetings", f"offered by the calendars of all {_n(len(mailboxes), 'organiser')} checked")


def jwt_claims(token: str) -> dict:
    """The payload of a JWT, not verified (the check only reads what the token says about itself)."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}


def required_roles() -> list[str]:
    from ..clients.graph import GraphClient

    # the app looks users up (GET /users/{upn}) for as long as GraphClient can: that needs User.Read.All
    return ["Calendars.ReadWrite"] + (["User.Read.All"] if hasattr(GraphClient, "user_id") else [])


def _check_graph(section: Section, svc, site: SiteConfig, organisers: list[str]) -> None:
    from ..clients.graph import GRAPH_SCOPE
    from ..clients.remote import send

    try:
        token = svc.tokens.token(site, GRAPH_SCOPE)
    except NETWORK_ERRORS as e:
        section.add(FAIL, "Graph token", str(e), _token_fix(site))
        return
    section.add(OK, "Graph token obtained", f"tenant {site.aad_tenant}")
    claims, required = jwt_claims(token), required_roles()
    roles = claims.get("roles")
    grant = f"grant the application permission(s) to app {site.client_id} and give admin consent"
    if roles is None:
        section.add(WARN, "Graph roles", "the token carries no roles claim: no application permission is granted, "
                    "or the token is not a JWT (the mailbox reads below decide)",
                    f"{grant}: {', '.join(required)}")
    elif missing := [r for r in required if r not in roles]:
        section.add(FAIL, "Graph roles", f"missing {', '.join(missing)} (has: {', '.join(roles) or 'none'})",
                    f"{grant}: {', '.join(missing)}")
    else:
        section.add(OK, "Graph roles", ", ".join(roles))
    free_busy = bool(site.conflicts_column)
    if free_busy and roles is not None and not set(roles) & set(FREE_BUSY_ROLES):
        section.add(FAIL, FREE_BUSY_CHECK, f"the token's roles allow no getSchedule (has: {', '.join(roles) or 'none'})",
                    f"{grant}: {FREE_BUSY_FIX}")
        free_busy = False
    if not organisers:
        section.add(WARN, "organiser mailboxes", "no organiser found in the newest meetings",
                    "create a meeting with an organiser, then run the check again")
        return
    headers = {"Authorization": f"Bearer {token}"}

    def probe(path: str, what: str, **params) -> str | None:
        try:
            send(svc.session, "GET", svc.settings.graph_url + path, f"Graph {what}", headers=headers, params=params)
            return None
        except NETWORK_ERRORS as e:
            return str(e)

    reached = []
    for mailbox in organisers[:MAX_MAILBOXES]:
        user = f"/users/{quote(mailbox, safe='@')}"
        if error := probe(f"{user}/events", "read calendar", **{"$top": "1", "$select": "id"}):
            section.add(FAIL, f"mailbox {mailbox}", error,
                        "a 404: the organiser's email is not a mailbox of this tenant; a 403: grant "
                        "Calendars.ReadWrite (or widen the Exchange application access policy)")
        else:
            reached.append(mailbox)
    if reached:
        more = f" (of {len(organisers)}; the first {MAX_MAILBOXES} checked)" if len(organisers) > MAX_MAILBOXES else ""
        section.add(OK, "organiser mailboxes reachable", f"{len(reached)}{more}: {', '.join(reached[:5])}"
                    + (" …" if len(reached) > 5 else ""))
        if free_busy:
            _check_free_busy(section, svc, site, reached[0], grant)
        if site.teams or site.teams_column:
            _check_teams(section, svc, site, reached, headers)
        if "User.Read.All" in required:
            if error := probe(f"/users/{quote(reached[0], safe='@')}", "get user", **{"$select": "id"}):
                section.add(FAIL, "user lookup (GET /users/{upn})", error, f"{grant}: User.Read.All")
            else:
                section.add(OK, "user lookup (GET /users/{upn})", reached[0])


def _check_free_busy(section: Section, svc, site: SiteConfig, mailbox: str, grant: str) -> None:
    """The site turns conflicts on: one getSchedule of the organiser's own free/busy must answer (a POST
    that reads only, sent as the sync sends it)."""
    hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    try:
        svc.graph(site).get_schedule(mailbox, [mailbox], hour, hour + timedelta(hours=1), 60)
    except NETWORK_ERRORS as e:
        section.add(FAIL, FREE_BUSY_CHECK, str(e), f"{grant}: {FREE_BUSY_FIX}; a 403 with the permission granted: "
                    "widen the application access policy to the organisers' mailboxes")
        return
    section.add(OK, FREE_BUSY_CHECK, f"read through {mailbox}")
