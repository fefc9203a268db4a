"""HTTP intake over a real local host process: bad input, unknown sites, keys, storage outages (issues 2, 3)."""

import json
import subprocess
import sys

import pytest
import requests

from devtools.azurite import ROOT, free_port, wait_for_port
from devtools.stack import FUNCTION_KEY, site_params

from shared.intake.webhooks import MAX_ITEMS
from shared.storage.work_queue import MAX_MESSAGE_JSON

from .scenario import queue_depth

EVENTS = "acme/sales/0/services/rapid-meetings/event"
INTAKE_QUEUE = "intake-check"


def start_host(env_overrides: dict, stack) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**__import__("os").environ, **stack.settings(), **env_overrides}
    process = subprocess.Popen([sys.executable, "-m", "devtools.localhost", "--port", str(port), "--no-triggers"],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, deadline_s=30, process=process)
    return process, f"http://127.0.0.1:{port}"


def serving_only(stack, queue: str):
    """A second host process (`devtools.localhost --no-triggers`, its own caches) putting its work on `queue`,
    where nobody takes it; its URL while the caller's fixture lasts."""
    process, url = start_host({"WORK_QUEUE": queue}, stack)
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def http_only_host(stack):
    """The app served by `python -m devtools.localhost --no-triggers`: what it enqueues stays in the queue."""
    yield from serving_only(stack, INTAKE_QUEUE)


def send(url: str, path: str, data: bytes, key: str | None = FUNCTION_KEY, **kwargs):
    params = {**({"code": key} if key else {}), **site_params(path)}
    return requests.post(f"{url}/{path}", params=params, data=data, timeout=30, **kwargs)


def drain(stack) -> list[dict]:
    from azure.storage.queue import QueueClient, TextBase64DecodePolicy

    client = QueueClient.from_connection_string(stack.azurite.connection_string, INTAKE_QUEUE,
                                                message_decode_policy=TextBase64DecodePolicy())
    try:
        client.create_queue()
    except Exception:
        pass  # exists
    jobs = []
    for message in client.receive_messages(max_messages=32):
        jobs.append(json.loads(message.content))
        client.delete_message(message)
    return jobs


BAD_BODIES = [
    ("create", b"", "empty"),
    ("create", b"not json", "not JSON"),
    ("create", b"\xff\xfe{", "not UTF-8"),
    ("create", b'"just text"', "JSON object"),
    ("create", b'{"title": "no id"}', "no 'id'"),
    ("create", b'{"id": true}', "'id' must be"),
    ("create", b'{"id": [1]}', "'id' must be"),
    ("create", b'{"id": {"nested": 1}}', "'id' must be"),
    ("create", b'{"id": ""}', "empty"),
    ("update", b'[{"id": 1}]', "not a list"),
    ("delete", b"[]", "empty list"),
    ("delete", b'[{"id": 1}, {"title": "x"}]', "item 1 has no 'id'"),
    ("delete", b'[{"id": 1}, 7]', "item 1 must be a JSON object"),
]


@pytest.mark.parametrize("action,body,names", BAD_BODIES)
def test_a_bad_body_gets_400_naming_the_problem_and_enqueues_nothing(stack, http_only_host, action, body, names):
    drain(stack)
    answer = send(http_only_host, f"{EVENTS}/{action}", body)
    assert answer.status_code == 400
    assert answer.headers["Content-Type"].startswith("application/json")
    assert names in answer.json()["message"]
    assert queue_depth(stack, INTAKE_QUEUE) == 0


def test_an_oversized_body_gets_413(stack, http_only_host):
    drain(stack)
    answer = send(http_only_host, f"{EVENTS}/create", b'{"id": 1, "x": "' + b"a" * (1024 * 1024) + b'"}')
    assert answer.status_code == 413 and "limit" in answer.json()["message"]
    assert queue_depth(stack, INTAKE_QUEUE) == 0


def test_an_unknown_site_gets_404(stack, http_only_host):
    drain(stack)
    answer = send(http_only_host, "acme/nosuchsite/0/services/rapid-meetings/event/create", b'{"id": 1}')
    assert answer.status_code == 404 and "acme/nosuchsite" in answer.json()["message"]
    assert queue_depth(stack, INTAKE_QUEUE) == 0


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_a_missing_or_wrong_function_key_is_refused(stack, http_only_host, key):
    drain(stack)
    assert send(http_only_host, f"{EVENTS}/create", b'{"id": 1}', key=key).status_code == 401
    assert queue_depth(stack, INTAKE_QUEUE) == 0


def test_a_valid_delete_of_many_items_is_persisted_as_one_job(stack, http_only_host):
    drain(stack)
    answer = send(http_only_host, f"{EVENTS}/delete", b'[{"id": 11}, {"id": "12"}, {"id": 11}]', key=None,
                  headers={"x-functions-key": FUNCTION_KEY})
    assert answer.status_code == 202
    assert answer.json()["accepted"] == 2
    [job] = drain(stack)
    assert job["id"] == answer.json()["jobs"][0]
    assert job["tasks"] == [{"op": "event.delete", "site": "acme/sales", "item": "11", "why": "webhook"},
                            {"op": "event.delete", "site": "acme/sales", "item": "12", "why": "webhook"}]


def test_a_full_webhook_of_non_ascii_ids_is_stored_in_messages_the_queue_takes(stack, http_only_host):
    """Review finding (issue 22): the message size was counted in characters; 250 ids of two-byte characters
    made one message past the queue's 64 KiB and a permanent 503. Sizes are UTF-8 bytes now."""
    drain(stack)
    ids = [f"{n:03d}" + "é" * 64 for n in range(MAX_ITEMS)]  # 131 bytes each, 396 characters as a Table key
    answer = send(http_only_host, f"{EVENTS}/delete", json.dumps(ids).encode())
    assert answer.status_code == 202, answer.text
    jobs = drain(stack)
    assert len(jobs) > 1  # no single message could hold them
    assert sorted(t["item"] for job in jobs for t in job["tasks"]) == sorted(ids)
    assert all(len(json.dumps(job, ensure_ascii=False).encode()) <= MAX_MESSAGE_JSON + 200 for job in jobs)


def test_an_id_too_long_for_a_table_key_is_refused_at_intake_naming_it(stack, http_only_host):
    """Review finding (issue 22): 300 bytes of two-byte characters escape to a 900-character Table key,
    past the 512 a key holds; such an id passed intake and failed every job that stored it."""
    drain(stack)
    answer = send(http_only_host, f"{EVENTS}/update", json.dumps({"id": "é" * 150}).encode())
    assert answer.status_code == 400
    assert "'id'" in answer.json()["message"] and "Table Storage key" in answer.json()["message"]
    assert drain(stack) == []


def test_storage_down_answers_503_so_the_site_retries(stack):
    dead = free_port()
    storage = (stack.azurite.connection_string
               .replace(f":{stack.azurite.queue_port}/", f":{dead}/").replace(f":{stack.azurite.table_port}/", f":{dead}/"))
    process, url = start_host({"AzureWebJobsStorage": storage}, stack)
    try:
        answer = send(url, f"{EVENTS}/create", b'{"id": 1}')
        assert answer.status_code == 503
        assert answer.json()["error"] == "StorageUnavailable"
    finally:
        process.terminate()
        process.wait(timeout=10)
