"""The agenda in the invitation (issue 15, part 1): an event's Meeting Agendas items, in rank order, as a
marked section of its Outlook body; agenda changes in the site update the invitation, a burst of them once.

The core scenarios run on two sites that tie agenda items to their event the two ways RAPID may
(RapidVariant.agenda_link): a single lookup (acme/agenda-lookup) and a universal link (acme/agenda-link).
"""

from __future__ import annotations

import dataclasses
import json
import time

import pytest

from devtools.azurite import eventually
from devtools.stack import ORGANISER
from shared.context import SiteContext
from shared.features.agenda import AGENDA_HEADING, AgendaEntry, agenda_html, agenda_of, events_of
from shared.config import ConfigError, settings_from
from shared.model.html_body import split_body

from .scenario import new_meeting, post, settle, svc

AGENDA_SITES = ("acme/agenda-lookup", "acme/agenda-link")
# the agenda sites' meetings are Carol's: Alice's calendar keeps only acme/sales's subscription (other tests
# count the subscriptions on her mailbox)
AGENDA_ORGANISER = "carol@contoso.test"


@pytest.fixture(params=AGENDA_SITES)
def agenda_site(stack, request):
    return stack.sites[request.param]


def settle_seconds(monkeypatch, seconds: int) -> None:
    monkeypatch.setattr(svc(), "settings", dataclasses.replace(svc().settings, agenda_settle_seconds=seconds))


@pytest.fixture(autouse=True)
def quick_settle(stack, monkeypatch):
    """Agenda updates 1 s after a change (no coalescing: within the clock margin) to keep the suite quick;
    the tests of coalescing set their own window."""
    settle_seconds(monkeypatch, 1)


@pytest.fixture
def updates(monkeypatch):
    """The site events the worker synced (apply_site_event), by id."""
    import shared.jobs.worker as worker

    ran: list[str] = []
    apply = worker.apply_site_event

    def counted(services, site, item_id, action, **how):
        ran.append(str(item_id))
        return apply(services, site, item_id, action, **how)
    monkeypatch.setattr(worker, "apply_site_event", counted)
    return ran


def synced_event(stack, world, title: str) -> dict:
    """A synced event; its title names the site (the agenda sites share one organiser's calendar)."""
    title = f"{title} ({world.key})"
    meeting = new_meeting(world, organiser(world), title=f"{title} series")
    item = world.sim.create_item("Meeting Events", title=title, meeting_id=meeting["id"],
                                 start_date="2026-12-07T09:00:00Z", end_date="2026-12-07T10:00:00Z",
                                 description="<p>Be on time</p>", invitees=[world.principals["bob@contoso.test"]])
    settle(stack)
    return item


def add_agenda(world, event: dict, title: str, rank=None, owner: str | None = None, minutes=None) -> dict:
    fields = {"title": title, **world.sim.agenda_link(event["id"])}
    if rank is not None:
        fields["rank"] = rank
    if owner:
        fields["owner_id"] = world.principals[owner]
    if minutes is not None:
        fields["duration"] = minutes
    return world.sim.create_item("Meeting Agendas", **fields)


def organiser(world) -> str:
    return AGENDA_ORGANISER if world.key in AGENDA_SITES else ORGANISER


def invitation(stack, item: dict) -> dict:
    """The item's Outlook event, as Outlook holds it."""
    [event] = [e for who in (ORGANISER, AGENDA_ORGANISER) for e in stack.graph.events(who)
               if e["subject"] == item["title"]]
    return event


def invitation_agenda(stack, item: dict) -> list[str]:
    """The agenda section's lines in the item's Outlook event."""
    from bs4 import BeautifulSoup

    description, agenda, _ = split_body(invitation(stack, item)["body"]["content"])
    if not agenda:
        return []
    assert AGENDA_HEADING in BeautifulSoup(agenda, "html.parser").get_text()
    return [li.get_text() for li in BeautifulSoup(agenda, "html.parser").find_all("li")]


def agenda_reads(stack, world) -> int:
    return stack.rapid.count("GET", f"/api/{world.key}/lists/Meeting Agendas/")


# -- the section's HTML ---------------------------------------------------------------------------

