"""The app against Graph as Microsoft publishes it (issue 10): the strict simulator's defaults, and the
variants it offers where the documents leave a behaviour open."""

import logging
import uuid
from dataclasses import replace
from datetime import date
from zoneinfo import ZoneInfo

import pytest
from tzlocal.windows_tz import tz_win

from devtools.azurite import eventually
from devtools.sim.graph.exchange import RESOURCE_SPELLINGS
from devtools.stack import AAD_TENANT, CLIENT_SECRET, ORGANISER
from shared.model.mapping import Synced, local_midnight, normalise, outlook_payload, synced_from_outlook
from shared.intake.notifications import check
from shared.subscriptions.graph_subscriptions import create_subscription

from .scenario import new_event, new_meeting, settle
from .test_outlook_to_site import event_writes, services, synced_event  # noqa: F401  (a fixture)

@pytest.fixture
def outlook_meanwhile(stack):
    """Run an Outlook edit just before the app's next request matching (method, path part) is served."""
    armed = []

    def arm(method, path_part, edit):
        armed.append((method, path_part, edit))

    def hook(req):
        for entry in list(armed):
            method, path_part, edit = entry
            if req.method == method and path_part in req.path:
                armed.remove(entry)
                edit(req)

    stack.graph.on_request = hook
    yield arm
    stack.graph.on_request = None


def outlook_event(stack, site, item_id):
    event_id = site.sim.get("Meeting Events", item_id).get("sys_external_id")
    return stack.graph.get_event(ORGANISER, event_id) if event_id else None


# -- time zones

@pytest.mark.parametrize("zone_name", ["Europe/Amsterdam", "Australia/Melbourne"])
def test_an_all_day_event_in_a_site_zone_graph_does_not_list_is_accepted_by_the_strict_simulator(stack, zone_name):
    svc = services()
    site = replace(svc.settings.sites["acme/sales"], time_zone=zone_name)
    zone = ZoneInfo(zone_name)
    # a span across each zone's 2026 DST change (Amsterdam: 29 March; Melbourne: 5 April)
    synced = normalise(Synced("Offsite", "<p>Two days</p>", local_midnight(date(2026, 3, 28), zone).isoformat(),
                              local_midnight(date(2026, 4, 6), zone).isoformat(), True, "Beach", ()), zone)
    event = svc.graph(site).create_event("carol@contoso.test", outlook_payload(synced, zone), str(uuid.uuid4()),
                                         f"test|{zone_name}")
    stored = stack.graph.get_event("carol@contoso.test", event["id"])
    assert stored["originalStartTimeZone"] == tz_win[zone_name] != zone_name
    assert stored["isAllDay"] and stored["start"]["dateTime"].startswith("2026-03-28T00:00:00")
    assert synced_from_outlook(event, zone, (), (synced.description,)) == synced


# -- notifications

@pytest.mark.parametrize("spelling", sorted(RESOURCE_SPELLINGS))
def test_a_notification_in_each_published_resource_spelling_is_acted_on(stack, site, synced_event, spelling):
    stack.graph.resource_spelling = spelling
    try:
        stack.graph.outlook_update(ORGANISER, synced_event["event"]["id"], subject=f"Spelled {spelling}")
        eventually(lambda: site.sim.get("Meeting Events", synced_event["item"]["id"])["title"] == f"Spelled {spelling}",
                   what="the site update")
        settle(stack)
    finally:
        stack.graph.resource_spelling = "rotate"
    sent = stack.graph.notifications_sent[-1].body["value"][0]["resource"]
    assert sent == RESOURCE_SPELLINGS[spelling](stack.user_ids[ORGANISER], AAD_TENANT, synced_event["event"]["id"])
    assert len(event_writes(stack, site)) == 1


def test_an_exchange_rewrapped_body_causes_no_site_write(stack, site):
    messy = "Notes:<br/>bring <b>laptops</b> &amp; chargers<!-- internal --><ul><li>one<li>two</ul>"
    item = new_event(site, new_meeting(site), title="Messy body", description=messy)
    settle(stack)
    event = outlook_event(stack, site, item["id"])
    assert event["body"]["content"].startswith("<html>\r\n<head>") and "elementToProof" in event["body"]["content"]
    stack.rapid.reset_log()
    # someone opens and saves it in Outlook: Exchange rewrites its own document again, the changeKey moves
    stack.graph.outlook_update(ORGANISER, event["id"], body=event["body"], categories=["Saved"])
    stack.graph.wait_idle()
    settle(stack)
    assert stack.graph.notifications_sent and event_writes(stack, site) == []
    assert site.sim.get("Meeting Events", item["id"])["description"] == messy


