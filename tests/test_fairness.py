"""Fairness (issue 22, the security review): the work a request causes is bounded by what the site confirms,
not by what its body claims; a whole-site "sync now" asked again while one is queued is merged into it and
runs at most once per window; one site's flood of jobs neither delays another's without bound nor poisons it.
"""

from __future__ import annotations

import json

import pytest

from devtools.azurite import eventually

from .scenario import post, settle, svc
from .test_agenda import add_agenda, invitation_agenda, settle_seconds, synced_event, updates  # noqa: F401 (a fixture)

AGENDA_SITE = "acme/agenda-link"  # agenda items tie to their event by universal links: the body could claim many


@pytest.fixture
def sent(monkeypatch):
    """Every message the app puts on the work queue (the HTTP functions' jobs and the worker's own)."""
    queue, messages = svc().queue, []
    send = queue.send

    def counted(job, delay_seconds=0):
        messages.append(job)
        return send(job, delay_seconds)
    monkeypatch.setattr(queue, "send", counted)
    return messages


def claiming(agenda_id, events) -> dict:
    return {"id": agenda_id, "__metadata": {"type": "Meeting Agendas"},
            "LinkedItems": [{"id": 10_000 + n, "link": f"Meeting Events/{e}"} for n, e in enumerate(events)]}


def test_a_forged_agenda_post_of_made_up_items_costs_one_message_and_writes_nothing_to_outlook(
        stack, sent, updates, monkeypatch):
    settle_seconds(monkeypatch, 1)
    world = stack.sites[AGENDA_SITE]
    real = synced_event(stack, world, "Forged against")
    settle(stack)
    sent.clear()
    updates.clear()
    stack.graph.reset_log()
    stack.rapid.reset_log()
    # 250 made-up agenda items (the most one call may name), each claiming 60 events, the real one among them:
    # 15,000 claimed event updates in one ~700 KB POST
    body = [claiming(7_000_000 + n, [real["id"], *range(8_000_000 + 60 * n, 8_000_000 + 60 * n + 59)])
            for n in range(250)]
    assert len(json.dumps(body)) < 1024 * 1024
    answer = post(stack, f"{AGENDA_SITE}/0/services/rapid-meetings/agenda/delete", body)
    assert answer.status_code == 202 and answer.json()["accepted"] == 250
    settle(stack)
    assert len(sent) == 1, f"{len(sent)} messages for one request"  # the request's own job, and nothing it fanned out
    assert updates == []
    assert [(e.method, e.path) for e in stack.graph.log if e.method != "GET" and "/token" not in e.path] == []
    # the site was asked which of the 250 exist: one query per 100 ids, no item read
    assert stack.rapid.count("GET", f"/api/{AGENDA_SITE}/lists/Meeting Agendas/") == 3
    assert stack.rapid.count("GET", "/lists/Meeting Agendas/items/") == 0


def test_an_agenda_post_moves_only_the_events_the_site_confirms_and_reaches_the_invitation(
        stack, sent, updates, monkeypatch):
    settle_seconds(monkeypatch, 1)
    world = stack.sites[AGENDA_SITE]
    event = synced_event(stack, world, "Confirmed")
    other = synced_event(stack, world, "Only claimed")
    settle(stack)
    entry = add_agenda(world, event, "Budget")
    settle(stack)
    assert invitation_agenda(stack, event) == ["Budget"]  # the site's own webhook reached the invitation
    updates.clear()
    sent.clear()
    world.sim.update_item("Meeting Agendas", entry["id"], title="Budget 2027")
    # a body claiming the agenda item belongs to another event and a hundred made-up ones
    claim = claiming(entry["id"], [other["id"], *range(9_000_000, 9_000_100)])
    assert post(stack, f"{AGENDA_SITE}/0/services/rapid-meetings/agenda/update", claim).status_code == 202
    settle(stack)
    assert set(updates) == {str(event["id"])}
    assert invitation_agenda(stack, event) == ["Budget 2027"] and invitation_agenda(stack, other) == []
    # each request is one job; each confirmed event at most one update each (two webhooks, one event)
    assert sum(1 for job in sent for t in job["tasks"] if t["op"] == "event.update") <= 2


# -- a whole-site "sync now": merged while one waits, at most once per window ----------------------------

SYNC = "acme/query/0/services/rapid-meetings/sync"


