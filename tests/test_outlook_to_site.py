"""Outlook → site: subscriptions, notifications, echoes, conflicts, lifecycle, renewal (issue 4)."""

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest
import requests

from devtools.azurite import eventually
from devtools.stack import AAD_TENANT, CLIENT_ID, MASTER_KEY, ORGANISER
from shared.model.mapping import format_utc
from shared.storage.store import Subscription

from .scenario import new_event, new_meeting, post, settle


def services():
    from functions.http import services as built

    return built()


def subscription_of(stack, mailbox=ORGANISER, site="acme/sales"):
    return services().store.subscription_for(site, mailbox)


@pytest.fixture
def synced_event(stack, site):
    """A registered meeting with one event synced to Outlook; the Outlook event dict."""
    meeting = new_meeting(site)
    item = new_event(site, meeting, title="Two-way")
    settle(stack)
    event = next(e for e in stack.graph.events(ORGANISER) if e["id"] == site.sim.get("Meeting Events", item["id"])["sys_external_id"])
    stack.graph.reset_log()
    stack.rapid.reset_log()
    return {"item": item, "event": event, "meeting": meeting}


def event_writes(stack, site):
    """Writes this app made to the site's Meeting Events (the simulator logs paths decoded)."""
    return [e for e in stack.rapid.log if e.method in ("PUT", "POST", "DELETE") and "/Meeting Events/" in e.path]


def test_a_meeting_gets_one_subscription_per_organiser_and_a_site_item_each(stack, site):
    first, second = new_meeting(site, title="First"), new_meeting(site, title="Second")
    settle(stack)
    sub = subscription_of(stack)
    graph_sub = stack.graph.subscriptions[sub.id]
    assert graph_sub["resource"] == f"users/{stack.user_ids[ORGANISER]}/events"
    assert graph_sub["changeType"] == "created,updated,deleted"
    assert graph_sub["lifecycleNotificationUrl"] and len(graph_sub["clientState"]) >= 64
    expires = datetime.fromisoformat(graph_sub["expirationDateTime"].replace("Z", "+00:00"))
    assert expires > datetime.now(timezone.utc) + timedelta(minutes=4200)
    mine = [s for s in stack.graph.subscriptions.values() if s["resource"] == graph_sub["resource"] and s["active"]]
    assert len(mine) == 1
    items = {i["meeting_id"]: i for i in site.sim.items("Meeting Subscriptions")}
    for meeting in (first, second):
        assert items[meeting["id"]]["subscription_id"] == sub.id
        assert items[meeting["id"]]["resource"] == sub.resource and items[meeting["id"]]["expires"]


def test_an_outlook_edit_updates_the_site_item_once(stack, site, synced_event):
    event, item = synced_event["event"], synced_event["item"]
    stack.graph.outlook_update(ORGANISER, event["id"], subject="Renamed in Outlook", location={"displayName": "Café"})
    eventually(lambda: site.sim.get("Meeting Events", item["id"])["title"] == "Renamed in Outlook", what="the site update")
    settle(stack)
    stored = site.sim.get("Meeting Events", item["id"])
    assert stored["location"] == "Café"
    assert len(event_writes(stack, site)) == 1
    assert stack.graph.count("GET", "/events/") == 1


def test_the_same_notification_delivered_three_times_writes_the_site_once(stack, site, synced_event):
    stack.graph.duplicate_notifications = 3
    try:
        stack.graph.outlook_update(ORGANISER, synced_event["event"]["id"], subject="Said three times")
        eventually(lambda: site.sim.get("Meeting Events", synced_event["item"]["id"])["title"] == "Said three times")
        stack.graph.wait_idle()
        settle(stack)
    finally:
        stack.graph.duplicate_notifications = 1
    assert len([d for d in stack.graph.notifications_sent if d.status == 202]) >= 3
    assert len(event_writes(stack, site)) == 1


