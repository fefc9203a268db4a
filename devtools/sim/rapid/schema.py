"""A site's tables: their type ids, columns, lookups and views; and the `/openapi` documents.

Sources: Rapid-Docs "docs/Rapid/4-Developer Manual/API Concepts/API Concepts.md", sections "How find
what tables are available on a site" (`/openapi/lists`), "How to get a tables schema"
(`/openapi/{listName}/schema`, and the table of system fields every table has) and "Edit Column" (a
column's `ColumnName`, `FieldType`, `Settings.LookupBindings`); PowerPlatformConnectors
"certified-connectors/RAPID Platform/apiDefinition.swagger.json", GetLists (an array of table names)
and GetFieldListSchema (an object whose `Schema` holds the item's JSON schema). The Meetings bundle's
tables and columns are docs/rapid-api.md, "The Meetings bundle".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TITLE_FIELD = "title"

# Keys RAPID computes; a write naming one is ignored (Rapid-Docs "API Concepts.md", the system-field
# table; Rapid-Docs "perform-remote-action.md", the profile's extra keys). `parent_id`, `rank`,
# `embedded_files` and `sys_external_id` ("User editable column to store external references") are
# writable, so they are not here.
READ_ONLY_KEYS = frozenset({
    "id", "sys_type_id", "created", "modified", "deleted", "author_id", "author", "editor_id", "editor",
    "drive_id", "folder_id", "sys_valid_from", "sys_valid_to", "Permissions", "Attachments", "Dependencies",
    "__metadata", "LinkedItems",
})
WRITABLE_SYSTEM_KEYS = ("parent_id", "rank", "embedded_files", "sys_external_id")
# Columns every list has for `$filter`/`$select`.
SYSTEM_COLUMNS = ("id", "sys_type_id", "created", "modified", "deleted", "author_id", "author", "editor_id",
                  "editor", "parent_id", "drive_id", "folder_id", "rank", "embedded_files", "sys_external_id")
SYSTEM_FIELD_TYPES = {"id": "Integer", "sys_type_id": "Integer", "created": "DateTime", "modified": "DateTime",
                      "deleted": "DateTime", "author_id": "Integer", "editor_id": "Integer", "parent_id": "Integer",
                      "drive_id": "Text", "folder_id": "Text", "rank": "Text", "embedded_files": "Text",
                      "sys_external_id": "Text", "author": "Text", "editor": "Text"}
DEFAULT_VIEW = ("id", "title", "created", "modified")

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


@dataclass
class Lookup:
    column: str
    target: str
    multi: bool


@dataclass
class ListSchema:
    name: str
    sys_type_id: int
    columns: dict[str, str] = field(default_factory=dict)      # plain column -> FieldType
    lookups: dict[str, Lookup] = field(default_factory=dict)   # lookup column -> Lookup
    view: list[str] = field(default_factory=lambda: list(DEFAULT_VIEW))

    def single(self, column: str) -> Lookup | None:
        look = self.lookups.get(column)
        return look if look and not look.multi else None

    def multi(self, column: str) -> Lookup | None:
        look = self.lookups.get(column)
        return look if look and look.multi else None

    def single_lookups(self) -> list[Lookup]:
        return [lk for lk in self.lookups.values() if not lk.multi]

    def multi_lookups(self) -> list[Lookup]:
        return [lk for lk in self.lookups.values() if lk.multi]

    def row_keys(self) -> list[str]:
        """The keys of this list's `All$` rows besides the system fields: plain columns, then each
        single lookup as `X_id`, `X`, `X$type` (Rapid-Docs "4-filtering-values-with-lodash.md": a Get
        All Items answer with `business_id`, `business`, `business$type`)."""
        keys = [c for c in self.columns if c not in SYSTEM_COLUMNS]
        for look in self.single_lookups():
            keys += [f"{look.column}_id", look.column, f"{look.column}$type"]
        return keys

    def learn(self, column: str, value) -> None:
        """A plain key written becomes a column of the list (its FieldType guessed from the value)."""
        if column in SYSTEM_COLUMNS or column in self.lookups:
            return
        known = self.columns.get(column)
        if known is None or (known == "Text" and value is not None and not isinstance(value, str)):
            self.columns[column] = field_type(value)

def field_type(value) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Number"
    if isinstance(value, str) and _ISO.match(value):
        return "DateTime"
    if isinstance(value, (list, dict)):
        return "Json"
    return "Text"


# The Meetings bundle (docs/rapid-api.md, "The Meetings bundle"): sys_type_ids are the simulator's own
# (distinct ints); the lookups are the contract's; other columns are the ones that section names (more appear
# as they are written).
MEETINGS_BUNDLE: dict[str, dict] = {
    "Principals": {"sys_type_id": 3, "columns": {"title": "Text", "email": "Text"}},
    "External Contacts": {"sys_type_id": 46, "columns": {"title": "Text", "email": "Text"}},
    "Meetings": {"sys_type_id": 41, "columns": {"title": "Text"},
                 "lookups": [("organiser", "Principals", False)]},
    "Meeting Events": {"sys_type_id": 42,
                       "columns": {"title": "Text", "start_date": "DateTime", "end_date": "DateTime",
                                   "all_day": "Boolean", "location": "Text", "description": "Text",
                                   "status": "Text"},
                       "lookups": [("meeting", "Meetings", False), ("invitees", "Principals", True),
                                   ("guests", "External Contacts", True), ("attendees", "Principals", True)]},
    # Meeting Agendas (docs/rapid-api.md, "The Meetings bundle": "sorted topics of an event", title, rank, a
    # link to the event): the order is the system `rank` ("String", API Concepts.md, "How to get a tables
    # schema"); an owner and a duration in minutes are what agenda items commonly carry. The link to the event
    # is unpublished: a single lookup named after its table, like `meeting` (the default,
    # RapidVariant.agenda_link "lookup"), or a universal link ("link": `agenda_bundle` drops the lookup).
    "Meeting Agendas": {"sys_type_id": 43, "columns": {"title": "Text", "duration": "Integer"},
                        "lookups": [("meeting_event", "Meeting Events", False), ("owner", "Principals", False)]},
    "Meeting Minutes": {"sys_type_id": 44, "columns": {"title": "Text"},
                        "lookups": [("meeting_event", "Meeting Events", False)]},
    "Meeting Subscriptions": {"sys_type_id": 45,
                              "columns": {"title": "Text", "subscription_id": "Text", "resource": "Text",
                                          "expires": "DateTime", "status": "Text"},
                              "lookups": [("meeting", "Meetings", False)]},
}
LISTS = tuple(MEETINGS_BUNDLE)


AGENDA_EVENT_LOOKUP = "meeting_event"


def meetings_bundle(agenda_link: str = "lookup") -> dict[str, ListSchema]:
    """The bundle's tables; with `agenda_link="link"` Meeting Agendas has no lookup to its event (its items
    are universally linked to it, as an item created in an event's context without a lookup is:
    Rapid-Docs "creating-items-within-items.md", "If there is no lookup between the tables a universal
    link will be created")."""
    lists = {}
    for name, spec in MEETINGS_BUNDLE.items():
        schema = ListSchema(name, spec["sys_type_id"], dict(spec["columns"]))
        for column, target, multi in spec.get("lookups", ()):
            if not (name == "Meeting Agendas" and column == AGENDA_EVENT_LOOKUP and agenda_link == "link"):
                schema.lookups[column] = Lookup(column, target, multi)
        lists[name] = schema
    return lists