def test_a_whole_site_sync_now_asked_again_while_one_waits_is_merged_and_runs_once_after_the_window(
        stack, monkeypatch):
    from datetime import timedelta

    import shared.jobs.sync_now as sync_now
    from shared.jobs.site_sync import MARK
    from shared.model.mapping import format_utc, parse_utc

    settle(stack)
    runs = []
    catch_up = sync_now.catch_up_site
    monkeypatch.setattr(sync_now, "catch_up_site", lambda ctx, **how: runs.append(ctx.site.key) or catch_up(ctx, **how))
    health, window = svc().health, timedelta(minutes=svc().settings.sync_site_minutes)
    # the site's last whole-site run started a window ago less 3 seconds: the next may start in 3 s
    started = svc().clock() - window + timedelta(seconds=3)
    _, etag = health.load_row("acme/query", MARK) or ({}, None)
    health.save_load_row("acme/query", MARK, {"job": "before", "ran": "before", "started": format_utc(started),
                                              "due": format_utc(started)}, etag)
    answers = [post(stack, SYNC, {}) for _ in range(3)]
    assert [a.status_code for a in answers] == [202] * 3
    first, *again = [a.json() for a in answers]
    assert first["merged"] is False and parse_utc(first["starts"]) == parse_utc(format_utc(started + window))
    assert all(a["merged"] is True and a["jobs"] == first["jobs"] and a["starts"] == first["starts"] for a in again)
    settle(stack)
    assert runs == ["acme/query"]  # three requests, one catch-up and sweep
    values, _ = health.load_row("acme/query", MARK)
    assert values["ran"] == first["jobs"][0] and parse_utc(values["started"]) >= parse_utc(first["starts"])


# -- a fair share per site: one site's flood neither delays another's job without bound nor poisons it ----

FLOODING, QUIET = "acme/query", "acme/column"
SHARE = 5


@pytest.fixture
def work(stack, monkeypatch):
    """A cheap task of our own (`test.work`) that records which site's task ran, in order; `bug` ones fail
    as a bug does (the host retries them, then poisons them). Each site may start SHARE tasks a minute."""
    import dataclasses
    import threading

    import shared.jobs.worker as worker
    from azure.storage.queue import QueueClient

    settle(stack)
    ran, lock = [], threading.Lock()

    def handler(services, task):
        if task.get("bug"):
            raise ValueError("a bug in this task")
        with lock:
            ran.append(task["site"])
        return "worked"
    monkeypatch.setitem(worker.HANDLERS, "test.work", handler)
    monkeypatch.setattr(svc(), "settings", dataclasses.replace(svc().settings, site_tasks_per_minute=SHARE))
    yield ran
    # what the flooding site had over its share waits for later minutes: nobody else's work is queued now
    eventually(lambda: stack.host.busy == 0, 30, what="the worker to be idle")
    from azure.core.exceptions import ResourceNotFoundError

    for name in (stack.queue_name, f"{stack.queue_name}-poison"):
        try:
            QueueClient.from_connection_string(stack.azurite.connection_string, name).clear_messages()
        except ResourceNotFoundError:
            pass


def test_a_site_flooding_the_queue_delays_another_sites_job_by_at_most_its_share_and_never_poisons_it(
        stack, work, sent):
    from shared.storage.work_queue import new_job

    queue, flood = svc().queue, 40
    for n in range(flood):
        queue.send(new_job([{"op": "test.work", "site": FLOODING, "n": n}]))
    # the quiet site's task asked for together with the flooding site's bugs (the same enqueue)
    [*_] = queue.enqueue([{"op": "test.work", "site": FLOODING, "bug": True},
                          {"op": "test.work", "site": QUIET},
                          {"op": "test.work", "site": FLOODING, "bug": True}])
    eventually(lambda: QUIET in work, 60, what="the quiet site's job to run")
    before = work[:work.index(QUIET)]
    # at most the flooding site's share of this minute (and of the next, if the minute turned meanwhile)
    assert len(before) <= 2 * SHARE < flood, f"{len(before)} of the flooding site's tasks ran first"
    # no message ever held two sites' work: one site's failures cannot take another's along
    assert all(len({t.get("site") for t in job["tasks"]}) == 1 for job in sent if "tasks" in job)

    # nothing the quiet site asked for is, or will be, in the poison queue: its job ran, and alone
    assert not [t for job in poisoned(stack) for t in job["tasks"] if t.get("site") == QUIET]



def poisoned(stack) -> list[dict]:
    from azure.storage.queue import QueueClient, TextBase64DecodePolicy

    client = QueueClient.from_connection_string(stack.azurite.connection_string, f"{stack.queue_name}-poison",
                                                message_decode_policy=TextBase64DecodePolicy())
    try:
        return [json.loads(m.content) for m in client.peek_messages(max_messages=32)]
    except Exception:
        return []


def test_a_breakers_probe_runs_even_when_its_site_has_had_its_share(stack, work, monkeypatch):
    """Review finding: the probe slot was claimed before the share was asked, so a deferred probe kept a
    recovered dependency's breaker open for one more probe interval."""
    import shared.jobs.worker as worker
    from shared.jobs.breakers import Gate

    class Spent:
        def wait(self, site):
            return 60.0  # every site has had its share of this minute

    class Probing:
        def gate(self, site):
            return Gate("probe", "graph")

        def failed(self, *args, **kwargs):
            pass

        def succeeded(self, *args, **kwargs):
            pass

    monkeypatch.setattr(worker, "shares_of", lambda services: Spent())
    monkeypatch.setattr(worker, "breakers_of", lambda services: Probing())
    outcomes = worker.run_job(svc(), {"id": "probe-job", "tasks": [{"op": "test.work", "site": QUIET},
                                                                    {"op": "test.work", "site": QUIET}]})
    assert work == [QUIET, QUIET] and outcomes == ["worked", "worked"]