# -- conflicts: If-Match is not relied on

def test_an_outlook_edit_landing_between_our_read_and_our_patch_reaches_the_site(stack, site, synced_event,
                                                                                  outlook_meanwhile, if_match):
    item, event = synced_event["item"], synced_event["event"]
    outlook_meanwhile("PATCH", event["id"], lambda req: stack.graph.outlook_update(
        ORGANISER, event["id"], location={"displayName": "Moved in Outlook meanwhile"}))
    site.sim.update_item("Meeting Events", item["id"], title="Renamed in the site")
    eventually(lambda: site.sim.get("Meeting Events", item["id"])["location"] == "Moved in Outlook meanwhile",
               what="Outlook's edit to reach the site")
    stack.graph.wait_idle()
    settle(stack)
    outlook = stack.graph.get_event(ORGANISER, event["id"])
    stored = site.sim.get("Meeting Events", item["id"])
    assert (outlook["subject"], outlook["location"]["displayName"]) == ("Renamed in the site", "Moved in Outlook meanwhile")
    assert (stored["title"], stored["location"]) == ("Renamed in the site", "Moved in Outlook meanwhile")
    link = services().store.get_link("acme/sales", str(item["id"]))
    assert (link.synced.title, link.synced.location) == ("Renamed in the site", "Moved in Outlook meanwhile")
    assert not any("If-Match" in e.headers for e in stack.graph.log if e.method == "PATCH")


# -- removal

def test_a_refused_cancel_leaves_no_orphan(stack, site):
    item = new_event(site, new_meeting(site), title="Alone", invitees=[], guests=[])
    settle(stack)
    event = outlook_event(stack, site, item["id"])
    assert event["attendees"] == []
    stack.graph.reset_log()
    site.sim.update_item("Meeting Events", item["id"], status="Cancelled")
    eventually(lambda: stack.graph.get_event(ORGANISER, event["id"]) is None, what="the Outlook event to go")
    stack.graph.wait_idle()
    settle(stack)
    calls = [(e.method, e.status) for e in stack.graph.log if event["id"] in e.path]
    # read first (did it become a series in Outlook? then only the item's occurrence is cancelled), then the
    # cancel, refused (no attendees): deleted instead
    assert calls == [("GET", 200), ("POST", 400), ("DELETE", 204)]
    assert services().store.get_link("acme/sales", str(item["id"])) is None
    assert not [e for e in stack.graph.events(ORGANISER) if e["subject"] == "Alone"]


def test_a_removal_that_fails_keeps_the_link_until_outlook_no_longer_has_the_event(stack, site):
    item = new_event(site, new_meeting(site), title="Flaky removal", invitees=[], guests=[])
    settle(stack)
    event = outlook_event(stack, site, item["id"])
    stack.graph.fail_next(1, status=503, path_contains=event["id"], method="DELETE")
    site.sim.update_item("Meeting Events", item["id"], status="Cancelled")
    eventually(lambda: services().store.get_link("acme/sales", str(item["id"])) is None, what="the removal to finish")
    settle(stack)
    assert stack.graph.get_event(ORGANISER, event["id"]) is None
    deletes = [e.status for e in stack.graph.log if e.method == "DELETE" and event["id"] in e.path]
    assert deletes == [503, 204]  # the retry found the event through the link it kept (marked removing)


# -- transactionId

