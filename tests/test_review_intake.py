"""The security review's intake findings (issue 22, deliverable 5), each named for the behaviour that fixes it:
what made-up subscription ids cost, lifecycle notifications merged, a rotated clientState refused at once in
every process, secrets kept out of logged URLs, nosniff on every answer, bodies refused by their declared
size before they are read, and no deployment output that hands out URLs which answer 403."""

from __future__ import annotations

import json
import logging
import math
import re
import socket
import uuid
from pathlib import Path

import azure.functions as func
import pytest
import requests
from azure.data.tables import TableClient
from azure.storage.queue import QueueClient

from devtools.azurite import eventually
from devtools.stack import FUNCTION_KEY, ORGANISER, site_params
from shared.intake.lifecycle_once import started
from shared.intake.webhooks import MAX_BODY
from shared.model.redact import redact
from shared.storage.store import IDS_PER_QUERY, SUBSCRIPTIONS

from .scenario import new_meeting, post, settle, svc
from .test_isolation import change_note, lifecycle_note
from .test_webhook_intake import serving_only, start_host

NOTIFICATIONS = "graph/notifications"
ROOT = Path(__file__).resolve().parent.parent
QUIET_QUEUE = "review-intake"  # a host serving only HTTP puts its work here, and nobody takes it


@pytest.fixture
def subscription_reads(monkeypatch):
    """Every read of a subscription row (point read or query), from any thread of this process."""
    seen: list[str] = []
    query, get = TableClient.query_entities, TableClient.get_entity

    def counted_query(self, query_filter, *args, **kwargs):
        if self.table_name == SUBSCRIPTIONS and "PartitionKey eq 'sub'" in query_filter:
            seen.append(query_filter)
        return query(self, query_filter, *args, **kwargs)

    def counted_get(self, partition_key, row_key, *args, **kwargs):
        if self.table_name == SUBSCRIPTIONS and partition_key == "sub":
            seen.append(row_key)
        return get(self, partition_key, row_key, *args, **kwargs)

    monkeypatch.setattr(TableClient, "query_entities", counted_query)
    monkeypatch.setattr(TableClient, "get_entity", counted_get)
    return seen


@pytest.fixture
def alice_sub(stack, site):
    new_meeting(site, title="Review intake")
    settle(stack)
    sub = svc().store.subscription_for(site.key, ORGANISER)
    assert sub is not None
    return sub


@pytest.fixture(scope="module")
def quiet_host(stack):
    """A second host process (`devtools.localhost --no-triggers`): its own caches, its work left queued."""
    yield from serving_only(stack, QUIET_QUEUE)
    QueueClient.from_connection_string(stack.azurite.connection_string, QUIET_QUEUE).clear_messages()


def made_up(count: int) -> list[dict]:
    return [{"subscriptionId": str(uuid.uuid4()), "clientState": "guess", "changeType": "updated",
             "tenantId": str(uuid.uuid4()), "resource": "Users/x/Events/y"} for _ in range(count)]


def notify(url: str, notes: list[dict]) -> requests.Response:
    return requests.post(f"{url}/{NOTIFICATIONS}", params={"code": FUNCTION_KEY}, data=json.dumps({"value": notes}),
                         timeout=30)


# -- (a) what made-up subscription ids cost

def test_a_post_of_made_up_subscription_ids_costs_a_query_per_fourteen_ids_never_a_read_each(
        stack, subscription_reads):
    notes = made_up(100)
    for _ in range(2):
        subscription_reads.clear()
        answer = post(stack, NOTIFICATIONS, {"value": notes})
        assert answer.status_code == 202 and answer.json()["refused"] == 100
        assert len(subscription_reads) == math.ceil(100 / IDS_PER_QUERY) == 8  # not 100 point reads
        assert all("RowKey eq" in q for q in subscription_reads)


def test_a_post_naming_one_subscription_costs_one_point_read(stack, alice_sub, subscription_reads):
    answer = post(stack, NOTIFICATIONS, {"value": [unlinked_change(alice_sub)] * 3})
    assert answer.json()["accepted"] == 3
    assert subscription_reads == [alice_sub.id]  # a point read by its key, never a query scanning the partition
    settle(stack)


