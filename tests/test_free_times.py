"""Working hours and times that suit everyone (issue 23, parts 2 and 3): the conflicts column also names an
invitee whose working hours the event falls outside, and a per-site column proposes up to three times in
the next working days when the organiser, the invitees and the room are all free within everyone's
working hours - all from the one getSchedule the conflicts check makes, widened over the days searched.
Checked against the simulator's calendars (`calendar_holds`). Dates are next week's (world time)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from devtools.azurite import eventually
from devtools.stack import ORGANISER
from shared.features.conflicts import Busy, conflicts_text
from shared.features.free_times import proposals_text
from shared.model.schedule import free_slots, hours_of, outside_hours

from .scenario import new_event, new_meeting, settle, site_with
from .test_rooms import BOARDROOM, ROOM, at, ensure_rooms

BOB, CAROL = "bob@contoso.test", "carol@contoso.test"
LONDON = ZoneInfo("Europe/London")
UTC = timezone.utc
COLUMNS = {"conflicts": "Text", "free_times": "Text", "room": "Text"}


@pytest.fixture
def free_times(stack, site, monkeypatch):
    """acme/sales with conflicts (working hours named), free times and rooms on; Carol works 11:00–17:00 UTC."""
    ensure_rooms(stack)
    stack.graph.set_working_hours(CAROL, "11:00", "17:00")
    yield site_with(site, monkeypatch, COLUMNS, conflicts_column="conflicts", free_times_column="free_times",
                    working_hours=True, room_column="room")
    stack.graph.set_working_hours(CAROL)  # the simulator's default again: 08:00–17:00 UTC


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def column(site, item, name: str) -> str:
    return site.sim.get("Meeting Events", item["id"]).get(name) or ""


def free_for(stack, email: str, start: datetime, end: datetime, event_id: str) -> bool:
    """Nothing but the event itself (or what shows free) in the mailbox's calendar then."""
    return not [h for h in stack.graph.calendar_holds(email) if h["id"] != event_id and h["status"] != "free"
                and h["start"] < end and h["end"] > start]


def test_a_conflicting_event_gets_three_times_free_for_everyone_then_cleared_when_moved_to_one(
        stack, site, free_times):
    for start, end in ((9, 10), (11, 12)):  # Bob's own appointments on the event's day
        stack.graph.outlook_create(BOB, subject="Free times: Bob's own", start={"dateTime": at(7, start)[:-1], "timeZone": "UTC"},
                                   end={"dateTime": at(7, end)[:-1], "timeZone": "UTC"})
    meeting = new_meeting(site)
    settle(stack)
    stack.graph.reset_log()
    item = new_event(site, meeting, title="Free times: review", start_date=at(7, 9), end_date=at(7, 10),
                     invitees=[site.principals[BOB], site.principals[CAROL]], guests=[], room="Room 4.12")
    settle(stack)
    assert stack.graph.count("POST", "/calendar/getSchedule") == 1  # one read for conflicts and free times
    event = next(e for e in stack.graph.events(ORGANISER) if e["subject"] == "Free times: review")
    conflicts = column(site, item, "conflicts")
    assert conflicts.startswith("Bob is busy ") and conflicts.endswith(" · Carol: outside working hours "
                                                                       "(11:00–17:00 their time)")
    # Carol from 11:00, Bob busy until 12:00: the first hour free for everyone is 12:00 UTC
    slots = [(utc(at(7, h)), utc(at(7, h + 1))) for h in (12, 13, 14)]
    assert column(site, item, "free_times") == proposals_text(slots, LONDON)
    local = slots[0][0].astimezone(LONDON)
    assert column(site, item, "free_times").startswith(f"Free for everyone: {local:%a} {local.day} {local:%b %H}:00–")
    for start, end in slots:  # really free, for each of them and the room, and within their hours
        assert all(free_for(stack, who, start, end, event["id"]) for who in (ORGANISER, BOB, CAROL, ROOM))
        assert time(11) <= start.time() and end.time() <= time(17) and start.weekday() < 5
    site.sim.update_item("Meeting Events", item["id"], start_date=at(7, 13), end_date=at(7, 14))
    settle(stack)
    eventually(lambda: column(site, item, "free_times") == "" and column(site, item, "conflicts") == "", 20,
               what="the columns cleared")


