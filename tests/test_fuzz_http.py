"""Property-based bad input at every HTTP function, through real HTTP (issue 5, item 2).

The app is served by `python -m devtools.localhost --no-triggers` on its own work queue, so what an answer
enqueued stays countable. Whatever is sent:

- no answer is a 5xx while storage is up;
- every non-2xx answer from the app is JSON with an `error` and a `message` naming the problem; only the
  host's own routing (wrong key, route or method) answers 401/404/405 with an empty body, as the platform does;
- a refused request enqueues nothing and stores nothing; a body over 1 MiB gets 413;
- a Graph notification is accepted only for a real subscription with its clientState, tenant and mailbox.
"""

from __future__ import annotations

import json
import unicodedata
import os
import subprocess
import sys
import uuid
from urllib.parse import quote, unquote

import pytest
import requests
from azure.core.exceptions import ResourceExistsError
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from devtools.azurite import ROOT, free_port, wait_for_port
from devtools.stack import site_params, AAD_TENANT, CLIENT_SECRET, FUNCTION_KEY, ORGANISER, OTHER_TENANT

from .scenario import new_meeting, queue_depth, settle

FUZZ_QUEUE = "fuzz-intake"
MAX_BODY = 1024 * 1024
SERVICE = "0/services/rapid-meetings"
HOOKS = {  # route under {tenant}/{site}/0/services/rapid-meetings → takes a list of items ("Items Deleted")
    "event/create": False, "event/update": False, "event/delete": True,
    "meeting/create": False, "subscriptions/update": False, "subscriptions/delete": True,
}
NOTIFICATIONS = "graph/notifications"
KNOWN_SITES = {"acme/sales", "globex/ops"}
CHANGES = ("created", "updated", "deleted")
LIFECYCLE = ("reauthorizationRequired", "subscriptionRemoved", "missed")

FUZZ = settings(max_examples=60, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large, HealthCheck.large_base_example])


# -- the host under test, its queue and the app's tables

class Host:
    def __init__(self, url: str, log_path: str, stack):
        self.url, self.log_path, self.stack = url, log_path, stack
        self.session = requests.Session()
        self.session.trust_env = False

    def send(self, path: str, body: bytes = b"", method: str = "POST", key: str | None = FUNCTION_KEY,
             headers: dict | None = None, params: dict | None = None) -> requests.Response:
        query = {**site_params(path), **(params or {})}  # a site route carries its site's token
        if key is not None:
            query["code"] = key
        return self.session.request(method, f"{self.url}/{path}", params=query, data=body,
                                    headers=headers or {}, timeout=30)

    def _queue(self):
        from azure.storage.queue import QueueClient, TextBase64DecodePolicy

        return QueueClient.from_connection_string(self.stack.azurite.connection_string, FUZZ_QUEUE,
                                                  message_decode_policy=TextBase64DecodePolicy())

    def drain(self) -> list[dict]:
        """Every job the host enqueued so far (removed from the queue, as a worker starting them would: the
        lifecycle work among them is no longer queued, so a repeat of it is queued again)."""
        from shared.intake.lifecycle_once import LIFECYCLE_OP, started

        from .scenario import svc

        client, jobs = self._queue(), []
        while True:
            batch = list(client.receive_messages(max_messages=32))
            if not batch:
                return jobs
            for message in batch:
                jobs.append(json.loads(message.content))
                client.delete_message(message)
                for task in jobs[-1].get("tasks", []):
                    if task.get("op") == LIFECYCLE_OP:
                        started(svc(), task["sub"], task["event"])

    def depth(self) -> int:
        return queue_depth(self.stack, FUZZ_QUEUE)


