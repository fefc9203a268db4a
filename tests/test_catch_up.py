"""Nothing drifts unseen (issue 12): site webhooks lost on purpose, the site-side catch-up brings Outlook
back in line within one run; "sync now" for an event, a meeting and a site repairs a drifted item."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from devtools.azurite import eventually, free_port
from devtools.stack import ORGANISER
from shared.model.mapping import format_utc

from .scenario import new_event, new_meeting, post, settle, svc

SYNC = "acme/sales/0/services/rapid-meetings/sync"


def outlook(stack, subject):
    return [e for e in stack.graph.events(ORGANISER) if e["subject"] == subject]


def checkpoint(site_key: str = "acme/sales", sweep: bool = False) -> None:
    """The site's last catch-up ran just now and is due again; its last sweep is due when `sweep`."""
    ops, now = svc().ops, svc().clock()
    long_ago = format_utc(now - timedelta(days=2))
    ops.note_run("catch_up", site_key, scheduled=long_ago, started=long_ago, watermark=format_utc(now))
    recent = format_utc(now - (timedelta(days=2) if sweep else timedelta(minutes=1)))
    ops.note_run("sweep", site_key, scheduled=recent, started=recent)


def one_run(stack) -> None:
    """One tick of the catch-up timer, then everything it enqueued, done."""
    before = {s.key: svc().ops.run("catch_up", s.key).finished for s in svc().settings.sites.values()}
    stack.host.run_function("site_catch_up")
    eventually(lambda: svc().ops.run("catch_up", "acme/sales").finished != before["acme/sales"], 30,
               what="the catch-up run to finish")
    settle(stack)


@contextlib.contextmanager
def dropped(site, table: str, *triggers: str):
    """The site's webhooks of `table` for `triggers` are deleted, then put back."""
    kept = list(site.sim.webhooks)
    site.sim.webhooks[:] = [h for h in kept if not (h.table == table and h.trigger in triggers)]
    try:
        yield
    finally:
        site.sim.webhooks[:] = kept


def test_an_event_created_while_its_webhook_was_dropped_reaches_outlook_in_one_run(stack, site):
    meeting = new_meeting(site)
    settle(stack)
    checkpoint()
    with dropped(site, "Meeting Events", "Item Created"):
        new_event(site, meeting, title="Missed create")
        settle(stack)
        assert not outlook(stack, "Missed create")
    one_run(stack)
    assert len(outlook(stack, "Missed create")) == 1


def test_an_update_whose_webhook_was_dropped_reaches_outlook_in_one_run(stack, site):
    meeting = new_meeting(site)
    item = new_event(site, meeting, title="Before drop")
    settle(stack)
    checkpoint()
    with dropped(site, "Meeting Events", "Item Updated"):
        site.sim.update_item("Meeting Events", item["id"], title="After drop",
                             invitees=[site.principals["carol@contoso.test"]])
        settle(stack)
        assert outlook(stack, "Before drop")
    one_run(stack)
    [event] = outlook(stack, "After drop")
    assert sorted(a["emailAddress"]["address"] for a in event["attendees"]) == ["carol@contoso.test",
                                                                                "guest@partner.test"]


def test_an_invitee_change_alone_is_found_by_reading_the_items_links(stack, site):
    meeting = new_meeting(site)
    item = new_event(site, meeting, title="Invitees only")
    settle(stack)
    checkpoint()
    with dropped(site, "Meeting Events", "Item Updated"):
        site.sim.update_item("Meeting Events", item["id"], invitees=[site.principals["carol@contoso.test"]])
        settle(stack)
    one_run(stack)
    [event] = outlook(stack, "Invitees only")
    assert "carol@contoso.test" in [a["emailAddress"]["address"] for a in event["attendees"]]


def test_a_delete_whose_webhook_was_dropped_cancels_the_outlook_event_in_one_sweep_run(stack, site):
    meeting = new_meeting(site)
    item = new_event(site, meeting, title="Deleted unseen")
    settle(stack)
    checkpoint(sweep=True)
    with dropped(site, "Meeting Events", "Item Deleted", "Items Deleted"):
        site.sim.delete_items("Meeting Events", [item["id"]])
        settle(stack)
        assert outlook(stack, "Deleted unseen")
    one_run(stack)
    assert not outlook(stack, "Deleted unseen")
    assert any(c.subject == "Deleted unseen" for c in stack.graph.cancellations)
    assert svc().store.get_link("acme/sales", str(item["id"])) is None


