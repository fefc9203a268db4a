"""Rooms booked with the meeting (issue 23, part 1): the item's room column names a room of the tenant's
room list; the room is invited as a `resource` attendee and its booking policy answers (the Graph
simulator's rooms, devtools/sim/graph/rooms.py: the answer comes after the request, with a notification);
the site's room status column shows the answer, a move re-books the room, another room frees the old one,
an unknown room is a status, and a room is never one of the invitees. Dates are next week's (world time):
rooms book within 180 days (BookingWindowInDays)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from devtools import world_clock
from devtools.azurite import eventually
from devtools.stack import AAD_TENANT, CLIENT_ID, CLIENT_SECRET, GRAPH_ROLES, ORGANISER, OTHER_TENANT
from shared.config import ConfigError, settings_from
from shared.ops.site_check import FAIL, OK
from shared.features.rooms import find_room, rooms_of, status_words

from .scenario import new_event, new_meeting, settle, site_with, svc
from .test_conflicts import site_check_findings

ROOM, ROOM_2 = "room-412@contoso.test", "room-5@contoso.test"
BOARDROOM = "boardroom@facilities.test"  # a room of the tenant's list in a domain no site's people use
BOB = "bob@contoso.test"
COLUMNS = {"room": "Text", "room_status": "Text", "answers": "Text"}


def ensure_rooms(stack) -> None:
    """The tenant's rooms, added once for the session (before the app first reads the room list)."""
    for email, name in ((ROOM, "Room 4.12"), (ROOM_2, "Room 5"), (BOARDROOM, "Boardroom")):
        if stack.graph.user(email) is None:
            stack.graph.add_room(email, name, capacity=8, tenant=stack.graph.user(ORGANISER).tenant_id)


@pytest.fixture
def rooms(stack, site, monkeypatch):
    """acme/sales with `room` and `room_status` text columns (and the answers column), rooms on."""
    ensure_rooms(stack)
    return site_with(site, monkeypatch, COLUMNS, room_column="room", room_status_column="room_status",
                     answers_column="answers")


def at(day: int, hour: int) -> str:
    """`day` days after next Monday (world time), at `hour` UTC."""
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    monday = today + timedelta(days=7 - today.weekday())
    return f"{(monday + timedelta(days=day, hours=hour)):%Y-%m-%dT%H:%M:%S}Z"


def booked(stack, site, title: str, room: str, day: int, hour: int) -> tuple[dict, dict]:
    meeting = new_meeting(site)
    settle(stack)  # the organiser's subscription is in place: the room's answer is notified
    item = new_event(site, meeting, title=title, start_date=at(day, hour), end_date=at(day, hour + 1),
                     invitees=[site.principals[BOB]], guests=[], room=room)
    settle(stack)
    event = eventually(lambda: next((e for e in stack.graph.events(ORGANISER) if e["subject"] == title), None), 20,
                       what="the created event")
    return item, event


def status(site, item) -> str:
    return site.sim.get("Meeting Events", item["id"]).get("room_status") or ""


def shown(stack, site, item, words: str) -> None:
    eventually(lambda: status(site, item) == words, 20, what=f"room status {words!r} (now {status(site, item)!r})")


def holds(stack, room: str, event_id: str) -> list[tuple[datetime, datetime]]:
    """When the room's calendar holds the event (as getSchedule derives it)."""
    return [(h["start"], h["end"]) for h in stack.graph.calendar_holds(room) if h["id"] == event_id]


def test_an_event_with_a_room_invites_it_as_a_resource_and_shows_its_acceptance(stack, site, rooms):
    item, event = booked(stack, site, "Rooms: planning", "Room 4.12", 0, 9)
    attendees = {a["emailAddress"]["address"].lower(): a["type"] for a in event["attendees"]}
    assert attendees == {BOB: "required", ROOM: "resource"}
    shown(stack, site, item, "Room 4.12: accepted")
    assert holds(stack, ROOM, event["id"])  # the room's calendar has it
    # Bob answers: the answers column names Bob, never the room
    stack.graph.attendee_answers(ORGANISER, event["id"], BOB, "accepted")
    eventually(lambda: site.sim.get("Meeting Events", item["id"]).get("answers"), 20, what="the answers")
    answers = site.sim.get("Meeting Events", item["id"])["answers"]
    assert answers.startswith("Bob: accepted") and "Room" not in answers and "room-" not in answers


