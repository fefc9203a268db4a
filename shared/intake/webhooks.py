"""Turning what callers POST into tasks for the work queue. Validates; never does I/O.

A rejected request raises BadRequest / NotFound / PayloadTooLarge with a message that names the
problem, before anything is persisted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import unicodedata

from ..config import Settings, SiteConfig
from ..model.errors import BadRequest, Forbidden, NotFound, PayloadTooLarge
from ..model.rapid_items import is_envelope, lookup_id
from ..storage.tables import table_key

MAX_BODY = 1024 * 1024
MAX_ID_BYTES = 300
# A Table key holds at most 1 KiB of UTF-16, 512 characters (docs/platform-facts.md, "Table keys"); an id is
# escaped into keys (storage/tables.table_key: each non-ASCII byte becomes %XX) behind a short prefix.
MAX_ID_KEY = 400
MAX_DEPTH = 32
MAX_ITEMS = 250  # per webhook call: a RAPID page; each item costs the worker site reads
AGENDA_TASK_BYTES = 30_000  # the item ids one agenda task carries (a queue message holds 45,000: work_queue.py)
# characters an id may not hold: controls (C0 and C1, e.g. U+0085), lone surrogates (they cannot be
# stored) and line/paragraph separators (U+2028/U+2029 would split log lines)
_REFUSED = {"Cc", "Cs", "Zl", "Zp"}


def _depth(value) -> int:
    """How deep arrays and objects nest in a parsed body, counted without recursion."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        node, depth = todo.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is not None:
            deepest = max(deepest, depth)
            todo.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def parse_json(body: bytes):
    """A request body as JSON, or BadRequest naming what is wrong (PayloadTooLarge past MAX_BODY). A body
    nested deeper than MAX_DEPTH is refused here: no site or Graph body nests past a few levels, and every
    later walk of it (ids, lookups) may then recurse freely."""
    data = _parse(body)
    if _depth(data) > MAX_DEPTH:
        raise BadRequest(f"body nests arrays and objects more than {MAX_DEPTH} deep")
    return data


