"""Figure 1, notification intake: POST graph/notifications (1, 10 and 100 per POST, 8 clients) against one
Azure queue send_message per notification on the same Azurite, with the same client threads.

An intake-only host (no queue triggers, its own WORK_QUEUE) answers, so nothing drains the queue meanwhile.
Both run on an Azurite of their own, stopped afterwards: Azurite stays slow for a minute or more after the
~100,000 messages this figure queues (even once their queues are deleted), which made figure 4, next,
measure Azurite (5× its CPU per change) rather than the app.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from ..azurite import Azurite
from .harness import World, pct, progress
from .host import cpu_seconds
from .sizes import CLIENTS, INTAKE_SECONDS


def figure1_intake(world: World) -> None:
    from shared.storage.store import Store

    progress("figure 1: notification intake (intake-only host: no queue triggers, own WORK_QUEUE and Azurite)")
    azurite = Azurite().start()
    try:
        Store(azurite.connection_string).put_subscription(world.alice_sub)  # the one the notifications name
        host = world.new_host("intake", triggers=False, env={"WORK_QUEUE": "bench-intake",
                                                              "AzureWebJobsStorage": azurite.connection_string})
        try:
            world.guarded("1 intake", lambda: measure(world, host, azurite))
        finally:
            host.stop()
    finally:
        azurite.stop()


def notification(sub) -> dict:
    event_id = "AAMkAD" + uuid.uuid4().hex * 3
    resource = f"Users/{sub.user_id}/Events/{event_id}"
    return {"subscriptionId": sub.id, "subscriptionExpirationDateTime": sub.expires, "changeType": "updated",
            "resource": resource, "clientState": sub.client_state, "tenantId": sub.aad_tenant,
            "resourceData": {"@odata.type": "#Microsoft.Graph.Event", "@odata.id": resource,
                             "@odata.etag": f'W/"{uuid.uuid4().hex}"', "id": event_id}}


def post_load(url: str, sub, size: int, clients: int, duration: float | None = None, count: int | None = None):
    """`clients` threads POSTing `size` notifications each, for `duration` s or `count` POSTs each:
    (notifications accepted per second, answer latencies, non-202 answers, notifications accepted)."""
    import requests

    bodies = [json.dumps({"value": [notification(sub) for _ in range(size)]}).encode() for _ in range(20)]
    accepted, latencies, errors = [0] * clients, [[] for _ in range(clients)], [0] * clients
    start = time.perf_counter()
    stop_at = start + duration if duration else None

    def client(i):
        session = requests.Session()
        session.trust_env = False
        n = 0
        while (stop_at and time.perf_counter() < stop_at) or (count and n < count):
            t = time.perf_counter()
            answer = session.post(url, data=bodies[n % len(bodies)], headers={"Content-Type": "application/json"},
                                  timeout=30)
            latencies[i].append(time.perf_counter() - t)
            if answer.status_code == 202:
                accepted[i] += answer.json()["accepted"]
            else:
                errors[i] += 1
            n += 1

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    elapsed = time.perf_counter() - start
    return sum(accepted) / elapsed, [x for lat in latencies for x in lat], sum(errors), sum(accepted)


def queue_load(connection: str, sub, clients: int, duration: float) -> float:
    """The baseline: `clients` threads sending one queue message (a notification's task) each, messages/s."""
    from azure.storage.queue import QueueClient, TextBase64EncodePolicy

    task = json.dumps({"id": uuid.uuid4().hex, "attempt": 0, "tasks": [
        {"op": "outlook.change", "sub": sub.id, "change": "updated", "event": "AAMkAD" + "x" * 96,
         "etag": 'W/"' + "y" * 32 + '"'}]})
    sent = [0] * clients
    start = time.perf_counter()
    stop_at = start + duration

    def client(i):
        q = QueueClient.from_connection_string(connection, "bench-baseline",
                                               message_encode_policy=TextBase64EncodePolicy())
        while time.perf_counter() < stop_at:
            q.send_message(task)
            sent[i] += 1

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    return sum(sent) / (time.perf_counter() - start)


def measure(world: World, host, azurite: Azurite) -> None:
    from azure.storage.queue import QueueClient

    from ..stack import FUNCTION_KEY

    sub, connection = world.alice_sub, azurite.connection_string
    url = f"http://127.0.0.1:{host.port}/graph/notifications?code={FUNCTION_KEY}"
    QueueClient.from_connection_string(connection, "bench-baseline").create_queue()
    post_load(url, sub, 1, 1, count=20)     # warm: services built, subscription cached
    post_load(url, sub, 100, 1, count=5)
    progress(f"  baseline: {CLIENTS} clients × queue send_message, {INTAKE_SECONDS:.0f} s")
    base = queue_load(connection, sub, CLIENTS, INTAKE_SECONDS)
    results, cpu = {}, {}
    for size in (1, 10, 100):
        progress(f"  app: {CLIENTS} clients × POST of {size} notification(s), {INTAKE_SECONDS:.0f} s")
        results[size], cpu[size] = busy_cores(host, azurite, lambda: post_load(url, sub, size, CLIENTS,
                                                                               duration=INTAKE_SECONDS))
    base2 = queue_load(connection, sub, CLIENTS, INTAKE_SECONDS / 2)  # again, to see drift
    rows(world, results, cpu, (base + base2) / 2)
    _, single, _, _ = post_load(url, sub, 100, 1, count=60)
    world.report.note(f"1: baseline send_message runs: {base:,.0f} and {base2:,.0f} msg/s; 100/POST from one "
                      f"client (no contention): p50 {pct(single, 50) * 1000:.0f} ms, "
                      f"p99 {pct(single, 99) * 1000:.0f} ms")


def busy_cores(host, azurite: Azurite, load):
    """`load()`'s result, and the cores the host, Azurite and this process kept busy meanwhile."""
    def sample():
        return host.cpu(), cpu_seconds(azurite.process.pid), cpu_seconds(os.getpid()), time.perf_counter()

    c0 = sample()
    result = load()
    c1 = sample()
    return result, [(b - a) / (c1[3] - c0[3]) for a, b in zip(c0[:3], c1[:3])]


def rows(world: World, results: dict, cpu: dict, baseline: float) -> None:
    report = world.report
    for size, (rate, lat, errors, total) in results.items():
        goal = 1.0 if size == 1 else 2.0
        report.row(f"1 intake, {size}/POST ({CLIENTS} clients)", f"{rate:,.0f} notif/s",
                   f"{baseline:,.0f} msg/s send_message", f"{rate / baseline:.2f}×",
                   f"≥ {goal:g}× baseline" + ("" if size == 1 else " (well above)"),
                   rate >= goal * baseline and not errors)
        report.note(f"1: {size}/POST: {total:,} accepted, {errors} non-202, p50 answer "
                    f"{pct(lat, 50) * 1000:.1f} ms, p99 {pct(lat, 99) * 1000:.1f} ms; cores busy: host "
                    f"{cpu[size][0]:.2f}, Azurite {cpu[size][1]:.2f}, clients+simulators {cpu[size][2]:.2f}")
    p99 = pct(results[100][1], 99)
    report.row(f"1 p99 answer, 100/POST ({CLIENTS} clients)", f"{p99 * 1000:.0f} ms", "300 ms limit",
               f"{p99 / 0.3:.2f}×", "< 300 ms", p99 < 0.3)
