"""Table Storage, against Azurite: keys that survive any id, ETag-checked writes."""

import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.model.mapping import Synced
from shared.storage.store import CLAIM_SECONDS, Conflict, EventLink, Store, from_key, table_key

CONTENT = Synced(title="t", description="", start="2026-01-01T09:00:00Z", end="2026-01-01T10:00:00Z",
                 all_day=False, location="")


@pytest.fixture(scope="module")
def store(stack):
    return Store(stack.azurite.connection_string)


ids = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=60)


@given(ids)
def test_any_id_makes_a_legal_table_key_that_reads_back(value):
    key = table_key(value)
    assert not any(c in key for c in "/\\#?") and not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in key)
    assert from_key(key) == value


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(item_id=ids, event_id=ids)
def test_a_link_with_hostile_ids_is_stored_and_found_both_ways(store, item_id, event_id):
    link = EventLink(site="store/test", item_id=item_id, event_id=event_id, mailbox="a@b.test", synced=CONTENT)
    try:
        store.create_link(link)
        assert store.get_link("store/test", item_id).event_id == event_id
        assert store.get_link_by_event("store/test", event_id).item_id == item_id
    finally:
        store.delete_link(link)
    assert store.get_link("store/test", item_id) is None


def test_a_stale_write_is_refused(store):
    link = store.create_link(EventLink(site="store/test", item_id="etag", event_id="E1", mailbox="a@b.test",
                                       synced=CONTENT))
    first, second = store.get_link("store/test", "etag"), store.get_link("store/test", "etag")
    store.save_link(replace(first, change_key="from-first"))
    with pytest.raises(Conflict):
        store.save_link(replace(second, change_key="from-second"))
    assert store.get_link("store/test", "etag").change_key == "from-first"
    store.delete_link(link)


def test_linking_one_item_twice_is_refused(store):
    link = EventLink(site="store/test", item_id="twice", event_id="E2", mailbox="a@b.test", synced=CONTENT)
    store.create_link(link)
    with pytest.raises(Conflict):
        store.create_link(replace(link, event_id="E3"))
    assert store.get_link("store/test", "twice").event_id == "E2"
    store.delete_link(link)


def test_links_of_one_site_are_invisible_to_another(store):
    link = EventLink(site="one/site", item_id="7", event_id="E7", mailbox="a@b.test", synced=CONTENT)
    store.create_link(link)
    assert store.get_link("other/site", "7") is None and store.get_link_by_event("other/site", "E7") is None
    assert [l.item_id for l in store.links("one/site")] == ["7"]
    store.delete_link(link)


def test_a_claim_holds_off_a_duplicate_until_it_is_older_than_any_job(store):
    """A claim keeps a second delivery of one Outlook change from applying it side by side; one left by a job
    that crashed is taken over once it is older than CLAIM_SECONDS (an explicit clock: no waiting)."""
    start = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
    site, event, change = "store/claims", f"ev-{uuid.uuid4().hex}", "ck-1"
    assert store.claim_change(site, event, change, owner="crashed-job", now=start)
    assert store.claim_change(site, event, change, owner="crashed-job", now=start)  # its own retry keeps it
    just_before = start + timedelta(seconds=CLAIM_SECONDS - 1)
    assert not store.claim_change(site, event, change, owner="duplicate", now=just_before)
    later = start + timedelta(seconds=CLAIM_SECONDS + 1)
    assert store.claim_change(site, event, change, owner="next-job", now=later)
    assert not store.claim_change(site, event, change, owner="third-job", now=later)  # taken over once, by one
    store.release_change(site, event, change)
    assert store.claim_change(site, event, change, owner="third-job", now=later)
    store.release_change(site, event, change)


def test_a_claim_holds_off_a_different_change_of_the_same_event_and_names_the_one_applying(store):
    """Two changes of one event never apply side by side: the older one's stale read would reach the site
    after the newer one. The loser learns which change holds the event (inbound retries a different one)."""
    site, event = "store/claims", f"ev-{uuid.uuid4().hex}"
    assert store.claimed_change(site, event) is None
    assert store.claim_change(site, event, "ck-old", owner="job-a")
    assert not store.claim_change(site, event, "ck-new", owner="job-b")
    assert not store.claim_change(site, event, "ck-new", owner="job-a")  # its own job, another change: no
    assert store.claimed_change(site, event) == "ck-old"
    store.release_change(site, event, "ck-new")  # not the claim's change: kept
    assert store.claimed_change(site, event) == "ck-old"
    store.release_change(site, event, "ck-old")
    assert store.claim_change(site, event, "ck-new", owner="job-b")
    store.release_change(site, event, "ck-new")


def test_of_two_jobs_taking_over_a_stale_claim_at_once_one_wins(store):
    from concurrent.futures import ThreadPoolExecutor
    start = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
    site, event, change = "store/claims", f"ev-{uuid.uuid4().hex}", "ck-2"
    assert store.claim_change(site, event, change, owner="crashed-job", now=start)
    later = start + timedelta(seconds=CLAIM_SECONDS * 2)
    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(lambda n: store.claim_change(site, event, change, owner=f"job-{n}", now=later), range(8)))
    assert won.count(True) == 1
    store.release_change(site, event, change)