def test_the_agenda_section_escapes_every_site_value_and_is_empty_without_items():
    html = agenda_html([AgendaEntry("1", "Budget <2027> & hiring", "Bob <b>", 15),
                        AgendaEntry("2", "AOB"), AgendaEntry("3", "", "Carol")])
    assert html == (f"<hr><p><b>{AGENDA_HEADING}</b></p><ol>"
                    "<li>Budget &lt;2027&gt; &amp; hiring \u2014 Bob &lt;b&gt;, 15 min</li>"
                    "<li>AOB</li><li>(untitled) \u2014 Carol</li></ol>")
    assert agenda_html([]) == ""


def test_an_agenda_items_event_is_read_from_its_lookup_or_its_universal_link(stack):
    site = svc().settings.sites["acme/agenda-lookup"]
    assert events_of({"id": 4, "meeting_event_id": 12, "meeting_event": "Planning", "meeting_event$type": 42},
                     site) == ["12"]
    assert events_of({"id": 4, "meeting_event_id": None, "LinkedItems": []}, site) == []
    linked = {"id": 4, "LinkedItems": [{"id": 9001, "item_id": 12, "__metadata": {"type": "Meeting Events"}},
                                       {"id": 9002, "link": "Meeting Events/13"},
                                       {"id": 9003, "item_id": 7, "__metadata": {"type": "Principals"}},
                                       {"id": 9004, "column": "minutes", "list": "Meeting Events", "item_id": 14}]}
    assert events_of(linked, site) == ["12", "13"]
    assert events_of({"id": 4}, site) is None  # an id only: the worker must find out


def test_agenda_is_a_site_setting_off_by_default_and_checked(stack):
    env = {**stack.settings()}
    sites = json.loads(env["SITES"])
    assert not settings_from(env).sites["acme/sales"].agenda
    assert settings_from(env).sites["acme/agenda-link"].agenda
    assert settings_from(env).agenda_settle_seconds == 5
    sites[0]["agenda"] = "yes"
    with pytest.raises(ConfigError, match="agenda must be true or false"):
        settings_from({**env, "SITES": json.dumps(sites)})
    with pytest.raises(ConfigError, match="AGENDA_SETTLE_SECONDS"):
        settings_from({**env, "AGENDA_SETTLE_SECONDS": "-1"})


# -- the simulator: agenda items as RAPID keeps them -------------------------------------------------

def test_the_simulated_site_ties_agenda_items_to_events_by_lookup_or_by_universal_link(stack, agenda_site):
    item = synced_event(stack, agenda_site, "Sim agenda")
    agenda = add_agenda(agenda_site, item, "Welcome", rank=10)
    assert agenda["rank"] == "10"  # a String system field
    if agenda_site.sim.variant.agenda_link == "lookup":
        assert (agenda["meeting_event_id"], agenda["meeting_event"]) == (item["id"], item["title"])
    else:
        assert "meeting_event_id" not in agenda
        assert agenda_site.sim.linked_ids("Meeting Agendas", agenda["id"]) == [item["id"]]
    # a list read finds it by linkedTo either way (API Concepts, "How to get a bunch of linked items")
    rapid = svc().rapid(svc().settings.sites[agenda_site.key])
    assert [r["id"] for r in rapid.query("agendas", linked_to=("events", item["id"]))] == [agenda["id"]]
    agenda_site.sim.wait_idle()
    deliveries = [d for d in agenda_site.sim.deliveries if d.table == "Meeting Agendas"]
    assert deliveries and deliveries[-1].trigger == "Item Created" and deliveries[-1].body["id"] == agenda["id"]


# -- the reader -------------------------------------------------------------------------------------

def test_an_events_agenda_is_read_in_rank_order_with_owners_and_minutes_in_one_site_request(stack, agenda_site):
    item = synced_event(stack, agenda_site, "Reader order")
    other = synced_event(stack, agenda_site, "Reader other event")
    add_agenda(agenda_site, item, "Wrap up", rank="10")
    add_agenda(agenda_site, item, "Numbers", rank="9", owner="bob@contoso.test", minutes=20)
    add_agenda(agenda_site, item, "Welcome", rank=1, owner="carol@contoso.test", minutes="5")
    add_agenda(agenda_site, item, "Any other business")            # no rank: last
    add_agenda(agenda_site, item, "Numbers again", rank="9")       # a tie: by id
    add_agenda(agenda_site, other, "Not this event", rank=0)
    settle(stack)
    site = svc().settings.sites[agenda_site.key]
    stack.rapid.reset_log()
    entries = agenda_of(SiteContext.of(svc(), site), agenda_site.sim.get("Meeting Events", item["id"]))
    assert [(e.title, e.owner, e.minutes) for e in entries] == [
        ("Welcome", "Carol Invitee", 5), ("Numbers", "Bob Invitee", 20), ("Numbers again", "", None),
        ("Wrap up", "", None), ("Any other business", "", None)]
    assert stack.rapid.count(path_contains=f"/api/{agenda_site.key}/") == 1


