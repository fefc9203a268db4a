"""Contract checks of the RAPID site simulator (devtools/sim/rapid/): a site as published by default,
and each unpublished shape behind a `RapidVariant` switch."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from devtools.sim import GraphSimulator, RapidSimulator
from devtools.sim.rapid import ENVIRONMENT_HEADER, MEETINGS_WEBHOOKS, RapidVariant

AAD_TENANT = "11111111-1111-1111-1111-111111111111"
RAPID_APP = "bbbbbbbb-0000-0000-0000-000000000002"
CLIENT = "aaaaaaaa-0000-0000-0000-000000000001"
PROFILE_SYSTEM_KEYS = {"id", "sys_type_id", "created", "modified", "deleted", "author_id", "author", "editor_id",
                       "editor", "parent_id", "drive_id", "folder_id", "rank", "embedded_files", "sys_external_id",
                       "Permissions", "LinkedItemsToAdd", "ScopedLinkedItemsToAdd", "Attachments", "Dependencies",
                       "__metadata"}


class Hooks:
    """A local webhook receiver recording (path, body, headers); answers `statuses` in turn, then 202."""

    def __init__(self, statuses=()):
        self.calls, self.statuses = [], list(statuses)
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hooks.calls.append((self.path, body, dict(self.headers.items())))
                self.send_response(hooks.statuses.pop(0) if hooks.statuses else 202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def paths(self):
        return [p.rsplit("/services/rapid-meetings/", 1)[-1] for p, _, _ in self.calls]


@pytest.fixture(scope="module")
def rapid():
    sim = RapidSimulator().start()
    yield sim
    sim.stop()


_sites = iter(range(10_000))


@pytest.fixture
def site(rapid):
    s = rapid.add_site("acme", f"ops{next(_sites)}", AAD_TENANT, RAPID_APP)
    s.backoff = 0.01
    return s


def session_for(token):
    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = "Bearer " + token
    return session


@pytest.fixture
def http(site):
    return session_for(site.token(appid=CLIENT))


@pytest.fixture
def hooks(site):
    h = Hooks()
    site.install_meetings_webhooks(h.url)
    yield h
    h.server.shutdown()


@pytest.fixture
def people(site):
    """Three Principals (ids 1-3), a guest, a meeting organised by Alice, an event with invitees."""
    alice = site.create_item("Principals", title="Alice", email="alice@acme.example")["id"]
    bob = site.create_item("Principals", title="Bob", email="bob@acme.example")["id"]
    carol = site.create_item("Principals", title="Carol", email="carol@acme.example")["id"]
    gina = site.create_item("External Contacts", title="Gina", email="gina@partner.example")["id"]
    meeting = site.create_item("Meetings", title="Board", organiser_id=alice)["id"]
    event = site.create_item("Meeting Events", title="Board Q1", meeting_id=meeting, invitees=[bob, carol],
                             guests=[gina], start_date="2026-01-05T09:00:00.000Z")["id"]
    return {"alice": alice, "bob": bob, "carol": carol, "gina": gina, "meeting": meeting, "event": event}


def url(site, path):
    return f"{site.url}/{path}"


def rows(resp):
    assert resp.status_code == 200, resp.text
    return resp.json()["value"]


# -- the item profile ------------------------------------------------------------------------------

def test_profile_has_the_system_fields_and_three_keys_per_single_lookup(site, http, people):
    event = http.get(url(site, f"lists/Meeting Events/items/{people['event']}")).json()
    assert PROFILE_SYSTEM_KEYS <= set(event)
    assert event["__metadata"] == {"type": "Meeting Events"} and event["deleted"] is None
    assert event["created"].endswith("Z") and len(event["created"]) == len("2026-01-05T09:00:00.000Z")
    assert (event["meeting_id"], event["meeting"], event["meeting$type"]) == (
        people["meeting"], "Board", site.schemas["Meetings"].sys_type_id)
    meeting = site.get("Meetings", people["meeting"])
    assert (meeting["organiser_id"], meeting["organiser"]) == (people["alice"], "Alice")
    agenda = site.create_item("Meeting Agendas", title="Item 1")
    assert (agenda["meeting_event_id"], agenda["meeting_event"], agenda["meeting_event$type"]) == (None, None, None)


def test_sys_type_ids_are_distinct_per_list(site, http):
    ids = [site.schemas[name].sys_type_id for name in site.schemas]
    assert len(set(ids)) == len(ids)
    assert site.create_item("Principals", title="P")["sys_type_id"] == site.schemas["Principals"].sys_type_id


def test_multi_lookups_are_never_item_keys_only_links_in_the_single_get(site, http, people):
    event = http.get(url(site, f"lists/Meeting Events/items/{people['event']}")).json()
    assert not {"invitees", "guests", "attendees"} & set(event)
    links = event["LinkedItems"]
    assert sorted((link["__metadata"]["type"], next(k for k in link if k not in ("id", "__metadata")),
                   link.get("invitees", link.get("guests"))) for link in links) == [
        ("External Contacts", "guests", people["gina"]), ("Principals", "invitees", people["bob"]),
        ("Principals", "invitees", people["carol"])]
    assert all(link["id"] >= 9001 for link in links)
    assert site.linked_ids("Meeting Events", people["event"], "invitees") == [people["bob"], people["carol"]]


@pytest.mark.parametrize("shape, expected", [
    ("column-key", lambda lid, bob: {"id": lid, "invitees": bob, "__metadata": {"type": "Principals"}}),
    ("descriptor", lambda lid, bob: {"id": lid, "column": "invitees", "list": "Principals", "item_id": bob}),
    ("path", lambda lid, bob: {"id": lid, "invitees": f"Principals/{bob}"}),
])
def test_link_json_follows_the_link_shape_variant(site, http, shape, expected):
    bob = site.create_item("Principals", title="Bob")["id"]
    event = site.create_item("Meeting Events", title="E", invitees=[bob])["id"]
    site.variant.link_shape = shape
    [link] = http.get(url(site, f"lists/Meeting Events/items/{event}")).json()["LinkedItems"]
    assert link == expected(link["id"], bob) and link["id"] != bob


def test_links_in_get_false_leaves_linked_items_out_of_the_single_get(site, http, people):
    site.variant = RapidVariant(links_in_get=False)
    event = http.get(url(site, f"lists/Meeting Events/items/{people['event']}")).json()
    assert "LinkedItems" not in event and "invitees" not in event
    found = rows(http.get(url(site, "lists/Principals/All$/items"),
                          params={"$filter": f"inScoped(Meeting Events, invitees, {people['event']})"}))
    assert sorted(r["id"] for r in found) == [people["bob"], people["carol"]]


def test_multi_lookup_column_variant_shows_and_stores_an_id_list(site, http, people):
    site.variant.multi_lookup_column = True
    event = http.get(url(site, f"lists/Meeting Events/items/{people['event']}")).json()
    assert event["invitees"] == [people["bob"], people["carol"]] and event["attendees"] == []
    assert http.put(url(site, f"lists/Meeting Events/items/{people['event']}"),
                    json={"invitees": [people["alice"]]}).status_code == 204
    assert site.linked_ids("Meeting Events", people["event"], "invitees") == [people["alice"]]
    [row] = rows(http.get(url(site, "lists/Meeting Events/All$/items")))
    assert row["invitees"] == [people["alice"]]


# -- list reads --------------------------------------------------------------------------------------

def test_all_view_shows_its_columns_and_all_dollar_every_column_but_no_links(site, http, people):
    [row] = rows(http.get(url(site, "lists/Meeting Events/All/items")))
    assert set(row) == {"id", "title", "created", "modified"}
    [full] = rows(http.get(url(site, "lists/Meeting Events/all$/items")))
    assert {"meeting_id", "meeting", "meeting$type", "start_date", "sys_external_id", "sys_type_id"} <= set(full)
    assert not {"invitees", "guests", "attendees", "LinkedItems", "Permissions"} & set(full)
    site.set_view_columns("Meeting Events", ["title", "meeting"])
    [row] = rows(http.get(url(site, "lists/Meeting Events/All/items")))
    assert row == {"title": "Board Q1", "meeting_id": people["meeting"], "meeting": "Board",
                   "meeting$type": site.schemas["Meetings"].sys_type_id}
    resp = http.get(url(site, "lists/Meeting Events/Mine/items"))
    assert resp.status_code == 404 and resp.json()["name"] == "NotFound"


def test_select_returns_exactly_the_selected_keys(site, http, people):
    [row] = rows(http.get(url(site, "lists/Meeting Events/All$/items"),
                          params={"$select": "meeting_id,sys_external_id,invitees"}))
    assert row == {"meeting_id": people["meeting"], "sys_external_id": None}
    [row] = rows(http.get(url(site, "lists/Meeting Events/All/items"), params={"$select": "id,start_date"}))
    assert row == {"id": people["event"]}   # All shows only its view's columns
    resp = http.get(url(site, "lists/Meeting Events/All$/items"), params={"$select": "id,nonsense"})
    assert resp.status_code == 400 and set(resp.json()) == {"name", "message"}


def test_pages_hold_250_items_newest_first_and_skip_pages(site, http):
    for i in range(260):
        site.create_item("Principals", title=f"P{i}")
    first = rows(http.get(url(site, "lists/Principals/All$/items")))
    assert len(first) == 250 and [r["id"] for r in first[:3]] == [260, 259, 258]
    second = rows(http.get(url(site, "lists/Principals/All$/items"), params={"$skip": "250"}))
    assert [r["id"] for r in second] == list(range(10, 0, -1))
    assert [r["id"] for r in rows(http.get(url(site, "lists/Principals/All$/items"),
                                           params={"$top": "2", "$skip": "1"}))] == [259, 258]
    site.delete_items("Principals", [260, 259])
    assert rows(http.get(url(site, "lists/Principals/All$/items"), params={"$top": "1"}))[0]["id"] == 258


def test_list_body_is_a_value_object_or_a_bare_array(site, http, people):
    assert isinstance(http.get(url(site, "lists/Meetings/All/items")).json()["value"], list)
    site.variant.list_body = "array"
    body = http.get(url(site, "lists/Meetings/All/items")).json()
    assert isinstance(body, list) and body[0]["id"] == people["meeting"]


def test_filters_read_odata_and_rapid_functions(site, http):
    for i in range(1, 5):
        site.create_item("Meeting Events", title=f"E{i}", sys_external_id=f"x'{i}", all_day=i % 2 == 0,
                         start_date=f"2026-01-0{i}T09:00:00.000Z")
    site.update_item("Meeting Events", 3, location="Room 1")

    def ids(expr):
        return sorted(r["id"] for r in rows(http.get(url(site, "lists/Meeting Events/All$/items"),
                                                    params={"$filter": expr})))

    assert ids("in(id, 1, 3, 9)") == [1, 3]
    assert ids("id in (2,4)") == [2, 4]
    assert ids("all_day eq true and title eq 'E2'") == [2]
    assert ids("sys_external_id eq 'x''4'") == [4]
    assert ids("(title eq 'E1' or id eq 4) and not all_day eq false") == [4]
    assert ids("start_date ge '2026-01-03T09:00:00Z'") == [3, 4]
    assert ids("modified gt '2020-01-01'") == [1, 2, 3, 4]
    assert ids("created lt '@tomorrow' and created ge '@startOfMonth'") == [1, 2, 3, 4]
    assert ids("location ne null") == [3]
    for bad in ("title eq", "nonsense eq 1", "inScoped(Principals, nonsense, 1)"):
        resp = http.get(url(site, "lists/Meeting Events/All$/items"), params={"$filter": bad})
        assert resp.status_code == 400 and resp.json()["name"] == "BadRequest", bad


def test_in_scoped_finds_linked_items_from_either_end(site, http, people):
    events = rows(http.get(url(site, "lists/Meeting Events/All$/items"),
                           params={"$filter": f"inScoped(Principals, invitees, {people['bob']}, 99)"}))
    assert [r["id"] for r in events] == [people["event"]]
    principals = rows(http.get(url(site, "lists/Principals/All$/items"),
                               params={"$filter": f"inScoped(Meeting Events, invitees, {people['event']})"}))
    assert sorted(r["id"] for r in principals) == [people["bob"], people["carol"]]
    assert rows(http.get(url(site, "lists/Principals/All$/items"), params={
        "$filter": f"inScoped('Meeting Events', attendees, {people['event']})"})) == []


def test_linked_to_follows_links_and_single_lookups_both_ways(site, http, people):
    def ids(list_name, ref):
        return sorted(r["id"] for r in rows(http.get(url(site, f"lists/{list_name}/All/items"),
                                                     params={"linkedTo": ref})))

    assert ids("Principals", f"Meeting Events/{people['event']}") == [people["bob"], people["carol"]]
    assert ids("Meeting Events", f"Meetings/{people['meeting']}") == [people["event"]]   # its lookup points there
    assert ids("Meetings", f"Meeting Events/{people['event']}") == [people["meeting"]]   # pointed at by it
    assert ids("Meetings", f"Principals/{people['alice']}") == [people["meeting"]]


def test_linked_items_to_add_and_remove_universal_and_scoped_links(site, http, people):
    event = people["event"]
    resp = http.put(url(site, f"lists/Meeting Events/items/{event}"), json={
        "LinkedItemsToAdd": [f"Meetings/{people['meeting']}"],
        "ScopedLinkedItemsToAdd": [{"column": "attendees", "link": f"Principals/{people['alice']}"}],
        "LinkedItemsToRemove": [f"Principals/{people['carol']}"]})
    assert resp.status_code == 204, resp.text
    assert site.linked_ids("Meeting Events", event, "attendees") == [people["alice"]]
    assert site.linked_ids("Meeting Events", event, "invitees") == [people["bob"]]
    assert site.linked_ids("Meeting Events", event) == [people["meeting"]]
    assert [r["id"] for r in rows(http.get(url(site, "lists/Meeting Events/All/items"), params={
        "$filter": f"inUniversal(Meetings, {people['meeting']})"}))] == [event]
    bad = http.put(url(site, f"lists/Meeting Events/items/{event}"),
                   json={"ScopedLinkedItemsToAdd": [{"column": "guests", "link": "Principals/1"}]})
    assert bad.status_code == 400


# -- writes by the API -----------------------------------------------------------------------------

def test_post_answers_201_with_an_array_of_profiles_by_default(site, http, people):
    resp = http.post(url(site, "lists/Meeting Subscriptions/items"),
                     json={"title": "Sub", "meeting_id": people["meeting"], "subscription_id": "s-1"})
    assert resp.status_code == 201
    [item] = resp.json()
    assert (item["meeting_id"], item["meeting"], item["subscription_id"]) == (people["meeting"], "Board", "s-1")
    bulk = http.post(url(site, "lists/Meeting Subscriptions/All$/items"), json=[{"title": "A"}, {"title": "B"}])
    assert bulk.status_code == 201 and [i["title"] for i in bulk.json()] == ["A", "B"]


def test_post_answers_200_with_the_item_in_the_object200_variant(site, http):
    site.variant.post_answer = "object200"
    resp = http.post(url(site, "lists/Meetings/All/items"), json={"title": "M"})
    assert resp.status_code == 200 and resp.json()["title"] == "M" and resp.json()["id"] == 1


def test_put_updates_only_the_posted_keys_and_answers_204_or_the_item(site, http, people):
    item_url = url(site, f"lists/Meeting Events/items/{people['event']}")
    resp = http.put(item_url, json={"sys_external_id": "AAMk…", "id": 99, "created": "1999-01-01T00:00:00.000Z"})
    assert resp.status_code == 204 and resp.content == b""
    stored = site.get("Meeting Events", people["event"])
    assert (stored["id"], stored["title"], stored["sys_external_id"]) == (people["event"], "Board Q1", "AAMk…")
    assert stored["created"] != "1999-01-01T00:00:00.000Z"
    site.variant.put_answer = "item200"
    resp = http.put(item_url, json={"location": "Room 9"})
    assert resp.status_code == 200 and resp.json()["location"] == "Room 9" and resp.json()["title"] == "Board Q1"


def test_lookup_writes_take_ids_and_ignore_display_keys_and_multi_lookups(site, http, people):
    item_url = url(site, f"lists/Meeting Events/items/{people['event']}")
    other = site.create_item("Meetings", title="Other")["id"]
    assert http.put(item_url, json={"meeting_id": str(other), "meeting": "ignored", "meeting$type": 1,
                                    "invitees": [people["alice"]], "author_id": 77}).status_code == 204
    stored = site.get("Meeting Events", people["event"])
    assert (stored["meeting_id"], stored["meeting"]) == (other, "Other") and stored["author_id"] != 77
    assert site.linked_ids("Meeting Events", people["event"], "invitees") == [people["bob"], people["carol"]]
    for bad in ({"meeting_id": "Board"}, {"meeting_id": [1]}, {"meeting_id": 999}):
        resp = http.put(item_url, json=bad)
        assert resp.status_code == 400 and resp.json()["name"] == "BadRequest", bad
    assert http.put(item_url, json={"meeting_id": None}).status_code == 204
    assert site.get("Meeting Events", people["event"])["meeting$type"] is None


def test_a_lookup_can_be_populated_dynamically_by_filter(site, http, people):
    item_url = url(site, "lists/Meeting Subscriptions/items")
    found = {"$filter": "title eq 'Board'", "__metadata": {"type": "Meetings"}}
    made = {"$filter": "title eq 'New'", "__metadata": {"type": "Meetings"}, "title": "New"}
    [a, b] = http.post(item_url, json=[{"meeting_id": found}, {"meeting_id": made}]).json()
    assert a["meeting_id"] == people["meeting"] and (b["meeting"], b["meeting_id"]) == ("New", people["meeting"] + 1)


def test_delete_is_soft_and_deleted_items_leave_lists(site, http, people):
    item_url = url(site, f"lists/Meetings/items/{people['meeting']}")
    assert http.delete(item_url).status_code == 204
    got = http.get(item_url)
    assert got.status_code == 200 and got.json()["deleted"].endswith("Z")
    assert rows(http.get(url(site, "lists/Meetings/All$/items"))) == []
    assert http.put(item_url, json={"title": "x"}).status_code == 404
    assert http.delete(item_url).status_code == 404
    for missing in ("lists/Meetings/items/999", "lists/Nope/items/1"):
        resp = http.get(url(site, missing))
        assert resp.status_code == 404 and resp.json()["name"] == "NotFound"


def test_api_writes_are_by_the_application_principal_and_ui_edits_by_a_person(site, http):
    [item] = http.post(url(site, "lists/Meetings/items"), json={"title": "By app"}).json()
    assert item["author"] == item["editor"] and "application" in item["author"]
    updated = site.update_item("Meetings", item["id"], title="By person")
    assert updated["author_id"] == item["author_id"] and updated["editor_id"] == site.person.id != item["author_id"]


# -- webhooks ----------------------------------------------------------------------------------------

def test_app_writes_fire_no_webhooks_by_default_and_do_with_webhooks_true(site, http, hooks, people):
    site.wait_idle()
    hooks.calls.clear()
    event_url = url(site, f"lists/Meeting Events/items/{people['event']}")
    http.post(url(site, "lists/Meeting Events/items"), json={"title": "Quiet"})
    http.put(event_url, json={"title": "Quiet too"})
    site.wait_idle()
    assert hooks.calls == [] and site.writes("Meeting Events") == 2
    http.put(event_url, params={"webhooks": "true"}, json={"title": "Loud"})
    http.delete(event_url, params={"webhooks": "true"})
    site.wait_idle()
    assert hooks.paths() == ["event/update", "event/delete"]
    assert hooks.calls[0][1]["title"] == "Loud" and hooks.calls[1][1]["deleted"]


def test_person_tokens_fire_webhooks_by_default(site, hooks):
    person = session_for(site.token(person="bob@acme.example"))
    assert person.post(url(site, "lists/Meetings/items"), json={"title": "M"}).status_code == 201
    assert person.post(url(site, "lists/Meetings/items"), params={"webhooks": "false"},
                       json={"title": "N"}).status_code == 201
    site.wait_idle()
    assert hooks.paths() == ["meeting/create"]


def test_bulk_creates_fire_only_with_bulk_events(site, http, hooks):
    http.post(url(site, "lists/Meetings/items"), params={"webhooks": "true"}, json=[{"title": "A"}, {"title": "B"}])
    site.wait_idle()
    assert hooks.calls == []
    http.post(url(site, "lists/Meetings/items"), params={"webhooks": "true", "bulkEvents": "true"},
              json=[{"title": "C"}, {"title": "D"}])
    site.wait_idle()
    assert [b["title"] for _, b, _ in hooks.calls] == ["C", "D"]


def test_person_edits_fire_webhooks_with_the_profile_and_an_environment_header(site, hooks, people):
    site.update_item("Meeting Events", people["event"], title="Board Q1, moved", invitees=[people["alice"]])
    site.wait_idle()
    assert hooks.paths() == ["meeting/create", "event/create", "event/update"]
    _, body, headers = hooks.calls[-1]
    assert PROFILE_SYSTEM_KEYS <= set(body) and body["title"] == "Board Q1, moved"
    assert [link["invitees"] for link in body["LinkedItems"] if "invitees" in link] == [people["alice"]]
    assert headers[ENVIRONMENT_HEADER] == "production"
    assert site.writes(via_api_only=True) == 0 and site.writes(via_api_only=False) == 7


def test_person_python_api_refuses_a_lookup_display_key(site):
    with pytest.raises(ValueError, match="meeting_id"):
        site.create_item("Meeting Events", title="E", meeting=1)
    with pytest.raises(ValueError, match="no item 42"):
        site.create_item("Meeting Events", title="E", invitees=[42])


@pytest.mark.parametrize("shape", ["items", "ids", "envelope"])
def test_items_deleted_body_follows_the_deleted_body_variant(site, hooks, shape):
    site.variant.deleted_body = shape
    ids = [site.create_item("Meeting Events", title=f"E{i}")["id"] for i in range(3)]
    site.delete_items("Meeting Events", ids[0])
    site.delete_items("Meeting Events", ids[1:])
    site.wait_idle()
    single, several = [b for p, b, _ in hooks.calls if p.endswith("/event/delete")]
    assert single["id"] == ids[0] and single["deleted"]
    if shape == "items":
        assert [i["id"] for i in several] == ids[1:] and all(i["deleted"] for i in several)
    elif shape == "ids":
        assert several == ids[1:]
    else:
        assert {k: several[k] for k in ("site", "tenant", "environment", "requestor", "formData")} == {
            "site": site.site, "tenant": "acme", "environment": "production", "requestor": site.person.id,
            "formData": {}}
        assert [i["id"] for i in several["item"]] == ids[1:]


def test_webhook_retried_on_5xx(site):
    hooks = Hooks(statuses=[503, 500])
    site.add_webhook("Meetings", "Item Created", hooks.url + "/hook")
    site.create_item("Meetings", title="M")
    site.wait_idle()
    assert [d.status for d in site.deliveries] == [503, 500, 202] and len(hooks.calls) == 3
    hooks.server.shutdown()


def test_the_seven_meetings_webhooks_are_installed(site):
    assert len(MEETINGS_WEBHOOKS) == 7
    hooks = site.install_meetings_webhooks("http://app.example")
    assert hooks[0].url == f"http://app.example/acme/{site.site}/0/services/rapid-meetings/meeting/create"


def test_perform_remote_action_posts_the_published_envelope(site, people):
    hooks = Hooks()
    items = [("Meetings", people["meeting"]), site.get("Meeting Events", people["event"])]
    assert site.perform_remote_action(hooks.url + "/act", items, requestor=4) == [202]
    assert site.perform_remote_action(hooks.url + "/act", items, single_request=False,
                                      form_data={"a": 1}) == [202, 202]
    (_, single, _), (_, first, _), (_, second, _) = hooks.calls
    assert set(single) == {"site", "tenant", "environment", "requestor", "item", "formData"}
    assert single["requestor"] == 4 and [i["id"] for i in single["item"]] == [people["meeting"], people["event"]]
    assert first["item"]["__metadata"] == {"type": "Meetings"} and second["formData"] == {"a": 1}
    hooks.server.shutdown()


# -- auth and errors -------------------------------------------------------------------------------

def test_token_must_match_site_app_and_tenant(site, http):
    item = site.create_item("Principals", title="Alice", email="alice@acme.example")
    item_url = url(site, f"lists/Principals/items/{item['id']}")
    assert http.get(item_url).json()["email"] == "alice@acme.example"
    for token in (site.token(aud="https://graph.microsoft.com"), site.token(tid="other-tenant"), "garbage"):
        resp = requests.get(item_url, headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401 and set(resp.json()) == {"name", "message"}
    assert requests.get(item_url).status_code == 401


def test_expired_tokens_get_401_or_400_in_the_variant(site, http):
    site.create_item("Meetings", title="M")
    item_url = url(site, "lists/Meetings/items/1")
    expired = session_for(site.token(lifetime=-60))
    assert expired.get(item_url).status_code == 401
    site.variant.expired_token_status = 400
    resp = expired.get(item_url)
    assert resp.status_code == 400 and resp.json() == {"name": "TokenExpiredError", "message": "jwt expired"}
    site.expire_next_token()
    assert http.get(item_url).status_code == 400 and http.get(item_url).status_code == 200
    site.expire_tokens_issued_before(time.time() + 1)
    assert http.get(item_url).status_code == 400
    site.clear_token_expiry()
    assert http.get(item_url).status_code == 200


def test_an_application_that_is_not_a_principal_gets_403(rapid):
    site = rapid.add_site("acme", "locked", AAD_TENANT, RAPID_APP, app_principals=["someone-else"])
    stranger = session_for(site.token(appid=CLIENT))
    resp = stranger.get(url(site, "lists/Meeting Events/All$/items"))
    assert resp.status_code == 403
    assert resp.json() == {"name": "Forbidden", "message": f"Principal {CLIENT} has no access to list Meeting Events"}
    assert stranger.get(url(site, "openapi/lists")).status_code == 403
    site.add_app_principal(CLIENT)
    assert stranger.get(url(site, "lists/Meeting Events/All$/items")).status_code == 200


def test_token_from_graph_simulator_is_accepted(site):
    graph = GraphSimulator().start()
    try:
        graph.register_app(AAD_TENANT, CLIENT, "s3cret")
        token = graph.http_session().post(f"{graph.base_url}/{AAD_TENANT}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": CLIENT, "client_secret": "s3cret",
            "scope": f"{RAPID_APP}/.default"}).json()["access_token"]
    finally:
        graph.stop()
    site.create_item("Meetings", title="Board")
    assert session_for(token).get(url(site, "lists/Meetings/items/1")).ok


# -- schema ------------------------------------------------------------------------------------------

def test_openapi_lists_and_schema_describe_columns_and_lookups(site, http):
    assert "Meeting Events" in http.get(url(site, "openapi/lists")).json()
    site.create_item("Meeting Events", title="E", priority=3)
    schema = http.get(url(site, "openapi/Meeting Events/schema")).json()
    fields = {f["ColumnName"]: f for f in schema["Fields"]}
    assert fields["meeting"]["FieldType"] == "Lookup" and fields["meeting"]["LookupList"] == "Meetings"
    assert fields["invitees"]["FieldType"] == "MultiLookup" and fields["invitees"]["LookupList"] == "Principals"
    assert fields["start_date"]["FieldType"] == "DateTime" and fields["all_day"]["FieldType"] == "Boolean"
    assert fields["priority"]["FieldType"] == "Integer" and fields["title"]["TitleField"]
    assert schema["sys_type_id"] == site.schemas["Meeting Events"].sys_type_id
    assert "meeting_id" in schema["Schema"]["properties"]
    assert http.get(url(site, "openapi/Nope/schema")).status_code == 404


def test_tests_can_add_lists_and_lookups(site, http):
    site.add_list("Tasks")
    site.add_multi_lookup("Tasks", "contributors", "Principals")
    site.add_lookup("Tasks", "owner", "Principals")
    p = site.create_item("Principals", title="Pat")["id"]
    task = site.create_item("Tasks", title="T", owner_id=p, contributors=[p])
    assert task["owner"] == "Pat" and "contributors" not in task
    found = rows(http.get(url(site, "lists/Tasks/All/items"),
                          params={"$filter": f"inScoped(Principals, contributors, {p})"}))
    assert [r["id"] for r in found] == [task["id"]]
