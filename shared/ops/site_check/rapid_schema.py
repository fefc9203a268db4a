"""The columns the app reads or writes (docs/rapid-api.md, "The Meetings bundle"), checked against each list's schema, or against the
keys of its first items when the site publishes no schema; and the optional Meeting Events columns a
site switches features on with."""

from __future__ import annotations

import difflib

from ...config import SiteConfig
from .findings import FAIL, OK, WARN, Section

# The columns the app reads or writes, per list (docs/rapid-api.md, "The Meetings bundle"), as keys of SiteConfig.col()
LIST_COLUMNS = {
    "meetings": ("title", "organiser"),
    "events": ("title", "meeting", "start_date", "end_date", "all_day", "location", "description",
               "invitees", "guests", "status", "sys_external_id"),
    "subscriptions": ("title", "meeting", "subscription_id", "resource", "expires", "status"),
    "principals": ("email",),
    "contacts": ("email",),
    "agendas": ("title",),  # read only by sites with `agenda` (owner and duration are shown where present)
}
SYSTEM_COLUMNS = {"id", "sys_external_id", "created", "modified", "deleted", "parent_id", "rank"}
# optional Meeting Events columns a site names in SITES (features it switches on): each must exist when set
EXTRA_COLUMNS = ("status_column", "private_column", "answers_column", "teams_column", "join_url_column",
                 "conflicts_column", "room_column", "room_status_column", "free_times_column")


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


def check_columns(section: Section, site: SiteConfig, schemas: dict, pages: dict) -> None:
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


def check_extra_columns(section: Section, site: SiteConfig, schemas: dict) -> None:
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
