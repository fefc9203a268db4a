"""Hostile callers get nothing (issue 13): each test is named for an attack or failure found by trying it."""

from __future__ import annotations

import json
import logging
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from devtools.azurite import eventually
from devtools.stack import CLIENT_SECRET, FUNCTION_KEY, ORGANISER, site_params
from shared.config import get_settings
from shared.model.errors import BadRequest, RemoteError, Throttled
from shared.intake.webhooks import site_tasks
from shared.clients.remote import MAX_RETRY_AFTER, checked

from .scenario import new_event, new_meeting, post, queue_depth, settle
from .test_isolation import change_note, services


def test_a_carried_value_that_cannot_be_stored_never_costs_other_callers_their_work(stack, site):
    """A lone surrogate in a carried value once broke the shared queue message: 8 of 240 callers were told
    202 with no job, and their work was never stored."""
    path = "acme/sales/0/services/rapid-meetings/subscriptions/delete"
    url = f"{stack.host_url}/{path}"
    params = {"code": FUNCTION_KEY, **site_params(path)}
    hostile = b'[{"id": 999001, "meeting_id": "\\ud800"}]'
    honest = [json.dumps([{"id": 999100 + n, "meeting_id": n}]).encode() for n in range(60)]
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda body: requests.post(url, params=params, data=body, timeout=30),
                                [hostile] + honest))
    for answer in answers:
        assert answer.status_code == 202, answer.text
        assert all(answer.json()["jobs"]), answer.text  # every job id is real: the work is stored
    settle(stack)


def test_work_that_cannot_be_stored_is_refused_before_any_answer(stack):
    with pytest.raises(BadRequest, match="cannot be stored"):
        services().queue.enqueue([{"op": "event.update", "site": "acme/sales", "item": "1", "x": "\ud800"}])


@pytest.mark.parametrize("bad_id", [".", "..", "a\u2028b", "a\u2029b", "a\u0085b", "a\x1fb"])
def test_ids_that_would_collapse_a_url_or_split_a_log_line_are_refused(bad_id):
    with pytest.raises(BadRequest, match="'id'"):
        site_tasks(get_settings(), "acme", "sales", "event.update", json.dumps({"id": bad_id}).encode())


def test_one_sites_token_opens_no_other_sites_routes(stack):
    acme = site_params("acme/sales/0/services/rapid-meetings/event/update")
    for params in ({"code": FUNCTION_KEY, **acme}, {"code": FUNCTION_KEY}, {"code": FUNCTION_KEY, "site_token": "x"}):
        answer = requests.post(f"{stack.host_url}/globex/ops/0/services/rapid-meetings/event/update",
                               params=params, data=b'{"id": 1}', timeout=30)
        assert answer.status_code == 403 and "site_token" in answer.json()["message"]
    assert post(stack, "globex/ops/0/services/rapid-meetings/event/update", {"id": 424242}).status_code == 202
    settle(stack)


def test_a_rotated_webhook_secret_keeps_the_old_urls_working_until_dropped():
    from shared.config import settings_from
    from shared.model.errors import Forbidden
    from shared.intake.webhooks import check_site_token, site_token

    old, new = "o" * 40, "n" * 40
    env = {**{k: v for k, v in __import__("os").environ.items()}, "WEBHOOK_SECRETS": f"{new},{old}"}
    settings = settings_from(env)
    site = settings.site("acme", "sales")
    for secret in (new, old):
        check_site_token(settings, site, site_token(secret, site.key))
    settings = settings_from({**env, "WEBHOOK_SECRETS": new})
    with pytest.raises(Forbidden):
        check_site_token(settings, site, site_token(old, site.key))


def test_a_replayed_meeting_create_never_switches_an_opted_out_meeting_back_on(stack, site):
    meeting = new_meeting(site, title="Opted out")
    settle(stack)
    [item] = [i for i in site.sim.items("Meeting Subscriptions") if i["meeting_id"] == meeting["id"]]
    site.sim.update_item("Meeting Subscriptions", item["id"], status="Inactive")
    settle(stack)
    assert not services().store.get_meeting(site.key, str(meeting["id"])).active
    assert post(stack, "acme/sales/0/services/rapid-meetings/meeting/create", site.sim.get("Meetings", meeting["id"])).status_code == 202
    settle(stack)
    assert not services().store.get_meeting(site.key, str(meeting["id"])).active
    assert site.sim.get("Meeting Subscriptions", item["id"])["status"] == "Inactive"


