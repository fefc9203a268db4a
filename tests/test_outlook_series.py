"""A synced event turned into a recurring series in Outlook (issue 21, item 3): the site item follows its own
occurrence and says so; an edit or a cancellation of that occurrence reaches it, one of another occurrence
does not; site edits and removals touch that occurrence only; no duplicate event, no cancellation mailed by
mistake. The core scenarios run under both notification variants the published pages leave open (the
master named for an occurrence's change, or the occurrence itself: devtools/sim/graph/series.py)."""

import uuid

import pytest

from devtools.azurite import eventually
from devtools.stack import ORGANISER
from shared.features.status import SERIES

from .scenario import column_writes, new_event, new_meeting, settle, site_with, svc

COLUMN = "sync_status"


@pytest.fixture(params=["master", "occurrence"])
def notifications(stack, request):
    stack.graph.occurrence_notifications = request.param
    yield request.param
    stack.graph.occurrence_notifications = "master"


@pytest.fixture
def synced(stack, site, monkeypatch):
    """acme/sales with a status column, and one event synced to Outlook (with an attendee: a meeting)."""
    site_with(site, monkeypatch, {COLUMN: "Text"}, status_column=COLUMN)
    title = f"Turned into a series {uuid.uuid4().hex[:8]}"  # not "Series …": test_site_to_outlook counts those
    item = new_event(site, new_meeting(site), title=title)
    settle(stack)
    link = svc().store.get_link("acme/sales", str(item["id"]))
    return {"item": item, "event_id": link.event_id, "title": title}


def organiser_events(stack) -> int:
    """Events of the organiser's calendar a person counts as meetings: single events and series."""
    return len([e for e in stack.graph.events(ORGANISER) if e["type"] in ("singleInstance", "seriesMaster")])


def creates(stack) -> int:
    return len([e for e in stack.graph.log if e.method == "POST" and e.path.rstrip("/").endswith("/events")])


def link_of(item):
    return svc().store.get_link("acme/sales", str(item["id"]))


def made_series(stack, synced, count=3) -> list[dict]:
    """The organiser turns the synced event into a daily series in Outlook; the app follows the item's own
    occurrence. The occurrences, in order."""
    stack.graph.outlook_make_series(ORGANISER, synced["event_id"], "daily", count=count)
    occurrences = stack.graph.occurrences(ORGANISER, synced["event_id"])
    eventually(lambda: link_of(synced["item"]).event_id == occurrences[0]["id"], what="the link to follow its occurrence")
    stack.graph.wait_idle()
    settle(stack)
    return occurrences


def site_item(site, synced):
    return site.sim.get("Meeting Events", synced["item"]["id"])


def test_an_event_turned_into_a_series_is_followed_by_its_item_which_says_so(stack, site, synced, notifications):
    before, made = organiser_events(stack), creates(stack)
    occurrences = made_series(stack, synced)
    link = link_of(synced["item"])
    assert (link.event_id, link.series_id) == (occurrences[0]["id"], synced["event_id"])
    assert occurrences[0]["originalStart"] == "2026-12-01T09:00:00Z"
    words = site_item(site, synced)[COLUMN]
    assert "recurring series made in Outlook" in words and "follows that occurrence only" in words
    assert svc().ops.written("state", "acme/sales", str(synced["item"]["id"])).key == SERIES
    assert site_item(site, synced)["title"] == synced["title"]
    assert [i["id"] for i in site.sim.items("Meeting Events") if i["title"] == synced["title"]] == [synced["item"]["id"]]
    assert (organiser_events(stack), creates(stack)) == (before, made)
    assert all(c.event_id != synced["event_id"] for c in stack.graph.cancellations)


def test_an_edit_of_its_occurrence_in_outlook_reaches_the_item(stack, site, synced, notifications):
    occurrences = made_series(stack, synced)
    stack.graph.outlook_update(ORGANISER, occurrences[0]["id"], subject="Renamed occurrence",
                               location={"displayName": "Room 9"})
    eventually(lambda: site_item(site, synced)["title"] == "Renamed occurrence", what="the occurrence's edit in the site")
    assert site_item(site, synced)["location"] == "Room 9"
    assert stack.graph.get_event(ORGANISER, synced["event_id"])["subject"] == synced["title"]