def test_an_outlook_change_waits_while_an_earlier_change_of_its_event_is_being_applied(stack, site, synced_event,
                                                                                       caplog):
    """Two changes of one event never apply side by side (a chaos run found the older one's stale read
    written into the site after the newer one): while another job holds the event for an earlier change,
    this one is put back, not applied and not dropped, and applies once the event is free."""
    store, item = services().store, synced_event["item"]
    link = store.get_link("acme/sales", item["id"])
    assert store.claim_change("acme/sales", link.event_id, "an-earlier-change", owner="another-job")
    try:
        stack.graph.outlook_update(ORGANISER, synced_event["event"]["id"], subject="After the earlier one")
        eventually(lambda: "earlier Outlook change of this event" in caplog.text, what="the change put back")
        assert site.sim.get("Meeting Events", item["id"])["title"] == "Two-way"
    finally:
        store.release_change("acme/sales", link.event_id, "an-earlier-change")
    eventually(lambda: site.sim.get("Meeting Events", item["id"])["title"] == "After the earlier one",
               what="the change applied once the event was free")
    settle(stack)
    assert len(event_writes(stack, site)) == 1


def graph_calls(stack) -> list[str]:
    return [e.method for e in stack.graph.log if "/events" in e.path]


def test_an_echo_of_our_own_change_writes_nothing_and_reads_nothing_when_its_etag_decodes(stack, site, synced_event):
    site.sim.update_item("Meeting Events", synced_event["item"]["id"], title="Changed in the site")
    eventually(lambda: any(e["subject"] == "Changed in the site" for e in stack.graph.events(ORGANISER)))
    stack.graph.wait_idle()
    settle(stack)
    assert [d.status for d in stack.graph.notifications_sent] == [202]  # the echo did arrive, Exchange's etag
    assert stack.graph.notifications_sent[0].body["value"][0]["resourceData"]["@odata.etag"].startswith('W/"CQAAABYAAA')
    assert event_writes(stack, site) == []
    assert graph_calls(stack) == ["GET", "PATCH"]  # the update's own read, then its write; the echo: nothing


def test_an_echo_whose_etag_does_not_decode_costs_one_read_and_writes_nothing(stack, site, synced_event):
    stack.graph.etag_form = "opaque"  # the fallback of the unpublished etag shortcut
    try:
        site.sim.update_item("Meeting Events", synced_event["item"]["id"], title="Changed, opaque etag")
        eventually(lambda: any(e["subject"] == "Changed, opaque etag" for e in stack.graph.events(ORGANISER)))
        stack.graph.wait_idle()
        settle(stack)
    finally:
        stack.graph.etag_form = "exchange"
    assert [d.status for d in stack.graph.notifications_sent] == [202]
    assert event_writes(stack, site) == []
    assert graph_calls(stack) == ["GET", "PATCH", "GET"]


def test_an_event_created_directly_in_outlook_never_reaches_the_site(stack, site, synced_event):
    before = len(site.sim.items("Meeting Events"))
    stack.graph.outlook_create(ORGANISER, subject="Private dentist", start={"dateTime": "2026-12-03T08:00:00", "timeZone": "UTC"},
                               end={"dateTime": "2026-12-03T09:00:00", "timeZone": "UTC"})
    stack.graph.wait_idle()
    settle(stack)
    assert stack.graph.notifications_sent and len(site.sim.items("Meeting Events")) == before
    assert event_writes(stack, site) == [] and stack.graph.count("GET") == 0


def test_an_outlook_cancellation_marks_the_item_cancelled(stack, site, synced_event):
    stack.graph.outlook_cancel(ORGANISER, synced_event["event"]["id"])
    eventually(lambda: site.sim.get("Meeting Events", synced_event["item"]["id"]).get("status") == "Cancelled")
    settle(stack)
    assert services().store.get_link("acme/sales", str(synced_event["item"]["id"])) is None


def test_both_sides_changed_the_later_modification_wins_and_is_logged(stack, site, synced_event, if_match, caplog):
    item, event = synced_event["item"], synced_event["event"]
    stack.graph.pause_notifications()
    stack.graph.outlook_update(ORGANISER, event["id"], subject="Outlook says")
    # the site's edit comes later: it wins the subject; Outlook's location change is kept
    stack.graph.outlook_update(ORGANISER, event["id"], location={"displayName": "Outlook room"})
    outlook_time = stack.graph.get_event(ORGANISER, event["id"])["lastModifiedDateTime"][:23]
    # the site stamps modified in milliseconds: let the clock pass Outlook's before the site edits
    eventually(lambda: datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:23] > outlook_time, 5,
               what="the clock to pass Outlook's edit")
    site.sim.update_item("Meeting Events", item["id"], title="Site says, later")
    settle(stack)
    stack.graph.resume_notifications(drop=False)
    stack.graph.wait_idle()
    settle(stack)
    outlook = stack.graph.get_event(ORGANISER, event["id"])
    stored = site.sim.get("Meeting Events", item["id"])
    assert outlook["subject"] == stored["title"] == "Site says, later"
    assert outlook["location"]["displayName"] == stored["location"] == "Outlook room"
    assert any("conflict on title" in r.getMessage() and "site wins" in r.getMessage() for r in caplog.records)


