"""Every write on record (issue 22, deliverable 4): each change the app makes to Outlook or to a site has an
audit row — when, which site/item/event/mailbox, which fields (names, never contents), and why — kept for
AUDIT_DAYS, shown per item on the status page and exported as JSON lines (shared/storage/audit.py)."""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta

import pytest
import requests

from devtools.audit_export import export
from devtools.azurite import eventually, free_port
from devtools.stack import MASTER_KEY, ORGANISER
from shared.model import audit as reasons
from shared.model.audit import AuditRow, acting
from shared.storage.audit import AuditLog

from .scenario import new_event, new_meeting, post, settle, svc
from .test_catch_up import SYNC, checkpoint, drift, dropped, one_run, outlook

SECRETS = ("Confidential board agenda", "Room 101 (restricted)", "Moved in Outlook", "Audited, caught up")
READS_BY_POST = ("/getSchedule", "/translateExchangeIds", "/$batch", "/token")


def graph_writes(stack) -> list:
    """The writes Graph answered 2xx: POST/PATCH/DELETE (the POSTs that only read left out), and the writes
    inside $batch requests."""
    entries = [*stack.graph.log, *stack.graph.batch_inner_requests]
    return [e for e in entries if e.method in ("POST", "PATCH", "DELETE") and 200 <= e.status < 300
            and not e.path.rstrip("/").endswith(READS_BY_POST)]


def rows_since(start, site="acme/sales", item=None) -> list[AuditRow]:
    rows, _ = svc().audit.query(site, start, item=item)
    return [row for _, row in rows]


def test_every_outlook_and_site_write_has_an_audit_row_with_its_reason(stack, site):
    settle(stack)
    stack.graph.reset_log()
    site_writes, start = site.sim.writes(), svc().clock()
    subscribed = svc().store.subscription_for("acme/sales", ORGANISER) is not None  # by a test before this one
    meeting = new_meeting(site)
    item = new_event(site, meeting, title="Audited", description=f"<p>{SECRETS[0]}</p>", location=SECRETS[1])
    item_id = str(item["id"])
    settle(stack)
    [event] = outlook(stack, "Audited")
    stack.graph.outlook_update(ORGANISER, event["id"], location={"displayName": SECRETS[2]})  # back to the site
    eventually(lambda: site.sim.get("Meeting Events", item["id"])["location"] == SECRETS[2], what="the site update")
    settle(stack)
    checkpoint()
    with dropped(site, "Meeting Events", "Item Updated"):  # found by the catch-up
        site.sim.update_item("Meeting Events", item["id"], title=SECRETS[3])
        settle(stack)
    one_run(stack)
    drift(stack, site, item, title="Audited, synced now")  # found by "sync now"
    assert post(stack, SYNC, {"event": item["id"]}).status_code == 202
    settle(stack)
    checkpoint(sweep=True)
    with dropped(site, "Meeting Events", "Item Deleted", "Items Deleted"):  # removed by the sweep
        site.sim.delete_items("Meeting Events", [item["id"]])
        settle(stack)
    one_run(stack)
    assert not outlook(stack, "Audited, synced now")

    rows = rows_since(start)
    mine = [(r.target, r.action, r.why) for r in rows if r.item == item_id and r.list == "events"]
    assert mine[0] == ("outlook", "create event", "webhook")
    assert ("site", "update item", "webhook") in mine  # the event's id written back
    assert ("site", "update item", "notification") in mine
    assert ("outlook", "update event", "catch-up") in mine and ("outlook", "update event", "sync now") in mine
    assert mine[-1] == ("outlook", "cancel event", "sweep")
    created = next(r for r in rows if r.item == item_id and r.list == "events" and r.action == "create event")
    assert {"subject", "body", "start", "end", "location", "attendees"} <= set(created.fields)
    assert created.mailbox == ORGANISER and created.event and created.site == "acme/sales" and created.op == "event.create"
    back = next(r for r in rows if r.item == item_id and r.list == "events" and r.why == "notification")
    config = svc().settings.sites["acme/sales"]
    assert config.col("location") in back.fields and back.list == "events"
    registered = [(r.action, r.why) for r in rows if r.item == str(meeting["id"]) and r.list == "meetings"]
    assert subscribed or ("create subscription", "webhook") in registered
    assert any((r.action, r.list, r.why, r.op) == ("create item", "subscriptions", "webhook", "meeting.create") for r in rows)
    text = json.dumps([r.to_json() for r in rows])
    assert not any(secret in text for secret in SECRETS)  # names of fields, never what they held
    # every write the simulators saw has its row, and no row names a write that did not happen
    assert sum(r.target == "outlook" for r in rows) == len(graph_writes(stack))
    assert sum(r.target == "site" for r in rows) == site.sim.writes() - site_writes