def test_a_catch_up_that_finds_no_difference_writes_nothing_and_calls_graph_zero_times(stack, site, monkeypatch):
    meeting = new_meeting(site)
    item = new_event(site, meeting, title="Unchanged")
    settle(stack)
    stack.graph.wait_idle()  # the create's own notifications answered (their echo reads) before the count
    checkpoint()
    one_run(stack)  # what earlier tests left to do (a meeting whose organiser was outside a site's bounds then)
    now = format_utc(svc().clock())
    for other in svc().settings.sites:  # only acme/sales is due: another site's leftovers are not counted here
        svc().ops.note_run("catch_up", other, scheduled=now, started=now)
    checkpoint()
    site.sim.backdate("Meeting Events", item["id"], modified=format_utc(svc().clock()))  # in the window
    stack.graph.reset_log()
    logged, queued, enqueue = len(site.sim.write_log), [], svc().queue.enqueue
    monkeypatch.setattr(svc().queue, "enqueue", lambda tasks, *a, **k: queued.extend(tasks) or enqueue(tasks, *a, **k))
    one_run(stack)
    event_id = svc().store.get_link("acme/sales", str(item["id"])).event_id
    # nothing asked of Graph for the item (what earlier tests left, e.g. an unfinished mark replayed, is theirs)
    assert [f"{e.method} {e.path}" for e in stack.graph.log if event_id in e.path or "/events" in e.path
            and e.method != "GET"] == []
    assert [w for w in site.sim.write_log[logged:] if str(w.item_id) == str(item["id"])] == []
    assert svc().ops.run("catch_up", "acme/sales").counts["events_read"] >= 1
    assert [t for t in queued if str(t.get("item")) == str(item["id"])] == []  # compared, and found the same


def test_a_whole_outage_of_webhooks_is_caught_up_in_one_run(stack, site):
    meeting = new_meeting(site)
    kept = new_event(site, meeting, title="Outage: edited")
    gone = new_event(site, meeting, title="Outage: deleted")
    settle(stack)
    checkpoint(sweep=True)
    dead = f"http://127.0.0.1:{free_port()}/down"  # the app is down longer than the site retries
    hooks = [(h, h.url) for h in site.sim.webhooks]
    for hook, _ in hooks:
        hook.url = dead
    try:
        new_meeting_during = new_meeting(site, organiser="bob@contoso.test", title="Outage meeting")
        new_event(site, new_meeting_during, title="Outage: created")
        site.sim.update_item("Meeting Events", kept["id"], title="Outage: edited twice", location="Room 9")
        site.sim.delete_items("Meeting Events", [gone["id"]])
        site.sim.wait_idle(60)
        assert not [d for d in site.sim.deliveries if d.url == dead and d.status is not None]
    finally:
        for hook, url in hooks:
            hook.url = url
    assert not [e for e in stack.graph.events("bob@contoso.test") if e["subject"] == "Outage: created"]
    one_run(stack)
    assert [e for e in stack.graph.events("bob@contoso.test") if e["subject"] == "Outage: created"]
    [event] = outlook(stack, "Outage: edited twice")
    assert event["location"]["displayName"] == "Room 9"
    assert not outlook(stack, "Outage: deleted") and not outlook(stack, "Outage: edited")
    assert svc().store.subscription_for("acme/sales", "bob@contoso.test") is not None  # the meeting registered
    assert svc().store.get_meeting("acme/sales", str(new_meeting_during["id"])) is not None


def test_the_timer_does_not_run_a_site_again_before_its_interval(stack, site):
    checkpoint()
    stack.host.run_function("site_catch_up")
    settle(stack)
    first = svc().ops.run("catch_up", "acme/sales")
    stack.host.run_function("site_catch_up")
    settle(stack)
    assert svc().ops.run("catch_up", "acme/sales").started == first.started


# -- sync now ------------------------------------------------------------------------------------

def drift(stack, site, item, monkeypatch=None, **fields):
    """The item changes in the site with its webhook lost, dated before the catch-up's window."""
    with dropped(site, "Meeting Events", "Item Updated"):
        site.sim.update_item("Meeting Events", item["id"], **fields)
        settle(stack)
    site.sim.backdate("Meeting Events", item["id"], modified=format_utc(svc().clock() - timedelta(days=3)))