@pytest.mark.parametrize("variant", ["first", "conflict"])
def test_a_repeated_transaction_id_is_resolved_by_the_tag_and_ends_with_the_sites_content(stack, site, variant,
                                                                                          outlook_meanwhile):
    """An earlier attempt's create got through with older content (its answer was lost); Graph answers the
    retry with that first event or a refusal: either way one event, with the item's content."""
    graph = stack.graph
    graph.transaction_duplicate = variant
    outlook_meanwhile("POST", "/events", lambda req: graph.outlook_create(
        ORGANISER, **{**req.json(), "subject": "Before the edit"}))
    try:
        item = new_event(site, new_meeting(site), title="After the edit", invitees=[], guests=[])
        eventually(lambda: (outlook_event(stack, site, item["id"]) or {}).get("subject") == "After the edit",
                   what="the event to carry the item's content")
        settle(stack)
    finally:
        graph.transaction_duplicate = "first"
    tag = f"acme/sales|{item['id']}"
    tagged = [e for e in graph.events(ORGANISER) if tag in str(e.get("singleValueExtendedProperties"))]
    assert [e["subject"] for e in tagged] == ["After the edit"]
    found_by_tag = any(e.method == "GET" and "singleValueExtendedProperties" in str(e.query) for e in graph.log)
    assert found_by_tag == (variant == "conflict")


# -- permissions

def test_subscribing_without_user_read_all_logs_the_reason_and_subscribes_by_upn(stack, caplog):
    tenant = str(uuid.uuid4())
    stack.graph.register_app(tenant, "calendars-only-app", CLIENT_SECRET, roles=["Calendars.ReadWrite"])
    stack.graph.add_user(tenant, "dora@tailspin.test", "Dora")
    svc = services()
    site = replace(svc.settings.sites["acme/sales"], tenant="tailspin", site="ops", aad_tenant=tenant,
                   client_id="calendars-only-app")
    with caplog.at_level(logging.WARNING, logger="rapid_meetings"):
        sub = create_subscription(svc, site, "dora@tailspin.test")
    try:
        reason = [r.getMessage() for r in caplog.records if "User.Read.All" in r.getMessage()]
        assert reason and "GET /users refused" in reason[0] and "subscribing by UPN" in reason[0]
        assert sub.resource == "users/dora@tailspin.test/events" and sub.user_id == ""
        assert stack.graph.subscriptions[sub.id]["resource"] == sub.resource
        # its notifications name the user by object id: the mailbox comes from the subscription
        dora = stack.graph.user("dora@tailspin.test").id
        note = {"subscriptionId": sub.id, "clientState": sub.client_state, "tenantId": tenant, "changeType": "updated",
                "resource": f"users/{dora}@{tenant}/events/AAMkX", "resourceData": {"id": "AAMkX"}}
        task, why = check(note, lambda i: sub if i == sub.id else None)
        assert task == {"op": "outlook.change", "sub": sub.id, "change": "updated", "event": "AAMkX", "etag": ""}, why
    finally:
        svc.graph(site).delete_subscription(sub.id)
        svc.store.delete_subscription(sub)



# -- delta tokens

def test_an_expired_delta_token_makes_the_catch_up_read_the_whole_window(stack, site, synced_event):
    item, event = synced_event["item"], synced_event["event"]
    sub_id = services().store.subscription_for("acme/sales", ORGANISER).id
    stack.graph.send_lifecycle(sub_id, "missed")  # a first catch-up leaves a delta link behind
    eventually(lambda: services().store.get_subscription(sub_id).delta_link, what="a delta link")
    settle(stack)
    stack.graph.pause_notifications()
    stack.graph.outlook_update(ORGANISER, event["id"], subject="Changed while the token expired")
    stack.graph.resume_notifications(drop=True)
    stack.graph.expire_delta_tokens()
    stack.graph.reset_log()
    stack.graph.send_lifecycle(sub_id, "missed")
    eventually(lambda: site.sim.get("Meeting Events", item["id"])["title"] == "Changed while the token expired",
               what="the catch-up after a 410")
    settle(stack)
    deltas = [(e.status, "startDateTime" in e.query) for e in stack.graph.log if "/calendarView/delta" in e.path]
    assert deltas[:2] == [(410, False), (200, True)]  # the saved link refused, then a fresh read of the window


# -- the unpublished etag shortcut

