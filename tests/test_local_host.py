"""The local stand-in for the Functions host (issue 3): poison handling, schedules, the demo scenario."""

from datetime import datetime, timezone

from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from devtools import demo
from devtools.azurite import eventually
from devtools.localhost import next_fire
from devtools.stack import ORGANISER

from .scenario import settle


def queue(stack, name):
    client = QueueClient.from_connection_string(stack.azurite.connection_string, name,
                                                message_encode_policy=TextBase64EncodePolicy(),
                                                message_decode_policy=TextBase64DecodePolicy())
    try:
        client.create_queue()
    except Exception:
        pass  # exists
    return client


def test_a_message_that_always_fails_lands_in_the_poison_queue_with_its_body_intact(stack):
    body = '{"this is": "not a job" '  # not JSON: the worker raises every time
    before = stack.host.poisoned
    queue(stack, stack.queue_name).send_message(body)
    poison = queue(stack, f"{stack.queue_name}-poison")
    messages = eventually(lambda: [m for m in poison.peek_messages(max_messages=32) if m.content == body], timeout=30,
                          what="the poison queue to receive the message")
    assert len(messages) == 1
    settle(stack)
    assert stack.host.poisoned == before + 1
    poison.clear_messages()


def test_ncrontab_schedules_fire_when_they_say():
    after = datetime(2026, 11, 22, 10, 17, 5, tzinfo=timezone.utc)
    assert next_fire("0 */30 * * * *", after) == datetime(2026, 11, 22, 10, 30, 0, tzinfo=timezone.utc)
    assert next_fire("0 0 3 * * 1", after) == datetime(2026, 11, 23, 3, 0, 0, tzinfo=timezone.utc)  # Monday
    assert next_fire("*/10 * * * * *", after) == datetime(2026, 11, 22, 10, 17, 10, tzinfo=timezone.utc)


def test_the_demo_scenario_ends_with_both_sides_agreeing(stack):
    demo.scenario(stack)
    settle(stack)
    site = stack.sites["acme/sales"].sim
    kickoff = next(i for i in site.items("Meeting Events") if i["title"] == "Kick-off")
    event = next((e for e in stack.graph.events(ORGANISER) if e["subject"] == "Kick-off"), None)
    # the scenario ends with the organiser cancelling 'Kick-off' in Outlook after moving it there
    assert kickoff["status"] == "Cancelled" and kickoff["start_date"] == "2026-12-02T09:00:00Z" and event is None
    assert not [e for e in stack.graph.events(ORGANISER) if e["subject"] == "Launch review"]
    assert any(c.subject == "Launch review" for c in stack.graph.cancellations)