def test_a_missed_notification_is_recovered_by_catch_up(stack, site, synced_event):
    item, event = synced_event["item"], synced_event["event"]
    stack.graph.pause_notifications()
    stack.graph.outlook_update(ORGANISER, event["id"], subject="Changed during the gap")
    stack.graph.resume_notifications(drop=True)
    settle(stack)
    assert site.sim.get("Meeting Events", item["id"])["title"] == "Two-way"
    stack.graph.send_lifecycle(subscription_of(stack).id, "missed")
    eventually(lambda: site.sim.get("Meeting Events", item["id"])["title"] == "Changed during the gap", what="catch-up")
    settle(stack)
    assert len(event_writes(stack, site)) == 1


def test_a_removed_subscription_is_recreated_and_the_gap_caught_up(stack, site, synced_event):
    old = subscription_of(stack)
    stack.graph.pause_notifications()
    stack.graph.outlook_update(ORGANISER, synced_event["event"]["id"], subject="While it was gone")
    stack.graph.resume_notifications(drop=True)
    stack.graph.send_lifecycle(old.id, "subscriptionRemoved")
    eventually(lambda: site.sim.get("Meeting Events", synced_event["item"]["id"])["title"] == "While it was gone")
    settle(stack)
    new = subscription_of(stack)
    assert new.id != old.id and stack.graph.subscriptions[new.id]["active"]
    items = [i for i in site.sim.items("Meeting Subscriptions") if i["meeting_id"] == synced_event["meeting"]["id"]]
    assert items[0]["subscription_id"] == new.id


def test_reauthorization_required_renews_the_subscription(stack, site, synced_event):
    sub = subscription_of(stack)
    stack.graph.send_lifecycle(sub.id, "reauthorizationRequired")
    eventually(lambda: stack.graph.count("PATCH", f"/subscriptions/{sub.id}") == 1, what="the renewal")
    settle(stack)
    assert subscription_of(stack).id == sub.id


def test_a_wrong_client_state_or_tenant_or_resource_is_never_acted_on(stack, site, synced_event):
    sub = subscription_of(stack)
    event_id = synced_event["event"]["id"]
    good = {"subscriptionId": sub.id, "clientState": sub.client_state, "changeType": "deleted",
            "tenantId": sub.aad_tenant, "resource": f"Users/{sub.user_id}/Events/{event_id}",
            "resourceData": {"id": event_id}}
    bad = [{**good, "clientState": "guess"}, {**good, "clientState": None}, {**good, "tenantId": "someone-else"},
           {**good, "resource": f"Users/{stack.user_ids['bob@contoso.test']}/Events/{event_id}"},
           {**good, "subscriptionId": "not-ours"}, {**good, "changeType": "stolen"}]
    answer = post(stack, "graph/notifications", {"value": bad})
    assert answer.status_code == 202 and answer.json() == {"accepted": 0, "refused": len(bad), "jobs": []}
    settle(stack)
    assert site.sim.get("Meeting Events", synced_event["item"]["id"]).get("status") != "Cancelled"
    assert event_writes(stack, site) == []


def test_the_validation_handshake_echoes_the_decoded_token(stack):
    answer = post(stack, "graph/notifications?validationToken=Validation%3A%20Testing%20client", None, raw=b"")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert answer.text == "Validation: Testing client"


def test_an_inactive_subscription_item_stops_syncing_that_meeting_back(stack, site, synced_event):
    meeting_id = synced_event["meeting"]["id"]
    [sub_item] = [i for i in site.sim.items("Meeting Subscriptions") if i["meeting_id"] == meeting_id]
    site.sim.update_item("Meeting Subscriptions", sub_item["id"], status="Inactive")
    settle(stack)
    stack.graph.outlook_update(ORGANISER, synced_event["event"]["id"], subject="Not wanted back")
    stack.graph.wait_idle()
    settle(stack)
    assert site.sim.get("Meeting Events", synced_event["item"]["id"])["title"] == "Two-way"
    site.sim.update_item("Meeting Subscriptions", sub_item["id"], status="Active")
    settle(stack)