def unlinked_change(sub) -> dict:
    """A genuine change notification of an event no site item is linked to: accepted, then ignored."""
    return change_note(sub, sub.user_id, f"AAMkNotLinked{uuid.uuid4().hex}", "updated")


def test_made_up_ids_never_enter_the_cache_and_a_real_subscription_is_still_accepted(stack, alice_sub, monkeypatch):
    cached = svc()._subscriptions
    real_before = {k for k, (_, sub) in cached.items() if sub is not None}
    flood = made_up(3 * IDS_PER_QUERY)
    post(stack, NOTIFICATIONS, {"value": flood})
    assert not {n["subscriptionId"] for n in flood} & cached.keys()
    assert real_before <= cached.keys()  # nothing real was pushed out
    answer = post(stack, NOTIFICATIONS, {"value": [unlinked_change(alice_sub)]})
    assert answer.json()["accepted"] == 1
    settle(stack)


def test_a_notification_for_a_subscription_stored_just_after_a_miss_is_accepted_at_once(stack, alice_sub):
    """A notification may reach us between Graph's answer to a create and our row being written; it is refused
    then, and the next one, a moment later, must not be refused by a remembered miss."""
    from dataclasses import replace

    fresh = replace(alice_sub, id=str(uuid.uuid4()))
    assert post(stack, NOTIFICATIONS, {"value": [unlinked_change(fresh)]}).json()["refused"] == 1
    svc().store.put_subscription(fresh)
    try:
        assert post(stack, NOTIFICATIONS, {"value": [unlinked_change(fresh)]}).json()["accepted"] == 1
        settle(stack)
    finally:
        svc().store.delete_subscription(fresh)


# -- (a) lifecycle notifications merged

def test_a_thousand_identical_missed_notifications_queue_one_catch_up_and_repeats_add_none(
        stack, alice_sub, quiet_host):
    try:
        answer = notify(quiet_host, [lifecycle_note(alice_sub, "missed")] * 1000)
        assert answer.status_code == 202, answer.text
        body = answer.json()
        assert (body["accepted"], body["merged"], len(body["jobs"])) == (1, 999, 1)
        # while that catch-up waits in the queue, more of the same (another POST, another process) add nothing
        for url in (quiet_host, stack.host_url):
            again = notify(url, [lifecycle_note(alice_sub, "missed")] * 3).json()
            assert (again["accepted"], again["merged"], again["jobs"]) == (0, 3, [])
        # a different lifecycle event of the same subscription is other work
        assert notify(quiet_host, [lifecycle_note(alice_sub, "reauthorizationRequired")]).json()["accepted"] == 1
    finally:
        for event in ("missed", "reauthorizationRequired"):
            started(svc(), alice_sub.id, event)  # as the worker would: the quiet host's queue is never run


def test_a_missed_notification_after_the_catch_up_started_queues_another(stack, alice_sub):
    first = post(stack, NOTIFICATIONS, {"value": [lifecycle_note(alice_sub, "missed")]}).json()
    assert first["accepted"] == 1
    settle(stack)  # the worker ran the catch-up: what it had read past is for the next one
    second = post(stack, NOTIFICATIONS, {"value": [lifecycle_note(alice_sub, "missed")]}).json()
    assert second["accepted"] == 1 and "merged" not in second
    settle(stack)


def test_lifecycle_work_that_could_not_be_stored_leaves_no_mark_behind(stack, alice_sub):
    from shared.intake.lifecycle_once import enqueue_once
    from shared.model.errors import StorageUnavailable

    task = {"op": "outlook.lifecycle", "sub": alice_sub.id, "event": "subscriptionRemoved"}

    def failing(tasks):
        raise StorageUnavailable("queue down")

    with pytest.raises(StorageUnavailable):
        enqueue_once(svc(), [task], failing)
    queued = []
    assert enqueue_once(svc(), [task], lambda tasks: queued.extend(tasks) or ["job"]) == (["job"], 0)
    assert queued == [task]  # Graph's retry of the request queues the work
    started(svc(), alice_sub.id, "subscriptionRemoved")


