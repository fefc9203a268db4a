"""A RAPID site: lists with integer-id items, OData-ish filters, and the site's internal webhooks.

Creates answer 200 (not 201) with the new item.
"""

from __future__ import annotations

import copy
import queue
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import requests

from .base import DEFAULT_TOKEN_KEY, HttpError, Request, Response, SimServer, iso_ms, mint_token, read_token, utcnow

LISTS = ("Meetings", "Meeting Events", "Meeting Agendas", "Meeting Minutes", "Meeting Subscriptions",
         "Principals", "External Contacts")
TRIGGERS = ("Item Created", "Item Updated", "Item Deleted", "Items Deleted")
SYSTEM_FIELDS = ("id", "created", "modified", "deleted")
MEETINGS_WEBHOOKS = (
    ("Meetings", "Item Created", "meeting/create"),
    ("Meeting Events", "Item Created", "event/create"),
    ("Meeting Events", "Item Updated", "event/update"),
    ("Meeting Events", "Item Deleted", "event/delete"),
    ("Meeting Events", "Items Deleted", "event/delete"),
    ("Meeting Subscriptions", "Item Updated", "subscriptions/update"),
    ("Meeting Subscriptions", "Items Deleted", "subscriptions/delete"),
)

_SITE = r"/api/(?P<tenant>[^/]+)/(?P<site>[^/]+)/lists/(?P<list>[^/]+)"


@dataclass
class Webhook:
    table: str
    trigger: str
    url: str


@dataclass
class WebhookDelivery:
    url: str
    trigger: str
    table: str
    body: Any
    status: int | None
    attempt: int
    error: str | None = None
    time: float = field(default_factory=time.time)


@dataclass
class Write:
    list: str
    method: str
    item_id: int
    via: str
    webhooks: bool
    time: float = field(default_factory=time.time)