def test_a_room_already_booked_declines_and_the_site_shows_why(stack, site, rooms):
    stack.graph.outlook_create(BOB, subject="Rooms: Bob's own booking",
                               start={"dateTime": at(1, 10)[:-1], "timeZone": "UTC"},
                               end={"dateTime": at(1, 11)[:-1], "timeZone": "UTC"},
                               attendees=[{"emailAddress": {"address": ROOM_2}, "type": "resource"}])
    stack.graph.deliver_room_answers()
    item, event = booked(stack, site, "Rooms: clash", ROOM_2, 1, 10)
    shown(stack, site, item, "Room 5: declined: already booked")
    assert not holds(stack, ROOM_2, event["id"])  # a decline holds nothing
    assert "Room 5: declined: already booked" in [r["words"] for r in stack.graph.replies_from_rooms(ROOM_2, event["id"])]


def test_moving_the_event_rebooks_the_room_and_changing_the_room_frees_the_old_one(stack, site, rooms):
    item, event = booked(stack, site, "Rooms: weekly", "room-412@CONTOSO.test", 2, 9)
    shown(stack, site, item, "Room 4.12: accepted")
    site.sim.update_item("Meeting Events", item["id"], start_date=at(2, 13), end_date=at(2, 14))
    settle(stack)
    moved = datetime.fromisoformat(at(2, 13).replace("Z", "+00:00"))
    eventually(lambda: [s for s, _ in holds(stack, ROOM, event["id"])] == [moved], 20, what="the room at the new time")
    shown(stack, site, item, "Room 4.12: accepted")  # asked again, accepted again
    site.sim.update_item("Meeting Events", item["id"], room="Room 5")
    settle(stack)
    assert holds(stack, ROOM, event["id"]) == []  # the old room is free again
    shown(stack, site, item, "Room 5: accepted")
    assert holds(stack, ROOM_2, event["id"])
    attendees = stack.graph.events(ORGANISER)
    now = next(e for e in attendees if e["id"] == event["id"])["attendees"]
    assert {a["emailAddress"]["address"].lower() for a in now} == {BOB, ROOM_2}


def test_an_unknown_room_is_a_status_and_the_event_is_made_without_it(stack, site, rooms):
    item, event = booked(stack, site, "Rooms: atlantis", "Atlantis", 3, 9)
    assert [a["type"] for a in event["attendees"]] == ["required"]
    shown(stack, site, item, "Atlantis: not in the tenant's room list, not booked")
    assert site.sim.get("Meeting Events", item["id"])["sys_external_id"] == event["id"]  # the sync went through


def test_the_room_list_is_read_at_most_once_an_hour(stack, site, rooms):
    graph = svc().graph(svc().settings.sites["acme/sales"])
    settle(stack)
    stack.graph.deliver_room_answers()
    settle(stack)  # nothing of earlier tests still at work
    try:
        world_clock.install(world_clock.accelerated(1, datetime.now(timezone.utc) + timedelta(hours=2)))
        stack.graph.reset_log()
        assert find_room(graph.rooms(), "Room 4.12") == (ROOM, "Room 4.12")
        graph.rooms()
        assert stack.graph.count("GET", "/places/") == 1
        world_clock.install(world_clock.accelerated(1, datetime.now(timezone.utc) + timedelta(hours=2, minutes=59)))
        graph.rooms()
        assert stack.graph.count("GET", "/places/") == 1
        world_clock.install(world_clock.accelerated(1, datetime.now(timezone.utc) + timedelta(hours=3, minutes=1)))
        graph.rooms()
        assert stack.graph.count("GET", "/places/") == 2
    finally:
        world_clock.install(None)
    read = places_read(stack)
    graph.rooms()  # an answer kept from a later time is not trusted: read again on the real clock
    assert places_read(stack) == read + 1


