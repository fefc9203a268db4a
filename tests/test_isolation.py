"""Isolation and secrets (issue 5, item 3; docs/product-rules.md, "Rule 5. Bad input gets a clear error and
changes nothing" and "Rule 6. Isolation").

Two sites share the app: acme/sales (tenant AAD_TENANT, organiser alice) and globex/ops (OTHER_TENANT,
organiser olivia). One site's webhooks and the other's subscriptions can never read or change each other's
items, links, events or subscriptions; a Graph notification is acted on only for the subscription, tenant,
mailbox and clientState it belongs to; and no log record ever carries a secret.
"""

from __future__ import annotations

import logging

import msal
import pytest

from devtools.azurite import eventually
from devtools.stack import AAD_TENANT, CLIENT_SECRET, ORGANISER, OTHER_TENANT

from .scenario import new_event, new_meeting, post, settle

OLIVIA = "olivia@fabrikam.test"
CAROL = "carol@contoso.test"
NOTIFICATIONS = "graph/notifications"


def services():
    from functions.http import services as built

    return built()


def change_note(sub, user: str, event_id: str, change: str = "updated", **override) -> dict:
    """A change notification as Graph documents it (changeNotification, Outlook resourceData)."""
    resource = f"Users/{user}/Events/{event_id}"
    return {"subscriptionId": sub.id, "subscriptionExpirationDateTime": sub.expires, "changeType": change,
            "resource": resource, "clientState": sub.client_state, "tenantId": sub.aad_tenant,
            "resourceData": {"@odata.type": "#Microsoft.Graph.Event", "@odata.id": resource,
                             "@odata.etag": 'W/"DwAAABYAAAAnotreal"', "id": event_id}, **override}


def lifecycle_note(sub, event: str, **override) -> dict:
    return {"subscriptionId": sub.id, "subscriptionExpirationDateTime": sub.expires, "tenantId": sub.aad_tenant,
            "clientState": sub.client_state, "lifecycleEvent": event, **override}


def site_writes(stack, site: str) -> list[str]:
    return [f"{e.method} {e.path}" for e in stack.rapid.log
            if e.method in ("PUT", "POST", "DELETE") and f"/api/{site}/".lower() in e.path.lower()]


def site_requests(stack, site: str) -> list[str]:
    return [f"{e.method} {e.path}" for e in stack.rapid.log if f"/api/{site}/".lower() in e.path.lower()]


def mailbox_requests(stack, mailbox: str) -> list[str]:
    user_id = stack.user_ids[mailbox]
    return [f"{e.method} {e.path}" for e in stack.graph.log + stack.graph.batch_inner_requests
            if e.mailbox == user_id or mailbox in e.path.lower() or user_id in e.path]


@pytest.fixture
def acme_synced(stack):
    """acme/sales: a registered meeting with one event synced to alice's calendar."""
    acme = stack.sites["acme/sales"]
    meeting = new_meeting(acme, title="Acme only")
    item = new_event(acme, meeting, title="Acme's own")
    settle(stack)
    event_id = acme.sim.get("Meeting Events", item["id"])["sys_external_id"]
    assert event_id and stack.graph.get_event(ORGANISER, event_id)
    sub = services().store.subscription_for("acme/sales", ORGANISER)
    assert sub is not None
    return {"meeting": meeting, "item": item, "event_id": event_id, "sub": sub}


@pytest.fixture
def globex_sub(stack):
    """globex/ops: a registered meeting of olivia's, so her calendar has a live subscription; removed after."""
    globex = stack.sites["globex/ops"]
    meeting = new_meeting(globex, organiser=OLIVIA, title="Globex only")
    settle(stack)
    sub = services().store.subscription_for("globex/ops", OLIVIA)
    assert sub is not None and sub.aad_tenant == OTHER_TENANT
    yield sub
    items = [i["id"] for i in globex.sim.items("Meeting Subscriptions") if i["meeting_id"] == meeting["id"]]
    globex.sim.delete_items("Meeting Subscriptions", items)
    settle(stack)