class SiteSim:
    """One site's data, webhooks and deliveries. Made by `RapidSimulator.add_site`."""

    def __init__(self, sim: RapidSimulator, tenant: str, site: str, aad_tenant: str, app_id: str):
        self.sim, self.tenant, self.site, self.aad_tenant, self.app_id = sim, tenant, site, aad_tenant, app_id
        self.lists: dict[str, dict[int, dict]] = {name: {} for name in LISTS}
        self.webhooks: list[Webhook] = []
        self.webhook_headers: dict[str, str] = {}
        self.deliveries: list[WebhookDelivery] = []
        self.write_log: list[Write] = []
        self.retries, self.backoff, self.timeout = 3, 0.2, 10.0
        self._next_id = {name: 1 for name in LISTS}
        self._queue: queue.Queue = queue.Queue()
        self._pending = 0
        self._session = requests.Session()
        self._session.trust_env = False
        threading.Thread(target=self._deliver_loop, name=f"rapid-sim-{tenant}-{site}", daemon=True).start()

    @property
    def url(self) -> str:
        return f"{self.sim.base_url}/api/{self.tenant}/{self.site}"

    def token(self, aud: str | None = None, tid: str | None = None, appid: str = "sim-client") -> str:
        """A token this site accepts (or, with other aud/tid, one it refuses)."""
        return mint_token(self.sim.token_key, aud or self.app_id, tid or self.aad_tenant, appid)

    def list_name(self, name: str) -> str:
        for known in LISTS:
            if known.lower() == name.lower():
                return known
        raise HttpError(404, "NotFound", f"List '{name}' not found")

    # -- webhooks --------------------------------------------------------------------------

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
                if self._pending == 0:
                    return
            time.sleep(0.01)
        raise TimeoutError(f"{self._pending} webhook deliveries still pending after {timeout}s")

    def _fire(self, table: str, trigger: str, body: Any) -> None:
        for hook in self.webhooks:
            if hook.table == table and hook.trigger == trigger:
                self._pending += 1
                self._queue.put((hook, copy.deepcopy(body)))

    def _deliver_loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            hook, body = job
            for attempt in range(1, self.retries + 2):
                status, error = None, None
                try:
                    resp = self._session.post(hook.url, json=body, timeout=self.timeout, headers=self.webhook_headers)
                    status = resp.status_code
                except requests.RequestException as e:
                    error = f"{type(e).__name__}: {e}"
                with self.sim.lock:
                    self.deliveries.append(WebhookDelivery(hook.url, hook.trigger, hook.table, body, status,
                                                           attempt, error))
                if status is not None and status < 500:
                    break
                if attempt <= self.retries:
                    time.sleep(self.backoff * 2 ** (attempt - 1))
            with self.sim.lock:
                self._pending -= 1

    # -- items: "site user" helpers and the shared write path ------------------------------

    def create_item(self, list_name: str, data: dict | None = None, **fields) -> dict:
        with self.sim.lock:
            return self._create(self.list_name(list_name), {**(data or {}), **fields}, "user", True)

    def update_item(self, list_name: str, item_id: int, data: dict | None = None, **fields) -> dict:
        with self.sim.lock:
            return self._update(self.list_name(list_name), int(item_id), {**(data or {}), **fields}, "user", True)

    def delete_items(self, list_name: str, ids, trigger: str | None = None) -> list[dict]:
        """Soft-delete items as a user does: one id fires "Item Deleted", several "Items Deleted"."""
        ids = [int(ids)] if isinstance(ids, (int, str)) else [int(i) for i in ids]
        name = self.list_name(list_name)
        with self.sim.lock:
            items = [self._soft_delete(name, i, "user") for i in ids]
            trigger = trigger or ("Item Deleted" if len(items) == 1 else "Items Deleted")
            self._fire(name, trigger, items[0] if trigger == "Item Deleted" else items)
            return copy.deepcopy(items)

    def get(self, list_name: str, item_id: int) -> dict | None:
        with self.sim.lock:
            item = self.lists[self.list_name(list_name)].get(int(item_id))
            return copy.deepcopy(item)

    def items(self, list_name: str, include_deleted: bool = False) -> list[dict]:
        with self.sim.lock:
            return [copy.deepcopy(i) for i in self.lists[self.list_name(list_name)].values()
                    if include_deleted or i["deleted"] is None]

    def writes(self, list: str | None = None, via_api_only: bool = True) -> int:
        """PUT/POST/DELETE writes to the site (from the API only, unless via_api_only=False)."""
        name = self.list_name(list) if list else None
        with self.sim.lock:
            return sum(1 for w in self.write_log
                       if (name is None or w.list == name) and (w.via == "api" or not via_api_only))

    def _create(self, name: str, fields: dict, via: str, fire: bool) -> dict:
        now = iso_ms(utcnow())
        item_id = self._next_id[name]
        self._next_id[name] += 1
        item = {"id": item_id, "created": now, "modified": now, "deleted": None}
        item.update({k: copy.deepcopy(v) for k, v in fields.items() if k not in SYSTEM_FIELDS})
        self.lists[name][item_id] = item
        self.write_log.append(Write(name, "POST", item_id, via, fire))
        if fire:
            self._fire(name, "Item Created", item)
        return copy.deepcopy(item)

    def _update(self, name: str, item_id: int, fields: dict, via: str, fire: bool) -> dict:
        item = self._item(name, item_id)
        item.update({k: copy.deepcopy(v) for k, v in fields.items() if k not in SYSTEM_FIELDS})
        item["modified"] = iso_ms(utcnow())
        self.write_log.append(Write(name, "PUT", item_id, via, fire))
        if fire:
            self._fire(name, "Item Updated", item)
        return copy.deepcopy(item)

    def _soft_delete(self, name: str, item_id: int, via: str) -> dict:
        item = self._item(name, item_id)
        now = iso_ms(utcnow())
        item["deleted"] = item["deleted"] or now
        item["modified"] = now
        self.write_log.append(Write(name, "DELETE", item_id, via, via == "user"))
        return copy.deepcopy(item)

    def _item(self, name: str, item_id: int) -> dict:
        item = self.lists[name].get(item_id)
        if item is None:
            raise HttpError(404, "NotFound", f"Item {item_id} not found in '{name}'")
        return item

    def state(self) -> dict:
        return {"url": self.url, "aadTenant": self.aad_tenant, "appId": self.app_id,
                "lists": {name: list(items.values()) for name, items in self.lists.items()},
                "webhooks": [vars(h) for h in self.webhooks],
                "deliveries": len(self.deliveries), "pendingDeliveries": self._pending}


