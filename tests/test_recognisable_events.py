"""Events people can recognise (issue 14, part 3): per-site defaults for the Outlook category, show-as,
reminder and sensitivity are on the events the app creates; an optional column makes an event private;
category and sensitivity survive Outlook-side edits of other fields."""

from __future__ import annotations


import pytest

from devtools.azurite import eventually
from devtools.stack import ORGANISER

from .scenario import new_event, new_meeting, settle, site_with

PRIVATE = "private_event"


@pytest.fixture
def recognisable(stack, site, monkeypatch):
    """acme/sales with the category "RAPID", show-as tentative, a 30-minute reminder, sensitivity normal,
    and a `private_event` Yes/No column its designer added (SITES `private_column`)."""
    return site_with(site, monkeypatch, {PRIVATE: "Boolean"}, category="RAPID", show_as="tentative",
                     reminder_minutes=30, sensitivity="normal", private_column=PRIVATE)


def outlook_event(stack, subject):
    found = [e for e in stack.graph.events(ORGANISER) if e["subject"] == subject]
    return found[0] if len(found) == 1 else None


def test_category_and_reminder_defaults_are_on_the_created_event(stack, site, recognisable):
    meeting = new_meeting(site)
    new_event(site, meeting, title="Look: recognisable")
    settle(stack)
    event = eventually(lambda: outlook_event(stack, "Look: recognisable"), 20, what="the created event")
    assert event["categories"] == ["RAPID"]
    assert event["isReminderOn"] is True and event["reminderMinutesBeforeStart"] == 30
    assert event["showAs"] == "tentative" and event["sensitivity"] == "normal"


def test_a_private_marked_item_makes_a_private_event_and_follows_the_column(stack, site, recognisable):
    meeting = new_meeting(site)
    item = new_event(site, meeting, title="Look: appraisal", **{PRIVATE: True})
    settle(stack)
    event = eventually(lambda: outlook_event(stack, "Look: appraisal"), 20, what="the created event")
    assert event["sensitivity"] == "private"
    # made public again in the site: one PATCH naming only what changed
    stack.graph.reset_log()
    site.sim.update_item("Meeting Events", item["id"], **{PRIVATE: False})
    settle(stack)
    assert outlook_event(stack, "Look: appraisal")["sensitivity"] == "normal"
    assert stack.graph.count("PATCH") == 1
    assert [e.body for e in stack.graph.log if e.method == "PATCH"] == [{"sensitivity": "normal"}]


def test_category_and_sensitivity_survive_an_outlook_edit_of_the_subject(stack, site, recognisable):
    meeting = new_meeting(site)
    item = new_event(site, meeting, title="Look: board", **{PRIVATE: True})
    settle(stack)
    event = eventually(lambda: outlook_event(stack, "Look: board"), 20, what="the created event")
    stack.graph.outlook_update(ORGANISER, event["id"], subject="Look: board (moved room)")
    eventually(lambda: site.sim.get("Meeting Events", item["id"])["title"] == "Look: board (moved room)", 20,
               what="the Outlook edit in the site")
    settle(stack)
    # then a site edit of another field: our PATCH names neither category nor sensitivity
    stack.graph.reset_log()
    site.sim.update_item("Meeting Events", item["id"], location="Room 9")
    settle(stack)
    patches = [e.body for e in stack.graph.log if e.method == "PATCH"]
    assert patches and all(not {"categories", "sensitivity"} & set(p) for p in patches)
    event = outlook_event(stack, "Look: board (moved room)")
    assert event["categories"] == ["RAPID"] and event["sensitivity"] == "private"
    assert event["location"]["displayName"] == "Room 9"


def test_a_category_the_organiser_changes_in_outlook_is_theirs(stack, site, recognisable):
    meeting = new_meeting(site)
    item = new_event(site, meeting, title="Look: retro")
    settle(stack)
    event = eventually(lambda: outlook_event(stack, "Look: retro"), 20, what="the created event")
    stack.graph.outlook_update(ORGANISER, event["id"], categories=["RAPID", "Team"])
    settle(stack)
    site.sim.update_item("Meeting Events", item["id"], title="Look: retro, week 49")
    settle(stack)
    assert outlook_event(stack, "Look: retro, week 49")["categories"] == ["RAPID", "Team"]


def test_the_simulator_refuses_values_graph_does_not_know():
    from devtools.sim.base import HttpError
    from devtools.sim.graph.events import _checked

    for key, value in (("sensitivity", "secret"), ("showAs", "away"), ("categories", "RAPID"),
                       ("reminderMinutesBeforeStart", "15"), ("isReminderOn", 1)):
        with pytest.raises(HttpError):
            _checked(key, value)
    assert _checked("showAs", "workingElsewhere") == "workingElsewhere"


def test_a_privacy_change_whose_webhook_was_lost_is_caught_up(stack, site, recognisable):
    from .test_catch_up import checkpoint, dropped

    item = new_event(site, new_meeting(site), title="Look: missed privacy", **{PRIVATE: False})
    settle(stack)
    event = eventually(lambda: outlook_event(stack, "Look: missed privacy"), 20, what="the created event")
    checkpoint()
    with dropped(site, "Meeting Events", "Item Updated"):
        site.sim.update_item("Meeting Events", item["id"], **{PRIVATE: True})
        settle(stack)
    assert stack.graph.get_event(ORGANISER, event["id"])["sensitivity"] == "normal"
    stack.host.run_function("site_catch_up")  # (its window may hold other tests' leftovers: not awaited)
    eventually(lambda: stack.graph.get_event(ORGANISER, event["id"])["sensitivity"] == "private", 30,
               what="the catch-up to make it private")
