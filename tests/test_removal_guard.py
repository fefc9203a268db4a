"""Never remove in bulk unasked (issue 20): past a site's limit of removals in an hour, removals are held,
shown and released by an operator, or dropped when the item comes back; a 404 removes something only when
it proves the thing is gone (an event's ErrorItemNotFound, an item missing from a list that answers)."""

from __future__ import annotations

import dataclasses

import pytest
import requests

from devtools.azurite import eventually
from devtools.stack import MASTER_KEY, ORGANISER
from shared.config import SiteConfig
from shared.sync import removal_guard

from .scenario import new_event, new_meeting, post, settle, site_with, svc
from .test_catch_up import checkpoint, one_run, outlook

COLUMN = "sync_status"
DELETE = "acme/sales/0/services/rapid-meetings/event/delete"
SITE = SiteConfig(tenant="acme", site="sales", rapid_url="https://rapid.test", rapid_scope="s", aad_tenant="t",
                  client_id="c", client_secret="x")


@pytest.mark.parametrize("limit, fraction, links, done, more, held", [
    (50, 0.2, 100, 0, 20, False),      # a fifth of its linked events in an hour
    (50, 0.2, 100, 0, 21, True),
    (50, 0.2, 100, 15, 6, True),       # counted over the hour, not per burst
    (50, 0.2, 20, 0, 5, False),        # a small site may still lose a few (REMOVAL_FLOOR)
    (50, 0.2, 20, 0, 6, True),         # but not all 20 of its meetings because its list answered empty
    (50, 0.2, 1000, 0, 50, False),     # a large one at most removal_limit
    (50, 0.2, 1000, 0, 51, True),
    (0, 0.0, 10, 0, 1, True),          # a site that wants every removal approved
    (2, 0.0, 500, 2, 1, True),
])
def test_the_hours_removals_are_held_past_a_share_of_the_sites_events_within_a_floor_and_a_cap(limit, fraction, links, done,
                                                                                 more, held):
    site = dataclasses.replace(SITE, removal_limit=limit, removal_fraction=fraction)
    assert removal_guard.over(site, done, more, links) is held


# -- in the local world ------------------------------------------------------------------------------

@pytest.fixture
def guard(stack, site, monkeypatch):
    """acme/sales with a status column and a guard that lets 2 removals an hour through, nothing held."""
    svc().held.reset("acme/sales")
    config = site_with(site, monkeypatch, {COLUMN: "Text"}, status_column=COLUMN, removal_limit=2,
                       removal_fraction=0.0)
    yield config
    site.sim.hide_items("Meeting Events", False)
    svc().held.reset("acme/sales")


def events(stack, site, count: int, title: str) -> list[dict]:
    meeting = new_meeting(site)
    items = [new_event(site, meeting, title=f"{title} {n}") for n in range(count)]
    settle(stack)
    assert all(outlook(stack, f"{title} {n}") for n in range(count))
    return items


def held_items() -> set[str]:
    return {h.item_id for h in svc().held.held("acme/sales")}


def cancelled(stack, subject: str) -> bool:
    return any(c.subject == subject for c in stack.graph.cancellations)


def status_page(stack) -> dict:
    answer = requests.get(f"{stack.host_url}/ops/status",
                          params={"code": MASTER_KEY, "format": "json", "site": "acme/sales"}, timeout=60)
    assert answer.status_code == 200
    return answer.json()["sites"][0]


def release(stack, item=None) -> dict:
    params = {"code": MASTER_KEY, "site": "acme/sales", **({"item": str(item)} if item is not None else {})}
    answer = requests.post(f"{stack.host_url}/ops/held-removals/release", params=params, timeout=60)
    assert answer.status_code == 202, answer.text
    settle(stack)
    return answer.json()