def test_a_mark_that_could_not_be_taken_gives_back_the_ones_taken_before_it(stack, alice_sub, monkeypatch):
    from shared.intake.lifecycle_once import enqueue_once
    from shared.model.errors import StorageUnavailable

    tasks = [{"op": "outlook.lifecycle", "sub": alice_sub.id, "event": e} for e in ("missed", "subscriptionRemoved")]
    acquire, calls = svc().store.acquire_lease, []

    def second_fails(name, *args):
        calls.append(name)
        if len(calls) == 2:
            raise StorageUnavailable("table down")
        return acquire(name, *args)
    monkeypatch.setattr(svc().store, "acquire_lease", second_fails)
    with pytest.raises(StorageUnavailable):
        enqueue_once(svc(), tasks, lambda t: ["job"])
    monkeypatch.undo()
    queued = []
    assert enqueue_once(svc(), tasks, lambda t: queued.extend(t) or ["job"]) == (["job"], 0)  # the retry queues both
    assert queued == tasks
    for event in ("missed", "subscriptionRemoved"):
        started(svc(), alice_sub.id, event)


# -- (a) a rotated clientState is refused at once, in every process

def test_a_rotated_client_state_is_refused_at_once_also_by_a_process_that_had_it_cached(stack, alice_sub, quiet_host):
    from shared.subscriptions.rotation import rotate

    old = alice_sub
    for url in (stack.host_url, quiet_host):  # both processes have just used (and so cached) the subscription
        assert notify(url, [unlinked_change(old)]).json()["accepted"] == 1, url
    settle(stack)
    assert svc().find_subscription(old.id) is not None  # the worker's cache holds it too
    assert rotate(svc(), old.id) == "rotated"
    new = svc().store.subscription_for(old.site, ORGANISER)
    assert new.id != old.id and new.client_state != old.client_state
    for url in (stack.host_url, quiet_host):
        answer = notify(url, [unlinked_change(old)]).json()
        assert (answer["accepted"], answer["refused"]) == (0, 1), url
        assert notify(url, [unlinked_change(new)]).json()["accepted"] == 1, url  # the new one at once
    settle(stack)


# -- (b) secrets stay out of logged URLs, and a token may ride in a header

def test_redaction_hides_the_site_token_the_function_key_and_sas_signatures_in_any_url():
    url = ("https://h/acme/sales/0/services/rapid-meetings/event/update?site_token=s3cr3t&Code=k3y%3D%3D&site=acme"
           "&x=1&sig=abc%2B&code=")
    text = redact(url)
    assert "s3cr3t" not in text and "k3y" not in text and "abc" not in text
    assert "site_token=***" in text and "Code=***" in text and "sig=***" in text and "site=acme&x=1" in text
    assert redact("see zipcode=12345 and my_code=1") == "see zipcode=12345 and my_code=1"


def test_a_refused_request_is_logged_without_its_site_token_or_function_key(stack, caplog):
    caplog.set_level(logging.INFO, logger="rapid_meetings")
    acme = site_params("acme/sales/0/services/rapid-meetings/event/update")["site_token"]
    answer = requests.post(f"{stack.host_url}/globex/ops/0/services/rapid-meetings/event/update",
                           params={"code": FUNCTION_KEY, "site_token": acme}, data=b'{"id": 1}', timeout=30)
    assert answer.status_code == 403
    lines = [r.getMessage() for r in caplog.records if "refused (403)" in r.getMessage()]
    assert lines and all(acme not in line and FUNCTION_KEY not in line for line in lines)
    assert any("site_token=***" in line for line in lines)


