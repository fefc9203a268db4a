"""Table Storage, against Azurite: keys that survive any id, ETag-checked writes."""

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.model.mapping import Synced
from shared.storage.store import Conflict, EventLink, Store, from_key, table_key

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