def test_deleting_the_last_subscription_item_deletes_the_graph_subscription(stack):
    site = stack.sites["globex/ops"]
    meeting = new_meeting(site, organiser="olivia@fabrikam.test")
    settle(stack)
    sub = subscription_of(stack, "olivia@fabrikam.test", "globex/ops")
    assert stack.graph.subscriptions[sub.id]["active"]
    [item] = [i for i in site.sim.items("Meeting Subscriptions") if i["meeting_id"] == meeting["id"]]
    site.sim.delete_items("Meeting Subscriptions", [item["id"]])
    settle(stack)
    assert sub.id not in stack.graph.subscriptions or not stack.graph.subscriptions[sub.id]["active"]
    assert subscription_of(stack, "olivia@fabrikam.test", "globex/ops") is None


def test_renewing_a_thousand_subscriptions_costs_at_most_fifty_graph_requests(stack, monkeypatch):
    store = services().store
    # the renewer's scheduled delta reads (one per subscription, every DELTA_MINUTES) are not what this counts
    monkeypatch.setattr(services(), "settings", dataclasses.replace(services().settings, delta_minutes=10 ** 6))
    services().ops.note_run("delta", "*", scheduled=format_utc(datetime.now(timezone.utc)))
    session = stack.graph.http_session()
    token = stack.graph.mint_token(AAD_TENANT, CLIENT_ID)
    soon = format_utc(datetime.now(timezone.utc) + timedelta(minutes=50))

    def subscribe(n):
        mailbox = ("bob@contoso.test", "carol@contoso.test")[n % 2]
        body = {"changeType": "updated", "notificationUrl": stack.function_url("graph/notifications"),
                "resource": f"users/{stack.user_ids[mailbox]}/events", "expirationDateTime": soon,
                "clientState": f"bulk-{n}"}
        answer = session.post(f"{stack.graph.graph_url}/subscriptions", json=body, timeout=30,
                              headers={"Authorization": f"Bearer {token}", "Prefer": 'IdType="ImmutableId"'})
        assert answer.status_code == 201, answer.text
        return Subscription(id=answer.json()["id"], site="acme/sales", mailbox=mailbox, user_id=stack.user_ids[mailbox],
                            resource=body["resource"], client_state=body["clientState"], expires=soon,
                            aad_tenant=AAD_TENANT, immutable_ids=True)  # as this version makes them

    with ThreadPoolExecutor(8) as pool:
        created = list(pool.map(subscribe, range(1000)))
    table = store._table("subscriptions")
    for i in range(0, len(created), 100):
        table.submit_transaction([("upsert", store._sub_entity(sub)) for sub in created[i:i + 100]])
    stack.graph.reset_log()
    answer = requests.post(f"{stack.host_url}/admin/functions/subscription_renewer",
                                         headers={"x-functions-key": MASTER_KEY}, json={}, timeout=300)
    assert answer.status_code == 202
    graph_requests = stack.graph.count(path_contains="/v1.0/")
    assert graph_requests <= 50
    later = datetime.now(timezone.utc) + timedelta(minutes=4000)
    renewed = [store.get_subscription(s.id) for s in created[:50]]
    assert all(datetime.fromisoformat(s.expires.replace("Z", "+00:00")) > later for s in renewed)
    for i in range(0, len(created), 100):
        table.submit_transaction([("delete", store._sub_entity(sub)) for sub in created[i:i + 100]])



def test_a_subscription_delete_webhook_for_an_item_that_still_exists_stops_nothing(stack, site, synced_event):
    [sub_item] = [i for i in site.sim.items("Meeting Subscriptions") if i["meeting_id"] == synced_event["meeting"]["id"]]
    answer = post(stack, "acme/sales/0/services/rapid-meetings/subscriptions/delete", [sub_item])
    assert answer.status_code == 202
    settle(stack)
    stack.graph.outlook_update(ORGANISER, synced_event["event"]["id"], subject="Still flows back")
    eventually(lambda: site.sim.get("Meeting Events", synced_event["item"]["id"])["title"] == "Still flows back")