def test_sync_now_for_an_event_repairs_both_directions(stack, site, monkeypatch):
    meeting = new_meeting(site)
    item = new_event(site, meeting, title="Drifted event")
    other = new_event(site, meeting, title="Outlook drifted")
    settle(stack)
    drift(stack, site, item, title="Drifted event, repaired")
    [event] = outlook(stack, "Outlook drifted")
    monkeypatch.setattr(stack.graph, "_changed", lambda ev, change: None)  # Outlook's notifications lost
    stack.graph.outlook_update(ORGANISER, event["id"], location={"displayName": "Moved in Outlook"})
    monkeypatch.undo()
    answer = post(stack, SYNC, {"event": item["id"]})
    assert answer.status_code == 202 and answer.json()["accepted"] == 1 and answer.json()["jobs"]
    assert post(stack, SYNC, {"event": other["id"]}).status_code == 202
    settle(stack)
    assert outlook(stack, "Drifted event, repaired")
    assert site.sim.get("Meeting Events", other["id"])["location"] == "Moved in Outlook"


def test_sync_now_for_a_meeting_repairs_its_drifted_event(stack, site):
    meeting = new_meeting(site)
    item = new_event(site, meeting, title="Meeting drift")
    settle(stack)
    drift(stack, site, item, title="Meeting drift, repaired")
    answer = post(stack, SYNC, {"meeting": meeting["id"]})
    assert answer.status_code == 202
    settle(stack)
    assert outlook(stack, "Meeting drift, repaired") and not outlook(stack, "Meeting drift")


def test_sync_now_for_the_site_repairs_a_drift_older_than_the_catch_up_window(stack, site):
    meeting = new_meeting(site)
    item = new_event(site, meeting, title="Site drift")
    settle(stack)
    drift(stack, site, item, title="Site drift, repaired")
    answer = post(stack, SYNC, None, raw=b"")
    assert answer.status_code == 202 and answer.json()["accepted"] == 1
    settle(stack, 60)
    assert outlook(stack, "Site drift, repaired") and not outlook(stack, "Site drift")


def test_a_sync_with_outlook_now_button_repairs_the_event_it_is_pressed_on(stack, site):
    meeting = new_meeting(site)
    item = new_event(site, meeting, title="Button drift")
    settle(stack)
    drift(stack, site, item, title="Button drift, repaired")
    statuses = site.sim.perform_remote_action(stack.function_url(SYNC), [("Meeting Events", item["id"])])
    assert statuses == [202]
    settle(stack)
    assert outlook(stack, "Button drift, repaired")


def test_a_remote_action_naming_another_site_is_refused_and_changes_nothing(stack, site):
    meeting = new_meeting(site)
    item = new_event(site, meeting, title="Not yours")
    settle(stack)
    body = {"site": "ops", "tenant": "globex", "environment": "production", "requestor": 1,
            "item": [site.sim.get("Meeting Events", item["id"])], "formData": {}}
    answer = post(stack, SYNC, body)
    assert answer.status_code == 400 and "globex" in answer.json()["message"]
    other = stack.sites["globex/ops"].sim  # globex's designer points a button at acme's address
    theirs = other.create_item("Meetings", title="Globex meeting")
    stack.graph.reset_log()
    assert other.perform_remote_action(stack.function_url(SYNC), [("Meetings", theirs["id"])]) == [400]
    settle(stack)
    assert stack.graph.count(path_contains="/v1.0/") == 0


def test_sync_now_refuses_what_it_cannot_sync_naming_the_problem(stack, site):
    for body, words in (({"event": 1, "meeting": 2}, "one of"), ([1, 2], "JSON object"),
                        ({"id": 3, "__metadata": {"type": "Principals"}}, "Principals"),
                        ({"event": -1}, "negative")):
        answer = post(stack, SYNC, body)
        assert answer.status_code == 400 and words in answer.json()["message"], (body, answer.text)
    assert post(stack, "nobody/nowhere/0/services/rapid-meetings/sync", {}).status_code == 404
    assert post(stack, SYNC, {}, key="wrong").status_code == 401


def test_many_meetings_of_one_organiser_caught_up_at_once_all_get_registered(stack, site, caplog):
    """Their registrations share the organiser's mailbox lease: they take turns instead of rescheduling
    each other until their retries run out."""
    caplog.set_level("WARNING", logger="rapid_meetings")
    settle(stack)
    checkpoint()
    with dropped(site, "Meetings", "Item Created"):
        meetings = [new_meeting(site, title=f"Missed meeting {n}") for n in range(8)]
        settle(stack)
    one_run(stack)
    items = {i["meeting_id"] for i in site.sim.items("Meeting Subscriptions")}
    assert {m["id"] for m in meetings} <= items
    sub = svc().store.subscription_for(site.key, ORGANISER)
    assert all(svc().store.get_meeting(site.key, str(m["id"])).subscription_id == sub.id for m in meetings)
    assert not [r for r in caplog.records if "being changed by another job" in r.getMessage()]
