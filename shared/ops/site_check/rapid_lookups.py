"""The lookups as the site really shows them: single lookups (`X_id` naming an item of the target
list), multi-lookups (read by each strategy of the app's reader against the configured `multi_lookup`),
and the emails of the newest meetings' organisers, whose mailboxes the Graph check then reads."""

from __future__ import annotations

from dataclasses import replace

from ...config import SiteConfig
from ...model.rapid_items import column_ids, has_links, linked_ids, lookup_id
from .findings import FAIL, NETWORK_ERRORS, OK, WARN, Section, counted

SAMPLE_EVENTS = 3       # single GETs of the newest Meeting Events, to see their links
SAMPLE_MEETINGS = 50    # organisers of the newest meetings
SINGLE_LOOKUPS = (("events", "meeting", "meetings"), ("meetings", "organiser", "principals"),
                  ("subscriptions", "meeting", "meetings"))
MULTI_LOOKUPS = (("invitees", "principals"), ("guests", "contacts"))


def check_single_lookups(section: Section, site: SiteConfig, client, pages: dict) -> None:
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
                section.add(OK, what,
                            f"read as {', '.join(keys)}; {len(with_id)} of {counted(len(rows), 'item')} set it")
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
    """How one entry of `LinkedItems` names its multi-lookup column (unpublished: docs/rapid-api.md, "Multi-lookups are links, not columns")."""
    if not isinstance(link, dict):
        return None
    if column in link and column != "id":
        value = link[column]
        return "path" if isinstance(value, str) and "/" in value else "column-key"
    if str(link.get("column") or link.get("scope") or link.get("ColumnName") or "").lower() == column.lower():
        return "descriptor"
    return None


def check_links(section: Section, svc, site: SiteConfig, client, events: list[dict]) -> None:
    """Multi-lookups as the newest events' single GETs show them, read by each strategy of the app's
    reader (`links`, `column`: pure; `query`: RapidClient.multi_lookup_ids), against the configured one."""
    from ...clients.rapid import RapidClient

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
        seen = _links_seen(items, with_links, links, column, read) + refused
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


def _links_seen(items: list[dict], with_links: list[dict], links: list, column: str, read: dict) -> str:
    """What the item GETs showed of one multi-lookup column, and how many ids each strategy read."""
    shapes = sorted({link_shape(link, column) for link in links})
    seen = (f"LinkedItems in {len(with_links)} of {len(items)} item GETs" if with_links
            else "no LinkedItems in the item GET")
    if links:
        seen += f", shape {'/'.join(shapes)}, {counted(len(links), 'link')} of {column}"
    if read["column"]:
        seen += f"; also a plain column {column}"
    return seen + "; ids read by " + ", ".join(f"{s} {n}" for s, n in read.items())


def organiser_emails(section: Section, site: SiteConfig, client, pages: dict) -> list[str]:
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
