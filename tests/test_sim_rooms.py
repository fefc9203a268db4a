"""Contract checks of the Graph simulator's rooms and working hours (devtools/sim/graph/rooms.py,
working_hours.py): the places API, rooms invited as resource attendees answering by their booking policy
(at once or later, by the switch), and working hours and room bookings in getSchedule. Over real HTTP."""

from datetime import datetime, timedelta, timezone

import pytest

from devtools.azurite import eventually
from devtools.sim import GraphSimulator
from devtools.sim.graph import BookingPolicy
from devtools.sim.graph.folders import IMMUTABLE_IDS

from .test_sim_graph import ALICE, CLIENT, SECRET, TENANT, OTHER_TENANT, Receiver, subscribe

ROOM, ROOM_2 = "room-412@contoso.example", "room-5@contoso.example"
BOB = "bob@contoso.example"
ROLES = ("Calendars.ReadWrite", "Place.Read.All")


def simulator(**switches) -> GraphSimulator:
    sim = GraphSimulator(notification_backoff=0.01, **switches).start()
    sim.register_app(TENANT, CLIENT, SECRET, roles=ROLES)
    sim.add_user(TENANT, ALICE, "Alice")
    sim.add_user(TENANT, BOB, "Bob")
    sim.add_user(OTHER_TENANT, "olivia@fabrikam.example", "Olivia")
    sim.add_room(ROOM, "Room 4.12", capacity=8, building="Main", floor=4, tenant=TENANT)
    return sim


@pytest.fixture
def graph():
    sim = simulator(room_answers="at once")
    yield sim
    sim.stop()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture
def http(graph):
    return session(graph)


def session(graph, roles=None):
    s = graph.http_session()
    s.headers["Authorization"] = "Bearer " + graph.mint_token(TENANT, CLIENT, roles=roles)
    s.headers["Prefer"] = IMMUTABLE_IDS
    return s