# -- the invitation ---------------------------------------------------------------------------------

def test_an_events_invitation_lists_its_agenda_in_rank_order(stack, agenda_site):
    item = synced_event(stack, agenda_site, "Invitation order")
    add_agenda(agenda_site, item, "Decisions", rank=3, minutes=30)
    add_agenda(agenda_site, item, "Welcome", rank=1, owner="carol@contoso.test", minutes=5)
    add_agenda(agenda_site, item, "Numbers <Q4> & risks", rank=2, owner="bob@contoso.test")
    settle(stack)
    assert invitation_agenda(stack, item) == [
        "Welcome — Carol Invitee, 5 min", "Numbers <Q4> & risks — Bob Invitee", "Decisions — 30 min"]
    body = invitation(stack, item)["body"]["content"]
    assert split_body(body)[0].endswith("<p>Be on time</p>")  # the description first, the agenda after it
    # the section is Outlook's only: the site's description never receives it
    assert agenda_site.sim.get("Meeting Events", item["id"])["description"] == "<p>Be on time</p>"


def test_a_new_event_is_created_with_its_agenda(stack, agenda_site):
    meeting = new_meeting(agenda_site, AGENDA_ORGANISER, title="Created with agenda series")
    item = agenda_site.sim.create_item("Meeting Events", title=f"Created with agenda ({agenda_site.key})",
                                       meeting_id=meeting["id"],
                                       start_date="2026-12-08T09:00:00Z", end_date="2026-12-08T10:00:00Z")
    add_agenda(agenda_site, item, "First topic", rank=1)
    settle(stack)
    assert invitation_agenda(stack, item) == ["First topic"]


def test_reordering_two_agenda_items_updates_the_invitation_once(stack, agenda_site, monkeypatch):
    settle_seconds(monkeypatch, 2)
    item = synced_event(stack, agenda_site, "Reorder")
    first = add_agenda(agenda_site, item, "Alpha", rank=1)
    second = add_agenda(agenda_site, item, "Beta", rank=2)
    settle(stack)
    assert invitation_agenda(stack, item) == ["Alpha", "Beta"]
    stack.graph.reset_log()
    agenda_site.sim.update_item("Meeting Agendas", first["id"], rank=2)
    agenda_site.sim.update_item("Meeting Agendas", second["id"], rank=1)
    settle(stack)
    assert invitation_agenda(stack, item) == ["Beta", "Alpha"]
    [patch] = [e.body for e in stack.graph.log if e.method == "PATCH" and "/events/" in e.path]
    assert set(patch) == {"body"}  # only the body: the rest of the event is as it was


def test_deleting_an_agenda_item_removes_it_from_the_invitation(stack, agenda_site):
    item = synced_event(stack, agenda_site, "Delete topic")
    add_agenda(agenda_site, item, "Keep", rank=1)
    gone = add_agenda(agenda_site, item, "Drop", rank=2)
    settle(stack)
    assert invitation_agenda(stack, item) == ["Keep", "Drop"]
    agenda_site.sim.delete_items("Meeting Agendas", gone["id"])
    settle(stack)
    assert invitation_agenda(stack, item) == ["Keep"]
    last = add_agenda(agenda_site, item, "Only")
    agenda_site.sim.delete_items("Meeting Agendas", [i["id"] for i in agenda_site.sim.items("Meeting Agendas")
                                                     if i["id"] != last["id"] and i["title"] == "Keep"])
    agenda_site.sim.delete_items("Meeting Agendas", last["id"])
    settle(stack)
    assert invitation_agenda(stack, item) == []  # no items, no section


def test_an_outlook_body_edit_keeps_the_agenda_section_and_never_writes_it_into_the_site(stack, agenda_site):
    item = synced_event(stack, agenda_site, "Outlook edit")
    add_agenda(agenda_site, item, "Stays in Outlook", rank=1)
    settle(stack)
    event = invitation(stack, item)
    assert "Be on time" in event["body"]["content"]
    stack.graph.outlook_update(AGENDA_ORGANISER, event["id"], body={
        "contentType": "html", "content": event["body"]["content"].replace("Be on time", "Bring slides")})
    eventually(lambda: agenda_site.sim.get("Meeting Events", item["id"])["description"] != "<p>Be on time</p>", 20,
               what="the Outlook edit in the site")
    settle(stack)
    description = agenda_site.sim.get("Meeting Events", item["id"])["description"]
    assert "Bring slides" in description and "Stays in Outlook" not in description and "Agenda" not in description
    assert invitation_agenda(stack, item) == ["Stays in Outlook"]


