"""The core scenarios under every shape RAPID's published sources leave open (devtools/sim/rapid/variant.py):
a site event with invitees and guests reaches Outlook, an edit follows, an Outlook edit flows back, the
meeting gets exactly one Meeting Subscriptions item, and a bulk delete cancels each Outlook event."""

from dataclasses import replace

import pytest

from devtools.azurite import eventually
from devtools.sim.rapid.variant import RapidVariant
from devtools.stack import AAD_TENANT, ORGANISER, WEBHOOKS

from .scenario import new_event, new_meeting, settle

VARIANTS = {
    "published defaults": ("sales", {}),
    "links as descriptors": ("sales", {"link_shape": "descriptor"}),
    "links as paths": ("sales", {"link_shape": "path"}),
    "list reads as bare arrays": ("sales", {"list_body": "array"}),
    "POST answers the object": ("sales", {"post_answer": "object200"}),
    "POST answers 201 without a body": ("sales", {"post_answer": "empty201"}),
    "PUT answers the item": ("sales", {"put_answer": "item200"}),
    "Items Deleted sends ids": ("sales", {"deleted_body": "ids"}),
    "Items Deleted sends the envelope": ("sales", {"deleted_body": "envelope"}),
    "expired token answered 400": ("sales", {"expired_token_status": 400}),
    "no links in the item GET, read by query": ("query", {"links_in_get": False}),
    "ids kept in a column": ("column", {"multi_lookup_column": True, "links_in_get": False}),
}


def attendees(event) -> list[str]:
    return sorted(a["emailAddress"]["address"] for a in event["attendees"])


def outlook_event(stack, world, item_id):
    external = world.sim.get("Meeting Events", item_id)["sys_external_id"]
    return next((e for e in stack.graph.events(ORGANISER) if e["id"] == external), None) if external else None


@pytest.mark.parametrize("name", VARIANTS)
def test_core_scenarios_hold_under_each_variant(stack, name):
    site_name, change = VARIANTS[name]
    world = stack.sites[f"acme/{site_name}"]
    before = world.sim.variant
    world.sim.variant = replace(before, **change)
    try:
        if change.get("expired_token_status"):
            world.sim.expire_next_token(1)  # the app's cached token is refused once: a fresh one must follow
        meeting = new_meeting(world, title=f"Variant: {name}")
        first = new_event(world, meeting, title="First")
        second = new_event(world, meeting, title="Second", guests=[])
        settle(stack)
        event = outlook_event(stack, world, first["id"])
        assert event is not None and event["subject"] == "First"
        assert attendees(event) == ["bob@contoso.test", "guest@partner.test"]
        assert attendees(outlook_event(stack, world, second["id"])) == ["bob@contoso.test"]
        subs = [i for i in world.sim.items("Meeting Subscriptions") if i["meeting_id"] == meeting["id"]]
        assert len(subs) == 1 and subs[0]["status"] == "Active"

        world.sim.update_item("Meeting Events", first["id"], title="First, renamed",
                              invitees=[world.principals["carol@contoso.test"]])
        settle(stack)
        event = outlook_event(stack, world, first["id"])
        assert event["subject"] == "First, renamed"
        assert attendees(event) == ["carol@contoso.test", "guest@partner.test"]

        stack.graph.outlook_update(ORGANISER, event["id"], subject="Renamed in Outlook")
        eventually(lambda: world.sim.get("Meeting Events", first["id"])["title"] == "Renamed in Outlook",
                   what="the Outlook edit to reach the site")
        settle(stack)

        ids = [outlook_event(stack, world, i)["id"] for i in (first["id"], second["id"])]
        world.sim.delete_items("Meeting Events", [first["id"], second["id"]])
        settle(stack)
        live = {e["id"] for e in stack.graph.events(ORGANISER) if not e.get("isCancelled")}
        assert not live & set(ids)
    finally:
        world.sim.variant = before


def test_every_variant_site_has_the_meetings_webhooks(stack):
    for key in ("acme/query", "acme/column"):
        assert len(stack.sites[key].sim.webhooks) == len(WEBHOOKS)


def test_the_default_variant_is_the_published_one():
    variant = RapidVariant()
    assert (variant.link_shape, variant.links_in_get, variant.multi_lookup_column, variant.list_body,
            variant.post_answer, variant.put_answer) == ("column-key", True, False, "value", "array201", "empty204")


@pytest.mark.parametrize("status", [400, 401])
def test_an_expired_token_is_refreshed_once_and_the_read_succeeds(stack, site, status):
    from functions.http import services

    client = services().rapid(services().site("acme/sales"))
    meeting = new_meeting(site, title="Token check")
    settle(stack)  # the meeting's own registration is done: no other request meets the expired token
    before_variant, before_tokens = site.sim.variant, stack.graph.token_requests(AAD_TENANT)
    site.sim.variant = replace(before_variant, expired_token_status=status)
    try:
        site.sim.expire_next_token(1)
        assert client.get_item("meetings", str(meeting["id"]))["title"] == "Token check"
    finally:
        site.sim.variant = before_variant
    assert stack.graph.token_requests(AAD_TENANT) == before_tokens + 1