@pytest.fixture(scope="module")
def host(stack, tmp_path_factory):
    log_path = str(tmp_path_factory.mktemp("fuzz-host") / "host.log")
    port = free_port()
    env = {**os.environ, **stack.settings(), "WORK_QUEUE": FUZZ_QUEUE}
    with open(log_path, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "devtools.localhost", "--port", str(port), "--no-triggers"],
                                   cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, deadline_s=30, process=process)
            served = Host(f"http://127.0.0.1:{port}", log_path, stack)
            try:
                served._queue().create_queue()
            except ResourceExistsError:
                pass
            served.drain()
            yield served
        finally:
            process.terminate()
            process.wait(timeout=10)


def table_sizes(stack) -> dict[str, int]:
    from azure.core.exceptions import ResourceNotFoundError
    from azure.data.tables import TableServiceClient

    service = TableServiceClient.from_connection_string(stack.azurite.connection_string)
    sizes = {}
    for name in ("eventlinks", "subscriptions", "meetings"):
        try:
            sizes[name] = sum(1 for _ in service.get_table_client(name).list_entities(select=["PartitionKey"]))
        except ResourceNotFoundError:
            sizes[name] = 0
    return sizes


@pytest.fixture(autouse=True)
def nothing_stored(stack, host):
    """Intake persists work only to the queue: the link, subscription and meeting tables never grow."""
    settle(stack)
    host.drain()
    before = table_sizes(stack)
    yield
    assert table_sizes(stack) == before


@pytest.fixture(scope="module")
def real_subscription(stack):
    """A live Graph subscription of acme/sales (the organiser's calendar), as the app stored it."""
    from functions.http import services

    new_meeting(stack.sites["acme/sales"], title="Fuzzed notifications")
    settle(stack)
    sub = services().store.subscription_for("acme/sales", ORGANISER)
    assert sub is not None
    return sub


def checked(host: Host, answer: requests.Response) -> dict | None:
    """The invariants every answer of the app keeps; the JSON body."""
    status = answer.status_code
    assert status < 500, f"{status}: {answer.text[:300]!r}"
    if 200 <= status < 300:
        if not answer.headers.get("Content-Type", "").startswith("application/json"):
            return None
        body = answer.json()
        jobs = host.drain()
        assert sorted(j["id"] for j in jobs) == sorted(body["jobs"])
        body["_tasks"] = [t for j in jobs for t in j["tasks"]]
        return body
    assert answer.headers.get("Content-Type", "").startswith("application/json"), answer.headers
    body = answer.json()
    assert isinstance(body, dict)
    assert isinstance(body.get("error"), str) and body["error"]
    assert isinstance(body.get("message"), str) and body["message"]
    assert host.depth() == 0, "a refused request enqueued work"
    return body


def refused_by_host(host: Host, answer: requests.Response, status: int) -> None:
    """The host's routing refused it (the platform's answer): nothing reached the app, nothing enqueued."""
    assert answer.status_code == status
    assert answer.content == b""
    assert host.depth() == 0


# -- what a body means (RFC 8259: UTF-8 JSON) and what the contract says the answer is

def meaning(body: bytes):
    """(value, None), or (None, (status, words one of which the message must contain))."""
    if len(body) > MAX_BODY:
        return None, (413, ("limit",))
    if not body.strip():
        return None, (400, ("empty",))
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None, (400, ("UTF-8",))
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None, (400, ("JSON",))
    try:
        deep = nesting(value) > 32  # no site or Graph body nests past a few levels (issue 22's review: RecursionError)
    except RecursionError:
        deep = True
    if deep:
        return None, (400, ("deep",))
    return value, None


def nesting(value) -> int:
    """How many arrays and objects deep a parsed body goes (a scalar is 0)."""
    children = list(value.values()) if isinstance(value, dict) else value if isinstance(value, list) else None
    if children is None:
        return 0
    return 1 + max((nesting(child) for child in children), default=0)


