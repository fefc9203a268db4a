"""Site → Outlook: Meeting Event webhooks drive the organiser's calendar (issue 2)."""

import concurrent.futures

from devtools.azurite import eventually
from devtools.stack import ORGANISER
from shared.clients.graph import TAG_ID

from .scenario import new_event, new_meeting, post, settle

EVENTS = "acme/sales/0/services/rapid-meetings/event"


def outlook_events(stack, subject=None):
    return [e for e in stack.graph.events(ORGANISER) if subject is None or e["subject"] == subject]


def test_a_site_event_becomes_one_outlook_event_with_its_fields(stack, site):
    meeting = new_meeting(site)
    item = new_event(site, meeting, title="Quarterly review", start_date="2026-12-01T09:30:00Z",
                     end_date="2026-12-01T11:00:00Z", location="Board room", description="<b>Numbers</b> & plans")
    settle(stack)
    [event] = outlook_events(stack, "Quarterly review")
    assert event["start"] == {"dateTime": "2026-12-01T09:30:00.0000000", "timeZone": "UTC"}
    assert event["end"] == {"dateTime": "2026-12-01T11:00:00.0000000", "timeZone": "UTC"}
    assert event["location"]["displayName"] == "Board room"
    assert "<b>Numbers</b> &amp; plans" in event["body"]["content"] or "<b>Numbers</b> & plans" in event["body"]["content"]
    assert sorted(a["emailAddress"]["address"] for a in event["attendees"]) == ["bob@contoso.test", "guest@partner.test"]
    assert all(a["type"] == "required" for a in event["attendees"])
    tags = stack.graph.get_event(ORGANISER, event["id"]).get("singleValueExtendedProperties") or []
    assert {"id": TAG_ID, "value": f"acme/sales|{item['id']}"} in tags
    assert site.sim.get("Meeting Events", item["id"])["sys_external_id"] == event["id"]


def test_the_same_create_delivered_three_times_makes_one_outlook_event(stack, site):
    meeting = new_meeting(site)
    item = site.sim.create_item("Meeting Events", title="Triple delivery", meeting_id=meeting["id"],
                                start_date="2026-12-02T09:00:00Z", end_date="2026-12-02T09:30:00Z")
    settle(stack)
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: post(stack, f"{EVENTS}/create", item), range(3)))
    assert [a.status_code for a in answers] == [202, 202, 202]
    settle(stack)
    assert len(outlook_events(stack, "Triple delivery")) == 1


def test_an_update_without_mapped_change_makes_no_graph_call(stack, site):
    meeting = new_meeting(site)
    item = new_event(site, meeting, title="Quiet update")
    settle(stack)
    stack.graph.reset_log()
    site.sim.update_item("Meeting Events", item["id"], attendees=[site.principals["carol@contoso.test"]])
    settle(stack)
    assert stack.graph.count(path_contains="/v1.0/") == 0


def test_an_update_patches_only_what_changed(stack, site):
    meeting = new_meeting(site)
    item = new_event(site, meeting, title="Before")
    settle(stack)
    stack.graph.reset_log()
    site.sim.update_item("Meeting Events", item["id"], title="After")
    settle(stack)
    patches = [e for e in stack.graph.log if e.method == "PATCH"]
    assert len(patches) == 1 and set(patches[0].body) == {"subject"}
    assert outlook_events(stack, "After") and not outlook_events(stack, "Before")


def test_a_moved_event_moves_in_outlook_across_a_dst_change(stack, site):
    meeting = new_meeting(site)
    item = new_event(site, meeting, title="Moved", start_date="2026-10-24T08:00:00Z", end_date="2026-10-24T09:00:00Z")
    settle(stack)
    site.sim.update_item("Meeting Events", item["id"], start_date="2026-10-26T09:00:00Z", end_date="2026-10-26T10:00:00Z")
    settle(stack)
    [event] = outlook_events(stack, "Moved")
    assert event["start"]["dateTime"].startswith("2026-10-26T09:00:00")