# -- the webhooks -----------------------------------------------------------------------------------

def test_agenda_webhooks_are_accepted_per_site_and_ignored_where_agenda_is_off(stack, site):
    body = {"id": 7, "title": "Intro", "meeting_event_id": 3, "__metadata": {"type": "Meeting Agendas"}}
    on = post(stack, "acme/agenda-lookup/0/services/rapid-meetings/agenda/update", body)
    assert on.status_code == 202 and on.json()["accepted"] == 1
    off = post(stack, "acme/sales/0/services/rapid-meetings/agenda/update", body)
    assert off.status_code == 202 and off.json() == {"accepted": 0, "jobs": [], "ignored": "agenda is off for acme/sales"}
    assert post(stack, "acme/agenda-lookup/0/services/rapid-meetings/agenda/update", [body]).status_code == 400
    assert post(stack, "acme/agenda-lookup/0/services/rapid-meetings/agenda/delete", [7, 8]).json()["accepted"] == 2
    refused = post(stack, "acme/agenda-link/0/services/rapid-meetings/agenda/create", body, key=None)
    assert refused.status_code == 401
    settle(stack)


def test_a_burst_of_20_agenda_changes_costs_one_graph_patch(stack, agenda_site, updates, monkeypatch):
    settle_seconds(monkeypatch, 5)  # the default
    item = synced_event(stack, agenda_site, "Burst")
    updates.clear()
    stack.graph.reset_log()
    started = time.monotonic()
    agenda = [add_agenda(agenda_site, item, f"Topic {n}", rank=n) for n in range(10)]
    for n, entry in enumerate(agenda):
        agenda_site.sim.update_item("Meeting Agendas", entry["id"], rank=20 - n)
    assert time.monotonic() - started < 3
    settle(stack)
    assert updates.count(str(item["id"])) == 1
    assert stack.graph.count("PATCH", "/events/") == 1 and stack.graph.count("GET", "/events/") == 1
    assert invitation_agenda(stack, item) == [f"Topic {n}" for n in reversed(range(10))]


def test_agenda_items_deleted_with_an_ids_only_body_update_the_event_they_were_seen_with(
        stack, agenda_site, updates, monkeypatch):
    item = synced_event(stack, agenda_site, "Deleted by id")
    add_agenda(agenda_site, item, "Stays")
    gone = [add_agenda(agenda_site, item, f"Goes {n}") for n in (1, 2)]
    settle(stack)
    updates.clear()
    stack.rapid.reset_log()
    monkeypatch.setattr(agenda_site.sim.variant, "deleted_body", "ids")  # "Items Deleted" as a list of ids
    agenda_site.sim.delete_items("Meeting Agendas", [g["id"] for g in gone])
    settle(stack)
    assert [d.body for d in agenda_site.sim.deliveries][-1] == [g["id"] for g in gone]
    assert updates and set(updates) == {str(item["id"])}
    # the index named their event: the deleted items were not read
    assert stack.rapid.count("GET", "/lists/Meeting Agendas/items/") == 0


def test_an_agenda_item_moved_to_another_event_updates_both(stack, agenda_site, updates):
    one = synced_event(stack, agenda_site, "Move from")
    two = synced_event(stack, agenda_site, "Move to")
    entry = add_agenda(agenda_site, one, "Travels")
    settle(stack)
    updates.clear()
    if agenda_site.sim.variant.agenda_link == "lookup":
        agenda_site.sim.update_item("Meeting Agendas", entry["id"], meeting_event_id=two["id"])
    else:
        agenda_site.sim.update_item("Meeting Agendas", entry["id"], LinkedItemsToRemove=[f"Meeting Events/{one['id']}"],
                                    LinkedItemsToAdd=[f"Meeting Events/{two['id']}"])
    settle(stack)
    assert sorted(updates) == sorted([str(one["id"]), str(two["id"])])