class RapidSimulator(SimServer):
    api_prefixes = ("/api/",)
    name = "RAPID simulator"

    def __init__(self, token_key: str = DEFAULT_TOKEN_KEY, latency: float = 0.0,
                 latency_paths: list[str] | None = None):
        super().__init__(token_key, latency, latency_paths)
        self.sites: dict[tuple[str, str], SiteSim] = {}
        r = self.route
        r("GET", _SITE + r"/items/(?P<id>[^/]+)", self._get)
        r("PUT", _SITE + r"/items/(?P<id>[^/]+)", self._put)
        r("DELETE", _SITE + r"/items/(?P<id>[^/]+)", self._delete)
        r("POST", _SITE + r"/items", self._post)
        r("GET", _SITE + r"/All/items", self._query)

    def add_site(self, tenant: str, site: str, aad_tenant: str, app_id: str) -> SiteSim:
        site_sim = SiteSim(self, tenant, site, aad_tenant, app_id)
        with self.lock:
            self.sites[(tenant.lower(), site.lower())] = site_sim
        return site_sim

    def stop(self) -> None:
        for site in self.sites.values():
            site._queue.put(None)
        super().stop()

    def site(self, tenant: str, site: str) -> SiteSim:
        return self.sites[(tenant.lower(), site.lower())]

    def error_body(self, code: str, message: str) -> dict:
        return {"error": message}

    def state(self) -> dict:
        with self.lock:
            return {f"{t}/{s}": site.state() for (t, s), site in self.sites.items()}

    def _site(self, req: Request) -> tuple[SiteSim, str]:
        site = self.sites.get((req.params["tenant"].lower(), req.params["site"].lower()))
        if site is None:
            raise HttpError(404, "NotFound", f"Site '{req.params['tenant']}/{req.params['site']}' not found")
        claims = read_token(self.token_key, req.header("Authorization"))
        if claims is None or claims.get("aud") != site.app_id or claims.get("tid") != site.aad_tenant:
            raise HttpError(401, "Unauthorized", "Invalid or missing bearer token for this site")
        return site, site.list_name(req.params["list"])

    def _id(self, req: Request) -> int:
        try:
            return int(req.params["id"])
        except ValueError:
            raise HttpError(400, "BadRequest", f"Item id must be an integer, not '{req.params['id']}'") from None

    def _fields(self, req: Request) -> dict:
        data = req.body()
        if not isinstance(data, dict):
            raise HttpError(400, "BadRequest", "Request body must be a JSON object")
        return data

    def _fire_webhooks(self, req: Request) -> bool:
        return req.query.get("webhooks", "true").lower() != "false"

    def _get(self, req: Request) -> Response:
        site, name = self._site(req)
        with self.lock:
            return Response(200, copy.deepcopy(site._item(name, self._id(req))))

    def _put(self, req: Request) -> Response:
        site, name = self._site(req)
        fields = self._fields(req)
        with self.lock:
            return Response(200, site._update(name, self._id(req), fields, "api", self._fire_webhooks(req)))

    def _post(self, req: Request) -> Response:
        site, name = self._site(req)
        fields = self._fields(req)
        with self.lock:
            return Response(200, site._create(name, fields, "api", self._fire_webhooks(req)))

    def _delete(self, req: Request) -> Response:
        site, name = self._site(req)
        with self.lock:
            item = site._soft_delete(name, self._id(req), "api")
            site.write_log[-1].webhooks = self._fire_webhooks(req)
            if self._fire_webhooks(req):
                site._fire(name, "Item Deleted", item)
            return Response(200, item)

    def _query(self, req: Request) -> Response:
        site, name = self._site(req)
        match = parse_filter(req.query.get("$filter", ""))
        with self.lock:
            found = [copy.deepcopy(i) for i in site.lists[name].values() if i["deleted"] is None and match(i)]
        if req.query.get("$top", "").isdigit():
            found = found[: int(req.query["$top"])]
        return Response(200, found)


