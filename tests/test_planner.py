"""The planner's decisions, as tables: a snapshot (the site item, the Outlook event, the link with what
was last synced, the site's settings and features) → the actions it returns. Pure: no Azurite, no
simulators, no host. Each row names a decision the engine makes."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.config import SiteConfig
from shared.features.base import Target
from shared.features.registry import enabled_features
from shared.features.teams import PROVIDER, UNAVAILABLE
from shared.model import errors
from shared.model.errors import JobAbandoned
from shared.model.mapping import outlook_payload, synced_from_site
from shared.storage.store import EventLink
from shared.sync import planner
from shared.sync.planner import (UNREAD, CancelInSite, Echo, GiveUp, Note, Nothing, Read, Remove,
                                 Snapshot, Update, WriteBack)
from shared.sync.target import row_target

SITE = SiteConfig(tenant="acme", site="sales", rapid_url="https://rapid.test", rapid_scope="s", aad_tenant="t",
                  client_id="c", client_secret="x", time_zone="Europe/London")
ALICE, BOB = "alice@contoso.test", "bob@contoso.test"
ITEM = {"id": 7, "title": "Planning", "description": "<p>Plan</p>", "start_date": "2026-12-07T10:00:00Z",
        "end_date": "2026-12-07T11:00:00Z", "all_day": False, "location": "Room 1", "meeting_id": 3,
        "sys_external_id": "E1", "modified": "2026-12-03T09:00:00Z", "status": "Planned"}


def content(item=ITEM, attendees=(BOB,)):
    return synced_from_site(item, SITE.col, attendees, SITE.zone)


def link(**changes) -> EventLink:
    return replace(EventLink(site=SITE.key, item_id="7", event_id="E1", mailbox=ALICE, synced=content(),
                             change_key="k1", meeting_id="3", sensitivity=""), **changes)


def target(site=SITE, item=ITEM, linked=None, attendees=(BOB,), mailbox=ALICE, **asks) -> Target:
    made = row_target(site, item, linked, attendees, enabled_features(site), mailbox=mailbox, meeting_id="3")
    return replace(made, asks={**made.asks, **asks})


def event(synced=None, change_key="k2", modified="2026-12-03T08:00:00Z", **more) -> dict:
    body = outlook_payload(synced or content(), SITE.zone)
    return {"id": "E1", "changeKey": change_key, "lastModifiedDateTime": modified, **body, **more}


def site_snap(site=SITE, item=ITEM, linked="default", action="update", tgt="default", evt=UNREAD) -> Snapshot:
    linked = link() if linked == "default" else linked
    if tgt == "default":
        tgt = target(site, item, linked) if isinstance(item, dict) else UNREAD
    return Snapshot(site, enabled_features(site), item_id="7", link=linked, item=item, action=action, target=tgt,
                    event=evt)


def kinds(actions) -> list[str]:
    return [type(a).__name__ for a in actions]


# -- site → Outlook ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("snap, expected", [
    # nothing read yet: the item first, then what it asks for
    (Snapshot(SITE, (), item_id="7"), [Read("item")]),
    (site_snap(tgt=UNREAD), [Read("target")]),
    # never synced: create (a pending link from a failed attempt is finished the same way)
    (site_snap(linked=None), ["Create"]),
    (site_snap(linked=link(event_id="")), ["Create"]),
    # unchanged: Outlook untouched, the event not even read
    (site_snap(), [Nothing("no mapped change: Outlook untouched")]),
    # the item lost its Outlook id column: written back, nothing else
    (site_snap(item={**ITEM, "sys_external_id": ""}), [WriteBack({"sys_external_id": "E1"}),
                                                        Nothing("no mapped change: Outlook untouched")]),
    # changed in the site: the event is read before deciding
    (site_snap(item={**ITEM, "title": "Planning v2"}), [Read("event")]),
    # changed, and Outlook lost the event meanwhile: the item is cancelled
    (site_snap(item={**ITEM, "title": "Planning v2"}, evt=None), [CancelInSite("Outlook event is gone")]),
    # deleted in the site: the event goes, counted by the mass-removal guard (guarded); a delete webhook for
    # an item never synced changes nothing
    (site_snap(item=None, action="delete"), [Remove("deleted in the site", guarded=True)]),
    (site_snap(item=None, linked=None, action="delete"),
     [Nothing("deleted in the site; no Outlook event linked: nothing to do")]),
    (site_snap(item=None), [Remove("item no longer exists", guarded=True)]),
    # deleted while its create was pending: the pending link names the mailbox, the removal finds the event
    (site_snap(item=None, linked=link(event_id=""), action="delete"), [Remove("deleted in the site", guarded=True)]),
    # cancelled in the site: guarded too
    (site_snap(item={**ITEM, "status": "Cancelled"}), [Remove("cancelled in the site", guarded=True)]),
    (site_snap(item={**ITEM, "status": "cancelled"}, linked=None),
     [Nothing("cancelled and never synced: nothing to do")]),
    # a delete webhook for an item the site still has: its current state applies
    (site_snap(action="delete"), [Note("delete requested but the site still has the item: applying its current "
                                       "state"), Nothing("no mapped change: Outlook untouched")]),
    # the organiser changed: the old event goes, a new one is made in the new organiser's calendar (a move,
    # not a removal the guard counts)
    (site_snap(tgt=target(mailbox=BOB, attendees=())), [Remove(f"organiser changed to {BOB}"), "Create"]),
    # a removal began, then the item came back: finish it, then start afresh
    (site_snap(linked=link(removing=True)),
     [Remove("restored in the site while its event was being removed"), "Create"]),
])
def test_site_decisions(snap, expected):
    actions = planner.plan_site(snap)
    assert [a if not isinstance(e, str) else type(a).__name__ for a, e in zip(actions, expected)] == expected
    assert len(actions) == len(expected)


@pytest.mark.parametrize("code, about", [(errors.NO_MEETING, None), (errors.NO_EMAIL, "12"),
                                         (errors.END_BEFORE_START, "2026-12-07T09:00:00Z")])
def test_an_item_whose_target_cannot_be_known_is_given_up_with_its_reason(code, about):
    reason = JobAbandoned("item 7: why", code, about)
    [give_up] = planner.plan_site(site_snap(tgt=reason))
    assert isinstance(give_up, GiveUp) and give_up.error.code == code and give_up.error.about == about


def test_an_item_that_does_not_exist_is_given_up_as_gone():
    [give_up] = planner.plan_site(site_snap(item=None, linked=None))
    assert isinstance(give_up, GiveUp) and give_up.error.code == errors.ITEM_GONE


def test_an_unreadable_item_has_no_target_and_says_which_column():
    with pytest.raises(JobAbandoned) as raised:
        target(item={**ITEM, "start_date": "next tuesday"})
    assert (raised.value.code, raised.value.about) == (errors.BAD_DATE, "start_date")
    with pytest.raises(JobAbandoned) as raised:
        target(item={**ITEM, "end_date": "2026-12-07T09:00:00Z"})
    assert raised.value.code == errors.END_BEFORE_START


def test_a_site_edit_patches_only_what_changed():
    item = {**ITEM, "title": "Planning v2"}
    [update] = planner.plan_site(site_snap(item=item, evt=event()))
    assert isinstance(update, Update) and update.to_outlook == {"subject": "Planning v2"}
    assert update.plan.to_site == {} and update.plan.synced.title == "Planning v2"


def test_an_outlook_edit_of_another_field_is_merged_into_a_site_edit():
    item = {**ITEM, "title": "Planning v2"}
    moved = replace(content(), location="Room 9")
    [update] = planner.plan_site(site_snap(item=item, evt=event(moved)))
    assert update.to_outlook == {"subject": "Planning v2"} and update.plan.to_site == {"location": "Room 9"}
    assert not update.plan.conflicts


@pytest.mark.parametrize("outlook_modified, winner, title", [("2026-12-03T10:00:00Z", "outlook", "Outlook's"),
                                                             ("2026-12-03T08:00:00Z", "site", "Site's")])
def test_a_field_changed_on_both_sides_goes_to_the_later_edit(outlook_modified, winner, title):
    item = {**ITEM, "title": "Site's"}
    [update] = planner.plan_site(site_snap(item=item, evt=event(replace(content(), title="Outlook's"),
                                                                  modified=outlook_modified)))
    assert update.plan.conflicts == ("title",) and update.plan.winner == winner
    assert update.plan.synced.title == title


def test_an_outlook_edit_that_lands_just_before_our_patch_is_merged_not_overwritten():
    item = {**ITEM, "title": "Planning v2"}
    [update] = planner.plan_site(site_snap(item=item, evt=event()))
    answer = event(replace(content(), title="Planning v2", location="Room 9"), modified="2026-12-03T09:30:00Z")
    settled = planner.settle(SITE, update, answer)
    assert (settled.title, settled.location) == ("Planning v2", "Room 9")
    assert planner.settle(SITE, update, event(replace(content(), title="Planning v2"))) == update.plan.synced


# -- every feature's contribution ---------------------------------------------------------------------------

def test_privacy_is_asked_on_create_and_sent_only_when_it_changed():
    private = replace(SITE, private_column="private", category="RAPID", show_as="busy", reminder_minutes=10)
    item = {**ITEM, "private": "yes"}
    tgt = target(private, item, link())
    assert planner.differs(private, tgt, link(), enabled_features(private)) == "its privacy differs from Outlook's"
    [feature] = [f for f in enabled_features(private) if f.name == "recognisable"]
    fields, recorded = feature.create_fields(private, tgt)
    assert fields == {"categories": ["RAPID"], "showAs": "busy", "isReminderOn": True,
                      "reminderMinutesBeforeStart": 10, "sensitivity": "private"}
    assert recorded == {"sensitivity": "private"}
    assert feature.patch_fields(private, tgt, link(sensitivity="private")) == ({}, {"sensitivity": "private"})
    [update] = planner.plan_site(site_snap(private, item, evt=event()))
    assert update.to_outlook == {"sensitivity": "private"} and update.link_fields == {"people": "", "sensitivity": "private"}


def test_teams_is_asked_when_the_calendar_offers_it_and_an_ordinary_event_otherwise():
    teams = replace(SITE, teams=True)
    [feature] = [f for f in enabled_features(teams) if f.name == "teams"]
    offered = target(teams, ITEM, None, teams_providers=(PROVIDER,))
    assert feature.create_fields(teams, offered) == ({"isOnlineMeeting": True, "onlineMeetingProvider": PROVIDER},
                                                     {"online": PROVIDER})
    refused = target(teams, ITEM, None, teams_providers=("skypeForConsumer",))
    assert feature.create_fields(teams, refused) == ({}, {"online": UNAVAILABLE})


@pytest.mark.parametrize("online, providers, why", [
    ("", (), "it asks for a Teams meeting"),                       # asked for Teams after the event was made
    (UNAVAILABLE, (PROVIDER,), "it asks for a Teams meeting"),     # its organiser's calendar now offers Teams
    (UNAVAILABLE, (), None),                                       # still no Teams: nothing to do
    (PROVIDER, (), None),                                          # once online it stays online
])
def test_teams_differs_only_when_the_event_can_become_online(online, providers, why):
    teams = replace(SITE, teams=True)
    linked = link(online=online)
    tgt = target(teams, ITEM, linked, teams_providers=providers)
    assert planner.differs(teams, tgt, linked, enabled_features(teams)) == why


def test_the_join_url_is_written_with_the_outlook_id_and_taken_from_an_event():
    teams = replace(SITE, teams=True, join_url_column="join")
    linked = link(online=PROVIDER, join_url="https://teams.test/j/1")
    snap = site_snap(teams, {**ITEM, "sys_external_id": ""}, linked=linked)
    assert planner.plan_site(snap)[0] == WriteBack({"sys_external_id": "E1", "join": "https://teams.test/j/1"})
    [feature] = [f for f in enabled_features(teams) if f.name == "teams"]
    later = event(onlineMeeting={"joinUrl": "https://teams.test/j/2"})
    assert feature.from_event(teams, linked, later) == ({"join": "https://teams.test/j/2"},
                                                        {"join_url": "https://teams.test/j/2"})


def test_the_agenda_section_is_kept_as_last_synced_when_nothing_may_be_read():
    agenda = replace(SITE, agenda=True)
    linked = link(synced=replace(content(), agenda="<ol><li>Budget</li></ol>"))
    tgt = target(agenda, ITEM, linked)
    assert tgt.synced.agenda == "<ol><li>Budget</li></ol>"
    assert planner.differs(agenda, tgt, linked, enabled_features(agenda)) is None


def test_features_a_site_has_not_switched_on_take_no_part():
    names = {f.name for f in enabled_features(SITE)}
    # teams reads the per-item column even when off by default; coalesce (one update per burst) is always on
    assert names == {"coalesce", "recognisable", "teams"}
    on = replace(SITE, agenda=True, answers_column="a", conflicts_column="c", status_column="s")
    assert {f.name for f in enabled_features(on)} == {"coalesce", "recognisable", "teams", "agenda", "answers",
                                                      "conflicts", "status"}


# -- Outlook → site -------------------------------------------------------------------------------------------

def outlook_snap(change="updated", linked="default", evt=UNREAD, item=UNREAD, mailbox=ALICE, active=True):
    linked = link() if linked == "default" else linked
    return Snapshot(SITE, enabled_features(SITE), item_id="7", link=linked, change=change, event_id="E1",
                    mailbox=mailbox, meeting_active=active, event=evt, item=item)


@pytest.mark.parametrize("snap, expected", [
    (outlook_snap(linked=None), [Nothing("not created by this app from this site: ignored", "ignored")]),
    (outlook_snap(mailbox=BOB), [Nothing("not created by this app from this site: ignored", "ignored")]),
    (outlook_snap(linked=link(removing=True)),
     [Nothing("Outlook change ignored: we are removing this event ourselves", "ignored")]),
    (outlook_snap(active=False), [Nothing("Outlook change ignored: syncing back is off for this meeting", "ignored")]),
    (outlook_snap(), [Read("event")]),
    # deleted or cancelled in Outlook: believed only once Graph confirms it
    (outlook_snap("deleted", evt=None), [CancelInSite("deleted in Outlook")]),
    (outlook_snap("deleted", evt=event()), [Nothing("a 'deleted' notification for an event Outlook still has: "
                                                    "ignored", "ignored")]),
    (outlook_snap(evt=event(isCancelled=True)), [CancelInSite("cancelled in Outlook")]),
    (outlook_snap(evt=None), [CancelInSite("gone from Outlook")]),
    # our own write coming back
    (outlook_snap(evt=event(change_key="k1")),
     [Nothing("Outlook change already in sync (our echo or a duplicate)", "echo")]),
    # an invitee answered: no mapped field changed
    (outlook_snap(evt=event()), [Echo("Outlook change touches no mapped field: site untouched")]),
    # a real edit: the item is read, then merged
    (outlook_snap(evt=event(replace(content(), title="Moved"))), [Read("item")]),
    (outlook_snap(evt=event(replace(content(), title="Moved")), item=None),
     [Nothing("Outlook change for an item the site no longer has: ignored", "ignored")]),
])
def test_outlook_decisions(snap, expected):
    assert planner.plan_outlook(snap) == expected


def test_an_outlook_edit_flows_to_the_site_and_nothing_back_to_outlook():
    [update] = planner.plan_outlook(outlook_snap(evt=event(replace(content(), title="Moved")), item=ITEM))
    assert update.plan.to_site == {"title": "Moved"} and update.to_outlook == {} and update.decision == "applied"


def test_an_outlook_edit_repairs_an_unreadable_site_copy():
    broken = {**ITEM, "start_date": "soon"}
    [update] = planner.plan_outlook(outlook_snap(evt=event(replace(content(), title="Moved")), item=broken))
    assert update.plan.to_site == {"title": "Moved"}


# -- the catch-up's question ------------------------------------------------------------------------------

@pytest.mark.parametrize("row, linked, why", [
    (ITEM, None, "never synced"),
    ({**ITEM, "status": "Cancelled"}, None, None),
    ({**ITEM, "status": "Cancelled"}, link(), "cancelled in the site"),
    (ITEM, link(removing=True), "cancelled in the site"),
    ({**ITEM, "meeting_id": 4}, link(), "moved to another meeting"),
    ({**ITEM, "start_date": "soon"}, link(), "unreadable content"),
    ({**ITEM, "title": "Other"}, link(), "content differs from Outlook's"),
    (ITEM, link(), None),
])
def test_the_catch_up_asks_the_planner_whether_an_item_differs(row, linked, why):
    try:
        tgt = row_target(SITE, row, linked, linked.synced.attendees if linked else (), enabled_features(SITE))
    except JobAbandoned as e:
        tgt = e
    assert planner.needs_sync(SITE, row, linked, tgt, enabled_features(SITE)) == why


# -- after the sync: what each feature does with the outcome ---------------------------------------------------

def outcome(kind, linked=None, before=None, event_=None):
    from shared.features.base import Outcome

    return Outcome(kind, linked or link(), event_ or event(), before=before)


@pytest.mark.parametrize("kind, before, needed, moved", [
    ("created", None, True, False),                                             # who is busy then?
    ("updated", replace(content(), start="2026-12-07T08:00:00Z"), True, True),  # moved: asked again
    ("updated", replace(content(), title="Old title"), False, False),           # same time: not asked
    ("echo", None, False, False),                                               # an answer: not asked
])
def test_conflicts_are_read_after_a_create_or_a_move_only(kind, before, needed, moved):
    from shared.features.conflicts import Conflicts

    assert Conflicts.check_needed(outcome(kind, before=before)) == (needed, before if moved else None)


@pytest.mark.parametrize("kind, online, join_url, column, awaited", [
    ("created", PROVIDER, "", "join", True),
    ("created", PROVIDER, "https://teams.test/j/1", "join", False),   # the join URL came with the create
    ("created", PROVIDER, "", "", False),                             # the site shows no join URL
    ("created", UNAVAILABLE, "", "join", False),                      # an ordinary event
    ("updated", PROVIDER, "", "join", False),
])
def test_a_join_url_is_awaited_only_for_a_teams_meeting_created_without_one(kind, online, join_url, column, awaited):
    from shared.features.teams import Teams

    site = replace(SITE, teams=True, join_url_column=column)
    assert Teams.join_url_awaited(site, outcome(kind, link(online=online, join_url=join_url))) is awaited


def test_answers_are_read_from_events_the_sync_read_or_wrote_and_never_change_outlook():
    from shared.features.answers import answers_key, answers_of

    answered = event(attendees=[{"emailAddress": {"address": BOB, "name": "Bob"}, "type": "required",
                                 "status": {"response": "accepted", "time": "2026-12-03T09:05:00Z"}},
                                {"emailAddress": {"address": "room@contoso.test"}, "type": "resource",
                                 "status": {"response": "accepted"}}])
    [answer] = answers_of(answered)  # a room is never an invitee's answer
    assert (answer.email, answer.response, answer.time) == (BOB, "accepted", "2026-12-03T09:05:00Z")
    assert answers_key(answers_of(answered)) != answers_key(answers_of(event(attendees=[])))
    assert answers_of({"id": "E1"}) is None  # read without attendees: nothing can be said
    on = replace(SITE, answers_column="answers")
    assert planner.plan_outlook(Snapshot(on, enabled_features(on), item_id="7", link=link(), change="updated",
                                         event_id="E1", mailbox=ALICE, event=answered)) == [
        Echo("Outlook change touches no mapped field: site untouched")]


@pytest.mark.parametrize("code, about, key, words", [
    (errors.NO_MEETING, None, "not-synced:no-meeting:", "Not synced: the event has no meeting"),
    (errors.BAD_DATE, "start_date", "not-synced:bad-date:start_date", "Not synced: {detail} is not a date and time"),
    ("", None, "not-synced:why", "Not synced: why"),                  # a reason without a code: its message
])
def test_the_status_column_words_come_from_the_reason_code(code, about, key, words):
    from shared.features.status import plain_reason

    assert plain_reason(JobAbandoned("item 7: why", code, about))[:2] == (key, words)