@pytest.mark.parametrize("delta", ["bare", "full"])
def test_a_series_made_while_notifications_were_missed_is_found_by_the_delta_catch_up(stack, site, synced, delta):
    stack.graph.delta_occurrences = delta
    stack.graph.pause_notifications()
    try:
        stack.graph.outlook_make_series(ORGANISER, synced["event_id"], "daily", count=3)
        occurrences = stack.graph.occurrences(ORGANISER, synced["event_id"])
        stack.graph.outlook_update(ORGANISER, occurrences[0]["id"], subject="Edited during the gap")
    finally:
        stack.graph.resume_notifications(drop=True)
    try:
        stack.graph.send_lifecycle(svc().store.subscription_for("acme/sales", ORGANISER).id, "missed")
        eventually(lambda: site_item(site, synced)["title"] == "Edited during the gap", what="the delta catch-up")
        stack.graph.wait_idle()
        settle(stack)
    finally:
        stack.graph.delta_occurrences = "bare"
    assert link_of(synced["item"]).event_id == occurrences[0]["id"]
    assert site_item(site, synced)["description"] == "<p>Agenda</p>"  # a bare occurrence wiped nothing
    assert "recurring series" in site_item(site, synced)[COLUMN]


def test_an_edit_of_another_occurrence_changes_nothing_in_the_site(stack, site, synced, notifications):
    occurrences = made_series(stack, synced)
    stack.rapid.reset_log()
    stack.graph.outlook_update(ORGANISER, occurrences[1]["id"], subject="Only on the second day")
    stack.graph.wait_idle()
    settle(stack)
    assert site_item(site, synced)["title"] == synced["title"]
    assert [e for e in stack.rapid.log if e.method in ("PUT", "POST", "DELETE") and "/Meeting Events/" in e.path] == []
    assert len([i for i in site.sim.items("Meeting Events") if i["title"] == "Only on the second day"]) == 0


def test_its_occurrence_cancelled_in_outlook_cancels_the_item_and_mails_nothing_more(stack, site, synced,
                                                                                     notifications):
    occurrences = made_series(stack, synced)
    before = len(stack.graph.cancellations)
    stack.graph.outlook_cancel(ORGANISER, occurrences[0]["id"])
    cancelled = svc().settings.sites["acme/sales"].cancelled_status
    eventually(lambda: site_item(site, synced)["status"] == cancelled, what="the item cancelled")
    stack.graph.wait_idle()
    settle(stack)
    assert [c.event_id for c in stack.graph.cancellations[before:]] == [occurrences[0]["id"]]  # Outlook's own, only
    assert [o["id"] for o in stack.graph.occurrences(ORGANISER, synced["event_id"])] == [o["id"] for o in occurrences[1:]]
    assert link_of(synced["item"]) is None


def test_the_whole_series_cancelled_in_outlook_cancels_the_item_once(stack, site, synced, notifications):
    made_series(stack, synced)
    before = len(stack.graph.cancellations)
    stack.graph.outlook_cancel(ORGANISER, synced["event_id"])
    cancelled = svc().settings.sites["acme/sales"].cancelled_status
    eventually(lambda: site_item(site, synced)["status"] == cancelled, what="the item cancelled")
    stack.graph.wait_idle()
    settle(stack)
    assert column_writes(stack, synced["item"]["id"], "status") == [cancelled]
    assert [c.via for c in stack.graph.cancellations[before:]] == ["outlook_cancel"]


def test_a_site_edit_after_the_series_was_made_changes_its_occurrence_only(stack, site, synced, notifications):
    occurrences = made_series(stack, synced)
    before = organiser_events(stack)
    stack.graph.reset_log()
    site.sim.update_item("Meeting Events", synced["item"]["id"], title="Edited in the site")
    settle(stack)
    patches = [e.path for e in stack.graph.log if e.method == "PATCH"]
    assert len(patches) == 1 and patches[0].endswith(occurrences[0]["id"])
    after = stack.graph.occurrences(ORGANISER, synced["event_id"])
    assert [(o["subject"], o["type"]) for o in after] == [("Edited in the site", "exception"),
                                                          (synced["title"], "occurrence"), (synced["title"], "occurrence")]
    assert stack.graph.get_event(ORGANISER, synced["event_id"])["subject"] == synced["title"]
    assert (organiser_events(stack), creates(stack)) == (before, 0)


def test_a_site_edit_before_the_app_heard_of_the_series_still_changes_its_occurrence_only(stack, site, synced):
    stack.graph.pause_notifications()
    try:
        stack.graph.outlook_make_series(ORGANISER, synced["event_id"], "daily", count=3)
        occurrences = stack.graph.occurrences(ORGANISER, synced["event_id"])
        stack.graph.reset_log()
        site.sim.update_item("Meeting Events", synced["item"]["id"], title="Edited meanwhile")
        settle(stack)
    finally:
        stack.graph.resume_notifications(drop=True)
    patches = [e.path for e in stack.graph.log if e.method == "PATCH"]
    assert len(patches) == 1 and patches[0].endswith(occurrences[0]["id"])
    assert stack.graph.get_event(ORGANISER, synced["event_id"])["subject"] == synced["title"]
    assert link_of(synced["item"]).event_id == occurrences[0]["id"]
    assert "recurring series" in site_item(site, synced)[COLUMN]