def test_rows_older_than_audit_days_are_purged_by_the_catch_up_and_newer_ones_kept(stack, site):
    now = svc().clock()
    days = svc().settings.audit_days
    old = AuditLog(stack.azurite.connection_string, clock=lambda: now - timedelta(days=days, minutes=1))
    recent = AuditLog(stack.azurite.connection_string, clock=lambda: now - timedelta(days=days - 1))
    with acting(reasons.OPERATOR, item="purge-test"):
        written = [log.wrote("acme/sales", "site", "update item", list_name="events", fields={"title": 1})
                   for log in (old, old, recent)]
    assert len(rows_since(now - timedelta(days=days + 1), item="purge-test")) == 3
    checkpoint()
    one_run(stack)  # the site's catch-up, on the app's clock: the two rows past AUDIT_DAYS go
    assert rows_since(now - timedelta(days=days + 1), item="purge-test") == [written[2]]


def test_purge_deletes_at_most_its_bound_per_run(stack):
    now = svc().clock()
    past = AuditLog(stack.azurite.connection_string, clock=lambda: now - timedelta(days=400))
    for n in range(5):
        past.wrote("bounded/purge", "site", "update item", item=str(n))
    later = AuditLog(stack.azurite.connection_string, clock=lambda: now, days=90)
    assert later.purge("bounded/purge", limit=3) == 3
    assert later.purge("bounded/purge", limit=3) == 2
    assert later.purge("bounded/purge", limit=3) == 0


