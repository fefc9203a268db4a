"""Items: the stored record, its published profile, and how a write body changes it.

The profile (single GET and webhook bodies): Rapid-Docs "docs/Rapid/3-Keyper Manual/2-Designer/3-Menus/
Menu Actions/perform-remote-action/perform-remote-action.md", "Include Item ON …" (id, Attachments,
Dependencies, LinkedItemsToAdd, ScopedLinkedItemsToAdd, author, author_id, created, editor, editor_id,
modified, parent_id, drive_id, folder_id, rank, embedded_files, sys_external_id, columns, Permissions,
`__metadata.type`); the system fields of Rapid-Docs "4-Developer Manual/API Concepts/API Concepts.md",
"How to get a tables schema" (sys_type_id, deleted); a single lookup as `X_id`, `X`, `X$type` from
Rapid-Docs "3-Workflow/3-Execution/7-Syntax/1-Lodash/4-filtering-values-with-lodash.md" (`business_id`,
`business`, `business$type`); links from "API Concepts.md", "How to get an item" ("including the
items universal links").
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..base import HttpError
from .filters import parse_filter
from .links import parse_ref, parse_scoped, render
from .schema import READ_ONLY_KEYS, TITLE_FIELD, WRITABLE_SYSTEM_KEYS, ListSchema

if TYPE_CHECKING:
    from .site import SiteSim
    from .variant import RapidVariant

LINK_KEYS = ("LinkedItemsToAdd", "LinkedItemsToRemove", "ScopedLinkedItemsToAdd", "ScopedLinkedItemsToRemove")


@dataclass(frozen=True)
class Principal:
    """Who wrote: a person (edits in the UI, the simulator's Python API) or an application user."""
    id: int
    name: str
    type: str = "User"   # "User" or "Application"


@dataclass
class Item:
    id: int
    list: str
    created: str
    modified: str
    author: Principal
    editor: Principal
    deleted: str | None = None
    values: dict[str, Any] = field(default_factory=dict)  # plain columns, writable system keys, X_id


# -- reading -------------------------------------------------------------------------------------

def columns_of(site: SiteSim, schema: ListSchema, item: Item, variant: RapidVariant) -> dict:
    """The item's columns: plain ones (null when never written), each single lookup as three keys,
    and (variant multi_lookup_column only) each multi-lookup as an id list."""
    out = {c: copy.deepcopy(item.values.get(c)) for c in schema.columns if c not in WRITABLE_SYSTEM_KEYS}
    for look in schema.single_lookups():
        target_id = item.values.get(f"{look.column}_id")
        target = site.find(look.target, target_id) if target_id is not None else None
        out[f"{look.column}_id"] = target_id
        out[look.column] = target.values.get(TITLE_FIELD) if target else None
        out[f"{look.column}$type"] = site.schemas[look.target].sys_type_id if target_id is not None else None
    if variant.multi_lookup_column:
        for look in schema.multi_lookups():
            out[look.column] = site.live_targets(item.list, item.id, look.column)
    return out


def profile(site: SiteSim, item: Item, variant: RapidVariant) -> dict:
    body = {"id": item.id, "sys_type_id": site.schemas[item.list].sys_type_id,
            "Attachments": [], "Dependencies": [], "LinkedItemsToAdd": [], "ScopedLinkedItemsToAdd": []}
    body.update(_fields(site, item, variant))
    body["Permissions"] = [{"principal_id": item.author.id, "mode_flags": 7, "type": item.author.type}]
    if variant.links_in_get:
        body["LinkedItems"] = [render(link, other_list, other_id, variant.link_shape)
                               for link, other_list, other_id in site.links.of(item.list, item.id)
                               if site.is_live(other_list, other_id)]
    body["__metadata"] = {"type": item.list}
    return body


def full_row(site: SiteSim, item: Item, variant: RapidVariant) -> dict:
    """An `All$` row: every column, no links (Rapid-Docs "API Concepts.md", "How to create an item": "the
    built in all$ datasource which contains every field"; docs/rapid-api.md, "Multi-lookups are links, not
    columns": none in rows)."""
    row = {"id": item.id, "sys_type_id": site.schemas[item.list].sys_type_id}
    row.update(_fields(site, item, variant))
    row["__metadata"] = {"type": item.list}
    return row


def _fields(site: SiteSim, item: Item, variant: RapidVariant) -> dict:
    fields = {
        "author": item.author.name, "author_id": item.author.id, "created": item.created,
        "editor": item.editor.name, "editor_id": item.editor.id, "modified": item.modified,
        "deleted": item.deleted,
        "parent_id": item.values.get("parent_id"), "drive_id": None, "folder_id": None,
        "rank": item.values.get("rank"), "embedded_files": copy.deepcopy(item.values.get("embedded_files") or []),
        "sys_external_id": item.values.get("sys_external_id"),
    }
    fields.update(columns_of(site, site.schemas[item.list], item, variant))
    return fields


# -- writing -------------------------------------------------------------------------------------

@dataclass
class Change:
    """A write body, checked: applying it cannot fail, so a refused write changes nothing."""
    values: dict[str, Any] = field(default_factory=dict)
    lookups: dict[str, Any] = field(default_factory=dict)            # "X_id" -> int | None | dynamic object
    multi: dict[str, list[int]] = field(default_factory=dict)        # column -> replacement ids
    link_add: list[tuple[str, int]] = field(default_factory=list)
    link_remove: list[tuple[str, int]] = field(default_factory=list)
    scoped_add: list[tuple[str, str, int]] = field(default_factory=list)
    scoped_remove: list[tuple[str, str, int]] = field(default_factory=list)


def parse_change(site: SiteSim, schema: ListSchema, body: dict, by_person: bool, variant: RapidVariant) -> Change:
    """Read a write body. API writes (`by_person=False`) follow the contract: a lookup's display keys
    (`X`, `X$type`), a multi-lookup column and read-only system keys are ignored; `X_id` must be an
    int, a digit string or null. The Python API for people raises ValueError for `X=`."""
    fail = (lambda msg: ValueError(msg)) if by_person else (lambda msg: HttpError(400, "BadRequest", msg))
    change = Change()
    for key, value in body.items():
        if key in LINK_KEYS:
            _parse_links(site, schema, change, key, value, fail)
        elif key in READ_ONLY_KEYS:
            continue
        elif key.endswith("_id") and schema.single(key[:-3]):
            change.lookups[key] = _lookup_value(site, schema.single(key[:-3]), value, fail)
        elif schema.single(key) or (key.endswith("$type") and schema.single(key[:-5])):
            if by_person:
                column = key[:-5] if key.endswith("$type") else key
                raise ValueError(f"{key!r} is the display of the single lookup {column!r} of {schema.name}: "
                                 f"write {column}_id=<target id> instead")
        elif schema.multi(key):
            if by_person or variant.multi_lookup_column:
                change.multi[key] = _id_list(site, schema.multi(key), value, fail)
        else:
            change.values[key] = copy.deepcopy(value)
    return change


def apply_change(site: SiteSim, schema: ListSchema, item: Item, change: Change) -> None:
    for key, value in change.values.items():
        # `rank` is a String system field (API Concepts.md, "How to get a tables schema"): 10 is kept as "10"
        item.values[key] = str(value) if key == "rank" and value is not None and not isinstance(value, str) else value
        schema.learn(key, value)
    for key, value in change.lookups.items():
        item.values[key] = site.resolve_dynamic_lookup(schema.single(key[:-3]), value) \
            if isinstance(value, dict) else value
    for column, ids in change.multi.items():
        site.links.replace_column(item.list, item.id, column, schema.multi(column).target, ids)
    for other_list, other_id in change.link_add:
        site.links.add(item.list, item.id, other_list, other_id)
    for other_list, other_id in change.link_remove:
        site.links.remove(item.list, item.id, other_list, other_id, any_column=True)
    for column, other_list, other_id in change.scoped_add:
        site.links.add(item.list, item.id, other_list, other_id, column)
    for column, other_list, other_id in change.scoped_remove:
        site.links.remove(item.list, item.id, other_list, other_id, column)


def _lookup_value(site: SiteSim, look, value, fail):
    if value is None:
        return None
    if isinstance(value, dict) and "$filter" in value:
        # Rapid-Docs "API Concepts.md", "Dynamically Populating a Lookup": find by filter, else create.
        try:
            parse_filter(value["$filter"] or "")
        except HttpError as e:
            raise fail(e.message) from None
        return value
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise fail(f"{look.column}_id must be an item id of {look.target} (an integer) or null, not {value!r}")
    if site.find(look.target, value) is None:
        raise fail(f"{look.column}_id: there is no item {value} in {look.target}")
    return value


def _id_list(site: SiteSim, look, value, fail) -> list[int]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise fail(f"{look.column} is a multi-lookup to {look.target}: give a list of item ids, not {value!r}")
    for target_id in value:
        if not site.is_live(look.target, target_id):
            raise fail(f"{look.column}: there is no item {target_id} in {look.target}")
    return list(dict.fromkeys(value))


def _parse_links(site: SiteSim, schema: ListSchema, change: Change, key: str, value, fail) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        raise fail(f"{key} must be an array")
    try:
        for entry in value:
            if key in ("LinkedItemsToAdd", "LinkedItemsToRemove"):
                other = parse_ref(entry, site.list_name)
                if key == "LinkedItemsToAdd" and not site.is_live(*other):
                    raise HttpError(400, "BadRequest", f"{key}: there is no item {other[0]}/{other[1]}")
                (change.link_add if key == "LinkedItemsToAdd" else change.link_remove).append(other)
            else:
                column, other_list, other_id = parse_scoped(entry, site.list_name)
                look = schema.multi(column)
                if look is None or look.target != other_list:
                    raise HttpError(400, "BadRequest", f"{key}: {column!r} is not a multi-lookup of "
                                                       f"{schema.name} to {other_list}")
                if key == "ScopedLinkedItemsToAdd" and not site.is_live(other_list, other_id):
                    raise HttpError(400, "BadRequest", f"{key}: there is no item {other_list}/{other_id}")
                (change.scoped_add if key == "ScopedLinkedItemsToAdd" else change.scoped_remove).append(
                    (column, other_list, other_id))
    except HttpError as e:
        raise fail(e.message) from None