def _parse(body: bytes):
    if len(body) > MAX_BODY:
        raise PayloadTooLarge(f"body is {len(body)} bytes; the limit is {MAX_BODY}")
    if not body.strip():
        raise BadRequest("body is empty; expected JSON")
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest("body is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise BadRequest(f"body is not JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise BadRequest("body is not JSON this app reads: nested too deeply") from None
    except ValueError:  # an integer with more digits than Python converts (sys.get_int_max_str_digits)
        raise BadRequest("body is not JSON this app reads: a number has too many digits") from None


def known_site(settings: Settings, tenant: str, site: str) -> SiteConfig:
    config = settings.site(tenant or "", site or "")
    if config is None:
        raise NotFound(f"unknown site {tenant}/{site}")
    return config


def site_token(secret: str, site_key: str) -> str:
    """The token a site's webhook URLs carry (`?site_token=`): an HMAC of the site's key, so the URLs of
    one site open no other site's routes; a new secret (WEBHOOK_SECRETS, newest first) rotates them."""
    digest = hmac.new(secret.encode(), f"rapid-meetings|{site_key.lower()}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def check_site_token(settings: Settings, site: SiteConfig, token: str | None) -> None:
    given = (token or "").encode("utf-8", "surrogatepass")
    if not any(hmac.compare_digest(given, site_token(secret, site.key).encode()) for secret in settings.webhook_secrets):
        raise Forbidden(f"this URL's site_token is missing or is not {site.key}'s")


def usable_id(value, where: str) -> str:
    """An id as text that can travel in a URL path, a Table key, a queue message and a log line."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadRequest(f"{where} must be a number or text, not {type(value).__name__}")
    text = str(value).strip()
    if not text or len(text) > 256 or any(unicodedata.category(c) in _REFUSED for c in text):
        raise BadRequest(f"{where} {text[:40]!r} is empty, too long, or has control, separator or "
                         f"lone surrogate characters")
    if text in (".", ".."):  # a URL path would collapse them into the list itself
        raise BadRequest(f"{where} {text!r} is not an item id")
    if isinstance(value, int) and value < 0:
        raise BadRequest(f"{where} must not be negative")
    if len(text.encode("utf-8")) > MAX_ID_BYTES:
        raise BadRequest(f"{where} is longer than {MAX_ID_BYTES} bytes")
    if len(table_key(text)) > MAX_ID_KEY:
        raise BadRequest(f"{where} escapes to a {len(table_key(text))}-character Table Storage key; at most "
                         f"{MAX_ID_KEY} fit")
    return text


def item_id(item, where: str) -> str:
    if not isinstance(item, dict):
        raise BadRequest(f"{where} must be a JSON object (the item), not {type(item).__name__}")
    if "id" not in item:
        raise BadRequest(f"{where} has no 'id'")
    return usable_id(item["id"], f"{where}: 'id'")


def envelope_item(data: dict, site: SiteConfig):
    """The item (or items) of RAPID's remote-action envelope, once its tenant and site are the route's."""
    for key, expected in (("tenant", site.tenant), ("site", site.site)):
        if key in data and str(data[key]).lower() != expected.lower():
            raise BadRequest(f"envelope {key} {str(data[key])[:60]!r} does not match the route's {expected!r}")
    if data["item"] == {} or data["item"] == [] or data["item"] is None:
        raise BadRequest("envelope carries no item: turn on \"Include Item\" for this remote action")
    return data["item"]


def _items_of(data, many: bool, site: SiteConfig) -> list:
    """The items a site webhook body carries (docs/rapid-api.md, "Site webhooks", "The Items Deleted body is not published"): an item profile; for "Items Deleted" also a
    list of items or of ids; or RAPID's remote-action envelope around either."""
    if is_envelope(data):
        data, many = envelope_item(data, site), True  # "Single Request" sends the selected items as one array
    if isinstance(data, list):
        if not many:
            raise BadRequest("body must be one item (a JSON object), not a list")
        if not data:
            raise BadRequest("body is an empty list; expected at least one item")
        if len(data) > MAX_ITEMS:
            raise PayloadTooLarge(f"body lists {len(data)} items; at most {MAX_ITEMS} per call")
        if all(isinstance(v, (int, str)) and not isinstance(v, bool) for v in data):
            return [{"id": v} for v in data]  # a list of ids
        return data  # a list of items: item_id() names any element that is not one
    if isinstance(data, dict):
        return [data]
    raise BadRequest(f"body must be a JSON object (the item){', a list of items or ids' if many else ''}, "
                     f"not {type(data).__name__}")


def webhook_items(body: bytes, many: bool, site: SiteConfig) -> list[dict]:
    items = _items_of(parse_json(body), many, site)
    where = (lambda n: f"item {n}") if len(items) > 1 else (lambda n: "item")
    for n, item in enumerate(items):
        item_id(item, where(n))
    return items


def site_tasks(settings: Settings, tenant: str, site: str, op: str, body: bytes, many: bool = False,
               carry: tuple = ()) -> list[dict]:
    """One task per distinct item; `carry` names single lookups whose target id travels with the task."""
    config = known_site(settings, tenant, site)
    items = webhook_items(body, many, config)
    seen, tasks = set(), []
    for item in items:
        key = item_id(item, "item")
        if key not in seen:
            seen.add(key)
            task = {"op": op, "site": config.key, "item": key}
            for name in carry:  # a hint only: one that could not be stored is left out, never fails others
                target = lookup_id(item, config.col(name))
                try:
                    if target:
                        task[name] = usable_id(target, name)
                except BadRequest:
                    pass
            tasks.append(task)
    return tasks


def agenda_tasks(settings: Settings, tenant: str, site: str, op: str, body: bytes, many: bool = False) -> list[dict]:
    """An agenda webhook as one task (several only when its ids would not fit one queue message): the distinct
    agenda item ids it names (at most MAX_ITEMS), and nothing else from the body. What the body claims about
    events is not believed: the job asks the site which of these items exist and which events they belong to
    (features/agenda_changes.py), so the work a request causes is bounded by what the site confirms."""
    key = known_site(settings, tenant, site).key
    chunks, size = [[]], 0
    for task in site_tasks(settings, tenant, site, op, body, many):
        item_bytes = len(json.dumps(task["item"], ensure_ascii=False).encode("utf-8")) + 2  # as stored: " and \ escaped
        size += item_bytes
        if size > AGENDA_TASK_BYTES:
            chunks.append([])
            size = item_bytes
        chunks[-1].append(task["item"])
    return [{"op": op, "site": key, "items": chunk} for chunk in chunks]
