"""Teams meetings (issue 14, part 1): an item that asks for one gets its Outlook event as a Teams meeting,
the join URL reaches the site (also when Graph fills it in late), the Teams block in the body stays in
Outlook and never reaches the site, and an organiser who cannot have Teams still gets the event, with
the reason in the item's sync status.

The Graph simulator follows concepts/outlook-calendar-online-meetings.md: by default the create's answer
already carries onlineMeeting and the Teams block; `join_info_after_reads` makes them arrive late."""

from __future__ import annotations


import pytest

from devtools.azurite import eventually
from devtools.stack import ORGANISER
from shared.model.html_body import TEAMS_LINK

from .scenario import new_event, new_meeting, settle, site_with, svc

JOIN = "teams_link"
ASKS = "teams_meeting"
STATUS = "sync_status"


@pytest.fixture
def teams_site(stack, site, monkeypatch):
    """acme/sales with Teams on by default, a join-URL column, a per-item Yes/No column and a status column."""
    return site_with(site, monkeypatch, {JOIN: "Text", ASKS: "Boolean", STATUS: "Text"}, teams=True,
                     teams_column=ASKS, join_url_column=JOIN, status_column=STATUS)


def outlook_event(stack, subject):
    found = [e for e in stack.graph.events(ORGANISER) if e["subject"] == subject]
    return found[0] if len(found) == 1 else None


def created_teams_event(stack, site, title, **fields):
    item = new_event(site, new_meeting(site), title=title, **fields)
    settle(stack)
    event = eventually(lambda: outlook_event(stack, title), 20, what="the created event")
    return item, event


@pytest.mark.parametrize("late_reads", [0, 2], ids=["in-the-answer", "filled-in-late"])
def test_a_teams_events_join_url_reaches_the_site_even_when_graph_fills_it_in_late(stack, site, teams_site,
                                                                                   monkeypatch, late_reads):
    monkeypatch.setattr(stack.graph, "join_info_after_reads", late_reads)
    item, event = created_teams_event(stack, site, f"Teams: late {late_reads}")
    assert event["isOnlineMeeting"] is True and event["onlineMeetingProvider"] == "teamsForBusiness"
    join = eventually(lambda: (stack.graph.get_event(ORGANISER, event["id"])["onlineMeeting"] or {}).get("joinUrl"),
                      30, what="Graph to fill in the join URL")
    written = eventually(lambda: site.sim.get("Meeting Events", item["id"]).get(JOIN), 30,
                         what="the join URL in the site")
    assert written == join and TEAMS_LINK in join
    # never by sleeping a worker: the late URL came from follow-up reads, one per queued retry
    assert stack.graph.count("GET", path_contains=event["id"][:40]) >= late_reads


def test_a_site_edit_of_the_description_keeps_the_teams_block_in_outlook(stack, site, teams_site):
    item, event = created_teams_event(stack, site, "Teams: description", description="<p>Bring numbers</p>")
    join = event["onlineMeeting"]["joinUrl"]
    site.sim.update_item("Meeting Events", item["id"], description="<p>Bring <b>last quarter's</b> numbers</p>")
    settle(stack)
    body = stack.graph.get_event(ORGANISER, event["id"])["body"]["content"]
    assert "last quarter" in body
    assert join.replace("&", "&amp;") in body or join in body, "the join link left the invitation"
    assert "Microsoft Teams Meeting" in body and body.count("meetup-join") == 1
    # the site keeps the same join URL, and its description is still only what the site wrote
    now = site.sim.get("Meeting Events", item["id"])
    assert now[JOIN] == join and now["description"] == "<p>Bring <b>last quarter's</b> numbers</p>"


def test_the_teams_block_never_reaches_the_site(stack, site, teams_site):
    item, event = created_teams_event(stack, site, "Teams: outlook edit", description="<p>Agenda to follow</p>")
    body = stack.graph.get_event(ORGANISER, event["id"])["body"]["content"]
    # the organiser rewrites the text in Outlook and leaves Teams' block as it is
    edited = body.replace("Agenda to follow", "Agenda attached")
    stack.graph.outlook_update(ORGANISER, event["id"], body={"contentType": "html", "content": edited})
    eventually(lambda: "attached" in site.sim.get("Meeting Events", item["id"])["description"], 20,
               what="the Outlook edit in the site")
    description = site.sim.get("Meeting Events", item["id"])["description"]
    assert "Teams" not in description and "meetup-join" not in description and "_____" not in description
    assert "Agenda attached" in description
    settle(stack)  # and our own answer to it wrote nothing back into Outlook's block
    body = stack.graph.get_event(ORGANISER, event["id"])["body"]["content"]
    assert body.count("meetup-join") == 1