def acme_state(stack, synced) -> dict:
    store, acme = services().store, stack.sites["acme/sales"]
    link = store.get_link("acme/sales", str(synced["item"]["id"]))
    meeting = store.get_meeting("acme/sales", str(synced["meeting"]["id"]))
    sub = store.get_subscription(synced["sub"].id)
    return {"link": (link, link.etag), "meeting": (meeting, meeting.etag), "sub": (sub, sub.etag),
            "item": acme.sim.get("Meeting Events", synced["item"]["id"]),
            "meeting item": acme.sim.get("Meetings", synced["meeting"]["id"]),
            "subscription items": acme.sim.items("Meeting Subscriptions"),
            "event": stack.graph.get_event(ORGANISER, synced["event_id"]),
            "graph sub": stack.graph.subscriptions.get(synced["sub"].id)}


def test_a_globex_webhook_naming_acme_ids_never_reads_links_or_changes_acme(stack, acme_synced):
    acme, globex = stack.sites["acme/sales"], stack.sites["globex/ops"]
    item, meeting = acme_synced["item"], acme_synced["meeting"]
    [sub_item] = [i for i in acme.sim.items("Meeting Subscriptions") if i["meeting_id"] == meeting["id"]]
    for table, item_id in (("Meeting Events", item["id"]), ("Meetings", meeting["id"]),
                           ("Meeting Subscriptions", sub_item["id"])):
        assert globex.sim.get(table, item_id) is None, f"precondition: globex has no {table} item {item_id}"
    before = acme_state(stack, acme_synced)
    stack.graph.reset_log()
    stack.rapid.reset_log()

    # the bodies acme's own webhooks would carry, delivered to globex's callbacks
    root = "globex/ops/0/services/rapid-meetings"
    deliveries = [("event/create", before["item"]), ("event/update", before["item"]),
                  ("event/delete", [before["item"]]), ("meeting/create", before["meeting item"]),
                  ("subscriptions/update", sub_item), ("subscriptions/delete", [sub_item])]
    for path, body in deliveries:
        answer = post(stack, f"{root}/{path}", body)
        assert answer.status_code == 202 and answer.json()["accepted"] == 1
    settle(stack)

    assert site_requests(stack, "acme/sales") == []
    assert mailbox_requests(stack, ORGANISER) == []
    assert acme_state(stack, acme_synced) == before
    store = services().store
    assert store.get_link("globex/ops", str(item["id"])) is None
    assert store.get_link_by_event("globex/ops", acme_synced["event_id"]) is None
    assert store.get_meeting("globex/ops", str(meeting["id"])) is None


def test_a_globex_notification_naming_an_acme_event_is_ignored(stack, acme_synced, globex_sub, caplog):
    caplog.set_level(logging.INFO, logger="rapid_meetings")
    before = acme_state(stack, acme_synced)
    event_id = acme_synced["event_id"]
    olivia, alice = stack.user_ids[OLIVIA], stack.user_ids[ORGANISER]
    stack.graph.reset_log()
    stack.rapid.reset_log()

    # genuine for globex's subscription (its clientState, tenant and mailbox): accepted, but acme's event id
    genuine = [change_note(globex_sub, olivia, event_id, change) for change in ("updated", "deleted")]
    answer = post(stack, NOTIFICATIONS, {"value": genuine})
    assert answer.status_code == 202 and answer.json()["accepted"] == 2
    # globex's subscription naming alice's mailbox: not the subscribed mailbox, refused at the door
    foreign = [change_note(globex_sub, user, event_id, "deleted") for user in (alice, ORGANISER)]
    answer = post(stack, NOTIFICATIONS, {"value": foreign})
    assert answer.status_code == 202 and answer.json() == {"accepted": 0, "refused": 2, "jobs": []}
    settle(stack)

    ignored = [r for r in caplog.records
               if f"event={event_id} not created by this app from this site: ignored" in r.getMessage()]
    assert len(ignored) == 2 and all("site=globex/ops" in r.getMessage() for r in ignored)
    assert stack.graph.count() == 0  # not even a read
    assert site_requests(stack, "acme/sales") == []
    assert acme_state(stack, acme_synced) == before


