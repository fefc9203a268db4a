"""Invitees' answers back to the site (issue 14, part 2): the answers Outlook tracks on the organiser's
event reach an optional Meeting Events column as a short summary, written only when an answer changes,
never moving the event and never writing to Outlook."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from devtools.azurite import eventually
from devtools.stack import ORGANISER
from shared.features.answers import answers_of, summary

from .scenario import column_writes, new_event, new_meeting, settle, site_with

COLUMN = "answers"
GRAPH_WRITES = ("POST", "PATCH", "DELETE")


@pytest.fixture
def answers_column(stack, site, monkeypatch):
    """acme/sales with an `answers` text column its designer added, named in SITES `answers_column`."""
    site_with(site, monkeypatch, {COLUMN: "Text"}, answers_column=COLUMN)
    return COLUMN


def site_writes(stack, item_id) -> int:
    return sum(1 for e in stack.rapid.log if e.method in ("PUT", "POST", "DELETE") and f"/items/{item_id}" in e.path)


def graph_writes(stack) -> int:
    return sum(stack.graph.count(method) for method in GRAPH_WRITES)


def synced_event(stack, site, title, **fields):
    meeting = new_meeting(site)
    item = new_event(site, meeting, title=title, invitees=[site.principals["bob@contoso.test"],
                                                           site.principals["carol@contoso.test"]], **fields)
    settle(stack)
    event = eventually(lambda: next((e for e in stack.graph.events(ORGANISER) if e["subject"] == title), None), 20,
                       what="the created event")
    return item, event


def test_an_attendees_decline_reaches_the_summary_column_with_one_site_write_and_no_graph_write(
        stack, site, answers_column):
    item, event = synced_event(stack, site, "Answers: quarterly review")
    assert column_writes(stack, item["id"], COLUMN) == []  # nobody has answered yet: nothing written
    stack.graph.reset_log()
    stack.rapid.reset_log()
    stack.graph.attendee_answers(ORGANISER, event["id"], "carol@contoso.test", "declined")
    eventually(lambda: column_writes(stack, item["id"], COLUMN), 20, what="the answers in the site")
    settle(stack)
    [words] = column_writes(stack, item["id"], COLUMN)
    assert words.startswith("Bob: no answer · Carol: declined (") and words.endswith(" · Gina (guest): no answer")
    assert site.sim.get("Meeting Events", item["id"])[COLUMN] == words
    assert site_writes(stack, item["id"]) == 1
    assert graph_writes(stack) == 0 and stack.graph.count("GET", "/events/") == 1


def test_the_same_notification_twice_writes_once(stack, site, answers_column):
    item, event = synced_event(stack, site, "Answers: budget")
    stack.rapid.reset_log()
    stack.graph.duplicate_notifications = 2
    try:
        stack.graph.attendee_answers(ORGANISER, event["id"], "bob@contoso.test", "accepted")
        eventually(lambda: column_writes(stack, item["id"], COLUMN), 20, what="the answers in the site")
        settle(stack)
        stack.graph.wait_idle()
        settle(stack)
    finally:
        stack.graph.duplicate_notifications = 1
    assert len(column_writes(stack, item["id"], COLUMN)) == 1
    # a site edit (which reads and writes the event) finds the answers as written: no second write
    site.sim.update_item("Meeting Events", item["id"], title="Answers: budget 2027")
    settle(stack)
    assert len(column_writes(stack, item["id"], COLUMN)) == 1
    # a changed answer writes again
    stack.graph.attendee_answers(ORGANISER, event["id"], "bob@contoso.test", "tentativelyAccepted")
    eventually(lambda: len(column_writes(stack, item["id"], COLUMN)) == 2, 20, what="the changed answer")
    assert column_writes(stack, item["id"], COLUMN)[-1].startswith("Bob: tentative (")


def test_answers_never_move_the_event(stack, site, answers_column):
    item, event = synced_event(stack, site, "Answers: offsite")
    stack.graph.reset_log()
    stack.rapid.reset_log()
    stack.graph.attendee_answers(ORGANISER, event["id"], "bob@contoso.test", "declined",
                                 proposed_start="2026-12-03T10:00:00Z", proposed_end="2026-12-03T11:00:00Z")
    stack.graph.attendee_answers(ORGANISER, event["id"], "guest@partner.test", "tentativelyAccepted")
    eventually(lambda: "Gina (guest): tentative" in (site.sim.get("Meeting Events", item["id"]).get(COLUMN) or ""),
               20, what="both answers in the site")
    settle(stack)
    words = site.sim.get("Meeting Events", item["id"])[COLUMN]
    assert "Bob: declined (" in words and ", proposes 3 Dec 10:00–11:00" in words  # Europe/London in December
    now = site.sim.get("Meeting Events", item["id"])
    assert (now["start_date"], now["end_date"]) == (item["start_date"], item["end_date"])
    writes = [e.body for e in stack.rapid.log if e.method in ("PUT", "POST", "DELETE")]
    assert writes and all(set(body) == {COLUMN} for body in writes)  # the plan (time, invitees) untouched
    after = next(e for e in stack.graph.events(ORGANISER) if e["id"] == event["id"])
    assert (after["start"], after["end"]) == (event["start"], event["end"])
    assert [a["emailAddress"]["address"] for a in after["attendees"]] == \
        [a["emailAddress"]["address"] for a in event["attendees"]]
    assert graph_writes(stack) == 0


def test_the_summary_names_people_as_the_site_does():
    event = {"attendees": [
        {"type": "required", "emailAddress": {"address": "Bob@contoso.test", "name": "Bob@contoso.test"},
         "status": {"response": "accepted", "time": "2026-12-02T14:05:00Z"}},
        {"type": "required", "emailAddress": {"address": "bob@other.test", "name": "bob@other.test"},
         "status": {"response": "notResponded", "time": "0001-01-01T00:00:00Z"}},
        {"type": "resource", "emailAddress": {"address": "room@contoso.test"}, "status": {"response": "accepted"}},
        {"type": "required", "emailAddress": {"address": "x@partner.test", "name": "X"},
         "status": {"response": "tentativelyAccepted", "time": "2026-07-01T08:00:00Z"},
         "proposedNewTime": {"start": {"dateTime": "2026-07-02T09:00:00.0000000", "timeZone": "W. Europe Standard Time"},
                             "end": {"dateTime": "2026-07-02T10:30:00.0000000", "timeZone": "W. Europe Standard Time"}}},
    ]}
    people = {"bob@contoso.test": ("Bob Invitee", False), "bob@other.test": ("Bob Other", False),
              "x@partner.test": ("Xena Guest", True)}
    assert answers_of({"subject": "no attendees read"}) is None
    assert summary(answers_of(event), people, ZoneInfo("Europe/London")) == (
        "Bob Invitee: accepted (2 Dec 14:05) · Bob Other: no answer · "
        "Xena (guest): tentative (1 Jul 09:00), proposes 2 Jul 08:00–09:30")


def test_the_simulated_answer_changes_the_organisers_event_and_notifies_it_as_graph_does(stack, site):
    _, event = synced_event(stack, site, "Answers: simulated")
    stack.graph.reset_log()
    after = stack.graph.attendee_answers(ORGANISER, event["id"], "bob@contoso.test", "accepted")
    bob = next(a for a in after["attendees"] if a["emailAddress"]["address"] == "bob@contoso.test")
    assert bob["status"]["response"] == "accepted" and bob["status"]["time"].endswith("Z")
    assert "proposedNewTime" not in bob and after["changeKey"] != event["changeKey"]
    stack.graph.wait_idle()
    sent = [item for d in stack.graph.notifications_sent for item in d.body.get("value", [])]
    assert [(n["changeType"], n["resourceData"]["id"]) for n in sent][:1] == [("updated", event["id"])]
    with pytest.raises(ValueError):  # event-accept.md takes no proposed time
        stack.graph.attendee_answers(ORGANISER, event["id"], "bob@contoso.test", "accepted",
                                     proposed_start="2026-12-03T10:00:00Z", proposed_end="2026-12-03T11:00:00Z")
    with pytest.raises(ValueError):  # responsestatus.md: an attendee's answer is one of its values
        stack.graph.attendee_answers(ORGANISER, event["id"], "bob@contoso.test", "maybe")
    settle(stack)