def places_read(stack) -> int:
    """Room list reads answered (a token from the later time is refused once, then a fresh one is used)."""
    return sum(1 for e in stack.graph.log if e.method == "GET" and "/places/" in e.path and e.status == 200)


# -- settings and the site check ----------------------------------------------------------------------

def test_room_status_and_free_times_need_the_setting_they_build_on():
    base = {"tenant": "acme", "site": "sales", "rapid_url": "https://api.rapidplatform.com/api/acme/sales",
            "aad_tenant": AAD_TENANT, "client_id": CLIENT_ID, "client_secret_setting": "S"}
    env = {"AzureWebJobsStorage": "x", "S": "s", "WEBHOOK_SECRETS": "w" * 32}
    for change, names in (({"room_status_column": "rs"}, "room_status_column needs room_column"),
                          ({"free_times_column": "ft"}, "free_times_column needs conflicts_column"),
                          ({"working_hours": True}, "working_hours needs conflicts_column"),
                          ({"working_hours": "yes", "conflicts_column": "c"}, "working_hours must be true or false"),
                          ({"room_column": "title"}, "room_column must be the name of a column of its own")):
        with pytest.raises(ConfigError, match=names):
            settings_from({**env, "SITES": json.dumps([{**base, **change}])})
    site = settings_from({**env, "SITES": json.dumps([base])}).site("acme", "sales")
    assert (site.room_column, site.room_status_column, site.working_hours, site.free_times_column) == ("", "", False, "")


def test_the_site_check_asks_for_place_read_all_when_a_site_names_rooms(stack, site, monkeypatch):
    ensure_rooms(stack)
    monkeypatch.setitem(site.sim.schemas["Meeting Events"].columns, "room", "Text")
    site.sim.create_item("Meetings", title="Checked", organiser_id=site.principals[ORGANISER])
    rooms = "room list (GET /places/microsoft.graph.room)"
    assert rooms not in site_check_findings(stack, site)
    found = site_check_findings(stack, site, room_column="room")
    assert found[rooms].level == OK and found["Graph roles"].level == OK
    try:
        for tenant in (AAD_TENANT, OTHER_TENANT):
            stack.graph.register_app(tenant, CLIENT_ID, CLIENT_SECRET, roles=("Calendars.ReadWrite", "User.Read.All"))
        found = site_check_findings(stack, site, room_column="room")
        assert found["Graph roles"].level == FAIL and "missing Place.Read.All" in found["Graph roles"].detail
        assert found[rooms].level == FAIL and "Place.Read.All" in found[rooms].fix
    finally:
        for tenant in (AAD_TENANT, OTHER_TENANT):
            stack.graph.register_app(tenant, CLIENT_ID, CLIENT_SECRET, roles=GRAPH_ROLES)


# -- pure ------------------------------------------------------------------------------------------------

def test_a_room_is_found_by_its_address_or_its_name_and_nothing_else():
    rooms = ({"emailAddress": "Room-412@contoso.test", "displayName": "Room 4.12"},
             {"emailAddress": "room-5@contoso.test", "displayName": ""})
    assert find_room(rooms, " room 4.12 ") == (ROOM, "Room 4.12")
    assert find_room(rooms, "ROOM-5@contoso.test") == (ROOM_2, "")
    assert find_room(rooms, "Room 4") is None and find_room(rooms, "") is None


def test_the_rooms_of_an_event_are_its_resource_attendees_only():
    event = {"attendees": [
        {"type": "required", "emailAddress": {"address": BOB}, "status": {"response": "accepted"}},
        {"type": "resource", "emailAddress": {"address": "Room-412@contoso.test"}, "status": {"response": "declined"}},
        {"type": "resource", "emailAddress": {"address": ROOM_2}}]}
    assert rooms_of(event) == {ROOM: "declined", ROOM_2: "none"}


def test_the_room_status_words():
    assert status_words("Room 4.12", "accepted") == "Room 4.12: accepted"
    assert status_words("Room 4.12", "declined", True) == "Room 4.12: declined: already booked"
    assert status_words("Room 4.12", "declined") == "Room 4.12: declined"
    assert status_words("Room 4.12", "none") == "Room 4.12: asked, no answer yet"