def test_a_notification_off_its_tenant_mailbox_or_client_state_is_never_acted_on(stack, acme_synced, globex_sub):
    sub, event_id = acme_synced["sub"], acme_synced["event_id"]
    alice, bob, olivia = (stack.user_ids[m] for m in (ORGANISER, "bob@contoso.test", OLIVIA))
    before = acme_state(stack, acme_synced)
    stack.graph.reset_log()
    stack.rapid.reset_log()
    forged = [
        change_note(sub, alice, event_id, "deleted", tenantId=OTHER_TENANT),            # globex's tenant
        change_note(sub, alice, event_id, "deleted", tenantId=""),
        change_note(sub, olivia, event_id, "deleted"),                                  # globex's mailbox
        change_note(sub, bob, event_id, "deleted"),                                     # another mailbox of acme's tenant
        change_note(sub, OLIVIA, event_id, "updated"),
        change_note(sub, alice, event_id, "deleted", clientState=globex_sub.client_state),
        change_note(sub, alice, event_id, "deleted", clientState=sub.client_state[:-1]),
        change_note(sub, alice, event_id, "deleted", clientState=sub.client_state.upper()),
        {k: v for k, v in change_note(sub, alice, event_id, "deleted").items() if k != "clientState"},
        change_note(sub, alice, event_id, "deleted", subscriptionId=globex_sub.id),     # globex's sub, acme's state
        change_note(globex_sub, alice, event_id, "deleted", tenantId=AAD_TENANT),
        change_note(sub, alice, event_id, "deleted", resource=f"Users/{alice}/Events/{event_id}/../../{bob}"),
    ] + [
        lifecycle_note(sub, event, **bad) for event in ("subscriptionRemoved", "missed", "reauthorizationRequired")
        for bad in ({"tenantId": OTHER_TENANT}, {"clientState": globex_sub.client_state}, {"clientState": "guess"},
                    {"subscriptionId": globex_sub.id})
    ]
    answer = post(stack, NOTIFICATIONS, {"value": forged})
    assert answer.status_code == 202
    assert answer.json() == {"accepted": 0, "refused": len(forged), "jobs": []}
    settle(stack)

    assert stack.graph.count() == 0  # no Graph read, no renewal, no recreation
    assert site_writes(stack, "acme/sales") == [] and site_writes(stack, "globex/ops") == []
    assert acme_state(stack, acme_synced) == before
    assert services().store.get_subscription(globex_sub.id) is not None


# -- secrets never reach a log

def client_states(stack) -> set[str]:
    states = {s.client_state for s in services().store.subscriptions() if s.client_state}
    return states | {s["clientState"] for s in stack.graph.subscriptions.values()
                     if s.get("clientState") and len(s["clientState"]) >= 32}


def access_tokens(stack) -> set[str]:
    """Every token the simulator saw used (its request logs) and every one the app holds (MSAL's caches)."""
    tokens = set()
    for entry in stack.graph.log + stack.graph.batch_inner_requests + stack.rapid.log:
        value = next((v for k, v in entry.headers.items() if k.lower() == "authorization"), "")
        if value.lower().startswith("bearer "):
            tokens.add(value[7:].strip())
    for app in services().tokens._apps.values():
        tokens.update(e["secret"] for e in app.token_cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN))
    return {t for t in tokens if t}


