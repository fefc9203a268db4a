"""List reads: `GET /lists/{List}/{View}/items` with `$filter`, `$select`, `$skip`, `$top`, `linkedTo`.

Rapid-Docs "docs/Rapid/4-Developer Manual/API Concepts/API Concepts.md": "How to get a bunch of
items" (first page, "sorted by ID descending"), "How to get a bunch of linked items" (`linkedTo`: "any
items that are universally linked, target and origin of a multi lookup or have single lookups pointing
at the item"), "How to get a bunch of universally linked items" (`universallyLinkedTo`), "Get Table
Items" ("keys in each object contain the fields on the view being accessed"), "How to create an item"
(`all$` "contains every field"; "Fields not listed in a datasource are not returned").
PowerPlatformConnectors "certified-connectors/RAPID Platform/apiDefinition.swagger.json", GetAllItems:
"a page of up to 250 items", parameters `$skip`, `$filter`, `$select`, `linkedTo`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..base import HttpError
from .filters import parse_filter
from .items import Item, full_row
from .schema import SYSTEM_COLUMNS, ListSchema

if TYPE_CHECKING:
    from .site import SiteSim
    from .variant import RapidVariant

VIEWS = ("All", "All$")
PAGE_SIZE = 250


def view_name(view: str) -> str:
    for known in VIEWS:
        if known.lower() == view.lower():
            return known
    raise HttpError(404, "NotFound", f"View '{view}' not found")


class Subject:
    """One item as a `$filter` sees it: its `All$` row and its links."""

    def __init__(self, site: SiteSim, item: Item, row: dict):
        self.site, self.item, self.row = site, item, row

    def value(self, column: str) -> Any:
        return self.row.get(column)

    def linked(self, list_name: str, column: str | None, ids: list[int]) -> bool:
        return self.site.links.linked(self.item.list, self.item.id, list_name, column, ids)


def known_columns(schema: ListSchema, variant: RapidVariant) -> set[str]:
    cols = set(SYSTEM_COLUMNS) | set(schema.row_keys())
    if variant.multi_lookup_column:
        cols |= {lk.column for lk in schema.multi_lookups()}
    return cols


def query(site: SiteSim, schema: ListSchema, view: str, params: dict[str, str]) -> list[dict]:
    variant = site.variant
    view = view_name(view)
    flt = parse_filter(params.get("$filter", ""))
    known = known_columns(schema, variant)
    for column in flt.columns:
        if column not in known:
            raise HttpError(400, "BadRequest", f"Invalid column name '{column}' in $filter of {schema.name}")
    for list_name, column in flt.links:
        _check_link_filter(site, schema, list_name, column)
    linked_to = _ref(site, params.get("linkedTo"), "linkedTo")
    universally = _ref(site, params.get("universallyLinkedTo"), "universallyLinkedTo")
    select = _select(params.get("$select"), schema, known)
    skip, top = _int(params, "$skip", 0), _int(params, "$top", None)
    page = min(site.page_size, top) if top is not None else site.page_size

    rows = []
    for item in sorted(site.store[schema.name].values(), key=lambda i: i.id, reverse=True):
        if item.deleted is not None:   # soft-deleted items never appear in lists
            continue
        if linked_to and not _linked_to(site, schema, item, *linked_to):
            continue
        if universally and not site.links.linked(item.list, item.id, universally[0], None, [universally[1]]):
            continue
        row = full_row(site, item, variant)
        if not flt.match(Subject(site, item, row)):
            continue
        rows.append(row)
    rows = rows[skip: skip + page]
    if view == "All":
        shown = [k for k in schema.view if k in known]
        rows = [{k: r.get(k) for k in _expand(schema, shown)} for r in rows]
    if select is not None:
        rows = [{k: r[k] for k in select if k in r} for r in rows]
    return rows


def _expand(schema: ListSchema, columns: list[str]) -> list[str]:
    """A single lookup named in a view shows as its three keys."""
    out = []
    for c in columns:
        out += [f"{c}_id", c, f"{c}$type"] if schema.single(c) else [c]
    return out


def _select(text: str | None, schema: ListSchema, known: set[str]) -> list[str] | None:
    """`$select=a,b`: exactly those keys; a multi-lookup column is ignored (it is not a column)."""
    if text is None:
        return None
    keys = []
    for key in (k.strip() for k in text.split(",")):
        if not key or (schema.multi(key) and key not in known):
            continue
        if key not in known:
            raise HttpError(400, "BadRequest", f"Invalid column name '{key}' in $select of {schema.name}")
        keys.append(key)
    return keys


def _check_link_filter(site: SiteSim, schema: ListSchema, list_name: str, column: str | None) -> None:
    other = site.list_name(list_name, status=400)
    if column is None:
        return
    ours, theirs = schema.multi(column), site.schemas[other].multi(column)
    if not ((ours and ours.target == other) or (theirs and theirs.target == schema.name)):
        raise HttpError(400, "BadRequest", f"'{column}' is not a multi-lookup between {schema.name} and {other}")


def _ref(site: SiteSim, text: str | None, param: str) -> tuple[str, int] | None:
    if not text:
        return None
    if "/" not in text or not text.rsplit("/", 1)[1].strip().isdigit():
        raise HttpError(400, "BadRequest", f"{param} must be '{{list name}}/{{id}}', not {text!r}")
    list_part, id_part = text.rsplit("/", 1)
    return site.list_name(list_part.strip(), status=400), int(id_part)


def _linked_to(site: SiteSim, schema: ListSchema, item: Item, other_list: str, other_id: int) -> bool:
    if site.links.linked_any(item.list, item.id, other_list, other_id):
        return True
    for look in schema.single_lookups():      # this item's single lookup points at the other item
        if look.target == other_list and item.values.get(f"{look.column}_id") == other_id:
            return True
    other = site.find(other_list, other_id)    # the other item's single lookup points at this item
    if other is not None:
        for look in site.schemas[other_list].single_lookups():
            if look.target == item.list and other.values.get(f"{look.column}_id") == item.id:
                return True
    return False


def _int(params: dict[str, str], name: str, default):
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if not raw.strip().isdigit():
        raise HttpError(400, "BadRequest", f"{name} must be a non-negative integer, not {raw!r}")
    return int(raw)
