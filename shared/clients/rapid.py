"""A RAPID site's REST API as published (docs/rapid-api.md); every shape detail lives here or in rapid_items.

Every write this app makes carries webhooks=false (application users default to it since 1.30.12,
Rapid-Docs blog 2023-07-20; saying so keeps it true on older sites), so the app's own writes never
fire the site's webhooks.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import requests

from ..config import SiteConfig
from ..model.audit import SITE
from ..model.errors import NotVisible, RemoteError, RemoteNotFound, UnexpectedAnswer
from ..model.rapid_items import column_ids, filter_value, has_links, linked_ids, rows_of, sorted_ids, written_item
from ..storage.audit import NO_AUDIT
from .remote import Tokens, met, send

log = logging.getLogger("rapid_meetings")
PAGE_SIZE = 250    # a list read answers at most 250 items, newest first; page on with $skip (API Concepts)
IDS_PER_QUERY = 100  # keeps `in(id, …)` filters well inside URL limits
DATASOURCE = "All$"  # the built-in datasource with every column; `All` is a view users may edit (API Concepts)


def _never_gone(code: str) -> bool:
    """A list read that answers 404: the list is not found (renamed, or the name is wrong), no item is."""
    return False


def _rows(answer: requests.Response, what: str) -> list[dict]:
    """The rows of a list read, or UnexpectedAnswer naming the read (never an empty list for a body that is
    not one)."""
    try:
        return rows_of(answer.json())
    except ValueError:
        raise UnexpectedAnswer(f"{what}: the answer is not JSON ({answer.headers.get('Content-Type', 'no type')})") \
            from None
    except UnexpectedAnswer as e:
        raise UnexpectedAnswer(f"{what}: {e}") from None


def _body(answer: requests.Response):
    try:
        return answer.json() if answer.content else None
    except ValueError:
        return None


class RapidClient:
    def __init__(self, site: SiteConfig, session: requests.Session, tokens: Tokens, audit=None):
        self._site = site
        self._audit = audit or NO_AUDIT  # every write is recorded after it succeeded (storage/audit.py)
        self._session = session
        self._tokens = tokens

    def _call(self, method: str, path: str, what: str, proof=None, **kwargs) -> requests.Response:
        what = f"site {self._site.key} {what}"
        for fresh in (False, True):
            try:
                with met("site"):
                    token = self._tokens.token(self._site, self._site.rapid_scope, fresh=fresh)
                    return send(self._session, method, self._site.rapid_url + path, what, proof,
                                headers={"Authorization": f"Bearer {token}"}, **kwargs)
            except RemoteError as e:
                # an expired token: 401, or 400 as public clients see it (docs/rapid-api.md, "An expired token may answer 400"); refresh it once
                if e.status not in (400, 401) or fresh:
                    raise
                log.info("%s answered %s (%s): retrying once with a fresh token", what, e.status, e)
        raise AssertionError("unreachable")

    def _list(self, name: str) -> str:
        return f"/lists/{quote(self._site.list_name(name))}"

    def _item_path(self, list_name: str, item_id) -> str:
        return f"{self._list(list_name)}/items/{quote(str(item_id), safe='')}"

    def _confirm_gone(self, list_name: str, item_id, error: RemoteNotFound) -> RemoteNotFound:
        """An item call answered 404: RAPID publishes no error body that tells "no such item" from "no such
        list" (docs/rapid-api.md, "Errors"), so the 404 is proof only when the list answers and does not
        list the item. The error to raise: `error` (gone), or NotVisible (the list is not found: renamed?)."""
        if self.items_by_id(list_name, [str(item_id)]):
            return NotVisible(f"site {self._site.key} {list_name} {item_id}: its GET answered 404 but the list "
                              f"still has it; will look again later", error.code)
        return error

    def lists_anything(self, list_name: str) -> bool:
        """Whether the list answers any item at all (one page of ids)."""
        what = f"site {self._site.key} look at {list_name}"
        return bool(_rows(self._call("GET", f"{self._list(list_name)}/{DATASOURCE}/items", f"look at {list_name}",
                                     _never_gone, params={"$select": "id"}), what))

    def get_item(self, list_name: str, item_id: str, deleted: bool = False) -> dict | None:
        """The item's profile (all its columns and its links), or None when the site does not have it
        (with `deleted`, also the profile of a deleted item, where the site still shows one). A 404 is
        believed only once the list confirms it (`_confirm_gone`); else NotVisible."""
        try:
            item = self._call("GET", self._item_path(list_name, item_id), f"get {list_name} {item_id}").json()
        except RemoteNotFound as e:
            error = self._confirm_gone(list_name, item_id, e)
            if isinstance(error, NotVisible):
                raise error from e
            return None
        return None if not isinstance(item, dict) or (item.get("deleted") and not deleted) else item

    def query(self, list_name: str, filter_: str | None = None, select: tuple[str, ...] = (),
              linked_to: tuple[str, str] | None = None) -> list[dict]:
        """Every item matching the filter, read from the All$ datasource page by page; `linked_to` (a list
        and an id) keeps the items linked to that item in any way: universal links, multi-lookups either
        way, single lookups pointing at it (API Concepts, "How to get a bunch of linked items")."""
        params = {"$filter": filter_} if filter_ else {}
        if select:
            params["$select"] = ",".join(select)
        if linked_to:
            params["linkedTo"] = f"{self._site.list_name(linked_to[0])}/{linked_to[1]}"
        rows, skip = [], 0
        while True:
            page = _rows(self._call("GET", f"{self._list(list_name)}/{DATASOURCE}/items", f"query {list_name}",
                                    _never_gone, params={**params, **({"$skip": str(skip)} if skip else {})}),
                         f"site {self._site.key} query {list_name}")
            rows += page
            if len(page) < PAGE_SIZE:
                return rows
            skip += len(page)

    def items_by_id(self, list_name: str, ids: list[str], select: tuple[str, ...] = ()) -> dict[str, dict]:
        wanted = sorted(set(ids))
        found = {}
        for i in range(0, len(wanted), IDS_PER_QUERY):
            chunk = wanted[i:i + IDS_PER_QUERY]
            flt = "in(id, " + ", ".join(filter_value(v) for v in chunk) + ")"
            found.update({str(r["id"]): r for r in self.query(list_name, flt, ("id", *select) if select else ())
                          if "id" in r})
        return found

    def multi_lookup_ids(self, list_name: str, item: dict, column: str, target_list: str) -> list[str]:
        """The targets of a multi-lookup, read as the site's `multi_lookup` setting says (docs/rapid-api.md, "Multi-lookups are links, not columns")."""
        strategy = self._site.multi_lookup
        if strategy == "column":
            return column_ids(item, column)
        if strategy == "query":
            flt = f"inScoped({self._site.list_name(list_name)}, {column}, {filter_value(str(item['id']))})"
            return sorted_ids(str(r["id"]) for r in self.query(target_list, flt, ("id",)) if "id" in r)
        if not has_links(item):
            log.warning("site=%s item=%s has no LinkedItems: its %r cannot be read; check the site and set "
                        "multi_lookup to 'query' or 'column' (python -m devtools.site_check)",
                        self._site.key, item.get("id"), column)
        return linked_ids(item, column, self._site.list_name(target_list))

    def update_item(self, list_name: str, item_id: str, fields: dict, read_back: bool = False) -> dict | None:
        """Update the posted fields. RAPID answers the item (docs) or 204 without a body (connector):
        with `read_back`, an answer without the item is followed by a read; otherwise None."""
        try:
            answer = self._call("PUT", self._item_path(list_name, item_id), f"update {list_name} {item_id}",
                                params={"webhooks": "false"}, json=fields)
        except RemoteNotFound as e:
            raise self._confirm_gone(list_name, item_id, e) from e
        self._audit.wrote(self._site, SITE, "update item", list_name=list_name, item=item_id, fields=fields)
        item = written_item(_body(answer))
        if item is None and read_back:
            return self.get_item(list_name, item_id)
        return item

    def create_item(self, list_name: str, fields: dict) -> str | None:
        """Create an item; its id when the answer carries it (an object, or the connector's 201 array)."""
        answer = self._call("POST", f"{self._list(list_name)}/items", f"create {list_name}",
                            params={"webhooks": "false"}, json=fields)
        item = written_item(_body(answer))
        self._audit.wrote(self._site, SITE, "create item", list_name=list_name,
                          item=str(item["id"]) if item else "", fields=fields)
        return str(item["id"]) if item else None

    def delete_item(self, list_name: str, item_id: str) -> None:
        try:
            self._call("DELETE", self._item_path(list_name, item_id), f"delete {list_name} {item_id}",
                       params={"webhooks": "false"})
        except RemoteNotFound as e:
            error = self._confirm_gone(list_name, item_id, e)
            if isinstance(error, NotVisible):
                raise error from e
            return
        self._audit.wrote(self._site, SITE, "delete item", list_name=list_name, item=item_id)