def test_a_site_bounded_to_its_people_still_reads_a_room_of_the_tenants_list_as_a_room(stack, site, free_times,
                                                                                      monkeypatch):
    """The site's bounds are for people: a room of the tenant's room list in another domain is read (review
    finding: the bounds check refused it inside getSchedule, and no conflicts or free times were written)."""
    site_with(site, monkeypatch, mailbox_domains=("contoso.test",))
    stack.graph.outlook_create(BOB, subject="Bounded rooms: Bob's own", start={"dateTime": at(8, 9)[:-1], "timeZone": "UTC"},
                               end={"dateTime": at(8, 10)[:-1], "timeZone": "UTC"})
    meeting = new_meeting(site)
    settle(stack)
    stack.graph.reset_log()
    item = new_event(site, meeting, title="Bounded rooms: review", start_date=at(8, 9), end_date=at(8, 10),
                     invitees=[site.principals[BOB]], guests=[], room="Boardroom")
    settle(stack)
    [asked] = [e.body["schedules"] for e in stack.graph.log if e.path.endswith("/calendar/getSchedule")]
    assert BOARDROOM in [a.lower() for a in asked]
    eventually(lambda: column(site, item, "conflicts").startswith("Bob is busy "), 20, what="the conflicts written")
    assert column(site, item, "free_times").startswith("Free for everyone: ")


def test_with_free_times_off_the_conflict_check_reads_only_the_events_time(stack, site, monkeypatch):
    site_with(site, monkeypatch, {"conflicts": "Text"}, conflicts_column="conflicts")
    meeting = new_meeting(site)
    settle(stack)
    stack.graph.reset_log()
    new_event(site, meeting, title="Free times: off", start_date=at(8, 9), end_date=at(8, 10), guests=[])
    settle(stack)
    [request] = [e for e in stack.graph.log if e.path.endswith("/calendar/getSchedule")]
    assert request.body["startTime"]["dateTime"].startswith(at(8, 9)[:16])
    assert request.body["endTime"]["dateTime"].startswith(at(8, 10)[:16])


# -- pure ------------------------------------------------------------------------------------------------

def hours(start="08:00:00.0000000", end="17:00:00.0000000", zone="UTC", days=("monday", "tuesday", "wednesday",
                                                                               "thursday", "friday")) -> dict:
    return {"daysOfWeek": list(days), "startTime": start, "endTime": end, "timeZone": {"name": zone}}


def moment(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2027, 5, day, hour, minute, tzinfo=UTC)  # 3 May 2027 is a Monday


def test_working_hours_are_read_in_their_own_zone():
    pacific = hours_of({"workingHours": hours(zone="Pacific Standard Time")})
    assert pacific.covers(moment(3, 15), moment(3, 16))        # 08:00 in Seattle (PDT, UTC-7)
    assert not pacific.covers(moment(3, 14), moment(3, 15))    # 07:00 there
    assert not pacific.covers(moment(8, 16), moment(8, 17))    # a Saturday
    assert pacific.words() == "08:00–17:00"
    assert hours_of({"workingHours": hours(zone="Customized Time Zone")}) is None  # a custom zone: not known
    assert hours_of({"error": {"responseCode": "5009"}}) is None


def test_only_invitees_outside_their_hours_are_named():
    schedules = [{"scheduleId": "Bob@x.test", "workingHours": hours()},
                 {"scheduleId": "carol@x.test", "workingHours": hours("11:00:00")},
                 {"scheduleId": "gina@partner.test", "error": {"responseCode": "5009"}}]
    found = outside_hours(schedules, {"bob@x.test", "carol@x.test", "gina@partner.test"}, moment(3, 9), moment(3, 10))
    assert list(found) == ["carol@x.test"]
    words = conflicts_text((Busy(moment(3, 9), moment(3, 10), "bob@x.test", "busy"),), {"bob@x.test": "Bob",
                           "carol@x.test": "Carol"}, UTC, date(2027, 5, 3), found)
    assert words == "Bob is busy 09:00–10:00 · Carol: outside working hours (11:00–17:00 their time)"


def test_free_slots_are_the_earliest_free_for_all_within_all_hours_never_the_event_itself():
    office = hours_of({"workingHours": hours()})
    late = hours_of({"workingHours": hours("10:00:00")})
    busy = {"bob": [(moment(3, 10), moment(3, 11, 30))], "room": [(moment(3, 13), moment(3, 14))]}
    found = free_slots(busy, {"alice": office, "bob": office, "carol": late, "guest": None},
                       (moment(3, 0), moment(4, 0)), timedelta(hours=1), timedelta(minutes=30),
                       avoid=(moment(3, 11, 30), moment(3, 12, 30)))
    # Carol from 10:00; Bob busy until 11:30; the event's own hour; the room busy 13:00–14:00
    assert found == [(moment(3, 14), moment(3, 15)), (moment(3, 15), moment(3, 16)), (moment(3, 16), moment(3, 17))]


def test_free_times_read_as_plain_words_in_the_sites_zone():
    slots = [(moment(3, 12), moment(3, 13)), (moment(4, 8, 30), moment(4, 9, 30))]
    assert proposals_text(slots, LONDON) == "Free for everyone: Mon 3 May 13:00–14:00 · Tue 4 May 09:30–10:30"
    assert proposals_text([], LONDON) == "No time free for everyone in the next 7 days"
