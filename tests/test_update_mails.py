"""No needless mail (issue 21, part 4): every PATCH of a meeting is mailed by Exchange to all its attendees,
so a site edit nobody can see sends no Outlook update, and a burst of edits sends one.

The Graph simulator counts the mail (devtools/sim/graph/mail.py: one update per attendee per PATCH of a
meeting; an attendees-only PATCH mails only the attendees it changed, as event-update.md says)."""

from __future__ import annotations

import dataclasses

import pytest

from devtools.azurite import eventually
from devtools.stack import ORGANISER
from shared.config import ConfigError, settings_from

from .scenario import new_event, new_meeting, settle, site_with, svc

ATTENDEES = 2  # new_event's defaults: Bob (a Principal) and Gina (an External Contact)


def settle_seconds(monkeypatch, seconds: int) -> None:
    monkeypatch.setattr(svc(), "settings", dataclasses.replace(svc().settings, edit_settle_seconds=seconds))


@pytest.fixture
def meeting_event(stack, site):
    """A synced Outlook meeting with two attendees: (its site item, its Outlook event id)."""
    item = new_event(site, new_meeting(site), title="Mail-free planning")
    settle(stack)
    event_id = site.sim.get("Meeting Events", item["id"])["sys_external_id"]
    assert len(stack.graph.get_event(ORGANISER, event_id)["attendees"]) == ATTENDEES
    return item, event_id


def patches(stack, event_id: str) -> int:
    return sum(1 for e in stack.graph.log if e.method == "PATCH" and event_id in e.path)


def test_a_status_only_site_edit_sends_no_outlook_update(stack, site, meeting_event, monkeypatch):
    settle_seconds(monkeypatch, 1)  # the edit takes the coalesced path, as in production
    item, event_id = meeting_event
    stack.graph.reset_log()
    site.sim.update_item("Meeting Events", item["id"], status="Confirmed")
    settle(stack)
    assert patches(stack, event_id) == 0
    assert stack.graph.update_mails(event_id=event_id) == 0
    assert stack.graph.get_event(ORGANISER, event_id)["subject"] == "Mail-free planning"


def test_a_site_edit_writing_the_same_values_or_an_unmapped_column_sends_no_outlook_update(
        stack, site, meeting_event, monkeypatch):
    settle_seconds(monkeypatch, 1)
    item, event_id = meeting_event
    stack.graph.reset_log()
    site.sim.update_item("Meeting Events", item["id"], title="Mail-free planning", location="Room 1")
    site.sim.update_item("Meeting Events", item["id"], notes="for the minutes only")  # a column the app does not map
    settle(stack)
    assert patches(stack, event_id) == 0
    assert stack.graph.update_mails(event_id=event_id) == 0


@pytest.fixture
def edits_handled(monkeypatch):
    """How many site-edit jobs (`event.update` from a webhook, not a coalesced one) the worker has taken."""
    from shared.features.coalesce import Coalesce

    handled: list[dict] = []
    superseded = Coalesce.superseded

    def counted(self, ctx, task):
        answer = superseded(self, ctx, task)
        if task.get("op") == "event.update" and "coalesce" not in task:
            handled.append(task)
        return answer
    monkeypatch.setattr(Coalesce, "superseded", counted)
    return handled


def test_five_quick_site_edits_of_a_meeting_send_one_update(stack, site, meeting_event, monkeypatch, edits_handled):
    """Each edit is taken by the worker before the next is made: without coalescing, each would PATCH."""
    settle_seconds(monkeypatch, 6)  # the five edits land well within it
    item, event_id = meeting_event
    stack.graph.reset_log()
    edits_handled.clear()
    for n in range(1, 6):
        site.sim.update_item("Meeting Events", item["id"], title=f"Planning, take {n}")
        site.sim.wait_idle(10)
        eventually(lambda: len(edits_handled) >= n and stack.host.busy == 0, 10, what=f"edit {n} taken")
    settle(stack)
    assert patches(stack, event_id) == 1
    assert stack.graph.update_mails(event_id=event_id) == ATTENDEES * 1
    assert stack.graph.update_mails(event_id=event_id, kind="update") == ATTENDEES
    assert stack.graph.get_event(ORGANISER, event_id)["subject"] == "Planning, take 5"


def test_a_visible_site_edit_sends_exactly_one_update(stack, site, meeting_event, monkeypatch):
    settle_seconds(monkeypatch, 1)
    item, event_id = meeting_event
    stack.graph.reset_log()
    site.sim.update_item("Meeting Events", item["id"], location="Board room")
    settle(stack)
    assert patches(stack, event_id) == 1
    assert stack.graph.update_mails(event_id=event_id) == ATTENDEES
    assert stack.graph.get_event(ORGANISER, event_id)["location"]["displayName"] == "Board room"


