"""Conflicts seen before they hurt (issue 15, part 2): when an event is created or moved, one getSchedule
reads who is busy then, and the site's conflicts column says it in plain words (or is cleared); the sync
never waits on it nor fails because of it. Dates here are in May 2027: Europe/London is UTC+1 then, so the
words show local times."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

import pytest
import requests

from devtools.azurite import eventually
from devtools.sim import GraphSimulator
from devtools.stack import AAD_TENANT, CLIENT_ID, CLIENT_SECRET, GRAPH_ROLES, ORGANISER, OTHER_TENANT
from shared.config import ConfigError, settings_from
from shared.features.conflicts import Busy, OwnCopy, conflicts_text, overlaps, own_copies
from shared.model.mapping import Synced
from shared.ops.site_check import FAIL, OK, check_env

from .scenario import column_writes, new_event, new_meeting, settle, site_with, svc

COLUMN = "conflicts"
BOB, CAROL = "bob@contoso.test", "carol@contoso.test"
UTC = timezone.utc


@pytest.fixture
def conflicts_column(stack, site, monkeypatch):
    """acme/sales with a `conflicts` text column its designer added, named in SITES `conflicts_column`."""
    site_with(site, monkeypatch, {COLUMN: "Text"}, conflicts_column=COLUMN)
    return COLUMN


def schedule_requests(stack) -> int:
    return stack.graph.count("POST", "/calendar/getSchedule")


def column(site, item_id) -> str | None:
    return site.sim.get("Meeting Events", item_id).get(COLUMN)


def when(day: int, hour: int, minute: int = 0) -> dict:
    return {"dateTime": f"2027-05-{day:02d}T{hour:02d}:{minute:02d}:00", "timeZone": "UTC"}


def busy_in_outlook(stack, mailbox: str, subject: str, day: int, start: tuple, end: tuple, **fields) -> dict:
    """An event of the mailbox's own (not the site's), e.g. a dentist appointment or a meeting it organises."""
    return stack.graph.outlook_create(mailbox, subject=subject, start=when(day, *start), end=when(day, *end), **fields)


def synced(stack, site, title: str, day: int, start: int, end: int, invitees=(BOB, CAROL)) -> tuple[dict, dict]:
    item = new_event(site, new_meeting(site), title=title, start_date=f"2027-05-{day:02d}T{start:02d}:00:00Z",
                     end_date=f"2027-05-{day:02d}T{end:02d}:00:00Z",
                     invitees=[site.principals[e] for e in invitees])
    settle(stack)
    event = eventually(lambda: next((e for e in stack.graph.events(ORGANISER) if e["subject"] == title), None), 20,
                       what="the created event")
    return item, event


def move(stack, site, item, day: int, start: int, end: int) -> None:
    site.sim.update_item("Meeting Events", item["id"], start_date=f"2027-05-{day:02d}T{start:02d}:00:00Z",
                         end_date=f"2027-05-{day:02d}T{end:02d}:00:00Z")
    settle(stack)


# -- through the app ---------------------------------------------------------------------------------

def test_an_invitee_busy_at_the_new_time_is_named_in_the_conflicts_column_after_a_move(stack, site, conflicts_column):
    item, _ = synced(stack, site, "Conflicts: roadmap", 3, 8, 9)
    assert column_writes(stack, item["id"], COLUMN) == []  # nobody is busy then: nothing to say, nothing written
    busy_in_outlook(stack, BOB, "Dentist", 3, (13, 0), (13, 30))
    # Bob organises a meeting of his own and invites Carol: she holds it, tentatively, until she answers
    busy_in_outlook(stack, BOB, "Bob's 1:1", 3, (13, 45), (14, 15), attendees=[{"emailAddress": {"address": CAROL}}])
    move(stack, site, item, 3, 13, 14)
    assert column(site, item["id"]) == ("Bob is busy 14:00–14:30 · Bob is busy 14:45–15:15 · "
                                        "Carol is busy 14:45–15:15 (tentative)")
    assert len(column_writes(stack, item["id"], COLUMN)) == 1
    event = next(e for e in stack.graph.events(ORGANISER) if e["subject"] == "Conflicts: roadmap")
    assert event["start"]["dateTime"].startswith("2027-05-03T13:00:00")  # the move itself went through


def test_the_column_is_cleared_when_the_event_moves_to_a_free_slot(stack, site, conflicts_column):
    stack.graph.outlook_create(CAROL, subject="Holiday", isAllDay=True, showAs="oof",
                               start={"dateTime": "2027-05-04T00:00:00", "timeZone": "GMT Standard Time"},
                               end={"dateTime": "2027-05-05T00:00:00", "timeZone": "GMT Standard Time"})
    item, _ = synced(stack, site, "Conflicts: budget", 4, 9, 10)
    assert column(site, item["id"]) == "Carol is out of office all day"
    move(stack, site, item, 6, 9, 10)
    assert column(site, item["id"]) == ""
    assert column_writes(stack, item["id"], COLUMN) == ["Carol is out of office all day", ""]
    move(stack, site, item, 7, 9, 10)  # still free: nothing new to say, nothing written
    assert len(column_writes(stack, item["id"], COLUMN)) == 2


def test_with_conflicts_off_no_getschedule_request_is_made(stack, site):
    assert not svc().settings.sites["acme/sales"].conflicts_column
    busy_in_outlook(stack, BOB, "Gym", 10, (9, 0), (10, 0))
    stack.graph.reset_log()
    item, _ = synced(stack, site, "Conflicts: off", 10, 8, 9)
    move(stack, site, item, 10, 9, 10)
    assert schedule_requests(stack) == 0 and stack.graph.count("PATCH", "/events/") == 1
    assert COLUMN not in site.sim.get("Meeting Events", item["id"])


def test_one_getschedule_per_create_and_per_move_from_either_side_and_none_for_other_edits(
        stack, site, conflicts_column):
    stack.graph.reset_log()
    item, event = synced(stack, site, "Conflicts: counted", 11, 8, 9)
    assert schedule_requests(stack) == 1
    site.sim.update_item("Meeting Events", item["id"], title="Conflicts: counted, renamed", location="Room 9")
    settle(stack)
    assert schedule_requests(stack) == 1  # no move: no free/busy read
    move(stack, site, item, 11, 10, 11)
    assert schedule_requests(stack) == 2
    busy_in_outlook(stack, CAROL, "Review", 11, (12, 0), (12, 30))
    # the organiser moves it in Outlook: the site follows, and the column says who is busy at the new time
    stack.graph.outlook_update(ORGANISER, event["id"], start=when(11, 12), end=when(11, 13))
    eventually(lambda: column(site, item["id"]) == "Carol is busy 13:00–13:30", 20, what="the conflicts after the "
               "Outlook move")
    settle(stack)
    assert schedule_requests(stack) == 3
    assert site.sim.get("Meeting Events", item["id"])["start_date"].startswith("2027-05-11T12:00:00")


@pytest.mark.parametrize("status", [403, 429, 503])
def test_a_refused_getschedule_leaves_the_sync_done_and_the_column_untouched(stack, site, conflicts_column, status,
                                                                             caplog):
    day = {403: 12, 429: 13, 503: 14}[status]
    busy_in_outlook(stack, BOB, "Interview", day, (8, 0), (9, 0))
    item, event = synced(stack, site, f"Conflicts: refused {status}", day, 8, 9)
    written = column(site, item["id"])
    assert written == "Bob is busy 09:00–10:00"
    stack.graph.reset_log()
    stack.graph.fail_next(1, status, path_contains="getSchedule")
    with caplog.at_level(logging.WARNING, logger="rapid_meetings"):
        move(stack, site, item, day, 15, 16)
    after = next(e for e in stack.graph.events(ORGANISER) if e["id"] == event["id"])
    assert after["start"]["dateTime"].startswith(f"2027-05-{day}T15:00:00")  # the sync did its work, once
    assert stack.graph.count("PATCH", "/events/") == 1 and schedule_requests(stack) == 1
    assert column(site, item["id"]) == written  # untouched: it still says what was last known
    assert any("conflicts not checked" in r.getMessage() for r in caplog.records)
    assert all(f.get("item") != str(item["id"]) for f in svc().ops.failures("acme/sales"))


@pytest.mark.parametrize("details", ["subject", "none"])
def test_the_events_own_slot_is_never_reported_as_a_conflict(stack, site, conflicts_column, details):
    stack.graph.free_busy_details = details
    try:
        day = 17 if details == "subject" else 18
        item, event = synced(stack, site, f"Conflicts: own slot {details}", day, 8, 9)
        # Bob accepts (his copy shows busy), Carol has not answered (her copy is tentative)
        stack.graph.attendee_answers(ORGANISER, event["id"], BOB, "accepted")
        settle(stack)
        move(stack, site, item, day, 10, 11)
        move(stack, site, item, day, 10, 12)   # longer: still only itself at that time
        assert column_writes(stack, item["id"], COLUMN) == []
        # another meeting of Bob's at exactly the time it moves to is a conflict all the same
        busy_in_outlook(stack, BOB, "Same time, other meeting", day, (13, 0), (14, 0))
        move(stack, site, item, day, 13, 14)
        assert column(site, item["id"]) == "Bob is busy 14:00–15:00"
    finally:
        stack.graph.free_busy_details = "subject"


def test_an_all_day_event_is_not_its_own_conflict_and_names_an_all_day_absence(stack, site, conflicts_column):
    stack.graph.outlook_create(BOB, subject="Conference", isAllDay=True, showAs="workingElsewhere",
                               start={"dateTime": "2027-05-25T00:00:00", "timeZone": "GMT Standard Time"},
                               end={"dateTime": "2027-05-26T00:00:00", "timeZone": "GMT Standard Time"})
    # all day on 24 May in Europe/London: midnight to midnight, 23:00 UTC the day before
    item = new_event(site, new_meeting(site), title="Conflicts: all day", all_day=True,
                     start_date="2027-05-23T23:00:00Z", end_date="2027-05-24T23:00:00Z",
                     invitees=[site.principals[BOB], site.principals[CAROL]])
    settle(stack)
    assert column_writes(stack, item["id"], COLUMN) == []
    site.sim.update_item("Meeting Events", item["id"], start_date="2027-05-24T23:00:00Z",
                         end_date="2027-05-25T23:00:00Z")
    settle(stack)
    assert column(site, item["id"]) == "Bob is working elsewhere all day"


# -- the decisions, pure ------------------------------------------------------------------------------

def at(hour: int, minute: int = 0, day: int = 3) -> datetime:
    return datetime(2027, 5, day, hour, minute, tzinfo=UTC)


def item(status: str, start: datetime, end: datetime, subject: str | None = None) -> dict:
    out = {"status": status, "start": {"dateTime": f"{start:%Y-%m-%dT%H:%M:%S}.0000000", "timeZone": "UTC"},
           "end": {"dateTime": f"{end:%Y-%m-%dT%H:%M:%S}.0000000", "timeZone": "UTC"}}
    return out if subject is None else {**out, "subject": subject}


def content(start: datetime, end: datetime, attendees=(BOB, CAROL), title: str = "Roadmap") -> Synced:
    return Synced(title, "", f"{start:%Y-%m-%dT%H:%M:%SZ}", f"{end:%Y-%m-%dT%H:%M:%SZ}", False, "", attendees)


def test_an_invitees_copy_still_at_the_time_and_title_before_the_move_is_not_a_conflict():
    before, now = content(at(9), at(10), title="Roadmap draft"), content(at(9, 30), at(10, 30))
    event = {"showAs": "busy", "attendees": [
        {"emailAddress": {"address": BOB}, "status": {"response": "accepted"}},
        {"emailAddress": {"address": CAROL}, "status": {"response": "declined"}}]}
    copies = own_copies(ORGANISER, now, event, before)
    assert copies[ORGANISER] == OwnCopy(((at(9, 30), at(10, 30)),), "busy", ("Roadmap",))
    assert copies[BOB].status == "busy" and CAROL not in copies  # who declined holds no copy
    schedules = [
        {"scheduleId": ORGANISER, "scheduleItems": [item("busy", at(9, 30), at(10, 30), "Roadmap")]},
        {"scheduleId": BOB, "scheduleItems": [item("Busy", at(9), at(10), "Roadmap draft")]},  # not updated yet
        {"scheduleId": CAROL, "scheduleItems": [item("busy", at(9, 30), at(10, 30))]},   # not ours: she declined
        {"scheduleId": "guest@partner.test", "error": {"message": "Unable to resolve", "responseCode": "5009"}}]
    assert overlaps(schedules, (at(9, 30), at(10, 30)), copies) == (
        Busy(at(9, 30), at(10, 30), CAROL, "busy"),)


def test_a_meeting_at_the_same_time_with_another_subject_is_a_conflict_and_free_never_is():
    now = content(at(9), at(10))
    copies = own_copies(ORGANISER, now, {"showAs": "busy"})
    schedules = [{"scheduleId": ORGANISER, "scheduleItems": [
        item("busy", at(9), at(10), "Roadmap"), item("busy", at(9), at(10), "Board meeting"),
        item("free", at(9), at(10), "Lunch?"), item("workingElsewhere", at(8), at(18)),
        item("tentative", at(10), at(11), "Right after: no overlap")]}]
    found = overlaps(schedules, (at(9), at(10)), copies)
    assert found == (Busy(at(8), at(18), ORGANISER, "workingElsewhere"), Busy(at(9), at(10), ORGANISER, "busy"))


def test_the_words_name_people_in_the_sites_zone_with_dates_off_the_events_day():
    london = ZoneInfo("Europe/London")
    found = (Busy(at(8), at(8, 30), BOB, "tentative"), Busy(at(23, day=2), at(23, day=4), CAROL, "oof"),
             Busy(at(22, day=3), at(1, day=4), "x@contoso.test", "workingElsewhere"))
    names = {BOB: "Bob", CAROL: "Carol", "x@contoso.test": "Xena"}
    assert conflicts_text(found, names, london, date(2027, 5, 3)) == (
        "Bob is busy 09:00–09:30 (tentative) · Carol is out of office 3 May–4 May · "
        "Xena is working elsewhere 3 May 23:00–4 May 02:00")


# -- the Graph simulator's getSchedule, as published ---------------------------------------------------

TENANT, APP = "11111111-1111-1111-1111-111111111111", "aaaaaaaa-0000-0000-0000-000000000002"


@pytest.fixture(scope="module")
def graph():
    sim = GraphSimulator().start()
    sim.register_app(TENANT, APP, "s")
    for upn in ("alice@contoso.example", "bob@contoso.example", "carol@contoso.example", "dan@contoso.example"):
        sim.add_user(TENANT, upn, upn.split("@")[0].title())
    sim.add_user("22222222-2222-2222-2222-222222222222", "olivia@fabrikam.example", "Olivia")
    meeting = sim.outlook_create("alice@contoso.example", subject="Plan", showAs="busy",
                                 start={"dateTime": "2027-05-03T09:00:00", "timeZone": "UTC"},
                                 end={"dateTime": "2027-05-03T10:00:00", "timeZone": "UTC"},
                                 attendees=[{"emailAddress": {"address": a}} for a in
                                            ("bob@contoso.example", "carol@contoso.example", "dan@contoso.example")])
    sim.attendee_answers("alice@contoso.example", meeting["id"], "bob@contoso.example", "accepted")
    sim.attendee_answers("alice@contoso.example", meeting["id"], "dan@contoso.example", "declined")
    sim.outlook_create("carol@contoso.example", subject="Private", sensitivity="private", showAs="oof",
                       start={"dateTime": "2027-05-03T09:30:00", "timeZone": "UTC"},
                       end={"dateTime": "2027-05-03T11:00:00", "timeZone": "UTC"})
    yield sim
    sim.stop()


def get_schedule(graph, body: dict, roles=None, prefer: str | None = None) -> requests.Response:
    session = graph.http_session()
    headers = {"Authorization": "Bearer " + graph.mint_token(TENANT, APP, roles=roles)}
    if prefer:
        headers["Prefer"] = f'outlook.timezone="{prefer}"'
    return session.post(graph.graph_url + "/users/alice@contoso.example/calendar/getSchedule", json=body,
                        headers=headers, timeout=10)


def period(start="2027-05-03T08:00:00", end="2027-05-03T12:00:00", zone="UTC", **more) -> dict:
    return {"schedules": ["alice@contoso.example", "bob@contoso.example", "carol@contoso.example",
                          "dan@contoso.example", "olivia@fabrikam.example"],
            "startTime": {"dateTime": start, "timeZone": zone}, "endTime": {"dateTime": end, "timeZone": zone},
            "availabilityViewInterval": 60, **more}


def test_the_simulated_getschedule_derives_each_invitees_copy_from_their_answer(graph):
    answer = get_schedule(graph, period(), prefer="W. Europe Standard Time")
    assert answer.status_code == 200
    info = {i["scheduleId"]: i for i in answer.json()["value"]}
    assert info["alice@contoso.example"]["availabilityView"] == "0200"
    assert info["bob@contoso.example"]["availabilityView"] == "0200"       # accepted: the organiser's showAs
    assert info["carol@contoso.example"]["availabilityView"] == "0330"     # no answer: tentative, under her oof
    assert info["dan@contoso.example"]["availabilityView"] == "0000"       # declined: not in his calendar
    assert info["olivia@fabrikam.example"] == {"scheduleId": "olivia@fabrikam.example", "error": {
        "message": "Unable to resolve e-mail address olivia@fabrikam.example to an Active Directory object.",
        "responseCode": "5009"}}
    carol = info["carol@contoso.example"]["scheduleItems"]
    assert [(i["status"], i["start"]["dateTime"], i["start"]["timeZone"]) for i in carol] == [
        ("tentative", "2027-05-03T11:00:00.0000000", "W. Europe Standard Time"),
        ("oof", "2027-05-03T11:30:00.0000000", "W. Europe Standard Time")]
    assert carol[0]["subject"] == "Plan" and carol[1]["isPrivate"] is True and "subject" not in carol[1]


@pytest.mark.parametrize("roles, status", [(("Calendars.ReadBasic",), 200), (("Calendars.Read",), 200),
                                           (("User.Read.All",), 403)])
def test_the_simulated_getschedule_needs_a_calendars_permission(graph, roles, status):
    assert get_schedule(graph, period(), roles=roles).status_code == status


@pytest.mark.parametrize("change, message", [
    ({"schedules": [f"u{i}@contoso.example" for i in range(21)]}, "at most 20 schedules"),
    ({"endTime": {"dateTime": "2027-07-04T08:00:00", "timeZone": "UTC"}}, "less than 62 days"),
    ({"availabilityViewInterval": 4}, "from 5 to 1440"),
    ({"startTime": {"dateTime": "2027-05-03T08:00:00", "timeZone": "Europe/Amsterdam"}}, "TimeZone value"),
])
def test_the_simulated_getschedule_refuses_what_the_docs_rule_out(graph, change, message):
    answer = get_schedule(graph, {**period(), **change})
    assert answer.status_code == 400 and message in answer.json()["error"]["message"]


# -- settings and the site check -----------------------------------------------------------------------

def test_the_conflicts_column_must_be_a_column_of_its_own():
    base = {"tenant": "acme", "site": "sales", "rapid_url": "https://api.rapidplatform.com/api/acme/sales",
            "aad_tenant": AAD_TENANT, "client_id": CLIENT_ID, "client_secret_setting": "S"}
    env = {"AzureWebJobsStorage": "x", "S": "s", "WEBHOOK_SECRETS": "w" * 32}
    for change, names in (({"conflicts_column": "start_date"}, "conflicts_column must be the name of a column"),
                          ({"conflicts_column": "x", "answers_column": "x"}, "must be different columns")):
        with pytest.raises(ConfigError, match=names):
            settings_from({**env, "SITES": json.dumps([{**base, **change}])})
    site = settings_from({**env, "SITES": json.dumps([{**base, "conflicts_column": "conflicts"}])}).site("acme", "sales")
    assert site.conflicts_column == "conflicts"


def site_check_findings(stack, site, **entry) -> dict:
    sites = json.loads(stack.settings()["SITES"])
    sales = next(e for e in sites if e["site"] == "sales")
    [_, section] = check_env({**stack.settings(), "SITES": json.dumps([{**sales, **entry}])}, only="acme/sales")
    return {f.what: f for f in section.findings}


def test_the_site_check_reads_free_busy_when_a_site_turns_conflicts_on(stack, site, monkeypatch):
    monkeypatch.setitem(site.sim.schemas["Meeting Events"].columns, COLUMN, "Text")
    site.sim.create_item("Meetings", title="Checked", organiser_id=site.principals[ORGANISER])
    what = "free/busy for conflicts_column (getSchedule)"
    assert what not in site_check_findings(stack, site)
    assert site_check_findings(stack, site, conflicts_column=COLUMN)[what].level == OK
    missing = site_check_findings(stack, site, conflicts_column="not_there")
    assert missing["column not_there not in Meeting Events"].level == FAIL
    stack.graph.fail_next(1, 403, path_contains="getSchedule")
    refused = site_check_findings(stack, site, conflicts_column=COLUMN)[what]
    assert refused.level == FAIL and "Calendars.ReadBasic" in refused.fix
    try:
        for tenant in (AAD_TENANT, OTHER_TENANT):
            stack.graph.register_app(tenant, CLIENT_ID, CLIENT_SECRET, roles=("User.Read.All",))
        no_role = site_check_findings(stack, site, conflicts_column=COLUMN)
        assert no_role[what].level == FAIL and "allow no getSchedule" in no_role[what].detail
    finally:
        for tenant in (AAD_TENANT, OTHER_TENANT):
            stack.graph.register_app(tenant, CLIENT_ID, CLIENT_SECRET, roles=GRAPH_ROLES)