def test_the_join_url_is_kept_when_the_event_changes(stack, site, teams_site):
    item, event = created_teams_event(stack, site, "Teams: moved")
    join = event["onlineMeeting"]["joinUrl"]
    stack.graph.reset_log()
    site.sim.update_item("Meeting Events", item["id"], start_date="2026-12-01T11:00:00Z",
                         end_date="2026-12-01T12:00:00Z", title="Teams: moved later")
    settle(stack)
    after = stack.graph.get_event(ORGANISER, event["id"])
    assert after["onlineMeeting"]["joinUrl"] == join and after["subject"] == "Teams: moved later"
    assert site.sim.get("Meeting Events", item["id"])[JOIN] == join
    assert stack.graph.count("PATCH") == 1 and stack.graph.count("POST", path_contains="/events") == 0


@pytest.mark.parametrize("answer", ["ignore", "refuse"])
def test_an_organiser_without_teams_still_gets_the_event_and_the_reason(stack, site, teams_site, monkeypatch,
                                                                       answer):
    monkeypatch.setattr(stack.graph, "unsupported_provider", answer)
    stack.graph.set_online_providers(ORGANISER, ())
    try:
        svc().graph(teams_site)._providers.clear()  # what this process knew of the calendar an hour ago
        item, event = created_teams_event(stack, site, f"Teams: none ({answer})")
        assert event["isOnlineMeeting"] is False and not event.get("onlineMeeting")
        status = eventually(lambda: site.sim.get("Meeting Events", item["id"]).get(STATUS), 20, what="the status")
        assert "without Teams" in status and "offers no Teams" in status
        assert not site.sim.get("Meeting Events", item["id"]).get(JOIN)
    finally:
        stack.graph.set_online_providers(ORGANISER, ("teamsForBusiness",))
        svc().graph(teams_site)._providers.clear()


def test_an_item_asks_for_teams_on_its_own_and_later(stack, site, teams_site, monkeypatch):
    site_with(site, monkeypatch, teams=False)
    item, event = created_teams_event(stack, site, "Teams: later", **{ASKS: False})
    assert event["isOnlineMeeting"] is False
    site.sim.update_item("Meeting Events", item["id"], **{ASKS: True})
    settle(stack)
    after = stack.graph.get_event(ORGANISER, event["id"])
    assert after["isOnlineMeeting"] is True and TEAMS_LINK in after["body"]["content"]
    assert site.sim.get("Meeting Events", item["id"])[JOIN] == after["onlineMeeting"]["joinUrl"]


def test_an_item_switched_to_teams_while_its_webhook_was_lost_is_caught_up(stack, site, teams_site, monkeypatch):
    from .test_catch_up import checkpoint, dropped

    site_with(site, monkeypatch, teams=False)
    item, event = created_teams_event(stack, site, "Teams: missed switch", **{ASKS: False})
    checkpoint()
    with dropped(site, "Meeting Events", "Item Updated"):
        site.sim.update_item("Meeting Events", item["id"], **{ASKS: True})
        settle(stack)
    assert stack.graph.get_event(ORGANISER, event["id"])["isOnlineMeeting"] is False
    stack.host.run_function("site_catch_up")  # (its window may hold other tests' leftovers: not awaited)
    eventually(lambda: stack.graph.get_event(ORGANISER, event["id"])["isOnlineMeeting"], 30,
               what="the catch-up to make it a Teams meeting")


def test_an_event_made_without_teams_becomes_a_teams_meeting_once_the_organiser_has_teams(stack, site, teams_site):
    stack.graph.set_online_providers(ORGANISER, ())
    svc().graph(teams_site)._providers.clear()
    try:
        item, event = created_teams_event(stack, site, "Teams: licence later")
        assert event["isOnlineMeeting"] is False
    finally:
        stack.graph.set_online_providers(ORGANISER, ("teamsForBusiness",))
        svc().graph(teams_site)._providers.clear()  # an hour later: the calendar is read again
    site.sim.update_item("Meeting Events", item["id"], location="Room 2")
    settle(stack)
    after = stack.graph.get_event(ORGANISER, event["id"])
    assert after["isOnlineMeeting"] is True and after["location"]["displayName"] == "Room 2"
    now = site.sim.get("Meeting Events", item["id"])
    assert now[JOIN] == after["onlineMeeting"]["joinUrl"] and "without Teams" not in now[STATUS]