def test_an_edit_of_an_event_without_attendees_is_not_held_back(stack, site, monkeypatch):
    """No mail is at stake: it goes at once, whatever the settle time (the queue would otherwise hold a
    message for 60 s, and settle() wait for it)."""
    item = new_event(site, new_meeting(site), title="Alone", invitees=[], guests=[])
    settle(stack)
    event_id = site.sim.get("Meeting Events", item["id"])["sys_external_id"]
    settle_seconds(monkeypatch, 60)
    site.sim.update_item("Meeting Events", item["id"], title="Alone, renamed")
    settle(stack, timeout=20)
    assert stack.graph.get_event(ORGANISER, event_id)["subject"] == "Alone, renamed"
    assert stack.graph.update_mails(event_id=event_id) == 0


def test_a_privacy_the_organiser_already_set_in_outlook_is_not_patched_again(stack, site, monkeypatch):
    """The site asks for what Outlook holds already (the organiser made it private there): nothing an
    attendee sees would change, so no PATCH (perform.not_held); the link records the privacy."""
    site_with(site, monkeypatch, {"private_event": "Boolean"}, private_column="private_event")
    settle_seconds(monkeypatch, 1)
    item = new_event(site, new_meeting(site), title="Already private")
    settle(stack)
    event_id = site.sim.get("Meeting Events", item["id"])["sys_external_id"]
    stack.graph.outlook_update(ORGANISER, event_id, sensitivity="private")
    stack.graph.wait_idle(10)  # its notification delivered (and settle() then waits for its job)
    settle(stack)
    stack.graph.reset_log()
    site.sim.update_item("Meeting Events", item["id"], private_event=True)
    settle(stack)
    assert patches(stack, event_id) == 0  # read, and found held
    assert stack.graph.update_mails(event_id=event_id) == 0
    assert svc().store.get_link(site.key, str(item["id"])).sensitivity == "private"
    stack.graph.reset_log()
    site.sim.update_item("Meeting Events", item["id"], private_event=True)  # and it asks for nothing more
    settle(stack)
    assert stack.graph.count(path_contains="/events") == 0


def test_the_settle_time_is_an_app_setting_of_5_seconds_by_default_and_checked(stack):
    env = {k: v for k, v in stack.settings().items() if k != "EDIT_SETTLE_SECONDS"}
    assert settings_from(env).edit_settle_seconds == 5
    assert settings_from({**env, "EDIT_SETTLE_SECONDS": "0"}).edit_settle_seconds == 0  # off: every edit at once
    with pytest.raises(ConfigError, match="EDIT_SETTLE_SECONDS"):
        settings_from({**env, "EDIT_SETTLE_SECONDS": "-1"})


# -- the simulator's count (devtools/sim/graph/mail.py) ---------------------------------------------

def _meeting_in_outlook(stack, subject: str) -> str:
    people = [{"emailAddress": {"address": a}, "type": "required"} for a in ("bob@contoso.test", "carol@contoso.test")]
    return stack.graph.outlook_create(ORGANISER, subject=subject, attendees=people,
                                      start={"dateTime": "2026-12-20T09:00:00", "timeZone": "UTC"},
                                      end={"dateTime": "2026-12-20T10:00:00", "timeZone": "UTC"})["id"]


def test_the_simulator_mails_every_attendee_for_each_patch_and_only_the_changed_ones_for_an_attendees_only_patch(
        stack, site):
    event_id = _meeting_in_outlook(stack, "Counted")
    graph = svc().graph(svc().site(site.key))  # the app's own Graph client: a PATCH as the app sends it
    graph.update_event(ORGANISER, event_id, {"subject": "Counted, renamed"})
    assert stack.graph.update_mails(event_id=event_id, kind="update") == 2
    graph.update_event(ORGANISER, event_id, {"attendees": [
        {"emailAddress": {"address": "bob@contoso.test"}, "type": "required"},
        {"emailAddress": {"address": "guest@partner.test"}, "type": "required"}]})
    assert stack.graph.update_mails(event_id=event_id, kind="update") == 2  # Bob stayed: not mailed again
    assert stack.graph.update_mails(event_id=event_id, kind="invitation") == 1
    assert stack.graph.update_mails(event_id=event_id, kind="cancellation") == 1
    assert stack.graph.update_mails(ORGANISER, event_id) == 4


def test_the_organisers_own_outlook_edit_is_not_counted_as_the_apps_mail(stack):
    event_id = _meeting_in_outlook(stack, "Edited by Alice")
    stack.graph.outlook_update(ORGANISER, event_id, subject="Edited by Alice herself")
    assert stack.graph.update_mails(event_id=event_id) == 0