def valid_id(value) -> str | None:
    """An item id the app accepts (the item is a JSON object with `id`: docs/product-rules.md, "A webhook is a
    signal, the site is the truth"), as text; else None."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    if isinstance(value, int) and value < 0:
        return None
    text = str(value).strip()
    # no controls (C0, C1), line or paragraph separators (they would split log lines), lone surrogates
    if not text or len(text) > 256 or any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text):
        return None
    if text in (".", ".."):  # a URL path collapses them
        return None
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: not text at all
        return None
    # a Table key holds 512 characters; escaped (each non-ASCII byte as %XX) an id must leave room for prefixes
    escaped = len(quote(text, safe="!$&'()*+,;=:@ ~-._"))
    return text if size <= 300 and escaped <= 400 else None


def expected_webhook(body: bytes, many: bool):
    """(202, distinct item ids) or (status, words naming the problem)."""
    value, problem = meaning(body)
    if problem:
        return problem
    if isinstance(value, dict) and "item" in value and "id" not in value and ("site" in value or "tenant" in value):
        # RAPID's remote-action envelope (perform-remote-action.md): for this route's site only
        if any(k in value and str(value[k]).lower() != expected for k, expected in (("tenant", "acme"), ("site", "sales"))):
            return 400, ("does not match",)
        value, many = value["item"], True
        if value == {} or value == []:
            return 400, ("Include Item",)
    if isinstance(value, list):
        if not many:
            return 400, ("list",)
        if not value:
            return 400, ("empty",)
        if len(value) > 250:
            return 413, ("250",)
        if all(isinstance(v, (int, str)) and not isinstance(v, bool) for v in value):
            value = [{"id": v} for v in value]  # "Items Deleted" as a list of ids
        items = value
    elif isinstance(value, dict):
        items = [value]
    else:
        return 400, ("JSON object",)
    ids = []
    for item in items:
        if not isinstance(item, dict):
            return 400, ("JSON object",)
        if valid_id(item.get("id")) is None:
            return 400, ("'id'",)
        ids.append(valid_id(item["id"]))
    return 202, list(dict.fromkeys(ids))


def assert_answer(host: Host, answer: requests.Response, expected) -> dict:
    body = checked(host, answer)
    status, detail = expected
    assert answer.status_code == status, f"{answer.status_code} {body}, expected {status} {detail}"
    if status >= 400:
        assert any(word in body["message"] for word in detail), f"{body['message']!r} names none of {detail}"
    return body


# -- strategies

def dumps(value, ascii_only: bool = True) -> bytes:
    text = json.dumps(value, ensure_ascii=ascii_only, allow_nan=True)
    return text.encode("utf-8", "surrogatepass")  # lone surrogates become bytes that are not UTF-8


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
                    st.text(max_size=20))
any_json = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                        max_leaves=12)
ids = st.one_of(
    st.integers(), st.integers(min_value=10 ** 255, max_value=10 ** 300),
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
    st.text(max_size=300), st.text(st.characters(max_codepoint=31), min_size=1, max_size=4),
    st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3),
    st.text(st.characters(categories=["Zs", "Cc", "Cf"]), min_size=1, max_size=4),
    st.sampled_from(["", " ", "0", "-1", "1e3", "null", "a" * 256, "a" * 257, " " + "b" * 256 + " ", "é" * 256,
                     "1/2", "../3", "%2F", "x|y", "item|7", "' or 1 eq 1", "\u2028", "\ufeff1"]),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
items = st.builds(lambda i, extra: {**extra, "id": i}, ids, st.dictionaries(st.sampled_from(
    ["title", "meeting", "status", "organiser", "invitees", "modified", "deleted"]), any_json, max_size=3))
maybe_items = st.one_of(items, items.map(lambda d: {k: v for k, v in d.items() if k != "id"}), any_json)


@st.composite
def raw_bodies(draw):
    """Bodies no JSON library makes: deep nesting, numbers too long to read, sizes around the limit."""
    kind = draw(st.sampled_from(["deep", "deep-in-item", "digits", "nan", "big-string", "over-limit", "many",
                                 "whitespace", "nul", "trailing", "duplicate-keys"]))
    if kind == "deep":
        n = draw(st.integers(1, 300_000))
        return b"[" * n + b"]" * n
    if kind == "deep-in-item":
        n = draw(st.integers(1, 200_000))
        return b'{"id": 1, "title": ' + b'{"a":' * n + b"1" + b"}" * n + b"}"
    if kind == "digits":
        return b'{"id": ' + b"9" * draw(st.integers(250, 20_000)) + b"}"
    if kind == "nan":
        return draw(st.sampled_from([b'{"id": NaN}', b'{"id": Infinity}', b'{"id": -Infinity}', b'{"id": 1, "x": NaN}']))
    if kind == "big-string":
        return b'{"id": 3, "description": "' + b"x" * draw(st.integers(500_000, MAX_BODY - 40)) + b'"}'
    if kind == "over-limit":
        return b'{"id": 4, "description": "' + b"y" * draw(st.integers(MAX_BODY, MAX_BODY + 70_000)) + b'"}'
    if kind == "many":
        return dumps([{"id": n} for n in range(draw(st.integers(990, 1010)))])
    if kind == "whitespace":
        return draw(st.sampled_from([b" ", b"\r\n\t ", b"\x0b\x0c", b"\x00"]))
    if kind == "nul":
        return b'{"id": "1\\u0000"}'
    if kind == "trailing":
        return b'{"id": 5} {"id": 6}'
    return b'{"id": 1, "id": "two"}'


@st.composite
def wrong_encodings(draw):
    """A well-formed item in an encoding other than UTF-8 (or UTF-8 with a byte order mark)."""
    item = {"id": draw(st.integers(0, 10 ** 6)), "title": draw(st.text(st.characters(min_codepoint=0x20, max_codepoint=0xff), max_size=20)) + "é"}
    text = json.dumps(item, ensure_ascii=False)
    encoding = draw(st.sampled_from(["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8-sig", "latin-1", "cp1252"]))
    return text.encode(encoding, "replace")


bodies = st.one_of(
    st.binary(max_size=300),
    any_json.map(dumps),
    maybe_items.map(dumps),
    maybe_items.map(lambda v: dumps(v, ascii_only=False)),
    st.lists(maybe_items, max_size=6).map(dumps),
    st.lists(items, min_size=1, max_size=6).map(dumps),
    raw_bodies(),
    wrong_encodings(),
)
header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xff, exclude_characters="\x7f"),
                        max_size=60).filter(lambda v: not v[:1].isspace())
content_types = st.sampled_from([
    "application/json", "application/json; charset=utf-8", "application/json; charset=utf-16",
    "application/json; charset=latin-1", "text/plain", "text/html; charset=shift_jis",
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=zz", "application/octet-stream",
    "*/*", "", "json", "application/json;;;", "application/jsonx; charset=\"", "\u00e9t\u00e9/json"])
headers = st.fixed_dictionaries({}, optional={
    "Content-Type": content_types | header_values,
    "Content-Encoding": st.sampled_from(["gzip", "br", "identity", "deflate, gzip"]) | header_values,
    "Accept": header_values, "Accept-Charset": header_values, "User-Agent": header_values,
    "Authorization": header_values, "X-Forwarded-For": header_values, "X-MS-Client-Request-Id": header_values,
    "Client-Request-Id": header_values, "Cookie": header_values, "Origin": header_values,
    "X-Odd-Header": header_values,
})
param_names = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x2ff, exclude_categories=["Cs"]),
                      min_size=1, max_size=12).filter(lambda n: n.lower() not in ("code", "validationtoken"))
queries = st.dictionaries(param_names, st.text(st.characters(exclude_categories=["Cs"]), max_size=30), max_size=4)
segments = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=20).filter(
    lambda s: s not in (".", "..")).map(lambda s: quote(s, safe=""))


# -- the site's webhooks

@FUZZ
@given(hook=st.sampled_from(sorted(HOOKS)), body=bodies, sent_headers=headers, params=queries)
def test_any_body_to_a_site_webhook_is_accepted_only_when_every_item_has_a_usable_id(host, hook, body, sent_headers,
                                                                                     params):
    host.drain()
    answer = host.send(f"acme/sales/{SERVICE}/{hook}", body, headers=sent_headers, params=params)
    expected = expected_webhook(body, HOOKS[hook])
    result = assert_answer(host, answer, expected)
    if answer.status_code == 202:
        op = {"event/create": "event.create", "event/update": "event.update", "event/delete": "event.delete",
              "meeting/create": "meeting.create", "subscriptions/update": "subscription_item.update",
              "subscriptions/delete": "subscription_item.delete"}[hook]
        assert result["accepted"] == len(expected[1])
        assert [t["item"] for t in result["_tasks"]] == expected[1]
        assert all(t["op"] == op and t["site"] == "acme/sales" for t in result["_tasks"])


@FUZZ
@given(hook=st.sampled_from(sorted(HOOKS)), tenant=segments, site=segments,
       body=st.one_of(items.map(dumps), st.binary(max_size=100)), params=queries)
def test_an_unknown_tenant_or_site_gets_a_json_404_naming_it(host, hook, tenant, site, body, params):
    assume(f"{tenant}/{site}".lower() not in KNOWN_SITES)
    host.drain()
    answer = host.send(f"{tenant}/{site}/{SERVICE}/{hook}", body, params=params)
    result = checked(host, answer)
    assert answer.status_code == 404
    assert "unknown site" in result["message"] and result["error"] == "NotFound"


ROUTES = [f"acme/sales/{SERVICE}/{hook}" for hook in HOOKS] + [NOTIFICATIONS]


@FUZZ
@given(route=st.sampled_from(ROUTES), method=st.sampled_from(["GET", "PUT", "PATCH", "DELETE"]),
       body=st.one_of(st.just(b'{"id": 1}'), st.binary(max_size=50)))
def test_a_method_other_than_post_is_refused_by_the_host_and_enqueues_nothing(host, route, method, body):
    refused_by_host(host, host.send(route, body, method=method), 405)


@FUZZ
@given(route=st.sampled_from(ROUTES), junk=segments, where=st.sampled_from(["suffix", "prefix", "double-slash", "api"]))
def test_path_junk_around_a_route_is_the_hosts_404_and_enqueues_nothing(host, route, junk, where):
    path = {"suffix": f"{route}/{junk}", "prefix": f"{junk}/{route}", "double-slash": f"{route}//",
            "api": f"api/{route}"}[where]
    refused_by_host(host, host.send(path, b'{"id": 1}'), 404)


@FUZZ
@given(route=st.sampled_from(ROUTES), key=st.one_of(st.none(), st.text(st.characters(exclude_categories=["Cs"]), max_size=40)),
       via_header=st.booleans())
def test_a_missing_or_wrong_key_is_the_hosts_401_and_enqueues_nothing(host, route, key, via_header):
    assume(key not in (FUNCTION_KEY, "local-master-key"))
    if via_header and key is not None:
        assume(key.isascii() and key.isprintable() and key == key.strip() and key)
        answer = host.send(route, b'{"id": 1}', key=None, headers={"x-functions-key": key})
    else:
        answer = host.send(route, b'{"id": 1}', key=key)
    refused_by_host(host, answer, 401)


@FUZZ
@given(hook=st.sampled_from(sorted(HOOKS)), body=items.map(dumps), params=queries)
def test_a_trailing_slash_reaches_the_same_function(host, hook, body, params):
    host.drain()
    answer = host.send(f"acme/sales/{SERVICE}/{hook}/", body, params=params)
    assert_answer(host, answer, expected_webhook(body, HOOKS[hook]))


# -- Graph's notifications (shapes from Microsoft's changeNotification / lifecycle notification docs)

guids = st.uuids().map(str)
event_ids = st.one_of(st.from_regex(r"\AAAMk[A-Za-z0-9_=-]{10,40}\Z"), st.text(max_size=30))


def change_note(sub_id, client_state, tenant, user, event_id, change="updated", spelling="path",
                etag="W/\"CQAAABYAAADkrWGo7bouTKlsgTZMr9KwAAAUWRHf\""):
    resource = f"Users/{user}/Events/{event_id}" if spelling == "path" else f"Users('{user}')/Events('{event_id}')"
    return {"subscriptionId": sub_id, "subscriptionExpirationDateTime": "2026-12-01T11:00:00.0000000Z",
            "changeType": change, "resource": resource, "clientState": client_state, "tenantId": tenant,
            "resourceData": {"@odata.type": "#Microsoft.Graph.Event", "@odata.id": resource,
                             "@odata.etag": etag, "id": event_id}}


def lifecycle_note(sub_id, client_state, tenant, event="reauthorizationRequired"):
    return {"subscriptionId": sub_id, "subscriptionExpirationDateTime": "2026-12-01T11:00:00.0000000Z",
            "tenantId": tenant, "clientState": client_state, "lifecycleEvent": event}


documented_notes = st.one_of(
    st.builds(change_note, guids, st.text(max_size=128), st.sampled_from([AAD_TENANT, OTHER_TENANT]) | guids,
              guids | st.builds(lambda u, t: f"{u}@{t}", guids, guids) | st.just(ORGANISER), event_ids,
              st.sampled_from(CHANGES)),
    st.builds(lifecycle_note, guids, st.text(max_size=128), st.sampled_from([AAD_TENANT, OTHER_TENANT]) | guids,
              st.sampled_from(LIFECYCLE)),
)
notification_bodies = st.one_of(
    st.lists(documented_notes, min_size=1, max_size=5).map(lambda v: dumps({"value": v})),
    st.lists(st.one_of(documented_notes, any_json), max_size=5).map(lambda v: dumps({"value": v})),
    st.dictionaries(st.sampled_from(["value", "validationTokens", "@odata.type"]), any_json, max_size=3).map(dumps),
    bodies,
)


def expected_notifications(body: bytes, accept) -> tuple[int, object]:
    """(202, how many notes are acted on) or (status, words naming the problem)."""
    value, problem = meaning(body)
    if problem:
        return problem
    if not isinstance(value, dict) or not isinstance(value.get("value"), list):
        return 400, ("'value'",)
    return 202, [note for note in value["value"] if accept(note)]


@FUZZ
@given(body=notification_bodies, sent_headers=headers, params=queries)
def test_notifications_for_no_subscription_of_ours_are_refused_and_enqueue_nothing(host, real_subscription, body,
                                                                                   sent_headers, params):
    host.drain()
    answer = host.send(NOTIFICATIONS, body, headers=sent_headers, params=params)
    expected = expected_notifications(body, lambda note: False)
    result = assert_answer(host, answer, expected)
    if answer.status_code == 202:
        notes = json.loads(body.decode("utf-8"))["value"]
        assert result["accepted"] == 0 and result["refused"] == len(notes) and result["jobs"] == []
        assert host.depth() == 0


def acted_on(note, sub, users: tuple[str, ...]) -> bool:
    """Only a notification of our subscription, with its clientState, tenant and mailbox
    (docs/product-rules.md, "Rule 6. Isolation")."""
    text = lambda key: note.get(key) if isinstance(note.get(key), str) and note.get(key) else None  # noqa: E731
    if not isinstance(note, dict) or text("subscriptionId") != sub.id or text("clientState") != sub.client_state:
        return False
    if (text("tenantId") or "").lower() != sub.aad_tenant.lower():
        return False
    if text("lifecycleEvent") is not None:
        return text("lifecycleEvent") in LIFECYCLE
    if text("changeType") not in CHANGES:
        return False
    data = note.get("resourceData") if isinstance(note.get("resourceData"), dict) else {}
    event_id = data.get("id")
    if not isinstance(event_id, str) or not event_id or not (event_id.isascii() and event_id.isprintable()):
        return False  # the event id is resourceData.id (Graph's ids are printable ASCII)
    # the resource, in any published spelling, names one of the subscription's user names and that event
    spellings = {f"{lead}users/{u}/events/{event_id}" for u in users for lead in ("", "/")} | \
                {f"{lead}users('{u}')/events('{event_id}')" for u in users for lead in ("", "/")}
    return unquote(text("resource") or "").lower() in {r.lower() for r in spellings}


@st.composite
def mutated(draw, base: dict):
    """A real notification, then keys dropped, values replaced by values of any type, cases changed."""
    note = json.loads(json.dumps(base))
    for key in draw(st.lists(st.sampled_from(sorted(note)), unique=True, max_size=3)):
        del note[key]
    if isinstance(note.get("resourceData"), dict):
        for key in draw(st.lists(st.sampled_from(sorted(note["resourceData"])), unique=True, max_size=2)):
            del note["resourceData"][key]
    for key in draw(st.lists(st.sampled_from(sorted(note) or ["x"]), unique=True, max_size=2)):
        note[key] = draw(any_json | ids)
    if draw(st.booleans()):
        key = draw(st.sampled_from(["tenantId", "resource", "subscriptionId", "clientState", "changeType"]))
        if isinstance(note.get(key), str):
            note[key] = draw(st.sampled_from([str.upper, str.lower, str.swapcase, lambda s: s + " ", lambda s: " " + s,
                                              lambda s: s[:-1], lambda s: s + "\u0000"]))(note[key])
    return note


def one_per_lifecycle(notes: list[dict]) -> list[dict]:
    """The notes acted on: every change, and each subscription's lifecycle event once (issue 22)."""
    seen, kept = set(), []
    for note in notes:
        event = note.get("lifecycleEvent")
        key = (note["subscriptionId"], event) if isinstance(event, str) and event else None
        if key is None or key not in seen:
            seen.add(key)
            kept.append(note)
    return kept