def test_the_export_pages_through_the_route_into_json_lines(stack):
    now = svc().clock()
    log = AuditLog(stack.azurite.connection_string, clock=svc().clock)
    with acting(reasons.WEBHOOK):
        written = [log.wrote("acme/sales", "outlook", "update event", item=f"export-{n}", event=f"ev{n}",
                             mailbox=ORGANISER, fields={"subject": "x"}) for n in range(5)]
    out = io.StringIO()
    rows, pages = export(stack.host_url, MASTER_KEY, "acme/sales", f"{now - timedelta(seconds=1):%Y-%m-%dT%H:%M:%S.%fZ}",
                         out, limit=2)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    exported = [line for line in lines if line["item"].startswith("export-")]
    assert [line["item"] for line in exported] == [f"export-{n}" for n in range(5)]
    assert exported[0] == written[0].to_json() and exported[0]["why"] == "webhook"
    assert rows == len(lines) and pages == -(-rows // 2)  # pages of 2, each but the last with its continuation
    assert len({json.dumps(line, sort_keys=True) for line in lines}) == len(lines)


@pytest.mark.parametrize("params, named", [
    ({"since": "2026-01-01T00:00:00Z"}, "site"),
    ({"site": "acme/sales"}, "since"),
    ({"site": "acme/sales", "since": "yesterday"}, "since"),
    ({"site": "acme/sales", "since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "until"),
    ({"site": "acme/sales", "since": "2026-01-01T00:00:00Z", "limit": "0"}, "limit"),
    ({"site": "acme/sales", "since": "2026-01-01T00:00:00Z", "limit": "１０"}, "limit"),
    ({"site": "acme/sales", "since": "2026-01-01T00:00:00Z", "after": "page-2"}, "after"),
    ({"site": "acme/sales", "since": "2026-01-01T00:00:00Z", "item": "x" * 300}, "item"),
])
def test_the_audit_route_refuses_a_bad_parameter_naming_it(stack, params, named):
    answer = requests.get(f"{stack.host_url}/ops/audit", params={"code": MASTER_KEY, **params}, timeout=30)
    assert answer.status_code == 400 and f"parameter {named}" in answer.json()["message"]


def test_the_audit_route_takes_only_the_master_key(stack):
    from devtools.stack import FUNCTION_KEY

    answer = requests.get(f"{stack.host_url}/ops/audit", timeout=30,
                          params={"code": FUNCTION_KEY, "site": "acme/sales", "since": "2026-01-01T00:00:00Z"})
    assert answer.status_code in (401, 403)


def status_page(stack, **params):
    return requests.get(f"{stack.host_url}/ops/status", params={"code": MASTER_KEY, "site": "acme/sales", **params},
                        timeout=60)


def test_the_status_page_shows_one_items_audit_rows(stack, site):
    meeting = new_meeting(site)
    item = new_event(site, meeting, title="Shown per item")
    settle(stack)
    answer = status_page(stack, item=str(item["id"]), format="json")
    assert answer.status_code == 200
    shown = answer.json()["sites"][0]["item"]
    assert shown["id"] == str(item["id"])
    assert [(a["action"], a["why"]) for a in shown["audit"]][:1] == [("create event", "webhook")]
    assert all(a["item"] == str(item["id"]) for a in shown["audit"])
    page = status_page(stack, item=str(item["id"]))
    assert page.status_code == 200 and f"Audit trail of item {item['id']}" in page.text
    assert page.text.count("<tr data-audit>") == len(shown["audit"])


@pytest.mark.parametrize("params", [{"item": "bad\x01id"}, {"item": "9" * 300}, {"item": ""}, {"site": "", "item": "1"}])
def test_the_status_page_refuses_an_item_that_cannot_be_one(stack, params):
    answer = status_page(stack, **params)
    assert answer.status_code == 400 and "item" in answer.json()["message"]


def test_a_lost_audit_row_does_not_fail_the_sync(stack, site, monkeypatch, caplog):
    dead_port = free_port()  # nothing listens there: every audit write is refused
    dead = AuditLog(stack.azurite.connection_string.replace(f":{stack.azurite.table_port}/", f":{dead_port}/"),
                    clock=svc().clock)
    config = svc().settings.sites["acme/sales"]
    monkeypatch.setattr(svc().graph(config), "_audit", dead)
    monkeypatch.setattr(svc().rapid(config), "_audit", dead)
    meeting = new_meeting(site)
    with caplog.at_level(logging.ERROR, logger="rapid_meetings"):
        new_event(site, meeting, title="Audit table down")
        settle(stack)
    assert outlook(stack, "Audit table down")  # the sync went on
    assert site.sim.get("Meeting Events", new_item_id(site, "Audit table down"))["sys_external_id"]
    assert dead.lost >= 2 and "AUDIT ROW LOST" in caplog.text


def new_item_id(site, title: str):
    return next(i["id"] for i in site.sim.items("Meeting Events") if i["title"] == title)


def test_a_renewal_by_the_timer_is_recorded_as_renewal(stack, site):
    new_meeting(site)
    settle(stack)
    sub = svc().store.subscription_for("acme/sales", ORGANISER)
    start = svc().clock()
    svc().store.set_expiries({sub.id: f"{start + timedelta(minutes=50):%Y-%m-%dT%H:%M:%SZ}"})  # due
    answer = requests.post(f"{stack.host_url}/admin/functions/subscription_renewer",
                           headers={"x-functions-key": MASTER_KEY}, json={}, timeout=120)
    assert answer.status_code == 202
    settle(stack)
    renewed = [r for r in rows_since(start) if r.subscription == sub.id]
    assert [(r.action, r.why, r.fields) for r in renewed][:1] == [("renew subscription", "renewal", ("expirationDateTime",))]


@pytest.mark.parametrize("value", ["0", "-3", "ninety", "90 days"])
def test_a_bad_audit_days_is_refused_naming_the_setting(value):
    from shared.config import ConfigError, settings_from

    with pytest.raises(ConfigError, match="AUDIT_DAYS"):
        settings_from({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "AUDIT_DAYS": value})
    assert settings_from({"AzureWebJobsStorage": "UseDevelopmentStorage=true"}).audit_days == 90