# -- $filter: eq ne gt ge lt le, and, or, not, parentheses, in(field, v...), field in (v...) ---------

_TOKENS = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)(?![\w.])|(?P<punc>[(),])"
                     r"|(?P<word>[A-Za-z_][\w./]*))")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b,
    "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
}


def parse_filter(text: str) -> Callable[[dict], bool]:
    """Compile an OData-style filter into a predicate over items; 400 on anything it cannot read."""
    if not text.strip():
        return lambda item: True
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKENS.match(text, pos)
        if not m or m.end() == pos:
            raise HttpError(400, "BadRequest", f"Invalid $filter near: {text[pos:]!r}")
        kind = m.lastgroup
        tokens.append((kind, m.group(kind)))
        pos = m.end()
    parser = _FilterParser(tokens, text)
    predicate = parser.or_()
    if parser.i != len(tokens):
        parser.fail()
    return predicate


class _FilterParser:
    def __init__(self, tokens: list[tuple[str, str]], text: str):
        self.tokens, self.text, self.i = tokens, text, 0

    def fail(self):
        raise HttpError(400, "BadRequest", f"Invalid $filter: {self.text!r}")

    def peek(self, value: str | None = None) -> bool:
        if self.i >= len(self.tokens):
            return False
        return value is None or self.tokens[self.i][1].lower() == value

    def take(self, kind: str | None = None, value: str | None = None) -> str:
        if self.i >= len(self.tokens):
            self.fail()
        k, v = self.tokens[self.i]
        if (kind and k != kind) or (value and v.lower() != value):
            self.fail()
        self.i += 1
        return v

    def or_(self):
        left = self.and_()
        while self.peek("or"):
            self.take()
            right, prev = self.and_(), left
            left = lambda item, a=prev, b=right: a(item) or b(item)
        return left

    def and_(self):
        left = self.unary()
        while self.peek("and"):
            self.take()
            right, prev = self.unary(), left
            left = lambda item, a=prev, b=right: a(item) and b(item)
        return left

    def unary(self):
        if self.peek("not"):
            self.take()
            inner = self.unary()
            return lambda item: not inner(item)
        return self.primary()

    def primary(self):
        if self.peek("("):
            self.take()
            inner = self.or_()
            self.take("punc", ")")
            return inner
        word = self.take("word")
        if word.lower() == "in" and self.peek("("):
            self.take()
            column = self.take("word")
            self.take("punc", ",")
            return _member(column, self.values())
        op = self.take("word").lower()
        if op == "in":
            self.take("punc", "(")
            return _member(word, self.values())
        if op not in _OPS:
            self.fail()
        value, compare = self.value(), _OPS[op]
        return lambda item: _compare(item.get(word), value, compare)

    def values(self) -> list:
        values = [self.value()]
        while self.peek(","):
            self.take()
            values.append(self.value())
        self.take("punc", ")")
        return values

    def value(self):
        kind = self.tokens[self.i][0] if self.i < len(self.tokens) else None
        raw = self.take()
        if kind == "str":
            return raw[1:-1].replace("''", "'")
        if kind == "num":
            return float(raw) if "." in raw else int(raw)
        if kind == "word" and raw.lower() in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[raw.lower()]
        self.fail()


def _compare(actual, value, compare) -> bool:
    try:
        if isinstance(actual, list):
            return any(compare(a, value) for a in actual) if compare is _OPS["eq"] else \
                all(compare(a, value) for a in actual)
        return compare(actual, value)
    except TypeError:
        return False


def _member(column: str, values: list) -> Callable[[dict], bool]:
    def match(item: dict) -> bool:
        actual = item.get(column)
        return any(a in values for a in actual) if isinstance(actual, list) else actual in values
    return match