def test_an_all_day_event_spans_local_midnights(stack, site):
    meeting = new_meeting(site)
    # London is UTC+1 until 25 Oct 2026: two local days, 24th and 25th
    new_event(site, meeting, title="Offsite", all_day=True, start_date="2026-10-23T23:00:00Z",
              end_date="2026-10-26T00:00:00Z")
    settle(stack)
    [event] = outlook_events(stack, "Offsite")
    assert event["isAllDay"] is True
    assert event["start"]["dateTime"].startswith("2026-10-24T00:00:00")
    assert event["end"]["dateTime"].startswith("2026-10-26T00:00:00")


def test_deleting_a_list_of_items_cancels_each_outlook_event(stack, site):
    from functions.http import services

    meeting = new_meeting(site)
    items = [new_event(site, meeting, title=f"Series {n}") for n in range(3)]
    settle(stack)
    event_ids = {e["id"] for e in outlook_events(stack) if e["subject"].startswith("Series ")}
    assert len(event_ids) == 3
    site.sim.delete_items("Meeting Events", [i["id"] for i in items])
    settle(stack)
    assert not [e for e in outlook_events(stack) if e["subject"].startswith("Series ")]
    assert event_ids <= {c.event_id for c in stack.graph.cancellations}
    assert all(services().store.get_link("acme/sales", str(i["id"])) is None for i in items)


def test_throttled_graph_reschedules_the_job_then_succeeds(stack, site):
    meeting = new_meeting(site)
    settle(stack)
    stack.graph.reset_log()
    stack.graph.fail_next(1, status=429, retry_after=1, path_contains="/events", method="POST")
    new_event(site, meeting, title="Throttled once")
    eventually(lambda: outlook_events(stack, "Throttled once"), 20, what="the rescheduled create")
    settle(stack)
    posts = [e for e in stack.graph.log if e.method == "POST" and e.path.endswith("/events")]
    assert [e.status for e in posts] == [429, 201]
    assert len(outlook_events(stack, "Throttled once")) == 1


def test_an_item_whose_meeting_has_no_organiser_is_dropped_with_a_reason(stack, site, caplog):
    meeting = site.sim.create_item("Meetings", title="Nobody organises")
    settle(stack)
    stack.graph.reset_log()
    new_event(site, meeting, title="Orphan")
    settle(stack)
    assert not outlook_events(stack, "Orphan")
    assert any("has no organiser" in r.getMessage() for r in caplog.records)


def test_no_more_than_four_requests_reach_one_mailbox_at_once(stack, site):
    meeting = new_meeting(site)
    settle(stack)
    stack.graph.reset_log()
    stack.graph.latency, stack.graph.enforce_concurrency_limit = 0.2, True
    try:
        for n in range(12):
            new_event(site, meeting, title=f"Burst {n}")
        settle(stack)
    finally:
        stack.graph.latency, stack.graph.enforce_concurrency_limit = 0.0, False
    assert len([e for e in outlook_events(stack) if e["subject"].startswith("Burst ")]) == 12
    assert stack.graph.max_concurrency(ORGANISER) <= 4
    assert not [e for e in stack.graph.log if e.status == 429]


def test_an_item_deleted_while_its_create_answer_was_lost_leaves_no_outlook_event(stack, site):
    meeting = new_meeting(site)
    settle(stack)
    # Graph creates the event but the answer never arrives; the item is deleted before the retry
    stack.graph.fail_next(1, status=0, path_contains="/events", method="POST")
    item = new_event(site, meeting, title="Answer lost")
    eventually(lambda: outlook_events(stack, "Answer lost"), what="the unanswered create to land in Outlook")
    site.sim.delete_items("Meeting Events", [item["id"]])
    eventually(lambda: not outlook_events(stack, "Answer lost"), timeout=20, what="the orphan to be cancelled")
    settle(stack)
    assert any(c.subject == "Answer lost" for c in stack.graph.cancellations)


def test_a_delete_webhook_for_an_item_the_site_still_has_cancels_nothing(stack, site):
    from functions.http import services

    meeting = new_meeting(site)
    item = new_event(site, meeting, title="Still wanted")
    settle(stack)
    answer = post(stack, f"{EVENTS}/delete", [{"id": item["id"]}])  # forged, replayed or late
    assert answer.status_code == 202
    settle(stack)
    assert len(outlook_events(stack, "Still wanted")) == 1
    assert services().store.get_link("acme/sales", str(item["id"])) is not None