def test_a_forged_deleted_notification_deletes_nothing(stack, site):
    """A captured body (the clientState never changes) replayed as 'deleted' once cancelled the site item."""
    meeting = new_meeting(site, title="Forged")
    item = new_event(site, meeting, title="Still in Outlook")
    settle(stack)
    event_id = site.sim.get("Meeting Events", item["id"])["sys_external_id"]
    sub = services().store.subscription_for(site.key, ORGANISER)
    answer = post(stack, "graph/notifications", {"value": [change_note(sub, sub.user_id, event_id, "deleted")]})
    assert answer.status_code == 202 and answer.json()["accepted"] == 1
    settle(stack)
    assert site.sim.get("Meeting Events", item["id"]).get("status") != "Cancelled"
    assert stack.graph.get_event(ORGANISER, event_id) is not None


def test_a_flood_of_notifications_is_bounded_and_logged_once(stack, caplog):
    made_up = [{"subscriptionId": str(uuid.uuid4()), "clientState": "x", "changeType": "updated"} for _ in range(101)]
    assert post(stack, "graph/notifications", {"value": made_up}).status_code == 400
    assert post(stack, "graph/notifications", {"value": made_up[:1] * 1001}).status_code == 413
    caplog.set_level(logging.WARNING, logger="rapid_meetings")
    answer = post(stack, "graph/notifications", {"value": made_up[:100] * 10})
    assert answer.status_code == 202 and answer.json()["refused"] == 1000
    refusals = [r for r in caplog.records if "refused and dropped" in r.getMessage()]
    assert len(refusals) == 1 and "×" in refusals[0].getMessage()


def test_too_many_items_in_one_webhook_get_413(stack):
    body = [{"id": n} for n in range(251)]
    answer = post(stack, "acme/sales/0/services/rapid-meetings/event/delete", body)
    assert answer.status_code == 413 and "250" in answer.json()["message"]
    assert queue_depth(stack) == 0


def test_links_to_another_host_are_never_followed_with_the_graph_token(stack):
    svc = services()
    graph = svc.graph(svc.site("acme/sales"))
    before = stack.graph.token_requests()
    with pytest.raises(RemoteError, match="refusing to send the Graph token"):
        list(graph.delta_pages(ORGANISER, "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z",
                               "https://attacker.example/v1.0/users/x/calendarView/delta?$deltatoken=1"))
    assert stack.graph.token_requests() == before


@pytest.mark.parametrize("header", ["inf", "nan", "-5", "1e308", "86400"])
def test_an_absurd_retry_after_is_capped(header):
    answer = requests.Response()
    answer.status_code, answer.headers["Retry-After"], answer._content = 429, header, b"{}"
    with pytest.raises(Throttled) as caught:
        checked(answer, "Graph call")
    assert 0 <= caught.value.retry_after <= MAX_RETRY_AFTER


def test_secrets_stay_out_of_every_repr():
    settings = get_settings()
    text = repr(settings) + "".join(repr(s) for s in settings.sites.values())
    assert CLIENT_SECRET not in text and "AccountKey" not in text
    assert all(secret not in text for secret in settings.webhook_secrets)


def test_a_rotated_client_state_refuses_the_old_one_and_keeps_syncing(stack, site):
    """After a clientState may have leaked, the operator rotates it: the subscription is made again (Graph
    cannot change a clientState), a body carrying the old one is refused, and Outlook edits still flow."""
    from devtools.stack import MASTER_KEY

    meeting = new_meeting(site, title="Rotated")
    item = new_event(site, meeting, title="Rotate me")
    settle(stack)
    event_id = site.sim.get("Meeting Events", item["id"])["sys_external_id"]
    old = services().store.subscription_for(site.key, ORGANISER)
    url = f"{stack.host_url}/ops/rotate-client-states"
    assert requests.post(url, params={"code": FUNCTION_KEY, "site": "acme/sales"}, timeout=30).status_code == 401
    answer = requests.post(url, params={"code": MASTER_KEY, "site": "acme/sales"}, timeout=30)
    assert answer.status_code == 202 and answer.json()["queued"] >= 1
    settle(stack)
    new = services().store.subscription_for(site.key, ORGANISER)
    assert new.id != old.id and new.client_state != old.client_state
    assert old.id not in stack.graph.subscriptions and new.id in stack.graph.subscriptions
    assert services().store.get_meeting(site.key, str(meeting["id"])).subscription_id == new.id
    # a captured body with the old clientState, even under the new subscription's id, does nothing
    forged = {**change_note(new, new.user_id, event_id, "updated"), "clientState": old.client_state}
    assert post(stack, "graph/notifications", {"value": [forged]}).json()["accepted"] == 0
    # while Outlook's own notifications still reach the site
    stack.graph.outlook_update(ORGANISER, event_id, subject="Rotated, renamed in Outlook")
    eventually(lambda: site.sim.get("Meeting Events", item["id"])["title"] == "Rotated, renamed in Outlook", 20,
               what="the Outlook edit in the site")