def test_a_site_token_in_the_x_site_token_header_opens_the_route_and_a_wrong_one_does_not(stack):
    path = "acme/sales/0/services/rapid-meetings/event/delete"
    token = site_params(path)["site_token"]
    url = f"{stack.host_url}/{path}"
    answer = requests.post(url, params={"code": FUNCTION_KEY}, headers={"X-Site-Token": token},
                           data=json.dumps([{"id": 990001}]), timeout=30)
    assert answer.status_code == 202 and answer.json()["accepted"] == 1
    refused = requests.post(url, params={"code": FUNCTION_KEY}, headers={"X-Site-Token": token[:-1] + "x"},
                            data=b'[{"id": 990002}]', timeout=30)
    assert refused.status_code == 403
    settle(stack)


# -- (b) nosniff

def test_the_validation_echo_and_every_other_answer_say_nosniff(stack):
    echo = requests.post(f"{stack.host_url}/{NOTIFICATIONS}", params={"code": FUNCTION_KEY,
                                                                      "validationToken": "<script>x</script>"},
                         timeout=30)
    assert echo.status_code == 200 and echo.text == "<script>x</script>"
    assert echo.headers["Content-Type"].startswith("text/plain")
    assert echo.headers["X-Content-Type-Options"] == "nosniff"
    for answer in (post(stack, NOTIFICATIONS, {"value": []}), post(stack, NOTIFICATIONS, None, raw=b"{"),
                   post(stack, "acme/nosuchsite/0/services/rapid-meetings/event/update", {"id": 1})):
        assert answer.headers["X-Content-Type-Options"] == "nosniff", answer.status_code


# -- (b) bodies refused by their declared size, before they are read

def raw_post(url: str, path: str, content_length: int, body: bytes = b"") -> tuple[int, bytes]:
    """Send the headers (and `body`, maybe far less than declared); the status line of the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(f"POST /{path}?code={FUNCTION_KEY} HTTP/1.1\r\nHost: {host}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {content_length}\r\n\r\n".encode() + body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = conn.recv(65536)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer


def test_the_host_refuses_a_body_declared_over_its_limit_without_reading_it(stack):
    process, url = start_host({"WORK_QUEUE": QUIET_QUEUE, "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT": str(MAX_BODY)}, stack)
    try:
        # 50 MiB declared, not one byte of it sent: the answer comes anyway (socket timeout 10 s otherwise)
        status, _ = raw_post(url, NOTIFICATIONS, 50 * 1024 * 1024)
        assert status == 413
        ok = requests.post(f"{url}/{NOTIFICATIONS}", params={"code": FUNCTION_KEY}, data=b'{"value": []}', timeout=30)
        assert ok.status_code == 202
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_app_refuses_a_body_by_its_content_length_before_parsing_it(stack):
    junk = b"\xff" * (MAX_BODY + 1)  # not JSON: parsed, it would be a 400 about its encoding
    answer = requests.post(f"{stack.host_url}/acme/sales/0/services/rapid-meetings/event/update",
                           params={"code": FUNCTION_KEY, **site_params("acme/sales/0/services/rapid-meetings/event/update")},
                           data=junk, timeout=30)
    assert answer.status_code == 413 and "(Content-Length)" in answer.json()["message"]
    from functions.graph_notifications import graph_notifications

    declared = func.HttpRequest("POST", "http://localhost/graph/notifications", headers={"Content-Length": "12 x"},
                                body=b"{}")
    assert graph_notifications(declared).status_code == 400


# -- (c) no deployment output hands out URLs that answer 403

def bicep() -> str:
    return (ROOT / "infra" / "main.bicep").read_text()


def test_the_bicep_outputs_no_webhook_url_without_its_site_token():
    text = bicep()
    outputs = re.findall(r"^output (\w+) \w+ = (.*)$", text, re.MULTILINE)
    assert "webhookUrls" not in dict(outputs)
    for name, value in outputs:
        assert "rapid-meetings/" not in value, f"output {name} is a webhook URL without its site_token"
    assert "devtools.site_check --webhook-urls" in text  # where the URLs come from instead


def test_the_bicep_sets_the_hosts_body_limit_to_what_the_app_takes():
    match = re.search(r"name: 'FUNCTIONS_REQUEST_BODY_SIZE_LIMIT'\s+value: '(\d+)'", bicep())
    assert match and int(match.group(1)) == MAX_BODY
