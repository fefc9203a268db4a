"""How a RAPID site represents items, as published (docs/rapid-api.md). Pure: no I/O, cheap to import.

Sources: RAPID-Platform-Projects/Rapid-Docs, "API Concepts" (item profile, links, webhooks) and
"Perform Remote Action" (the envelope), the Lodash filtering page (a Get All Items answer showing a
single lookup as `business_id` / `business` / `business$type`); the certified connector
(microsoft/PowerPlatformConnectors, certified-connectors/RAPID Platform/apiDefinition.swagger.json).
What they leave open (the JSON of a link, the "Items Deleted" body) is read tolerantly here, in one
place, and reported by the site check (shared/ops/site_check/).
"""

from __future__ import annotations

from .errors import UnexpectedAnswer

ENVELOPE_KEYS = ("site", "tenant", "requestor", "item")


def ids_of(value) -> list[str]:
    """Ids from a lookup value: 3, "3", {"id": 3}, "List/3", or a list of those."""
    if value is None or value == "" or isinstance(value, bool):
        return []
    if isinstance(value, list):
        return [i for v in value for i in ids_of(v)]
    if isinstance(value, dict):
        return ids_of(value.get("id"))
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if "/" in text:
        text = text.rpartition("/")[2]
    return [text] if text else []


def lookup_id(item: dict, column: str) -> str | None:
    """A single lookup's target id. RAPID sends `X_id` (the id), `X` (the target's display text) and
    `X$type`; only when `X_id` is absent (an older site, or a body we were handed) is `X` read as an id."""
    key = f"{column}_id"
    ids = ids_of(item.get(key)) if key in item else _plain_ids(item.get(column))
    return ids[0] if ids else None


def _plain_ids(value) -> list[str]:
    # `X` on a current site is display text ("Weekly sync"): only a number or {"id"} counts as an id
    if isinstance(value, str) and not is_number(value.strip()):
        return []
    return ids_of(value)


def is_number(text) -> bool:
    """An id RAPID keeps as a number: ASCII digits only (`str.isdigit` also says yes to "²" and "١٢",
    which `int()` refuses or reads as another number)."""
    return isinstance(text, str) and text.isascii() and text.isdigit()


def filter_value(value) -> str:
    """A value as a RAPID `$filter` literal: a number bare, anything else quoted with its quotes doubled
    (OData's string literal, which RAPID's filters follow: docs/rapid-api.md, "Filters")."""
    text = str(value)
    return text if is_number(text) else "'" + text.replace("'", "''") + "'"


def lookup_write(column: str, target_id: str | int | None) -> dict:
    """The body fragment that sets a single lookup: `X_id: 55` (API Concepts, "How to update an item")."""
    if target_id is None:
        return {f"{column}_id": None}
    return {f"{column}_id": int(target_id) if is_number(str(target_id)) else target_id}


def has_links(item: dict) -> bool:
    return isinstance(item.get("LinkedItems"), list)


def linked_ids(item: dict, column: str, target_list: str) -> list[str]:
    """Target ids of a multi-lookup from the item's scoped links (`LinkedItems` of the single GET).

    The JSON of a link is not published; each link has its own `id` (never the target's). Read:
    `{"id", "<column>": 12 | "List/12" | {"id": 12}}` and `{"id", "column": "<column>", "list", "item_id"}`.
    A universal link without a column ("List/12") belongs to no multi-lookup and is skipped."""
    found = []
    for link in item.get("LinkedItems") or []:
        if not isinstance(link, dict):
            continue
        if column in link:
            value = link[column]
        elif str(link.get("column") or link.get("scope") or link.get("ColumnName") or "").lower() == column.lower():
            value = next((link[k] for k in ("item_id", "target_id", "linked_id", "link", "target") if k in link), None)
        else:
            continue
        kind = link.get("list") or (link.get("__metadata") or {}).get("type")
        if isinstance(value, str) and "/" in value:
            kind = value.rpartition("/")[0]
        if kind and str(kind).lower() != target_list.lower():
            continue
        found += ids_of(value)
    return sorted_ids(found)


def universal_link_ids(item: dict, target_list: str) -> list[str]:
    """Ids of the `target_list` items the item is universally linked to (links without a column), from
    the `LinkedItems` of its profile. The JSON of a link is not published: read `{"id", "item_id": 12,
    "__metadata": {"type": "<List>"}}`, `{"id", "list": "<List>", "item_id": 12}` and `{"id", "link":
    "<List>/12"}` (a link's own `id` is never the target's)."""
    found = []
    for link in item.get("LinkedItems") or []:
        if not isinstance(link, dict) or link.get("column") or link.get("scope") or link.get("ColumnName"):
            continue
        value = next((link[k] for k in ("item_id", "target_id", "linked_id", "link", "target") if k in link), None)
        kind = link.get("list") or (link.get("__metadata") or {}).get("type")
        if isinstance(value, str) and "/" in value:
            kind = value.rpartition("/")[0]
        if kind and str(kind).strip().lower() == target_list.lower():
            found += ids_of(value)
    return sorted_ids(found)


def sorted_ids(ids) -> list[str]:
    """Distinct ids in numeric order (ids are text: "9" before "10")."""
    return sorted(set(ids), key=lambda i: (len(i), i))


def column_ids(item: dict, column: str) -> list[str]:
    """A multi-lookup kept as a plain column of ids (older or custom sites)."""
    return ids_of(item.get(column))


def rows_of(body) -> list[dict]:
    """A list read's rows: a JSON array of objects, or an object whose `value` (or `items`) is that array
    (public clients unwrap it). Any other shape raises UnexpectedAnswer: an empty list is an answer, an
    error object or a page of something else is not, and must never read as "the site has no items"."""
    rows = body.get("value", body.get("items")) if isinstance(body, dict) else body
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        shape = type(body).__name__ if not isinstance(body, dict) else "an object with keys " + \
            ", ".join(sorted(map(str, body))[:5])
        raise UnexpectedAnswer(f"a list read answered {shape}, not rows")
    return rows


def written_item(body) -> dict | None:
    """The item a POST or PUT answered with: an object, a one-element array, or nothing (201/204)."""
    if isinstance(body, list):
        body = body[0] if len(body) == 1 else None
    return body if isinstance(body, dict) and "id" in body else None


def is_envelope(data) -> bool:
    """The body RAPID's "Perform Remote Action" sends: {site, tenant, environment, requestor, item}."""
    return isinstance(data, dict) and "item" in data and "id" not in data and ("site" in data or "tenant" in data)
