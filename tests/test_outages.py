"""Outages heal by themselves (issue 20): a dependency down for hours never poisons a job, never needs a
person, and the status column says what really happens. Hours pass on an accelerated app clock
(shared/clock.py, installed by devtools/world_clock.py): the in-process host's jobs, back-offs and breakers,
the simulators' tokens and expiries run 600 times faster than the wall."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import pytest

from devtools import world_clock
from devtools.azurite import eventually
from devtools.stack import ORGANISER
from shared import clock
from shared.jobs.breakers import breakers_of
from shared.jobs.poison import requeue_outage_poison
from shared.storage.work_queue import message_key

from .scenario import new_event, new_meeting, queue_depth, settle, site_with, svc
from .test_local_host import queue

SPEED = 600   # one app hour in six wall seconds
COLUMN = "sync_status"


@pytest.fixture
def fast(stack, site, monkeypatch):
    """acme/sales with a status column; `fast()` then runs the app on a clock 600× the wall's (after the
    test's meetings exist: the simulators keep wall time). Real time again afterwards, with the breakers
    the outage left forgotten (their times are in the app's future)."""
    site_with(site, monkeypatch, {COLUMN: "Text"}, status_column=COLUMN)
    yield lambda: world_clock.install(world_clock.accelerated(SPEED))  # the app, the simulators, MSAL's cache
    world_clock.install(None)
    svc().health.forget_breakers(site.key)
    breakers_of(svc()).forget(site.key)


def app_hours_pass(hours: float) -> None:
    start = clock.now()
    eventually(lambda: clock.now() - start >= timedelta(hours=hours), 5 + hours * 3600 / SPEED * 2,
               what=f"{hours} app hour(s) to pass")


def event_of(stack, site, item_id):
    event_id = svc().store.get_link(site.key, str(item_id)).event_id
    return next(e for e in stack.graph.events(ORGANISER) if e["id"] == event_id)


def no_poison(stack) -> bool:
    return not list(queue(stack, f"{stack.queue_name}-poison").peek_messages())


def test_a_site_edit_during_a_graph_outage_longer_than_any_retry_budget_reaches_outlook_after_recovery(
        stack, site, fast):
    item = new_event(site, new_meeting(site), title="Before the outage")
    settle(stack)
    fast()
    stack.graph.down()
    try:
        site.sim.update_item("Meeting Events", item["id"], title="Edited while Outlook was down")
        eventually(lambda: breakers_of(svc()).down(site.key).get("graph"), 20, what="Graph's breaker to open")
        app_hours_pass(2)  # the old budget (12 reschedules) was spent in about 28 minutes
        assert no_poison(stack) and queue_depth(stack) >= 1  # the job is alive, parked behind the breaker
        words = site.sim.get("Meeting Events", item["id"])[COLUMN]
        assert words.startswith("Waiting for Outlook, which has not answered since ") and words.endswith("; will retry")
        assert event_of(stack, site, item["id"])["subject"] == "Before the outage"
        [graph] = [d for d in page(site)["dependencies"] if d["dependency"] == "graph"]
        assert graph["state"] == "down" and graph["since"] and graph["next_probe"]
    finally:
        stack.graph.down(False)
    eventually(lambda: event_of(stack, site, item["id"])["subject"] == "Edited while Outlook was down", 30,
               what="the edit to reach Outlook after recovery")
    settle(stack)
    assert no_poison(stack)
    assert site.sim.get("Meeting Events", item["id"])[COLUMN].startswith("In Outlook since ")
    graph = svc().health.breakers(site.key)["graph"]
    assert not graph.open and graph.was_down_since and graph.up_since > graph.was_down_since
    assert not svc().health.marks(site.key)  # the finished sync cleared its "not yet in line" mark
    [shown] = [d for d in page(site)["dependencies"] if d["dependency"] == "graph"]
    assert shown["state"] == "up" and shown["last_outage"]["drain_seconds"] is not None


def page(site) -> dict:
    """The site's part of the status page's data."""
    from shared.ops.status_page import status

    [shown] = status(svc(), site.key)["sites"]
    return shown


def test_an_outlook_edit_during_a_site_outage_reaches_the_site_after_recovery(stack, site, fast):
    item = new_event(site, new_meeting(site), title="Before the site went down")
    settle(stack)
    stack.graph.wait_idle()  # earlier changes' notifications answered: only this edit meets the outage
    settle(stack)
    event_id = svc().store.get_link(site.key, str(item["id"])).event_id
    fast()
    stack.rapid.down()
    try:
        stack.graph.outlook_update(ORGANISER, event_id, subject="Edited in Outlook while the site was down")
        stack.graph.wait_idle()  # the notification was answered (202): its job is on our queue
        eventually(lambda: breakers_of(svc()).down(site.key).get("site"), 20, what="the site's breaker to open")
        app_hours_pass(2)
        assert no_poison(stack) and queue_depth(stack) >= 1
        assert svc().health.marks(site.key)  # and it is marked "not yet in line" for the catch-up
    finally:
        stack.rapid.down(False)
    eventually(lambda: site.sim.get("Meeting Events", item["id"])["title"] == "Edited in Outlook while the site was down",
               30, what="the Outlook edit to reach the site after recovery")
    settle(stack)
    assert no_poison(stack) and not svc().health.marks(site.key)


def test_a_notification_graph_gave_up_on_is_healed_by_the_scheduled_delta_read(stack, site, fast, monkeypatch):
    """Storage down at intake: the notification is answered 503, Graph retries for 4 hours and drops it.
    The renewer's scheduled delta read of the calendar brings the change in anyway."""
    item = new_event(site, new_meeting(site), title="Before the lost notification")
    settle(stack)
    event_id = svc().store.get_link(site.key, str(item["id"])).event_id
    monkeypatch.setattr(svc(), "settings", dataclasses.replace(svc().settings, delta_minutes=30))
    fast()
    stack.graph.pause_notifications()
    stack.graph.outlook_update(ORGANISER, event_id, subject="Changed, notification lost")
    stack.graph.resume_notifications(drop=True)  # what Graph does after 4 hours of failed deliveries
    app_hours_pass(0.6)  # more than DELTA_MINUTES since any earlier delta read
    from functions.renewer import subscription_renewer
    subscription_renewer(type("Timer", (), {"past_due": False})())  # the timer, as the platform runs it
    eventually(lambda: site.sim.get("Meeting Events", item["id"])["title"] == "Changed, notification lost", 30,
               what="the scheduled delta read to bring the change in")


def test_jobs_poisoned_during_a_storage_outage_go_back_to_work_and_bugs_stay(stack, site):
    """Poison from an outage (its failure names Storage, or none was recorded: the table was down too) is
    requeued by the catch-up timer; poison from anything else stays for a person, with its reason."""
    item = new_event(site, new_meeting(site), title="Poisoned by an outage")
    settle(stack)
    site.sim.update_item("Meeting Events", item["id"], title="Healed from the poison queue")
    poison = queue(stack, f"{stack.queue_name}-poison")
    outage = json.dumps({"id": "outage-job", "tasks": [{"op": "event.update", "site": site.key, "item": str(item["id"])}],
                         "attempt": 0})
    bug = json.dumps({"id": "bug-job", "tasks": [{"op": "no.such.op", "site": site.key}], "attempt": 0})
    svc().store.record_failure(message_key(bug), "KeyError: 'tasks'", 5)
    for text in (outage, bug):
        poison.send_message(text)
    assert requeue_outage_poison(svc()) == 1
    eventually(lambda: event_of(stack, site, item["id"])["subject"] == "Healed from the poison queue", 30,
               what="the requeued job to run")
    left = [m.content for m in poison.peek_messages(max_messages=32)]
    assert left == [bug]
    poison.clear_messages()