def test_an_exchange_etag_decodes_to_the_events_change_key_and_anything_else_to_none():
    from devtools.sim.graph.exchange import new_change_key, notification_etag
    from shared.sync.inbound import change_key_in_etag

    change_key = new_change_key()
    assert change_key_in_etag(notification_etag(change_key)) == change_key
    # the published example (docs/platform-facts.md, "Notification etags are not changeKeys"): 8-byte
    # header + 22 bytes
    published = 'W/"CQAAABYAAADkrWGo7bouTKlsgTZMr9KwAAAUWRHf"'
    assert change_key_in_etag(published) == "5K1hqO26LkypbIE2TK/SsAAAFFkR3w=="
    for other in (f'W/"{change_key}"', notification_etag(change_key, "opaque"), 'W/"not base64!"', "", None):
        assert change_key_in_etag(other) is None  # the fallback: read the event


# -- bodies with parts: the Teams block Exchange adds (concepts/outlook-calendar-online-meetings.md) and
#    our agenda section

def _published_online_meeting() -> dict:
    import json
    from pathlib import Path

    return json.loads((Path(__file__).parent / "fixtures/graph/online_meeting_update_answer.json").read_text())


def test_the_published_teams_block_is_told_apart_from_the_description():
    from shared.model.html_body import split_body

    event = _published_online_meeting()
    description, agenda, teams = split_body(event["body"]["content"])
    assert description == "<div>Let's define our strategy.</div>" and agenda == ""
    assert teams.count("_" * 80) == 2 and "me-email-text" in teams
    assert event["onlineMeeting"]["joinUrl"].replace("&", "&amp;") in teams or event["onlineMeeting"]["joinUrl"] in teams


def test_a_body_rewritten_by_us_keeps_the_teams_block_and_reads_back_as_the_site_wrote_it():
    from shared.model.html_body import compose_body, same_html, split_body
    from shared.model.mapping import body_parts, keep_outlook_parts

    from devtools.sim.graph.exchange import exchange_html

    event = _published_online_meeting()
    agenda = "<ol><li>Budget</li></ol>"
    patch = keep_outlook_parts({"body": {"contentType": "html", "content": compose_body("<p>New plan</p>", agenda)}},
                               event)
    stored = {"contentType": "html", "content": exchange_html(patch["body"]["content"])}
    description, found, teams = body_parts(stored, ("<p>New plan</p>", agenda))
    assert (description, found) == ("<p>New plan</p>", agenda)
    assert teams and same_html(teams, split_body(event["body"]["content"])[2])


def test_an_agenda_section_is_never_part_of_the_description():
    from shared.model.html_body import AGENDA_HEADING, compose_body, split_body
    from devtools.sim.graph.exchange import exchange_html

    agenda = f"<hr><p><b>{AGENDA_HEADING}</b></p><ol><li>Budget &amp; plan</li><li>AOB</li></ol>"
    stored = exchange_html(compose_body("Loose text <b>first</b>", agenda))  # what Exchange keeps
    description, found, teams = split_body(stored)
    assert "Budget" not in description and "Loose text" in description and teams == ""
    assert "Budget &amp; plan" in found and AGENDA_HEADING in found


def test_a_graph_token_refused_before_it_expired_is_replaced_once_and_the_sync_goes_on(stack, site):
    """Graph answers 401 InvalidAuthenticationToken for a token MSAL still holds as valid (revoked keys,
    clock skew): the client asks for a new token once and sends the request again."""
    import time

    meeting = new_meeting(site)
    item = new_event(site, meeting, title="Before the token was refused")
    settle(stack)
    tokens_before = stack.graph.count("POST", "/oauth2/v2.0/token")
    held_since = int(time.time())  # the token MSAL holds was issued this second or before (`iat` is whole seconds)
    eventually(lambda: int(time.time()) > held_since, 3, what="the next second")
    stack.graph.refuse_tokens_issued_before = int(time.time())  # every token issued before this second
    try:
        site.sim.update_item("Meeting Events", item["id"], title="After the token was refused")
        event_id = services().store.get_link("acme/sales", str(item["id"])).event_id
        eventually(lambda: stack.graph.get_event(ORGANISER, event_id)["subject"] == "After the token was refused",
                   30, what="the edit to reach Outlook with a new token")
    finally:
        stack.graph.refuse_tokens_issued_before = None
    settle(stack)
    assert stack.graph.count("POST", "/oauth2/v2.0/token") > tokens_before