def test_mutations_of_a_real_notification_are_acted_on_only_while_still_genuine(stack, host, real_subscription):
    sub = real_subscription
    users = (sub.user_id.lower(), sub.mailbox.lower(), f"{sub.user_id}@{sub.aad_tenant}".lower())
    genuine = [change_note(sub.id, sub.client_state, sub.aad_tenant, user, "AAMkADg3NzQ2ZmEtZjQ1Ni00", change, spelling)
               for change in CHANGES for user, spelling in ((sub.user_id, "path"), (f"{sub.user_id}@{sub.aad_tenant}", "path"),
                                                             (sub.user_id, "key"))] + [lifecycle_note(sub.id, sub.client_state, sub.aad_tenant, e) for e in LIFECYCLE]
    seen = {"accepted": 0, "refused": 0}

    @FUZZ
    @given(data=st.data())
    def property_(data):
        base = data.draw(st.sampled_from(genuine))
        notes = data.draw(st.lists(mutated(base), min_size=1, max_size=3))
        body = dumps({"value": notes}, ascii_only=data.draw(st.booleans()))
        how = data.draw(st.sampled_from(["whole", "truncated", "flipped"]))
        if how == "truncated":
            body = body[:data.draw(st.integers(0, len(body) - 1))]
        elif how == "flipped":
            at = data.draw(st.integers(0, len(body) - 1))
            body = body[:at] + bytes([data.draw(st.integers(0, 255))]) + body[at + 1:]
        host.drain()
        answer = host.send(NOTIFICATIONS, body)
        expected = expected_notifications(body, lambda note: acted_on(note, sub, users))
        result = assert_answer(host, answer, expected)
        if answer.status_code == 202:
            genuine_notes = one_per_lifecycle(expected[1])  # identical lifecycle notifications are one piece of work
            assert result["accepted"] == len(genuine_notes)
            assert result["accepted"] + result["refused"] + result.get("merged", 0) == len(
                json.loads(body.decode("utf-8"))["value"])
            assert all(t["sub"] == sub.id for t in result["_tasks"])
            assert len(result["_tasks"]) == len(genuine_notes)
            seen["accepted"] += result["accepted"]
            seen["refused"] += result["refused"]

    property_()
    host.drain()  # the lifecycle work queued last is taken too: its mark goes
    assert seen["accepted"] and seen["refused"], seen  # the property saw both sides of the line
    # the host logged every refusal: never with the clientState or the client secret in it
    with open(host.log_path, encoding="utf-8", errors="replace") as log:
        text = log.read()
    assert "refused and dropped" in text
    assert sub.client_state not in text and CLIENT_SECRET not in text