def slot(day: int, hour: int, hours: int = 1) -> dict:
    """A time `day` days after next Monday (world time), from `hour` UTC, for `hours`."""
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    monday = today + timedelta(days=7 - today.weekday())
    start = monday + timedelta(days=day, hours=hour)
    return {"start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
            "end": {"dateTime": (start + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}}


def with_room(*rooms, subject="Planning", **times) -> dict:
    return {"subject": subject, **(times or slot(0, 9)),
            "attendees": [{"type": "required", "emailAddress": {"address": BOB}}] +
                         [{"type": "resource", "emailAddress": {"address": r, "name": r}} for r in rooms]}


def book(graph, http, body) -> dict:
    made = http.post(f"{graph.graph_url}/users/{ALICE}/events", json=body)
    assert made.status_code == 201, made.text
    return made.json()


def room_answer(event: dict, room: str = ROOM) -> str:
    return next(a["status"]["response"] for a in event["attendees"] if a["emailAddress"]["address"] == room)


def room_view(graph, http, day=0, start_hour=8, end_hour=13, room=ROOM) -> str:
    """The room's availabilityView, one digit an hour, from getSchedule."""
    answer = http.post(f"{graph.graph_url}/users/{ALICE}/calendar/getSchedule", json={
        "schedules": [room], "startTime": slot(day, start_hour)["start"],
        "endTime": slot(day, end_hour)["start"], "availabilityViewInterval": 60})
    assert answer.status_code == 200, answer.text
    return answer.json()["value"][0]["availabilityView"]


# -- the places API ------------------------------------------------------------------------------

def test_places_lists_the_tenants_rooms_as_the_published_page_shows(graph, http):
    graph.add_room("hidden@contoso.example", "Hidden", hidden_from_gal=True, tenant=TENANT)
    graph.add_room("away@fabrikam.example", "Elsewhere", tenant=OTHER_TENANT)
    answer = http.get(f"{graph.graph_url}/places/microsoft.graph.room")
    assert answer.status_code == 200
    body = answer.json()
    assert body["@odata.context"].endswith("/$metadata#places/microsoft.graph.room")
    [room] = body["value"]
    assert (room["emailAddress"], room["displayName"], room["capacity"], room["building"], room["floorNumber"],
            room["bookingType"]) == (ROOM, "Room 4.12", 8, "Main", 4, "standard")
    assert {"id", "address", "nickname", "isWheelChairAccessible", "tags"} <= set(room)
    selected = http.get(f"{graph.graph_url}/places/microsoft.graph.room?$select=displayName").json()["value"]
    assert selected == [{"id": room["id"], "displayName": "Room 4.12"}]


def test_places_pages_with_top_and_a_next_link(graph, http):
    for n in range(4):
        graph.add_room(f"r{n}@contoso.example", f"Room {n}", tenant=TENANT)
    first = http.get(f"{graph.graph_url}/places/microsoft.graph.room?$top=2&$count=true").json()
    assert first["@odata.count"] == 5 and len(first["value"]) == 2
    second = http.get(first["@odata.nextLink"]).json()
    third = http.get(second["@odata.nextLink"]).json()
    assert "@odata.nextLink" not in third
    names = [r["displayName"] for page in (first, second, third) for r in page["value"]]
    assert names == ["Room 4.12", "Room 0", "Room 1", "Room 2", "Room 3"]
    assert "@odata.nextLink" not in http.get(f"{graph.graph_url}/places/microsoft.graph.room").json()


def test_places_needs_place_read_all(graph):
    calendars_only = session(graph, roles=["Calendars.ReadWrite"])
    for path in ("/places/microsoft.graph.room", "/places/microsoft.graph.roomlist"):
        refused = calendars_only.get(graph.graph_url + path)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "ErrorAccessDenied"
        assert session(graph, roles=["Place.Read.All"]).get(graph.graph_url + path).status_code == 200


def test_the_rooms_of_a_room_list_are_read_by_the_lists_address(graph, http):
    graph.add_room_list("main-building@contoso.example", "Main building", tenant=TENANT)
    graph.add_room(ROOM_2, "Room 5", room_list="main-building@contoso.example", tenant=TENANT)
    lists = http.get(f"{graph.graph_url}/places/microsoft.graph.roomlist").json()
    assert lists["@odata.context"].endswith("#places/microsoft.graph.roomList")
    assert [(rl["emailAddress"], rl["displayName"]) for rl in lists["value"]] == [
        ("main-building@contoso.example", "Main building")]
    rooms = http.get(f"{graph.graph_url}/places/main-building@contoso.example/microsoft.graph.roomlist/rooms").json()
    assert [r["emailAddress"] for r in rooms["value"]] == [ROOM_2]
    assert http.get(f"{graph.graph_url}/places/nowhere@contoso.example/microsoft.graph.roomlist/rooms"
                    ).status_code == 404


# -- rooms invited as resource attendees -------------------------------------------------------------

def test_a_free_room_invited_as_a_resource_accepts(graph, http):
    event = book(graph, http, with_room(ROOM))
    assert room_answer(event) == "accepted"
    assert room_answer(event, BOB) == "none"              # people answer for themselves
    assert room_view(graph, http) == "02000"              # the room's calendar holds the meeting, busy
    [reply] = graph.replies_from_rooms(ROOM)
    assert (reply["response"], reply["organiser"], reply["words"]) == ("accepted", ALICE, "Room 4.12: accepted")


def test_a_booked_room_declines_a_second_meeting_at_the_same_time(graph, http):
    book(graph, http, with_room(ROOM))
    second = book(graph, http, with_room(ROOM, subject="Clash", **slot(0, 9, hours=2)))
    assert room_answer(second) == "declined"
    assert graph.replies_from_rooms(event_id=second["id"])[0]["words"] == "Room 4.12: declined: already booked"
    assert room_view(graph, http) == "02000"              # a decline is not in the room's calendar
    read = http.get(f"{graph.graph_url}/users/{ALICE}/events/{second['id']}").json()
    assert room_answer(read) == "declined"                # the organiser's event keeps the room's answer


def test_a_room_allowing_conflicts_accepts_a_second_meeting(graph, http):
    graph.set_room_policy(ROOM, allow_conflicts=True)
    book(graph, http, with_room(ROOM))
    assert room_answer(book(graph, http, with_room(ROOM, subject="Also"))) == "accepted"


def test_a_room_declines_outside_its_booking_window_and_over_its_longest_meeting(graph, http):
    graph.set_room_policy(ROOM, booking_window_days=3, maximum_duration_minutes=90)
    assert room_answer(book(graph, http, with_room(ROOM, **slot(30, 9)))) == "declined"
    assert room_answer(book(graph, http, with_room(ROOM, **slot(0, 9, hours=2)))) == "declined"
    words = [r["words"] for r in graph.replies_from_rooms(ROOM)]
    assert words == ["Room 4.12: declined: outside the booking window", "Room 4.12: declined: too long"]
    graph.set_room_policy(ROOM, booking_window_days=180, maximum_duration_minutes=1440, booking_type="reserved")
    assert room_answer(book(graph, http, with_room(ROOM, **slot(1, 9)))) == "declined"


@pytest.mark.parametrize("processing, view", [("None", "00000"), ("AutoUpdate", "01000")])
def test_a_room_without_automatic_acceptance_leaves_the_meeting_unanswered(graph, http, processing, view):
    graph.set_room_policy(ROOM, automate_processing=processing)
    event = book(graph, http, with_room(ROOM))
    assert room_answer(event) == "none" and graph.replies_from_rooms(ROOM) == []
    assert room_view(graph, http) == view                 # AutoUpdate: tentative in its calendar; None: not there


def test_moving_the_event_rebooks_the_room_and_frees_the_old_slot(graph, http):
    first = book(graph, http, with_room(ROOM))
    assert room_answer(book(graph, http, with_room(ROOM, subject="Clash"))) == "declined"
    moved = http.patch(f"{graph.graph_url}/users/{ALICE}/events/{first['id']}", json=slot(0, 11)).json()
    assert room_answer(moved) == "accepted"               # asked again at the new time
    assert room_view(graph, http) == "00020"              # 11:00 held, 09:00 free again
    [held] = graph.calendar_holds(ROOM)
    assert (held["id"], held["status"], held["start"].hour) == (first["id"], "busy", 11)
    assert room_answer(book(graph, http, with_room(ROOM, subject="Now free"))) == "accepted"
    back = http.patch(f"{graph.graph_url}/users/{ALICE}/events/{first['id']}", json=slot(0, 9)).json()
    assert room_answer(back) == "declined"                # the old slot was taken meanwhile
    assert room_view(graph, http) == "02000"


def test_removing_the_room_or_cancelling_the_event_frees_the_room(graph, http):
    graph.add_room(ROOM_2, "Room 5", tenant=TENANT)
    event = book(graph, http, with_room(ROOM, ROOM_2))
    assert (room_answer(event), room_answer(event, ROOM_2)) == ("accepted", "accepted")
    kept = [a for a in event["attendees"] if a["emailAddress"]["address"] != ROOM]
    changed = http.patch(f"{graph.graph_url}/users/{ALICE}/events/{event['id']}", json={"attendees": kept}).json()
    assert room_answer(changed, ROOM_2) == "accepted"     # the room that stays keeps its answer
    assert room_view(graph, http) == "00000" and room_view(graph, http, room=ROOM_2) == "02000"
    assert http.post(f"{graph.graph_url}/users/{ALICE}/events/{event['id']}/cancel", json={}).status_code == 202
    assert room_view(graph, http, room=ROOM_2) == "00000"


def test_a_room_answers_later_with_an_updated_notification_by_default(receiver):
    graph = simulator(room_answer_delay=None)
    try:
        http = session(graph)
        assert subscribe(graph, http, receiver.url).status_code == 201
        event = book(graph, http, with_room(ROOM))
        assert room_answer(event) == "none" and graph.pending_room_answers() == 1
        assert room_view(graph, http) == "01000"          # tentative in the room's calendar until it answers
        receiver.wait_for(1)
        assert graph.deliver_room_answers() == 1
        notes = [n for _, body in receiver.wait_for(2) for n in body["value"]]
        assert [n["changeType"] for n in notes] == ["created", "updated"]
        assert notes[1]["resourceData"]["id"] == event["id"]
        read = http.get(f"{graph.graph_url}/users/{ALICE}/events/{event['id']}").json()
        assert room_answer(read) == "accepted" and read["changeKey"] != event["changeKey"]
    finally:
        graph.stop()


def test_a_later_answer_arrives_by_itself_after_the_delay():
    graph = simulator(room_answer_delay=0.05)
    try:
        http = session(graph)
        event = book(graph, http, with_room(ROOM))
        assert room_answer(event) == "none"
        eventually(lambda: room_answer(graph.get_event(ALICE, event["id"])) == "accepted", timeout=5,
                   what="the room's answer")
    finally:
        graph.stop()


def test_a_room_answer_may_reach_the_event_without_a_notification(receiver):
    graph = simulator(room_answers="at once", room_answer_notified=False)
    try:
        http = session(graph)
        subscribe(graph, http, receiver.url)
        event = book(graph, http, with_room(ROOM))
        assert room_answer(event) == "accepted"
        graph.outlook_update(ALICE, event["id"], subject="Later edit")  # a marker
        graph.wait_idle()
        notes = sorted(n["changeType"] for _, body in receiver.wait_for(2) for n in body["value"])
        assert notes == ["created", "updated"]             # the marker's update only
    finally:
        graph.stop()


def test_a_room_of_another_tenant_is_an_ordinary_address(graph, http):
    graph.add_room("away@fabrikam.example", "Elsewhere", tenant=OTHER_TENANT)
    event = book(graph, http, with_room("away@fabrikam.example"))
    assert room_answer(event, "away@fabrikam.example") == "none" and graph.replies_from_rooms() == []


# -- getSchedule: working hours, rooms -----------------------------------------------------------------

def test_get_schedule_carries_working_hours(graph, http):
    graph.set_working_hours(BOB, start="09:00", end="17:30", days=["monday", "tuesday", "thursday"],
                            time_zone="W. Europe Standard Time")
    answer = http.post(f"{graph.graph_url}/users/{ALICE}/calendar/getSchedule", json={
        "schedules": [ALICE, BOB, ROOM], **{k + "Time": v for k, v in slot(0, 8).items()}},
        headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'}).json()
    hours = {i["scheduleId"]: i["workingHours"] for i in answer["value"]}
    assert hours[ALICE] == hours[ROOM] == {            # the published example's Monday to Friday, 8 to 5
        "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"], "startTime": "08:00:00.0000000",
        "endTime": "17:00:00.0000000", "timeZone": {"name": "UTC"}}
    assert hours[BOB] == {"daysOfWeek": ["monday", "tuesday", "thursday"], "startTime": "09:00:00.0000000",
                          "endTime": "17:30:00.0000000", "timeZone": {"name": "W. Europe Standard Time"}}


def test_get_schedule_answers_a_rooms_availability_with_its_bookings(graph, http):
    book(graph, http, with_room(ROOM, subject="Board", **slot(0, 10)))
    answer = http.post(f"{graph.graph_url}/users/{ALICE}/calendar/getSchedule", json={
        "schedules": [ROOM], "startTime": slot(0, 8)["start"], "endTime": slot(0, 12)["start"],
        "availabilityViewInterval": 60}).json()
    [room] = answer["value"]
    assert room["availabilityView"] == "0020"
    assert [(i["status"], i["subject"], i["start"]["dateTime"][11:16]) for i in room["scheduleItems"]] == [
        ("busy", "Board", "10:00")]


@pytest.mark.parametrize("call, message", [
    (lambda g: g.set_working_hours(BOB, start="17:00", end="09:00"), "must be after"),
    (lambda g: g.set_working_hours(BOB, start="9am"), "time of day"),
    (lambda g: g.set_working_hours(BOB, days=["funday"]), "days of the week"),
    (lambda g: g.set_working_hours(BOB, time_zone="Mars/Olympus"), "not a time zone"),
    (lambda g: g.add_room("big@contoso.example", "Big", capacity="lots", tenant=TENANT), "capacity"),
    (lambda g: g.add_room("x@contoso.example", "X", policy={"automate_processing": "Sometimes"}, tenant=TENANT),
     "automate_processing"),
    (lambda g: g.add_room("x@contoso.example", "X", room_list="none@contoso.example", tenant=TENANT), "no room list"),
    (lambda g: g.add_room(ALICE, "Alice's room", tenant=TENANT), "already a mailbox"),
    (lambda g: g.set_room_policy(ROOM, booking_window_days=5000), "0 through 1080"),
    (lambda g: g.set_room_policy(ROOM, colour="red"), "not booking policy settings"),
])
def test_bad_room_or_working_hours_input_is_refused_and_changes_nothing(graph, call, message):
    before = (dict(graph.working_hours), len(graph.rooms), len(graph.users), graph.rooms[graph.user(ROOM).id].policy)
    with pytest.raises(ValueError, match=message):
        call(graph)
    assert (dict(graph.working_hours), len(graph.rooms), len(graph.users),
            graph.rooms[graph.user(ROOM).id].policy) == before
    assert graph.rooms[graph.user(ROOM).id].policy == BookingPolicy()


def test_a_meeting_booked_in_outlook_or_deleted_books_and_frees_the_room_the_same_way(graph, http):
    made = graph.outlook_create(ALICE, **with_room(ROOM))
    assert room_answer(made) == "accepted" and room_view(graph, http) == "02000"
    assert http.delete(f"{graph.graph_url}/users/{ALICE}/events/{made['id']}").status_code == 204
    assert room_view(graph, http) == "00000" and graph.calendar_holds(ROOM) == []


def test_a_later_answer_to_a_moved_meeting_is_asked_again_and_decided_at_the_new_time():
    graph = simulator(room_answer_delay=None)
    try:
        http = session(graph)
        event = book(graph, http, with_room(ROOM))
        graph.deliver_room_answers()
        blocker = book(graph, http, with_room(ROOM, subject="Blocker", **slot(0, 11)))
        graph.deliver_room_answers()
        assert room_answer(graph.get_event(ALICE, blocker["id"])) == "accepted"
        moved = http.patch(f"{graph.graph_url}/users/{ALICE}/events/{event['id']}", json=slot(0, 11)).json()
        assert room_answer(moved) == "none" and graph.pending_room_answers() == 1
        assert graph.deliver_room_answers() == 1
        assert room_answer(graph.get_event(ALICE, event["id"])) == "declined"
        assert room_view(graph, http) == "00020"            # only the blocker: the old 09:00 slot is free
    finally:
        graph.stop()
