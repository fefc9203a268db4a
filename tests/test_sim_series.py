"""Contract checks of the Graph simulator's recurring series (devtools/sim/graph/series.py): a series made in
Outlook from an event, its occurrences and exceptions, cancellations, and what views, delta and change
notifications show of them, under each variant the published pages leave open."""

import pytest

from .test_sim_graph import ALICE, CLIENT, SECRET, TENANT, event_body, subscribe
from .test_sim_graph import http, receiver  # noqa: F401 (its fixtures, over this module's graph)
from devtools.sim import GraphSimulator


@pytest.fixture(params=["master", "occurrence"])
def graph(request):
    sim = GraphSimulator(notification_backoff=0.01, occurrence_notifications=request.param).start()
    sim.register_app(TENANT, CLIENT, SECRET)
    sim.add_user(TENANT, ALICE, "Alice")
    yield sim
    sim.stop()


def a_series(graph, http, count=3, **extra):
    made = http.post(f"{graph.graph_url}/users/{ALICE}/events", json=event_body(**extra)).json()
    master = graph.outlook_make_series(ALICE, made["id"], "daily", count=count)
    return made, master, graph.occurrences(ALICE, made["id"])


def test_an_event_turned_into_a_series_keeps_its_id_and_gets_occurrences(graph, http):
    made, master, occurrences = a_series(graph, http)
    assert master["id"] == made["id"] and master["type"] == "seriesMaster"
    assert master["recurrence"]["range"]["numberOfOccurrences"] == 3
    assert [o["type"] for o in occurrences] == ["occurrence"] * 3
    assert len({o["id"] for o in occurrences}) == 3 and all(o["seriesMasterId"] == made["id"] for o in occurrences)
    # 09:00 W. Europe (UTC+2 on 30 March 2026) on three days, originalStart in UTC
    assert [o["originalStart"] for o in occurrences] == [f"2026-03-{d}T07:00:00Z" for d in (30, 31)] + \
        ["2026-04-01T07:00:00Z"]
    first = http.get(f"{graph.graph_url}/users/{ALICE}/events/{occurrences[0]['id']}").json()
    assert first["subject"] == "Board" and first["type"] == "occurrence" and first.get("recurrence") is None


def test_views_expand_occurrences_and_lists_show_masters(graph, http):
    made, _, occurrences = a_series(graph, http)
    window = {"startDateTime": "2026-03-29T00:00:00Z", "endDateTime": "2026-04-05T00:00:00Z"}
    view = http.get(f"{graph.graph_url}/users/{ALICE}/calendarView", params=window).json()["value"]
    assert [e["id"] for e in view] == [o["id"] for o in occurrences]
    listed = http.get(f"{graph.graph_url}/users/{ALICE}/events").json()["value"]
    assert [(e["id"], e["type"]) for e in listed] == [(made["id"], "seriesMaster")]
    narrow = {"startDateTime": "2026-03-31T00:00:00Z", "endDateTime": "2026-04-01T00:00:00Z"}
    instances = http.get(f"{graph.graph_url}/users/{ALICE}/events/{made['id']}/instances", params=narrow).json()
    assert [e["id"] for e in instances["value"]] == [occurrences[1]["id"]]
    refused = http.get(f"{graph.graph_url}/users/{ALICE}/events/{made['id']}/instances")
    assert refused.status_code == 400


def test_delta_gives_occurrences_without_their_data_by_default(graph, http):
    a_series(graph, http)
    window = {"startDateTime": "2026-03-29T00:00:00Z", "endDateTime": "2026-04-05T00:00:00Z"}
    page = http.get(f"{graph.graph_url}/users/{ALICE}/calendarView/delta", params=window).json()
    assert len(page["value"]) == 3 and all("subject" not in e and e["type"] == "occurrence" for e in page["value"])
    graph.delta_occurrences = "full"
    page = http.get(f"{graph.graph_url}/users/{ALICE}/calendarView/delta", params=window).json()
    assert all(e["subject"] == "Board" for e in page["value"])


def test_an_edited_occurrence_becomes_an_exception_and_is_notified_as_the_switch_says(graph, http, receiver):
    made, _, occurrences = a_series(graph, http)
    assert subscribe(graph, http, receiver.url).status_code == 201
    patched = http.patch(f"{graph.graph_url}/users/{ALICE}/events/{occurrences[1]['id']}", json={"subject": "Moved"})
    assert patched.json()["type"] == "exception" and patched.json()["subject"] == "Moved"
    after = graph.occurrences(ALICE, made["id"])
    assert [o["subject"] for o in after] == ["Board", "Moved", "Board"]
    named = receiver.wait_for(1)[0][1]["value"][0]
    expected = made["id"] if graph.occurrence_notifications == "master" else occurrences[1]["id"]
    assert (named["resourceData"]["id"], named["changeType"]) == (expected, "updated")


def test_cancelling_an_occurrence_cancels_that_occurrence_only(graph, http, receiver):
    made, _, occurrences = a_series(graph, http, attendees=[{"emailAddress": {"address": "bob@contoso.example"}}])
    assert subscribe(graph, http, receiver.url).status_code == 201
    assert http.post(f"{graph.graph_url}/users/{ALICE}/events/{occurrences[0]['id']}/cancel", json={}).status_code == 202
    assert [c.event_id for c in graph.cancellations] == [occurrences[0]["id"]]
    assert [o["id"] for o in graph.occurrences(ALICE, made["id"])] == [o["id"] for o in occurrences[1:]]
    gone = http.get(f"{graph.graph_url}/users/{ALICE}/events/{occurrences[0]['id']}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "ErrorItemNotFound"
    named = receiver.wait_for(1)[0][1]["value"][0]
    if graph.occurrence_notifications == "master":   # microsoft-graph-docs issue 5520: "updated" on the master
        assert (named["resourceData"]["id"], named["changeType"]) == (made["id"], "updated")
    else:
        assert (named["resourceData"]["id"], named["changeType"]) == (occurrences[0]["id"], "deleted")


def test_cancelling_the_master_cancels_the_series_once(graph, http):
    made, _, occurrences = a_series(graph, http, attendees=[{"emailAddress": {"address": "bob@contoso.example"}}])
    assert http.post(f"{graph.graph_url}/users/{ALICE}/events/{made['id']}/cancel", json={}).status_code == 202
    assert [c.event_id for c in graph.cancellations] == [made["id"]]
    assert graph.events(ALICE) == []
    for occurrence in occurrences:
        assert http.get(f"{graph.graph_url}/users/{ALICE}/events/{occurrence['id']}").status_code == 404


def test_a_change_of_the_master_reaches_its_occurrences_but_not_its_exceptions(graph, http):
    made, _, occurrences = a_series(graph, http)
    graph.outlook_update(ALICE, occurrences[2]["id"], subject="Kept")
    graph.outlook_update(ALICE, made["id"], subject="Renamed")
    assert [o["subject"] for o in graph.occurrences(ALICE, made["id"])] == ["Renamed", "Renamed", "Kept"]
