"""Storage that hangs, refuses or is busy (issue 20): the HTTP functions still answer in time (503, so the caller
retries), the storage layer says StorageUnavailable (a TransientError, so a job is rescheduled), and once Storage
is back the same requests are accepted. Storage is Azurite behind devtools/storage_proxy.py, switched at run time."""

import json
import os
import re
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest
import requests

from devtools.azurite import ROOT, eventually, wait_for_port
from devtools.stack import AAD_TENANT, FUNCTION_KEY, MASTER_KEY, ORGANISER, Stack, site_params
from shared.model.errors import StorageUnavailable, TransientError
from shared.model.mapping import Synced
from shared.storage.store import Conflict, EventLink, Store, Subscription
from shared.storage.work_queue import WorkQueue, new_job

GRAPH_DEADLINE = 3.0  # Graph wants a notification answered within 3 s; the tests' clients wait no longer
WEBHOOK = "acme/sales/0/services/rapid-meetings/event/update"
QUEUE = "faults-intake"
CONTENT = Synced(title="t", description="", start="2026-01-01T09:00:00Z", end="2026-01-01T10:00:00Z",
                 all_day=False, location="")


@pytest.fixture(scope="module")
def world():
    """Its own small world: Azurite behind the proxy, the simulators, and the app as a host process serving
    only HTTP (what it enqueues stays in the queue)."""
    stack = Stack(queue_name=QUEUE, storage_proxy=True).start_backends()
    env = {**os.environ, **stack.settings()}
    stack.host_log = Path(tempfile.mkdtemp()) / "host.log"
    with open(stack.host_log, "w") as log:
        host = subprocess.Popen([sys.executable, "-m", "devtools.localhost", "--port", str(stack.host_port),
                                 "--no-triggers"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(stack.host_port, deadline_s=30, process=host)
        yield stack
    finally:
        stack.storage_proxy.mode = "pass"
        host.terminate()
        host.wait(timeout=10)
        stack.stop()


@pytest.fixture
def proxy(world):
    yield world.storage_proxy
    world.storage_proxy.mode = "pass"


def post(world, path: str, body) -> requests.Response:
    """POST as the site or Graph would, waiting at most GRAPH_DEADLINE for an answer (no answer: the test fails)."""
    params = {"code": FUNCTION_KEY, **site_params(path)}
    return requests.post(f"{world.host_url}/{path}", params=params, data=json.dumps(body), timeout=GRAPH_DEADLINE)


def queued_job_ids(world) -> set[str]:
    from azure.storage.queue import QueueClient, TextBase64DecodePolicy

    client = QueueClient.from_connection_string(world.azurite.connection_string, QUEUE,
                                                message_decode_policy=TextBase64DecodePolicy())
    return {json.loads(m.content)["id"] for m in client.peek_messages(max_messages=32)}


def accepted_once_back(world, path: str, body) -> dict:
    """Storage is back: the request is accepted (polled: connections that hung are dropped first) and its job stored."""
    def accepted():
        answer = post(world, path, body)
        return answer.json() if answer.status_code == 202 else None

    answer = eventually(accepted, timeout=15, what=f"{path} accepted once storage is back", interval=0.2)
    assert set(answer["jobs"]) <= queued_job_ids(world)
    return answer


def subscription(world) -> tuple[Subscription, dict]:
    """A subscription of the organiser's mailbox in the app's table (written straight to Azurite), and one
    change notification of it as Graph sends it."""
    user = world.user_ids[ORGANISER]
    sub = Subscription(id=str(uuid.uuid4()), site="acme/sales", mailbox=ORGANISER, user_id=user,
                       resource=f"users/{user}/events", client_state=uuid.uuid4().hex, expires="2099-01-01T00:00:00Z",
                       aad_tenant=AAD_TENANT)
    Store(world.azurite.connection_string).put_subscription(sub)
    event = "AAMkAGI2TG93AAA="
    note = {"subscriptionId": sub.id, "clientState": sub.client_state, "tenantId": AAD_TENANT, "changeType": "updated",
            "resource": f"Users/{user}/Events/{event}", "resourceData": {"id": event, "@odata.etag": 'W/"DwAAABYAAA"'}}
    return sub, {"value": [note]}


@pytest.mark.parametrize("mode", ["hang", "refuse", "busy"])
def test_a_site_webhook_is_answered_503_in_time_while_storage_fails_and_accepted_once_it_is_back(world, proxy, mode):
    proxy.mode = mode
    answer = post(world, WEBHOOK, {"id": 7})
    assert answer.status_code == 503 and answer.json()["error"] == "StorageUnavailable"
    proxy.mode = "pass"
    assert accepted_once_back(world, WEBHOOK, {"id": 7})["accepted"] == 1


def test_a_graph_notification_is_answered_503_in_time_while_storage_hangs_and_accepted_once_it_is_back(world, proxy):
    _, notification = subscription(world)
    proxy.mode = "hang"
    answer = post(world, "graph/notifications", notification)
    assert answer.status_code == 503 and answer.json()["error"] == "StorageUnavailable"
    proxy.mode = "pass"
    assert accepted_once_back(world, "graph/notifications", notification)["accepted"] == 1


@pytest.mark.parametrize("mode", ["hang", "refuse", "busy"])
def test_storage_failing_surfaces_from_the_store_as_storage_unavailable_a_transient_error(world, proxy, mode):
    store = Store(world.storage)  # through the proxy, as the app
    store.get_link("faults/site", "1")  # its table exists: what fails next is the read itself
    proxy.mode = mode
    with pytest.raises(StorageUnavailable) as point:
        store.get_subscription("faults-sub")
    assert isinstance(point.value, TransientError)
    if mode != "hang":  # a query waits PATIENT timeouts (jobs only); a refused or busy one fails at once
        with pytest.raises(StorageUnavailable):
            store.links("faults/site")


def test_not_found_and_lost_races_stay_what_they_were(world):
    store = Store(world.storage)
    assert store.get_link("faults/site", "never") is None
    link = store.create_link(EventLink(site="faults/site", item_id=uuid.uuid4().hex, event_id=uuid.uuid4().hex,
                                       mailbox=ORGANISER, synced=CONTENT))
    with pytest.raises(Conflict):
        store.create_link(link)
    store.save_link(link)
    with pytest.raises(Conflict):  # its etag is stale now
        store.save_link(link)
    store.delete_link(link)


def test_the_backlog_says_how_many_jobs_wait_and_how_long_the_oldest_has(world):
    queue = WorkQueue(world.azurite.connection_string, f"backlog-{uuid.uuid4().hex[:8]}")
    assert tuple(queue.backlog()) == (0, 0)  # no queue yet
    queue.send(new_job([{"op": "event.update", "site": "acme/sales", "item": "1"}]))
    queue.send(new_job([{"op": "event.update", "site": "acme/sales", "item": "2"}]))
    backlog = queue.backlog()
    assert backlog.waiting == 2 and 0 <= backlog.oldest_seconds < 3600
    assert str(backlog) == f"2 waiting, oldest {backlog.oldest_seconds} s"


def test_the_catch_up_timer_logs_the_backlog_in_the_words_the_alert_reads(world):
    """infra/main.bicep's backlog alert parses `work queue backlog: N waiting, oldest S s` from the traces."""
    answer = post(world, WEBHOOK, {"id": 8})
    assert answer.status_code == 202
    ran = requests.post(f"{world.host_url}/admin/functions/site_catch_up", headers={"x-functions-key": MASTER_KEY},
                        json={}, timeout=30)
    assert ran.status_code == 202
    line = eventually(lambda: re.search(r"work queue backlog: (\d+) waiting, oldest (\d+) s$",
                                        world.host_log.read_text(), re.MULTILINE), what="the backlog line")
    assert int(line.group(1)) >= 1
