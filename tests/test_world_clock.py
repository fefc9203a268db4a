"""The simulators keep the world's time (shared/clock.py, installed by devtools/world_clock.py): tokens, delta
tokens and Graph's redelivery of an unanswered notification run on it, so hours pass in a fraction of a
second; and a RAPID list can suddenly answer empty."""

from datetime import datetime, timedelta, timezone

import pytest

from devtools.sim.graph.folders import IMMUTABLE_IDS as IMMUTABLE
from devtools import world_clock
from devtools.sim import GraphSimulator
from devtools.sim.base import DEFAULT_TOKEN_KEY, mint_token, read_token
from tests.test_sim_graph import ALICE, CLIENT, SECRET, TENANT, Receiver, event_body, subscribe
from tests.test_sim_rapid import http, people, rapid, rows, site, url  # noqa: F401 (its fixtures)

SPEED = 36000.0  # 4 app hours in 0.4 wall seconds


@pytest.fixture
def clock():
    """Run this process on an accelerated clock; the real one again afterwards."""
    yield lambda speed=SPEED, ahead=timedelta(0): world_clock.install(
        world_clock.accelerated(speed, datetime.now(timezone.utc) + ahead))
    world_clock.install(None)


@pytest.fixture
def graph():
    sim = GraphSimulator(notification_retry_window=4 * 3600.0, notification_backoff=60.0).start()
    sim.register_app(TENANT, CLIENT, SECRET)
    sim.add_user(TENANT, ALICE, "Alice")
    yield sim
    sim.stop()


def _session(graph):
    session = graph.http_session()
    session.headers["Authorization"] = "Bearer " + graph.mint_token(TENANT, CLIENT)
    session.headers["Prefer"] = IMMUTABLE  # as the app asks: notifications then name events as outlook_create does
    return session


def test_graph_redelivers_an_unanswered_notification_for_4_hours_of_world_time_then_drops_it(clock, graph):
    speed = SPEED / 10  # 4 app hours in 4 wall seconds: a delivery slowed by a busy machine costs minutes, not hours
    clock(speed=speed)
    receiver = Receiver(status=503)
    try:
        assert subscribe(graph, _session(graph), receiver.url).status_code == 201
        event = graph.outlook_create(ALICE, **event_body())
        graph.wait_idle(20)
        attempts = [d for d in graph.notifications_sent if d.body["value"][0]["resourceData"]["id"] == event["id"]]
        # when each attempt was sent (a Delivery is stamped in wall time once its answer came)
        span_hours = ((attempts[-1].time - attempts[-1].elapsed) - (attempts[0].time - attempts[0].elapsed)) \
            * speed / 3600
        assert all(d.status == 503 for d in attempts) and len(attempts) > 10  # retried, waits capped at 10 min
        # "for up to 4 hours"; the slack is the wall milliseconds between deciding to send and sending
        assert 3.5 < span_hours <= 4.0 + 0.02
        assert len(graph.notifications_dropped) == 1  # "it discards the change notification"
    finally:
        receiver.server.shutdown()


def test_a_redelivered_notification_reaches_an_app_that_answers_again(clock, graph):
    clock()
    receiver = Receiver(status=503)
    try:
        subscribe(graph, _session(graph), receiver.url)
        graph.outlook_create(ALICE, **event_body())
        receiver.wait_for(2)
        receiver.status = 202  # the app is back
        graph.wait_idle(20)
        assert graph.notifications_sent[-1].status == 202 and graph.notifications_dropped == []
    finally:
        receiver.server.shutdown()


def test_tokens_expire_on_the_world_clock(clock):
    token = mint_token(DEFAULT_TOKEN_KEY, "aud", TENANT, CLIENT, lifetime=3599)
    assert read_token(DEFAULT_TOKEN_KEY, f"Bearer {token}") is not None
    clock(speed=1.0, ahead=timedelta(hours=2))  # two hours later in the world
    assert read_token(DEFAULT_TOKEN_KEY, f"Bearer {token}") is None


def test_delta_tokens_expire_on_the_world_clock(clock):
    sim = GraphSimulator(delta_token_lifetime=3600).start()
    try:
        sim.register_app(TENANT, CLIENT, SECRET)
        sim.add_user(TENANT, ALICE, "Alice")
        delta = f"{sim.graph_url}/users/{ALICE}/calendarView/delta?startDateTime=2026-01-01T00:00:00Z" \
                "&endDateTime=2027-01-01T00:00:00Z"
        link = _session(sim).get(delta).json()["@odata.deltaLink"]
        assert _session(sim).get(link).status_code == 200
        clock(speed=1.0, ahead=timedelta(hours=2))
        answer = _session(sim).get(link)
        assert answer.status_code == 410 and answer.json()["error"]["code"] == "SyncStateNotFound"
    finally:
        sim.stop()


@pytest.mark.parametrize("items_answer, item_status", [("found", 200), ("404", 404)])
def test_a_list_can_suddenly_answer_empty(site, http, people, items_answer, item_status):  # noqa: F811
    assert rows(http.get(url(site, "lists/Meeting Events/All/items")))
    site.variant.empty_lists, site.variant.empty_items = ("Meeting Events",), items_answer
    assert rows(http.get(url(site, "lists/Meeting Events/All/items"))) == []
    assert rows(http.get(url(site, "lists/Meetings/All/items")))  # other lists as before
    assert http.get(url(site, f"lists/Meeting Events/items/{people['event']}")).status_code == item_status
