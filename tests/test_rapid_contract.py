"""The app reads RAPID as RAPID publishes it: examples copied from RAPID's own pages (tests/fixtures/rapid,
each file names its source) go through the same readers the app uses."""

import json
from pathlib import Path

import pytest

from shared.config import settings_from
from shared.model.errors import BadRequest
from shared.intake.webhooks import site_tasks
from shared.model.rapid_items import linked_ids, lookup_id, lookup_write, rows_of, written_item

FIXTURES = Path(__file__).parent / "fixtures" / "rapid"


def published(name: str):
    return json.loads((FIXTURES / f"{name}.json").read_text())["body"]


def settings_for(tenant: str, site: str):
    entry = {"tenant": tenant, "site": site, "rapid_url": f"https://api.rapidplatform.com/api/{tenant}/{site}",
             "aad_tenant": "8f3c1b2a-0d4e-4c5f-9a6b-7c8d9e0f1a2b", "client_id": "c1", "client_secret_setting": "S"}
    return settings_from({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "SITES": json.dumps([entry]), "S": "x",
                         "WEBHOOK_SECRETS": "a-webhook-secret-of-at-least-32-characters"})


def test_a_single_lookup_is_read_from_its_id_key_never_from_its_display_text():
    duncan, boyd = rows_of(published("get_all_items_contacts"))
    assert lookup_id(duncan, "business") == "55" and duncan["business"] == "Simpli"
    assert lookup_id(boyd, "member") is None and lookup_id(boyd, "parent") is None
    # a meeting whose title looks like a number is still not an id
    assert lookup_id({"meeting_id": 7, "meeting": "42", "meeting$type": 13}, "meeting") == "7"
    assert lookup_id({"meeting_id": None, "meeting": "42"}, "meeting") is None
    # older sites, or bodies handed to us: 3, "3", {"id": 3}
    assert [lookup_id({"meeting": v}, "meeting") for v in (3, "3", {"id": 3}, "Weekly sync")] == ["3", "3", "3", None]


def test_a_single_lookup_is_written_as_its_id_key():
    assert lookup_write("meeting", "12") == {"meeting_id": 12}
    assert lookup_write("meeting", None) == {"meeting_id": None}


def test_list_reads_accept_a_bare_array_and_a_value_object():
    rows = published("get_all_items_contacts")
    assert [r["id"] for r in rows_of(rows)] == [69, 68] == [r["id"] for r in rows_of({"value": rows})]


def test_write_answers_in_every_published_shape_give_the_item_or_nothing():
    item = published("remote_action_one_item")["item"]
    assert written_item(item) == item                 # the docs: "returns the updated item"
    assert written_item([item]) == item               # the connector: 201 with an array
    assert written_item(None) is None and written_item([]) is None  # 204 without a body


@pytest.mark.parametrize("links", [
    [{"id": 9001, "invitees": 12, "__metadata": {"type": "Principals"}}, {"id": 9002, "invitees": 13}],
    [{"id": 9001, "column": "invitees", "list": "Principals", "item_id": 12},
     {"id": 9002, "column": "invitees", "list": "Principals", "item_id": 13}],
    [{"id": 9001, "invitees": "Principals/12"}, {"id": 9002, "invitees": "Principals/13"}],
], ids=["column-key", "descriptor", "path"])
def test_multi_lookup_links_are_read_by_column_and_never_by_the_link_id(links):
    item = {"id": 5, "LinkedItems": links + [{"id": 9003, "guests": 12, "__metadata": {"type": "External Contacts"}},
                                             "Principals/99"]}
    assert linked_ids(item, "invitees", "Principals") == ["12", "13"]
    assert linked_ids(item, "guests", "External Contacts") == ["12"]
    assert linked_ids(item, "guests", "Principals") == []


@pytest.mark.parametrize("name", ["remote_action_one_item", "remote_action_items"])
def test_the_published_remote_action_envelopes_become_one_task_per_item(name):
    envelope = published(name)
    settings = settings_for(envelope["tenant"], envelope["site"])
    tasks = site_tasks(settings, envelope["tenant"], envelope["site"], "event.update", json.dumps(envelope).encode())
    items = envelope["item"] if isinstance(envelope["item"], list) else [envelope["item"]]
    assert [t["item"] for t in tasks] == [str(i["id"]) for i in items]


def test_an_envelope_without_an_item_is_refused_naming_the_toggle():
    envelope = published("remote_action_minimum")
    settings = settings_for(envelope["tenant"], envelope["site"])
    with pytest.raises(BadRequest, match="Include Item"):
        site_tasks(settings, envelope["tenant"], envelope["site"], "event.update", json.dumps(envelope).encode())


def test_an_envelope_for_another_site_is_refused():
    envelope = published("remote_action_one_item")
    settings = settings_for(envelope["tenant"], "other")
    with pytest.raises(BadRequest, match="site 'home' does not match"):
        site_tasks(settings, envelope["tenant"], "other", "event.update", json.dumps(envelope).encode())


@pytest.mark.parametrize("body,expected", [
    ([{"id": 3, "deleted": "2026-01-01T00:00:00.000Z"}, {"id": 4}], ["3", "4"]),   # a list of item profiles
    ([3, "4"], ["3", "4"]),                                                         # a list of ids
    ({"site": "sales", "tenant": "acme", "environment": "production", "requestor": 4,
      "item": [{"id": 3}, {"id": 4}]}, ["3", "4"]),                                 # the envelope
    ({"id": 3, "__metadata": {"type": "Meeting Events"}}, ["3"]),                   # one item profile
], ids=["items", "ids", "envelope", "profile"])
def test_items_deleted_accepts_every_body_the_contract_names(body, expected):
    tasks = site_tasks(settings_for("acme", "sales"), "acme", "sales", "event.delete", json.dumps(body).encode(), many=True)
    assert [t["item"] for t in tasks] == expected


def test_the_meeting_of_a_deleted_subscription_item_travels_from_its_id_key():
    body = [{"id": 8, "meeting_id": 3, "meeting": "Weekly sync", "meeting$type": 13}]
    [task] = site_tasks(settings_for("acme", "sales"), "acme", "sales", "subscription_item.delete",
                        json.dumps(body).encode(), many=True, carry=("meeting",))
    assert task["meeting"] == "3"