def test_with_agenda_off_nothing_about_agendas_is_read(stack, site, updates):
    item = synced_event(stack, site, "Agenda off")
    stack.rapid.reset_log()
    updates.clear()
    add_agenda(site, item, "Not shown")
    site.sim.update_item("Meeting Events", item["id"], title="Agenda off, renamed")
    settle(stack)
    assert agenda_reads(stack, site) == 0
    assert updates == [str(item["id"])]
    assert eventually(lambda: [e for e in stack.graph.events(ORGANISER) if e["subject"] == "Agenda off, renamed"])


# -- the site-side catch-up -------------------------------------------------------------------------

def catch_up_once(stack, world, sweep: bool = False) -> None:
    from .test_catch_up import checkpoint

    checkpoint(world.key, sweep=sweep)
    before = svc().ops.run("catch_up", world.key).finished
    stack.host.run_function("site_catch_up")
    eventually(lambda: svc().ops.run("catch_up", world.key).finished != before, 30, what="the catch-up run")
    settle(stack)


def test_an_agenda_change_whose_webhook_was_lost_reaches_the_invitation_in_one_catch_up_run(stack, agenda_site):
    from .test_catch_up import dropped

    item = synced_event(stack, agenda_site, "Caught up agenda")
    first = add_agenda(agenda_site, item, "First", rank=1)
    settle(stack)
    catch_up_once(stack, agenda_site)  # nothing differs: nothing enqueued
    assert svc().ops.run("catch_up", agenda_site.key).counts["enqueued"] == 0
    with dropped(agenda_site, "Meeting Agendas", "Item Created", "Item Updated"):
        agenda_site.sim.update_item("Meeting Agendas", first["id"], title="First, renamed")
        add_agenda(agenda_site, item, "Second", rank=2)
        settle(stack)
        assert invitation_agenda(stack, item) == ["First"]
        stack.graph.reset_log()
        catch_up_once(stack, agenda_site)
    assert invitation_agenda(stack, item) == ["First, renamed", "Second"]
    assert stack.graph.count("PATCH", "/events/") == 1


def test_an_agenda_item_deleted_while_its_webhooks_were_lost_leaves_the_invitation_in_one_sweep(stack, agenda_site):
    from .test_catch_up import dropped

    item = synced_event(stack, agenda_site, "Swept agenda")
    add_agenda(agenda_site, item, "Kept", rank=1)
    gone = add_agenda(agenda_site, item, "Deleted unseen", rank=2)
    settle(stack)
    with dropped(agenda_site, "Meeting Agendas", "Item Deleted", "Items Deleted"):
        agenda_site.sim.delete_items("Meeting Agendas", gone["id"])
        settle(stack)
        assert invitation_agenda(stack, item) == ["Kept", "Deleted unseen"]
        catch_up_once(stack, agenda_site, sweep=True)
    assert invitation_agenda(stack, item) == ["Kept"]
    assert svc().ops.agenda_events(agenda_site.key, str(gone["id"])) is None  # its index row is dropped


def test_the_playground_adds_edits_and_deletes_agenda_items_as_the_sites_person(stack, agenda_site):
    import requests

    item = synced_event(stack, agenda_site, "Playground agenda")
    page = f"{stack.rapid.base_url}/_sim/sites/{agenda_site.tenant}/{agenda_site.name}"
    session = requests.Session()
    session.trust_env = False
    added = session.post(f"{page}/agendas", data={"event_id": item["id"], "title": "From <the> page", "rank": "2",
                                                  "owner_id": agenda_site.principals["bob@contoso.test"],
                                                  "duration": "15"}, verify=stack.graph.ca_path, allow_redirects=False)
    assert added.status_code == 303 and "error" not in added.headers["Location"]
    [entry] = [a for a in agenda_site.sim.items("Meeting Agendas") if a["title"] == "From <the> page"]
    assert (entry["rank"], entry["owner_id"], entry["duration"]) == ("2", agenda_site.principals["bob@contoso.test"], 15)
    shown = session.get(page, verify=stack.graph.ca_path).text
    assert "From &lt;the&gt; page" in shown and "From <the> page" not in shown
    settle(stack)
    assert invitation_agenda(stack, item) == ["From <the> page \u2014 Bob Invitee, 15 min"]
    session.post(f"{page}/agendas/{entry['id']}", data={"title": "Renamed", "rank": "1"}, verify=stack.graph.ca_path)
    session.post(f"{page}/agendas/{entry['id']}/delete", data={}, verify=stack.graph.ca_path)
    assert agenda_site.sim.get("Meeting Agendas", entry["id"])["deleted"]
    settle(stack)
    assert invitation_agenda(stack, item) == []