def test_an_empty_site_list_cancels_nothing_and_says_so_until_the_items_are_back(stack, site, guard):
    items = events(stack, site, 3, "Hidden by a filter")
    checkpoint(sweep=True)
    site.sim.hide_items("Meeting Events")  # the list suddenly answers empty; the items are still there
    one_run(stack)
    assert all(outlook(stack, f"Hidden by a filter {n}") for n in range(3))
    assert not any(cancelled(stack, f"Hidden by a filter {n}") for n in range(3))
    assert {str(i["id"]) for i in items} <= held_items()
    for item in items:
        assert site.sim.get("Meeting Events", item["id"])[COLUMN].startswith("Held: its removal from Outlook waits")
        assert svc().store.get_link("acme/sales", str(item["id"])) is not None
    shown = {h["item"]: h for h in status_page(stack)["held_removals"]}
    assert shown[str(items[0]["id"])]["direction"] == "outlook" and "sweep" in shown[str(items[0]["id"])]["why"]
    # the list answers again: the next sweep drops the held removals, the items are in Outlook as before
    site.sim.hide_items("Meeting Events", False)
    checkpoint(sweep=True)
    one_run(stack)
    assert not {str(i["id"]) for i in items} & held_items()
    assert all(site.sim.get("Meeting Events", i["id"])[COLUMN].startswith("In Outlook since") for i in items)


def test_a_burst_of_delete_webhooks_beyond_the_limit_holds_the_rest(stack, site, guard):
    items = events(stack, site, 4, "Delete burst")
    site.sim.delete_items("Meeting Events", [i["id"] for i in items])
    settle(stack)
    kept = [n for n in range(4) if outlook(stack, f"Delete burst {n}")]
    assert len(kept) == 2 and sum(cancelled(stack, f"Delete burst {n}") for n in range(4)) == 2
    assert held_items() == {str(items[n]["id"]) for n in kept}


def test_a_held_removal_is_released_by_the_admin_route_one_item_then_all(stack, site, guard):
    items = events(stack, site, 4, "Released")
    site.sim.delete_items("Meeting Events", [i["id"] for i in items])
    settle(stack)
    first, second = sorted(held_items())
    answer = release(stack, first)
    assert answer["released"] == 1 and answer["jobs"]
    title = {str(i["id"]): i["title"] for i in items}
    assert cancelled(stack, title[first]) and not outlook(stack, title[first])
    assert outlook(stack, title[second]) and held_items() == {second}
    assert svc().store.get_link("acme/sales", first) is None
    assert release(stack)["released"] == 1
    assert not outlook(stack, title[second]) and cancelled(stack, title[second]) and not held_items()
    unknown = requests.post(f"{stack.host_url}/ops/held-removals/release",
                            params={"code": MASTER_KEY, "site": "acme/sales", "item": first}, timeout=60)
    assert unknown.status_code == 404


def test_a_held_removal_is_dropped_when_its_items_webhook_says_it_was_updated(stack, site, guard):
    items = events(stack, site, 3, "Comes back")
    checkpoint(sweep=True)
    site.sim.hide_items("Meeting Events")  # the sweep finds none of them: all three held
    one_run(stack)
    assert {str(i["id"]) for i in items} <= held_items()
    site.sim.hide_items("Meeting Events", False)
    back = str(items[0]["id"])
    site.sim.update_item("Meeting Events", int(back), title="Came back")
    settle(stack)
    assert back not in held_items() and outlook(stack, "Came back")
    assert svc().store.get_link("acme/sales", back) is not None


def test_delete_webhooks_for_items_the_list_no_longer_shows_remove_nothing(stack, site, guard, monkeypatch):
    """The list answers no item at all and each item's GET answers 404 (a filter, lost rights): that is no
    proof of a deletion. The jobs wait; once the list answers again the items are in Outlook as before."""
    monkeypatch.setattr(svc(), "settings", dataclasses.replace(svc().settings, backoff_cap_seconds=2))
    items = events(stack, site, 3, "Not proof")
    site.sim.hide_items("Meeting Events", items_too=True)
    try:
        assert post(stack, DELETE, [{"id": i["id"]} for i in items]).status_code == 202
        # each job waits, marked unfinished (its status cannot be written either: the item is not visible)
        eventually(lambda: {f"item:{i['id']}" for i in items} <= {m.key for m in svc().health.marks("acme/sales")},
                   30, what="each delete to wait, marked unfinished")
        assert all(outlook(stack, f"Not proof {n}") for n in range(3)) and not held_items()
    finally:
        site.sim.hide_items("Meeting Events", False)
    settle(stack, timeout=60)
    assert all(outlook(stack, f"Not proof {n}") for n in range(3))
    assert not any(cancelled(stack, f"Not proof {n}") for n in range(3))
    assert not {m.key for m in svc().health.marks("acme/sales")} & {f"item:{i['id']}" for i in items}


