"""RAPID, as the app's own identity sees the site: its token, the list of tables, each list the app
uses (its schema and first page of items), then the columns and lookups those show, and the
organisers whose mailboxes the Graph check reads next. Only GETs."""

from __future__ import annotations

import difflib
from urllib.parse import quote

from ...config import SiteConfig
from ...model.errors import RemoteError, Throttled, TransientError, UnexpectedAnswer
from ...model.rapid_items import rows_of
from .findings import FAIL, NETWORK_ERRORS, OK, WARN, CannotContinue, Section, counted
from .rapid_lookups import check_links, check_single_lookups, organiser_emails
from .rapid_schema import LIST_COLUMNS, check_columns, check_extra_columns, schema_columns
from .tokens import jwt_claims, token_fix


def check_rapid(section: Section, svc, site: SiteConfig) -> list[str]:
    """Everything RAPID shows the app; the organisers' emails found in the newest meetings."""
    claims = _rapid_token_claims(section, svc, site)
    client = svc.rapid(site)
    reader = SiteReader(section, client, principal_fix(site, claims))
    names = listed_tables(section, reader)
    schemas, pages = {}, {}
    for key in LIST_COLUMNS:
        if key == "agendas" and not site.agenda:
            continue
        read_list(section, site, reader, key, names, schemas, pages)
    check_columns(section, site, schemas, pages)
    check_extra_columns(section, site, schemas)
    guarded(section, "single lookups", check_single_lookups, section, site, client, pages)
    if "events" in pages:
        guarded(section, "multi-lookups", check_links, section, svc, site, client, pages["events"])
    return guarded(section, "organisers", organiser_emails, section, site, client, pages) or []


def _rapid_token_claims(section: Section, svc, site: SiteConfig) -> dict:
    try:
        token = svc.tokens.token(site, site.rapid_scope)
    except NETWORK_ERRORS as e:
        section.add(FAIL, "RAPID token", str(e), token_fix(site))
        raise CannotContinue from None
    claims = jwt_claims(token)
    section.add(OK, "RAPID token obtained", f"scope {site.rapid_scope}")
    return claims


def principal_fix(site: SiteConfig, claims: dict) -> str:
    return (f"add the app (client id {site.client_id}, object id {claims.get('oid', '?')}) to the site as a "
            "Principal with rights on the Meetings lists; check rapid_scope")


class SiteReader:
    """The check's GETs to the site. A refusal (401/403) or no answer ends the section, with its fix;
    any other RemoteError (a 404, a 400) is the caller's to judge."""

    def __init__(self, section: Section, client, principal_fix: str):
        self.section, self.client, self.principal_fix = section, client, principal_fix

    def get(self, path: str, what: str, **params):
        try:
            return self.client._call("GET", path, f"GET {path}", params=params).json()
        except RemoteError as e:
            if e.status in (401, 403):
                self.section.add(FAIL, f"site refused {what}", str(e), self.principal_fix)
                raise CannotContinue from None
            raise
        except (TransientError, Throttled, ValueError) as e:
            self.section.add(FAIL, f"site did not answer {what}", str(e), "check rapid_url and the site's status")
            raise CannotContinue from None


def listed_tables(section: Section, reader: SiteReader) -> list[str] | None:
    """The site's table names, or None when it publishes no /openapi (each list is then probed)."""
    try:
        return [str(n) for n in table_names(reader.get("/openapi/lists", "the list of tables"))]
    except RemoteError as e:  # 404/400: no /openapi on this site; each list is probed below
        section.add(WARN, "list of tables", f"GET /openapi/lists: {e}")
        return None


def table_names(body) -> list:
    """Table names from GET /openapi/lists: an array of names (the connector's GetLists), or of objects."""
    rows = body.get("value", body.get("lists", [])) if isinstance(body, dict) else body
    out = []
    for row in rows if isinstance(rows, list) else []:
        out.append(row if isinstance(row, str) else
                   next((row[k] for k in ("name", "Name", "Title", "title") if isinstance(row, dict) and k in row), ""))
    return out


def read_list(section: Section, site: SiteConfig, reader: SiteReader, key: str, names: list[str] | None,
              schemas: dict, pages: dict) -> None:
    """One list the app uses: found among the tables, its schema into `schemas[key]` (None when the site
    gives none), its first page of items into `pages[key]` (absent when the list cannot be read)."""
    name = site.list_name(key)
    setting = f"lists.{key}" + (f" = {name!r}" if key in site.lists else "")
    optional = key == "contacts" and not site.guests_as_attendees
    if names is not None and name not in names:
        close = difflib.get_close_matches(name, names, 3, 0.5)
        section.add(WARN if optional else FAIL, f"list {name} not found", f"({setting}) the site has "
                    f"{len(names)} tables" + (f"; close: {', '.join(close)}" if close else ""),
                    f"set {setting.split(' ')[0]} in SITES to the site's name for it")
        return
    try:
        schemas[key] = schema_columns(reader.get(f"/openapi/{quote(name)}/schema", f"the schema of {name}"))
    except RemoteError as e:
        schemas[key] = None
        if names is None and e.status == 404:
            pass  # the page read below decides whether the list exists
        else:
            section.add(WARN, f"schema of {name}", str(e))
    try:
        body = reader.get(f"/lists/{quote(name)}/All$/items", f"the items of {name}")
    except RemoteError as e:  # 404, or a 400 naming an unknown list
        section.add(FAIL, f"list {name} not found", str(e), f"set lists.{key} in SITES to the site's name for it")
        return
    try:
        pages[key] = rows_of(body)
    except UnexpectedAnswer as e:
        section.add(FAIL, f"list {name} answers no rows", str(e), "check rapid_url: it must be the site's API address")
        return
    shape = "a JSON array" if isinstance(body, list) else "an object with value" if isinstance(body, dict) else "?"
    section.add(OK, f"list {name} found", f"{counted(len(pages[key]), 'item')} on the first page (answered as {shape})")


def guarded(section: Section, what: str, check, *args):
    """One part of the RAPID checks; its failure is a finding and the other parts still run."""
    try:
        return check(*args)
    except NETWORK_ERRORS as e:
        section.add(FAIL, what, f"could not be read: {e}", "check the site's status, then run the check again")
    except Exception as e:
        section.add(FAIL, what, f"unexpected {type(e).__name__}: {e}", "report this with the output of the check")
