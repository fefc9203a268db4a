"""A RAPID site's REST API (SPEC §1). Every write this app makes carries webhooks=false."""

from __future__ import annotations

from urllib.parse import quote

import requests

from .config import SiteConfig
from .errors import RemoteNotFound
from .remote import Tokens, send


class RapidClient:
    def __init__(self, site: SiteConfig, session: requests.Session, tokens: Tokens):
        self._site = site
        self._session = session
        self._tokens = tokens

    def _call(self, method: str, path: str, what: str, **kwargs):
        token = self._tokens.token(self._site, self._site.rapid_scope)
        return send(self._session, method, self._site.rapid_url + path, f"site {self._site.key} {what}",
                    headers={"Authorization": f"Bearer {token}"}, **kwargs)

    def _list(self, name: str) -> str:
        return f"/lists/{quote(self._site.list_name(name))}"

    def get_item(self, list_name: str, item_id: str) -> dict | None:
        """The item, or None when the site does not have it (or it is deleted)."""
        try:
            item = self._call("GET", f"{self._list(list_name)}/items/{quote(str(item_id), safe='')}",
                              f"get {list_name} {item_id}").json()
        except RemoteNotFound:
            return None
        return None if item.get("deleted") else item

    def items_by_id(self, list_name: str, ids: list[str]) -> dict[str, dict]:
        if not ids:
            return {}
        wanted = sorted(set(ids))
        filter_ = "in(id, " + ", ".join(i if i.isdigit() else "'" + i.replace("'", "''") + "'" for i in wanted) + ")"
        rows = self._call("GET", f"{self._list(list_name)}/All/items", f"query {list_name}",
                          params={"$filter": filter_}).json()
        rows = rows.get("items", rows.get("value", [])) if isinstance(rows, dict) else rows
        return {str(r["id"]): r for r in rows}

    def update_item(self, list_name: str, item_id: str, fields: dict) -> dict:
        return self._call("PUT", f"{self._list(list_name)}/items/{quote(str(item_id), safe='')}",
                          f"update {list_name} {item_id}", params={"webhooks": "false"}, json=fields).json()

    def create_item(self, list_name: str, fields: dict) -> dict:
        return self._call("POST", f"{self._list(list_name)}/items", f"create {list_name}",
                          params={"webhooks": "false"}, json=fields).json()

    def delete_item(self, list_name: str, item_id: str) -> None:
        try:
            self._call("DELETE", f"{self._list(list_name)}/items/{quote(str(item_id), safe='')}",
                       f"delete {list_name} {item_id}", params={"webhooks": "false"})
        except RemoteNotFound:
            pass