def test_no_log_record_ever_carries_a_secret_token_or_client_state(stack, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("rapid_meetings", "localhost", "azure", "msal", "urllib3", "requests"):
        caplog.set_level(logging.DEBUG, logger=name)
    acme = stack.sites["acme/sales"]
    stack.graph.reset_log()
    stack.rapid.reset_log()
    states = client_states(stack)

    # a meeting: carol's calendar gets a subscription; an event is created, then updated
    meeting = new_meeting(acme, organiser=CAROL, title="Secrets stay secret")
    settle(stack)
    sub = services().store.subscription_for("acme/sales", CAROL)
    states |= client_states(stack)
    item = new_event(acme, meeting, title="Board")
    settle(stack)
    acme.sim.update_item("Meeting Events", item["id"], title="Board, moved", location="Room 9")
    settle(stack)
    event_id = acme.sim.get("Meeting Events", item["id"])["sys_external_id"]
    assert stack.graph.get_event(CAROL, event_id)["subject"] == "Board, moved"

    # an Outlook change flows back through a notification
    stack.graph.outlook_update(CAROL, event_id, subject="Board, from Outlook")
    eventually(lambda: acme.sim.get("Meeting Events", item["id"])["title"] == "Board, from Outlook", what="the site update")
    stack.graph.wait_idle()
    settle(stack)

    # forged notifications: a wrong clientState, another subscription's clientState, a wrong tenant
    forged = [change_note(sub, sub.user_id, event_id, clientState="guess"),
              change_note(sub, sub.user_id, event_id, clientState=next(iter(states - {sub.client_state}), "x")),
              lifecycle_note(sub, "subscriptionRemoved", tenantId=OTHER_TENANT)]
    answer = post(stack, NOTIFICATIONS, {"value": forged})
    assert answer.json()["refused"] == 3
    assert post(stack, "acme/sales/0/services/rapid-meetings/event/update", None, raw=b'{"id": ').status_code == 400

    # lifecycle: renew, catch up, and recreate a removed subscription (a new clientState)
    stack.graph.send_lifecycle(sub.id, "reauthorizationRequired")
    eventually(lambda: stack.graph.count("PATCH", f"/subscriptions/{sub.id}") == 1, what="the renewal")
    stack.graph.send_lifecycle(sub.id, "missed")
    stack.graph.wait_idle()
    settle(stack)
    stack.graph.send_lifecycle(sub.id, "subscriptionRemoved")
    eventually(lambda: (services().store.subscription_for("acme/sales", CAROL) or sub).id != sub.id, what="recreation")
    settle(stack)
    states |= client_states(stack)

    # and the end: the meeting stops syncing back, its subscription is deleted
    [sub_item] = [i for i in acme.sim.items("Meeting Subscriptions") if i["meeting_id"] == meeting["id"]]
    acme.sim.delete_items("Meeting Subscriptions", [sub_item["id"]])
    settle(stack)
    left = services().store.subscription_for("acme/sales", CAROL)
    # deleted, unless another test's meeting of Carol's (tests/test_races.py) shares it: then ours left it
    assert left is None or {m.meeting_id for m in services().store.meetings("acme/sales", left.id)
                            if m.active} - {str(meeting["id"])}
    assert all(m.meeting_id != str(meeting["id"]) or not m.active for m in services().store.meetings("acme/sales"))

    secrets = {"the client secret": {CLIENT_SECRET}, "an access token": access_tokens(stack),
               "a clientState": states}
    assert len(secrets["an access token"]) >= 2 and sub.client_state in states and len(states) >= 2
    messages = [r.getMessage() for r in caplog.records]
    assert any("refused and dropped: clientState does not match" in m for m in messages)
    assert any("lifecycle subscriptionRemoved" in m for m in messages)
    assert len(caplog.records) > 100
    for record, message in zip(caplog.records, messages):
        carried = f"{message}\n{record.msg!r}\n{record.args!r}\n{record.exc_text or ''}"
        for kind, values in secrets.items():
            if any(v in carried for v in values):  # say where, never what
                pytest.fail(f"{record.name} logged {kind} ({record.levelname} at {record.pathname}:{record.lineno})")
    for kind, values in secrets.items():
        assert not any(v in caplog.text for v in values), f"the formatted log carries {kind}"