# -- /openapi documents -------------------------------------------------------------------------

_JSON_TYPES = {"Integer": "integer", "Number": "number", "Boolean": "boolean", "DateTime": "string",
               "Text": "string", "Json": "object"}


def lists_document(lists: dict[str, ListSchema]) -> list[str]:
    """GET /openapi/lists. Connector GetLists: "Returns a list of Table names" (array of strings)."""
    return list(lists)


def schema_document(schema: ListSchema) -> dict:
    """GET /openapi/{list}/schema: the columns as RAPID's column JSON (Rapid-Docs "API Concepts.md",
    "Edit Column": Title, ColumnName, SystemManaged, FieldType, Settings.LookupBindings, TitleField)
    plus the item's JSON schema under `Schema` (connector GetFieldListSchema, `value-path: Schema`).
    The exact document is not published beyond those two fragments."""
    fields, props = [], {}
    for column in SYSTEM_COLUMNS:
        fields.append(_field(column, SYSTEM_FIELD_TYPES[column], system=True))
        props[column] = {"type": _JSON_TYPES[SYSTEM_FIELD_TYPES[column]], "x-ms-visibility": "internal"}
    for column, ftype in schema.columns.items():
        if column in SYSTEM_COLUMNS:
            continue
        fields.append(_field(column, ftype))
        props[column] = {"type": _JSON_TYPES.get(ftype, "string"), "title": _title(column)}
        if ftype == "DateTime":
            props[column]["format"] = "date-time"
    for look in schema.lookups.values():
        ftype = "MultiLookup" if look.multi else "Lookup"
        fields.append(_field(look.column, ftype, target=look.target))
        if look.multi:
            props[look.column] = {"type": "array", "items": {"type": "integer"}, "title": _title(look.column),
                                  "x-rapid-lookup": look.target}
        else:
            props[f"{look.column}_id"] = {"type": "integer", "title": _title(look.column),
                                          "x-rapid-lookup": look.target}
    return {"Title": schema.name, "sys_type_id": schema.sys_type_id, "TitleField": TITLE_FIELD,
            "Fields": fields, "Schema": {"type": "object", "properties": props}}


def _field(column: str, ftype: str, system: bool = False, target: str | None = None) -> dict:
    return {"Title": _title(column), "ColumnName": column, "SystemManaged": system, "FieldType": ftype,
            "Searchable": ftype == "Text", "TitleField": column == TITLE_FIELD, "LookupList": target,
            "Settings": {"Choices": [], "LookupBindings": [{"list": target}] if target else []}}


def _title(column: str) -> str:
    return column.replace("_", " ").strip().title()
