"""Fairness (issue 22, the security review): the work a request causes is bounded by what the site confirms,
not by what its body claims; a whole-site "sync now" asked again while one is queued is merged into it and
runs at most once per window; one site's flood of jobs neither delays another's without bound nor poisons it.
"""

from __future__ import annotations

import json

import pytest

from .scenario import post, settle, svc
from .test_agenda import add_agenda, invitation_agenda, settle_seconds, synced_event

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


@pytest.fixture
def updates(monkeypatch):
    import shared.jobs.worker as worker

    ran: list[str] = []
    apply = worker.apply_site_event

    def counted(services, site, item_id, action, **how):
        ran.append(str(item_id))
        return apply(services, site, item_id, action, **how)
    monkeypatch.setattr(worker, "apply_site_event", counted)
    return ran


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