def test_a_site_cancellation_after_the_series_was_made_cancels_its_occurrence_only(stack, site, synced, notifications):
    occurrences = made_series(stack, synced)
    before = len(stack.graph.cancellations)
    cancelled = svc().settings.sites["acme/sales"].cancelled_status
    site.sim.update_item("Meeting Events", synced["item"]["id"], status=cancelled)
    settle(stack)
    stack.graph.wait_idle()
    settle(stack)
    assert [c.event_id for c in stack.graph.cancellations[before:]] == [occurrences[0]["id"]]
    assert stack.graph.get_event(ORGANISER, synced["event_id"])["type"] == "seriesMaster"
    assert [o["id"] for o in stack.graph.occurrences(ORGANISER, synced["event_id"])] == [o["id"] for o in occurrences[1:]]
    assert link_of(synced["item"]) is None


def test_a_site_cancellation_before_the_app_heard_of_the_series_cancels_its_occurrence_only(stack, site, synced):
    stack.graph.pause_notifications()
    try:
        stack.graph.outlook_make_series(ORGANISER, synced["event_id"], "daily", count=3)
        occurrences = stack.graph.occurrences(ORGANISER, synced["event_id"])
        before = len(stack.graph.cancellations)
        cancelled = svc().settings.sites["acme/sales"].cancelled_status
        site.sim.update_item("Meeting Events", synced["item"]["id"], status=cancelled)
        settle(stack)
    finally:
        stack.graph.resume_notifications(drop=True)
    assert [c.event_id for c in stack.graph.cancellations[before:]] == [occurrences[0]["id"]]
    assert [o["id"] for o in stack.graph.occurrences(ORGANISER, synced["event_id"])] == [o["id"] for o in occurrences[1:]]
    assert link_of(synced["item"]) is None


def test_a_series_with_no_occurrence_at_the_items_time_is_said_and_left_alone(stack, site, synced):
    stack.graph.outlook_make_series(ORGANISER, synced["event_id"], "weekly", count=2, days_of_week=("friday",))
    assert [o["originalStart"][:10] for o in stack.graph.occurrences(ORGANISER, synced["event_id"])] == \
        ["2026-12-04", "2026-12-11"]  # the item is on Tuesday 1 December
    stack.graph.wait_idle()
    settle(stack)
    stack.graph.reset_log()
    site.sim.update_item("Meeting Events", synced["item"]["id"], title="Edited in the site")
    settle(stack)
    assert [e for e in stack.graph.log if e.method in ("PATCH", "POST", "DELETE")] == []
    assert "no occurrence at this item's time" in site_item(site, synced)[COLUMN]
    assert link_of(synced["item"]).event_id == synced["event_id"]


# -- the decisions, pure (sync/planner.py, sync/occurrences.py)

def test_the_planner_follows_the_items_own_occurrence_of_a_series():
    from dataclasses import replace

    from shared.model.errors import SERIES_ELSEWHERE
    from shared.sync.planner import FollowOccurrence, GiveUp, Read, plan_outlook

    from .test_planner import event, outlook_snap

    master = event(type="seriesMaster", recurrence={"pattern": {"type": "daily"}})
    snap = outlook_snap(evt=master)
    assert plan_outlook(snap) == [Read("occurrence")]
    own = event(id="E1_20261207", type="occurrence", seriesMasterId="E1")
    assert plan_outlook(replace(snap, occurrence=own)) == [FollowOccurrence(own)]
    [give_up] = plan_outlook(replace(snap, occurrence=None))
    assert isinstance(give_up, GiveUp) and give_up.error.code == SERIES_ELSEWHERE


def test_the_items_own_occurrence_is_the_one_that_started_at_its_time():
    from shared.sync.occurrences import own_occurrence

    days = [{"id": d, "originalStart": f"2026-12-0{d}T09:00:00Z"} for d in (1, 2, 3)]
    assert own_occurrence(days, "2026-12-02T09:00:00Z")["id"] == 2
    assert own_occurrence(days, "2026-12-02T10:30:00Z")["id"] == 2  # the series' time moved as it was made
    assert own_occurrence(days, "2026-12-05T09:00:00Z") is None
