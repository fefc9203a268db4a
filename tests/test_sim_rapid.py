"""Contract checks of the RAPID site simulator (devtools/sim/rapid.py)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from devtools.sim import GraphSimulator, RapidSimulator

AAD_TENANT = "11111111-1111-1111-1111-111111111111"
RAPID_APP = "bbbbbbbb-0000-0000-0000-000000000002"
CLIENT = "aaaaaaaa-0000-0000-0000-000000000001"


class Hooks:
    """A local webhook receiver recording (path, body); answers `statuses` in turn, then 202."""

    def __init__(self, statuses=()):
        self.calls, self.statuses = [], list(statuses)
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hooks.calls.append((self.path, body))
                self.send_response(hooks.statuses.pop(0) if hooks.statuses else 202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def rapid():
    sim = RapidSimulator().start()
    yield sim
    sim.stop()


@pytest.fixture
def site(rapid):
    s = rapid.add_site("acme", "ops", AAD_TENANT, RAPID_APP)
    s.backoff = 0.01
    return s


@pytest.fixture
def http(site):
    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = "Bearer " + site.token()
    return session


@pytest.fixture
def hooks(site):
    h = Hooks()
    site.install_meetings_webhooks(h.url)
    yield h
    h.server.shutdown()


def test_token_must_match_site_app_and_tenant(site, http):
    item = site.create_item("Principals", title="Alice", email="alice@acme.example")
    url = f"{site.url}/lists/Principals/items/{item['id']}"
    assert http.get(url).json()["email"] == "alice@acme.example"
    for token in (site.token(aud="https://graph.microsoft.com"), site.token(tid="other-tenant"), "garbage"):
        resp = requests.get(url, headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401 and "error" in resp.json()
    assert http.get(f"{site.url}/lists/Nope/items/1").status_code == 404
    assert http.get(f"{site.url}/lists/Principals/items/99").status_code == 404


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
    assert requests.get(f"{site.url}/lists/Meetings/items/1", headers={"Authorization": f"Bearer {token}"}).ok


def test_api_writes_and_webhooks_false(site, http, hooks):
    created = http.post(f"{site.url}/lists/Meeting%20Events/items", params={"webhooks": "false"},
                        json={"title": "Kick-off", "meeting": 1, "invitees": [3, 4]})
    assert created.status_code == 200 and created.json()["id"] == 1
    item = created.json()
    assert item["deleted"] is None and item["created"].endswith("Z") and item["invitees"] == [3, 4]
    updated = http.put(f"{site.url}/lists/Meeting Events/items/1", params={"webhooks": "false"},
                       json={"sys_external_id": "AAMk…", "id": 99}).json()
    assert (updated["id"], updated["title"], updated["sys_external_id"]) == (1, "Kick-off", "AAMk…")
    assert updated["modified"] >= item["modified"]
    site.wait_idle()
    assert hooks.calls == [] and site.writes("Meeting Events") == 2
    http.put(f"{site.url}/lists/Meeting Events/items/1", json={"title": "Loud"})
    site.wait_idle()
    assert [p for p, _ in hooks.calls] == ["/acme/ops/0/services/rapid-meetings/event/update"]


def test_user_update_fires_item_updated(site, hooks):
    item = site.create_item("Meeting Events", title="Review", meeting=1)
    site.update_item("Meeting Events", item["id"], title="Review v2")
    site.wait_idle()
    assert [p.rsplit("/", 1)[-1] for p, _ in hooks.calls] == ["create", "update"]
    assert hooks.calls[1][1]["title"] == "Review v2" and hooks.calls[1][1]["id"] == item["id"]
    assert site.writes(via_api_only=True) == 0 and site.writes(via_api_only=False) == 2


def test_deletes_send_item_or_list(site, hooks, http):
    ids = [site.create_item("Meeting Events", title=f"E{i}")["id"] for i in range(3)]
    site.delete_items("Meeting Events", ids[0])
    site.delete_items("Meeting Events", ids[1:])
    site.wait_idle()
    deletes = [body for path, body in hooks.calls if path.endswith("/event/delete")]
    assert deletes[0]["id"] == ids[0] and deletes[0]["deleted"]
    assert [i["id"] for i in deletes[1]] == ids[1:]
    assert http.get(f"{site.url}/lists/Meeting Events/items/{ids[0]}").json()["deleted"]
    assert http.get(f"{site.url}/lists/Meeting Events/All/items").json() == []


def test_filters(site, http):
    for i in range(1, 5):
        site.create_item("Meeting Events", title=f"E{i}", meeting=1 if i < 3 else 2, sys_external_id=f"x'{i}")
    url = f"{site.url}/lists/Meeting Events/All/items"

    def ids(expr):
        resp = http.get(url, params={"$filter": expr})
        assert resp.status_code == 200, resp.text
        return [i["id"] for i in resp.json()]

    assert ids("in(id, 1, 3, 9)") == [1, 3]
    assert ids("id in (2,4)") == [2, 4]
    assert ids("meeting eq 1 and title eq 'E2'") == [2]
    assert ids("sys_external_id eq 'x''4'") == [4]
    assert ids("meeting eq 2 or id eq 1") == [1, 3, 4]
    assert http.get(url, params={"$filter": "title eq"}).status_code == 400


def test_webhook_retried_on_5xx(site):
    hooks = Hooks(statuses=[503, 500])
    site.add_webhook("Meetings", "Item Created", hooks.url + "/hook")
    site.create_item("Meetings", title="M")
    site.wait_idle()
    assert [d.status for d in site.deliveries] == [503, 500, 202] and len(hooks.calls) == 3
    hooks.server.shutdown()