@FUZZ
@given(token=st.text(st.characters(exclude_categories=["Cs"]), max_size=2100), body=st.binary(max_size=64),
       params=queries)
def test_the_validation_handshake_echoes_any_token_up_to_its_limit(host, token, body, params):
    host.drain()
    answer = host.send(NOTIFICATIONS, body, params={**params, "validationToken": token})
    checked(host, answer)
    if len(token) > 2048:
        assert answer.status_code == 400 and "validationToken" in answer.json()["message"]
    else:
        assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain")
        assert answer.content == token.encode("utf-8")
    assert host.depth() == 0


def test_a_notification_body_over_a_mebibyte_gets_413(host, real_subscription):
    sub = real_subscription
    note = change_note(sub.id, sub.client_state, sub.aad_tenant, sub.user_id, "AAMkBig")
    body = dumps({"value": [note] * (MAX_BODY // len(dumps(note)) + 2)})
    assert len(body) > MAX_BODY
    answer = host.send(NOTIFICATIONS, body)
    assert answer.status_code == 413 and "limit" in checked(host, answer)["message"]


def test_an_unknown_subscription_is_refused_whatever_its_id_looks_like(host):
    weird = ["", " ", "\ud800", "a" * 201, "é" * 200, "%", "sub/../x", "'", "x|y", "\u0000", str(uuid.uuid4()).upper(),
             "\U0001f600" * 100, "#?/\\"]
    notes = [lifecycle_note(w, "s", AAD_TENANT, "subscriptionRemoved") for w in weird]
    host.drain()
    answer = host.send(NOTIFICATIONS, dumps({"value": notes}))
    result = assert_answer(host, answer, (202, None))
    assert result["accepted"] == 0 and result["refused"] == len(weird)


def test_with_storage_down_a_notification_gets_a_json_503_so_graph_retries(stack, real_subscription):
    dead = free_port()
    storage = (stack.azurite.connection_string.replace(f":{stack.azurite.queue_port}/", f":{dead}/")
               .replace(f":{stack.azurite.table_port}/", f":{dead}/"))
    port = free_port()
    env = {**os.environ, **stack.settings(), "WORK_QUEUE": FUZZ_QUEUE, "AzureWebJobsStorage": storage}
    process = subprocess.Popen([sys.executable, "-m", "devtools.localhost", "--port", str(port), "--no-triggers"],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, deadline_s=30, process=process)
        sub = real_subscription
        note = change_note(sub.id, sub.client_state, sub.aad_tenant, sub.user_id, "AAMkDown")
        answer = requests.post(f"http://127.0.0.1:{port}/{NOTIFICATIONS}", params={"code": FUNCTION_KEY},
                               data=dumps({"value": [note]}), timeout=60)
        assert answer.status_code == 503
        assert answer.headers["Content-Type"].startswith("application/json")
        assert answer.json()["error"] == "StorageUnavailable" and "retry" in answer.json()["message"]
    finally:
        process.terminate()
        process.wait(timeout=10)
