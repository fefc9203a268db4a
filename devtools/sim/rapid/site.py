"""One RAPID site: its tables, items, links, webhooks, principals and variant; and the Python API
tests use as the site's *people* (their edits fire webhooks like edits in RAPID's UI)."""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

import requests

from ..base import HttpError, epoch_seconds, iso_ms, mint_token, utcnow
from .auth import mint_person_token
from .filters import parse_filter
from .items import Item, Principal, apply_change, full_row, parse_change, profile
from .links import LinkStore
from .schema import AGENDA_EVENT_LOOKUP, DEFAULT_VIEW, ListSchema, Lookup, TITLE_FIELD, meetings_bundle
from .variant import RapidVariant
from .views import PAGE_SIZE, Subject
from .webhooks import (ENVIRONMENT_HEADER, MEETINGS_WEBHOOKS, TRIGGERS, Deliverer, Webhook, envelope,
                       items_deleted_body)

if TYPE_CHECKING:
    from .server import RapidSimulator

FIRST_APP_PRINCIPAL_ID = 5001


@dataclass
class Write:
    list: str
    method: str
    item_id: int
    via: str          # "api" or "user"
    webhooks: bool
    time: float = field(default_factory=time.time)


class SiteSim:
    """One site's data, webhooks and deliveries. Made by `RapidSimulator.add_site`."""

    def __init__(self, sim: RapidSimulator, tenant: str, site: str, aad_tenant: str, app_id: str,
                 app_principals: list[str] | None = None, variant: RapidVariant | None = None,
                 environment: str = "production"):
        self.sim, self.tenant, self.site, self.aad_tenant, self.app_id = sim, tenant, site, aad_tenant, app_id
        self.variant = variant or RapidVariant()
        self.environment = environment
        self.schemas: dict[str, ListSchema] = meetings_bundle(self.variant.agenda_link)
        self.store: dict[str, dict[int, Item]] = {name: {} for name in self.schemas}
        self.links = LinkStore()
        self.renamed: dict[str, str] = {}  # a new list name (lower case) -> the list it names (rename_list)
        self.hidden: set[str] = set()      # lists whose items the app no longer lists (hide_items)
        self.hidden_items: set[str] = set()  # ... nor reads or writes one by one
        self.page_size = PAGE_SIZE
        self.webhooks: list[Webhook] = []
        self.webhook_headers: dict[str, str] = {}
        self.write_log: list[Write] = []
        # The person behind the Python API (RAPID's UI); not an item of Principals, so test ids stay put.
        self.person = Principal(1000, "Site Admin", "User")
        # None: any application may call; a list: only these app ids (docs/rapid-api.md, "The app must be a
        # Principal of the site").
        self.app_principals: list[str] | None = list(app_principals) if app_principals is not None else None
        self._principals: dict[str, Principal] = {}
        self._next_id = {name: 1 for name in self.schemas}
        self._tokens_expired_before: float | None = None
        self._expire_next = 0
        self._deliverer = Deliverer(f"rapid-sim-{tenant}-{site}", sim.lock, self.webhook_headers)

    # -- identity ----------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{self.sim.base_url}/api/{self.tenant}/{self.site}"

    def token(self, aud: str | None = None, tid: str | None = None, appid: str = "sim-client",
              lifetime: int = 3599, person: str | None = None) -> str:
        """A token this site accepts (or, with other aud/tid, one it refuses). An application's token
        by default; `person="bob@…"` gives a person's (delegated) token; `lifetime<0` an expired one."""
        if person:
            return mint_person_token(self.sim.token_key, aud or self.app_id, tid or self.aad_tenant,
                                     f"user-{person}", person, lifetime)
        return mint_token(self.sim.token_key, aud or self.app_id, tid or self.aad_tenant, appid, lifetime)

    def add_app_principal(self, appid: str, name: str | None = None) -> int:
        """Add an application to the site as a Principal with rights; returns its principal id."""
        with self.sim.lock:
            if self.app_principals is not None and appid not in self.app_principals:
                self.app_principals.append(appid)
            return self.app_principal(appid, name).id

    def app_principal(self, appid: str, name: str | None = None, kind: str = "Application") -> Principal:
        """The principal an API caller writes as (author/editor): an application, or a person calling
        with a delegated token (kind "User")."""
        with self.sim.lock:
            if appid not in self._principals:
                default = f"{appid} (application)" if kind == "Application" else appid
                self._principals[appid] = Principal(FIRST_APP_PRINCIPAL_ID + len(self._principals),
                                                    name or default, kind)
            return self._principals[appid]

    def set_person(self, principal_id: int, name: str | None = None) -> None:
        """Who the Python API's edits are by (default: principal 1000, "Site Admin")."""
        item = self.find("Principals", principal_id)
        title = item.values.get(TITLE_FIELD) if item else None
        self.person = Principal(principal_id, name or title or f"User {principal_id}")

    def expire_tokens_issued_before(self, when: float | None = None) -> None:
        """Tokens issued (`iat`) before `when` (default: now) are treated as expired from now on.
        `iat` has whole seconds: a token minted in this same second counts as issued before it, so to
        expire "the current token once" prefer `expire_next_token()`."""
        self._tokens_expired_before = epoch_seconds() if when is None else when

    def clear_token_expiry(self) -> None:
        """Undo `expire_tokens_issued_before` and any pending `expire_next_token`."""
        with self.sim.lock:
            self._tokens_expired_before, self._expire_next = None, 0

    def expire_next_token(self, count: int = 1) -> None:
        """The next `count` authenticated requests are answered as if their token had expired."""
        with self.sim.lock:
            self._expire_next += count

    def token_expired(self, claims: dict) -> bool:
        with self.sim.lock:
            if self._expire_next > 0:
                self._expire_next -= 1
                return True
        if claims.get("exp", 0) < epoch_seconds():  # the world's clock: app time when accelerated
            return True
        return self._tokens_expired_before is not None and claims.get("iat", 0) < self._tokens_expired_before

    # -- schema ------------------------------------------------------------------------------------

    def list_name(self, name: str, status: int = 404) -> str:
        for known in self.schemas:
            if known.lower() == name.strip().lower():
                return known
        raise HttpError(status, "NotFound" if status == 404 else "BadRequest", f"List '{name}' not found")

    def rename_list(self, name: str, new_name: str | None) -> None:
        """The site's designer renames a list (Rapid-Docs "API Concepts.md", "Update Table": `PUT
        /lists/{listNamePlural}` with a new `ListName`): the API finds it under `new_name` only, and the old
        name answers 404 `List '…' not found` - the same status as a missing item, with no published code
        telling them apart (docs/rapid-api.md, "Errors"; the workflow docs list "List cannot be found" and
        "Item not found" as different errors, "Get Item Service Task"). `None` undoes it. The Python API
        keeps the list's own name."""
        with self.sim.lock:
            known = self.list_name(name)
            self.renamed = {k: v for k, v in self.renamed.items() if v != known}
            if new_name is not None:
                self.renamed[new_name.strip().lower()] = known

    def hide_items(self, name: str, hidden: bool = True, items_too: bool = False) -> None:
        """The app no longer sees a list's items while the site keeps them: a filter now hides them, or its
        Principal lost its rights on them (Rapid-Docs "Generating a bearer token for custom applications":
        an application reads what its Principal may). What RAPID answers then is unpublished; this plays
        the worst cases for a sync: list reads answer an empty page, and with `items_too` each item's GET
        or PUT answers 404 "Item … not found" too, as though every item had been deleted. The Python API
        still sees them. `hidden=False` shows them again."""
        with self.sim.lock:
            known = self.list_name(name)
            self.hidden.discard(known)
            self.hidden_items.discard(known)
            if hidden:
                self.hidden.add(known)
                if items_too:
                    self.hidden_items.add(known)

    def api_list_name(self, name: str) -> str:
        """The list an API path names: a renamed list under its new name only (rename_list)."""
        key = name.strip().lower()
        if key in self.renamed:
            return self.renamed[key]
        known = self.list_name(name)
        if known in self.renamed.values():
            raise HttpError(404, "NotFound", f"List '{name}' not found")
        return known

    def add_list(self, name: str, sys_type_id: int | None = None, columns: dict[str, str] | None = None) -> ListSchema:
        with self.sim.lock:
            type_id = sys_type_id or max(s.sys_type_id for s in self.schemas.values()) + 1
            schema = ListSchema(name, type_id, {TITLE_FIELD: "Text", **(columns or {})})
            self.schemas[name], self.store[name], self._next_id[name] = schema, {}, 1
            return schema

    def add_lookup(self, list_name: str, column: str, target: str) -> None:
        self._add_lookup(list_name, column, target, False)

    def add_multi_lookup(self, list_name: str, column: str, target: str) -> None:
        self._add_lookup(list_name, column, target, True)

    def _add_lookup(self, list_name: str, column: str, target: str, multi: bool) -> None:
        with self.sim.lock:
            schema = self.schemas[self.list_name(list_name)]
            schema.columns.pop(column, None)
            schema.lookups[column] = Lookup(column, self.list_name(target), multi)

    def set_view_columns(self, list_name: str, columns: list[str] | None) -> None:
        """The columns of the list's user-editable `All` view (default id, title, created, modified)."""
        with self.sim.lock:
            self.schemas[self.list_name(list_name)].view = list(columns or DEFAULT_VIEW)

    # -- lookups into the store --------------------------------------------------------------------

    def find(self, list_name: str, item_id) -> Item | None:
        try:
            return self.store[list_name].get(int(item_id))
        except (KeyError, TypeError, ValueError):
            return None

    def is_live(self, list_name: str, item_id) -> bool:
        item = self.find(list_name, item_id)
        return item is not None and item.deleted is None

    def live_targets(self, list_name: str, item_id: int, column: str | None) -> list[int]:
        return sorted({oid for link, other, oid in self.links.of(list_name, item_id)
                       if link.column == column and self.is_live(other, oid)})

    def resolve_dynamic_lookup(self, look: Lookup, spec: dict) -> int:
        """Rapid-Docs "API Concepts.md", "Dynamically Populating a Lookup": the first item the filter
        finds, else a new item made of the other keys."""
        target = self.list_name((spec.get("__metadata") or {}).get("type") or look.target, status=400)
        flt = parse_filter(spec.get("$filter") or "")
        for item in sorted(self.store[target].values(), key=lambda i: i.id, reverse=True):
            if item.deleted is None and flt.match(Subject(self, item, full_row(self, item, self.variant))):
                return item.id
        fields = {k: v for k, v in spec.items() if k not in ("$filter", "__metadata")}
        return self._create(target, fields, self.person, by_person=False, fire=False, via="api").id

    # -- webhooks ----------------------------------------------------------------------------------

    @property
    def deliveries(self):
        return self._deliverer.deliveries

    retries = property(lambda self: self._deliverer.retries, lambda self, v: setattr(self._deliverer, "retries", v))
    backoff = property(lambda self: self._deliverer.backoff, lambda self, v: setattr(self._deliverer, "backoff", v))
    timeout = property(lambda self: self._deliverer.timeout, lambda self, v: setattr(self._deliverer, "timeout", v))

    def add_webhook(self, table: str, trigger: str, url: str) -> Webhook:
        if trigger not in TRIGGERS:
            raise ValueError(f"trigger must be one of {TRIGGERS}")
        hook = Webhook(self.list_name(table), trigger, url)
        with self.sim.lock:
            self.webhooks.append(hook)
        return hook

    def install_meetings_webhooks(self, base_url: str) -> list[Webhook]:
        root = f"{base_url.rstrip('/')}/{self.tenant}/{self.site}/0/services/rapid-meetings"
        return [self.add_webhook(table, trigger, f"{root}/{path}") for table, trigger, path in MEETINGS_WEBHOOKS]

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Poll until every queued webhook delivery is done (delivered or given up on)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.sim.lock:
                if self._deliverer.pending == 0:
                    return
            time.sleep(0.01)
        raise TimeoutError(f"{self._deliverer.pending} webhook deliveries still pending after {timeout}s")

    def webhook_request_headers(self) -> dict[str, str]:
        return {ENVIRONMENT_HEADER: self.environment, **self.webhook_headers}

    def _fire(self, table: str, trigger: str, body: Any) -> None:
        for hook in self.webhooks:
            if hook.table == table and hook.trigger == trigger:
                self._deliverer.put(hook, body, self.webhook_request_headers())

    def stop(self) -> None:
        self._deliverer.stop()

    # -- the people's Python API (fires webhooks like an edit in RAPID's UI) -----------------------

    def create_item(self, list_name: str, data: dict | None = None, **fields) -> dict:
        """Create as a person. Single lookups as `X_id=3`; multi-lookups as `invitees=[12, 13]`."""
        with self.sim.lock:
            item = self._create(self.list_name(list_name), {**(data or {}), **fields}, self.person,
                                by_person=True, fire=True, via="user")
            return profile(self, item, self.variant)

    def update_item(self, list_name: str, item_id: int, data: dict | None = None, **fields) -> dict:
        """Update as a person; a multi-lookup given replaces that column's links."""
        with self.sim.lock:
            item = self._update(self.list_name(list_name), int(item_id), {**(data or {}), **fields}, self.person,
                                by_person=True, fire=True, via="user")
            return profile(self, item, self.variant)

    def delete_items(self, list_name: str, ids, trigger: str | None = None) -> list[dict]:
        """Soft-delete as a person: one id fires "Item Deleted" (the profile), several "Items Deleted"
        (body per `variant.deleted_body`)."""
        ids = [int(ids)] if isinstance(ids, (int, str)) else [int(i) for i in ids]
        name = self.list_name(list_name)
        with self.sim.lock:
            items = [self._soft_delete(name, i, self.person, via="user", fire=True, strict=False) for i in ids]
            profiles = [profile(self, item, self.variant) for item in items]
            trigger = trigger or ("Item Deleted" if len(items) == 1 else "Items Deleted")
            if trigger == "Item Deleted":
                for body in profiles:
                    self._fire(name, trigger, body)
            else:
                self._fire(name, trigger, items_deleted_body(self.variant.deleted_body, profiles, self.tenant,
                                                             self.site, self.environment, self.person.id))
            return copy.deepcopy(profiles)

    def agenda_link(self, event_id: int) -> dict:
        """The fields that tie a new Meeting Agendas item to its event, as this site is designed
        (`variant.agenda_link`): `{"meeting_event_id": 5}` or `{"LinkedItemsToAdd": ["Meeting Events/5"]}`."""
        if self.schemas["Meeting Agendas"].single(AGENDA_EVENT_LOOKUP):
            return {f"{AGENDA_EVENT_LOOKUP}_id": int(event_id)}
        return {"LinkedItemsToAdd": [f"Meeting Events/{int(event_id)}"]}

    def get(self, list_name: str, item_id: int) -> dict | None:
        """The item's profile (as the single GET shows it, `deleted` set if deleted), or None."""
        with self.sim.lock:
            item = self.find(self.list_name(list_name), item_id)
            return profile(self, item, self.variant) if item else None

    def items(self, list_name: str, include_deleted: bool = False) -> list[dict]:
        with self.sim.lock:
            return [profile(self, i, self.variant) for i in self.store[self.list_name(list_name)].values()
                    if include_deleted or i.deleted is None]

    def linked_ids(self, list_name: str, item_id: int, column: str | None = None) -> list[int]:
        """Ids at the other end of the item's links of `column` (None: universal links), sorted."""
        with self.sim.lock:
            return self.live_targets(self.list_name(list_name), int(item_id), column)

    def backdate(self, list_name: str, item_id: int, modified: str | None = None, created: str | None = None) -> None:
        """Set an item's timestamps without a write or a webhook (for catch-up tests)."""
        with self.sim.lock:
            item = self.find(self.list_name(list_name), item_id)
            if item is None:
                raise KeyError(f"{list_name}/{item_id}")
            item.modified, item.created = modified or item.modified, created or item.created

    def perform_remote_action(self, url: str, items: Iterable, single_request: bool = True,
                              requestor: int | None = None, action_id: str | None = None,
                              form_data: dict | None = None, timeout: float = 10.0) -> list[int]:
        """A person's "Perform Remote Action" menu button: POST the envelope to `url` (one request with
        `item` an array when single_request, else one request per item) and return the statuses.
        `items`: profiles (dicts with id and __metadata.type) or (list, id) pairs."""
        with self.sim.lock:
            profiles = [self._current_profile(entry) for entry in items]
        who = self.person.id if requestor is None else requestor
        bodies = ([envelope(self.tenant, self.site, self.environment, who, profiles, form_data, action_id)]
                  if single_request else
                  [envelope(self.tenant, self.site, self.environment, who, p, form_data, action_id) for p in profiles])
        session = requests.Session()
        session.trust_env = False
        return [session.post(url, json=body, headers=self.webhook_request_headers(), timeout=timeout).status_code
                for body in bodies]

    def _current_profile(self, entry) -> dict:
        if isinstance(entry, dict):
            list_name, item_id = entry["__metadata"]["type"], entry["id"]
        else:
            list_name, item_id = entry
        item = self.find(self.list_name(list_name), item_id)
        if item is None:
            raise KeyError(f"{list_name}/{item_id}")
        return profile(self, item, self.variant)

    def writes(self, list: str | None = None, via_api_only: bool = True) -> int:
        """PUT/POST/DELETE writes to the site (from the API only, unless via_api_only=False)."""
        name = self.list_name(list) if list else None
        with self.sim.lock:
            return sum(1 for w in self.write_log
                       if (name is None or w.list == name) and (w.via == "api" or not via_api_only))

    # -- the shared write path -----------------------------------------------------------------------

    def _create(self, name: str, body: dict, actor: Principal, by_person: bool, fire: bool, via: str) -> Item:
        schema = self.schemas[name]
        change = parse_change(self, schema, body, by_person, self.variant)
        now = iso_ms(utcnow())
        item = Item(self._next_id[name], name, now, now, actor, actor)
        self._next_id[name] += 1
        self.store[name][item.id] = item
        apply_change(self, schema, item, change)
        self.write_log.append(Write(name, "POST", item.id, via, fire))
        if fire:
            self._fire(name, "Item Created", profile(self, item, self.variant))
        return item

    def _update(self, name: str, item_id: int, body: dict, actor: Principal, by_person: bool, fire: bool,
                via: str) -> Item:
        item = self._live_item(name, item_id)
        schema = self.schemas[name]
        change = parse_change(self, schema, body, by_person, self.variant)
        apply_change(self, schema, item, change)
        item.modified, item.editor = iso_ms(utcnow()), actor
        self.write_log.append(Write(name, "PUT", item_id, via, fire))
        if fire:
            self._fire(name, "Item Updated", profile(self, item, self.variant))
        return item

    def _soft_delete(self, name: str, item_id: int, actor: Principal, via: str, fire: bool,
                     strict: bool = True) -> Item:
        item = self._live_item(name, item_id) if strict else self._any_item(name, item_id)
        now = iso_ms(utcnow())
        item.deleted = item.deleted or now
        item.modified, item.editor = now, actor
        self.write_log.append(Write(name, "DELETE", item_id, via, fire))
        return item

    def _any_item(self, name: str, item_id: int) -> Item:
        item = self.find(name, item_id)
        if item is None:
            raise HttpError(404, "NotFound", f"Item {item_id} not found in '{name}'")
        return item

    def _live_item(self, name: str, item_id: int) -> Item:
        item = self._any_item(name, item_id)
        if item.deleted is not None:
            raise HttpError(404, "NotFound", f"Item {item_id} not found in '{name}' (it was deleted)")
        return item

    def state(self) -> dict:
        with self.sim.lock:
            return {"url": self.url, "aadTenant": self.aad_tenant, "appId": self.app_id,
                    "variant": asdict(self.variant), "appPrincipals": self.app_principals,
                    "lists": {name: [profile(self, i, self.variant) for i in items.values()]
                              for name, items in self.store.items()},
                    "links": [asdict(link) for link in self.links.links.values()],
                    "webhooks": [vars(h) for h in self.webhooks],
                    "deliveries": len(self.deliveries), "pendingDeliveries": self._deliverer.pending}