def test_a_flood_of_outlook_deletions_cancels_no_more_site_items_than_the_limit(stack, site, guard):
    items = events(stack, site, 3, "Outlook flood")
    for item in items:
        stack.graph.outlook_delete(ORGANISER, site.sim.get("Meeting Events", item["id"])["sys_external_id"])
    eventually(lambda: len(held_items()) == 1, 30, what="the third cancellation held")
    settle(stack)
    states = [site.sim.get("Meeting Events", i["id"]).get("status") for i in items]
    assert states.count("Cancelled") == 2
    [held] = held_items()
    assert site.sim.get("Meeting Events", held)[COLUMN].startswith("Held: its cancellation from Outlook waits")
    assert release(stack, held)["released"] == 1
    assert site.sim.get("Meeting Events", held)["status"] == "Cancelled" and not held_items()


# -- a 404 is proof only when it says so ------------------------------------------------------------------

def test_a_404_from_a_de_licensed_mailbox_removes_nothing_and_is_retried(stack, site, guard):
    [item] = events(stack, site, 1, "De-licensed")
    stack.graph.set_mailbox_state(ORGANISER, "de-licensed")
    try:
        site.sim.update_item("Meeting Events", item["id"], title="De-licensed, edited")
        site.sim.delete_items("Meeting Events", [item["id"]])
        # the removal began (its mark) and met the mailbox's 404: to the read that checks whether the event became
        # a series (perform._what_to_cancel), or to the cancel
        eventually(lambda: getattr(svc().store.get_link("acme/sales", str(item["id"])), "removing", False) and any(
            e.status == 404 and "/events/" in e.path for e in stack.graph.log), 30, what="the mailbox's 404 to the removal")
        assert outlook(stack, "De-licensed 0") and not cancelled(stack, "De-licensed 0")
        assert svc().store.get_link("acme/sales", str(item["id"])) is not None
    finally:
        stack.graph.set_mailbox_state(ORGANISER, "available")
    eventually(lambda: cancelled(stack, "De-licensed 0"), 60, what="the retried removal")
    settle(stack)
    assert svc().store.get_link("acme/sales", str(item["id"])) is None


def test_a_404_from_a_renamed_list_removes_nothing_and_is_retried(stack, site, guard):
    [item] = events(stack, site, 1, "Renamed list")
    stack.rapid.reset_log()
    site.sim.rename_list("Meeting Events", "Meeting Events (old)")
    try:
        assert post(stack, DELETE, [{"id": item["id"]}]).status_code == 202
        # the item's GET answered 404, and the list, asked whether that proves anything, 404 too
        eventually(lambda: any(e.status == 404 and "/All$/items" in e.path for e in stack.rapid.log), 30,
                   what="the list's own 404")
        assert outlook(stack, "Renamed list 0")
    finally:
        site.sim.rename_list("Meeting Events", None)
    settle(stack, 60)
    assert outlook(stack, "Renamed list 0") and not cancelled(stack, "Renamed list 0")
    assert svc().store.get_link("acme/sales", str(item["id"])) is not None


def test_a_real_item_not_found_still_cancels_the_site_item(stack, site, guard, monkeypatch):
    [item] = events(stack, site, 1, "Really gone")
    event_id = site.sim.get("Meeting Events", item["id"])["sys_external_id"]
    with monkeypatch.context() as lost:
        lost.setattr(stack.graph, "_changed", lambda ev, change: None)  # Outlook's notification lost
        stack.graph.outlook_delete(ORGANISER, event_id)
    site.sim.update_item("Meeting Events", item["id"], title="Really gone, edited")
    settle(stack)
    assert any(e.status == 404 and event_id in e.path for e in stack.graph.log)
    assert site.sim.get("Meeting Events", item["id"])["status"] == "Cancelled"
    assert svc().store.get_link("acme/sales", str(item["id"])) is None
