"""Contract checks of the Microsoft Graph simulator (devtools/sim/graph/)."""

import base64
import json
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt
import msal
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from devtools.sim import GraphSimulator
from devtools.sim.graph.folders import IMMUTABLE_IDS as IMMUTABLE

TENANT = "11111111-1111-1111-1111-111111111111"
OTHER_TENANT = "22222222-2222-2222-2222-222222222222"
CLIENT = "aaaaaaaa-0000-0000-0000-000000000001"
SECRET = "s3cret"
ALICE = "alice@contoso.example"
EXT_ID = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name RapidItem"


class Receiver:
    """A tiny notification endpoint: echoes validation tokens (when `echo`) and records POST bodies."""

    def __init__(self, echo=True, status=202):
        self.echo, self.status, self.posts = echo, status, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                token = parse_qs(urlsplit(self.path).query).get("validationToken")
                if token:
                    out = token[0].encode() if receiver.echo else b"nope"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                else:
                    receiver.posts.append((self.path, json.loads(body)))
                    out = b""
                    self.send_response(receiver.status)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/graph/notifications?code=k"

    def wait_for(self, count, timeout=5.0):
        deadline = time.monotonic() + timeout
        while len(self.posts) < count:
            assert time.monotonic() < deadline, f"only {len(self.posts)} of {count} notifications arrived"
            time.sleep(0.01)
        return self.posts


@pytest.fixture
def graph():
    sim = GraphSimulator(notification_backoff=0.01).start()
    sim.register_app(TENANT, CLIENT, SECRET)
    sim.add_user(TENANT, ALICE, "Alice")
    sim.add_user(OTHER_TENANT, "bob@fabrikam.example", "Bob")
    yield sim
    sim.stop()


@pytest.fixture
def http(graph):
    session = plain_session(graph)
    session.headers["Prefer"] = IMMUTABLE  # as the app asks (folders.py); the default form: plain_session
    return session


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


def event_body(**extra):
    return {"subject": "Board", "start": {"dateTime": "2026-03-30T09:00:00", "timeZone": "W. Europe Standard Time"},
            "end": {"dateTime": "2026-03-30T10:00:00", "timeZone": "W. Europe Standard Time"}, **extra}


def in_hours(hours):
    return (datetime.now(timezone.utc) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def subscribe(graph, http, url, **extra):
    return http.post(f"{graph.graph_url}/subscriptions", json={
        "changeType": "created,updated,deleted", "notificationUrl": url, "resource": f"users/{ALICE}/events",
        "expirationDateTime": in_hours(48), "clientState": "secret-state", **extra})


def test_msal_client_credentials_and_cache(graph):
    app = msal.ConfidentialClientApplication(CLIENT, client_credential=SECRET, authority=graph.authority(TENANT),
                                             instance_discovery=False, http_client=graph.http_session())
    first = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    second = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    assert first["token_type"] == "Bearer" and second["access_token"] == first["access_token"]
    assert graph.token_requests(TENANT) == 1
    claims = jwt.decode(first["access_token"], options={"verify_signature": False})
    assert (claims["aud"], claims["tid"], claims["appid"]) == ("https://graph.microsoft.com", TENANT, CLIENT)


def test_msal_certificate_credential(graph):
    leaf = trustme.CA(key_type=trustme.KeyType.RSA).issue_cert("app.example", key_type=trustme.KeyType.RSA)
    cert_pem = leaf.cert_chain_pems[0].bytes().decode()
    graph.register_app(TENANT, "cert-app", certificate_pem=cert_pem)
    thumbprint = x509.load_pem_x509_certificate(cert_pem.encode()).fingerprint(hashes.SHA1()).hex()
    app = msal.ConfidentialClientApplication(
        "cert-app", client_credential={"private_key": leaf.private_key_pem.bytes().decode(), "thumbprint": thumbprint},
        authority=graph.authority(TENANT), instance_discovery=False, http_client=graph.http_session())
    assert "access_token" in app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])


def test_msal_wrong_secret_gives_error_dict(graph):
    app = msal.ConfidentialClientApplication(CLIENT, client_credential="wrong", authority=graph.authority(TENANT),
                                             instance_discovery=False, http_client=graph.http_session())
    result = app.acquire_token_for_client(scopes=["https://graph.microsoft.com/.default"])
    assert result["error"] == "invalid_client" and 7000215 in result["error_codes"]
    assert graph.token_requests() == 0


def test_unknown_tenant_token_request(graph):
    resp = graph.http_session().post(f"{graph.base_url}/nope/oauth2/v2.0/token", data={
        "grant_type": "client_credentials", "client_id": CLIENT, "client_secret": SECRET,
        "scope": "https://graph.microsoft.com/.default"})
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_request"
    assert "AADSTS90002" in resp.json()["error_description"]


def test_bearer_token_and_tenant_isolation(graph, http):
    anonymous = graph.http_session()
    resp = anonymous.get(f"{graph.graph_url}/users/{ALICE}")
    assert resp.status_code == 401 and resp.json()["error"]["code"] == "InvalidAuthenticationToken"
    wrong_aud = {"Authorization": "Bearer " + graph.mint_token(TENANT, CLIENT, aud="api://rapid")}
    assert anonymous.get(f"{graph.graph_url}/users/{ALICE}", headers=wrong_aud).status_code == 401
    refused = http.get(f"{graph.graph_url}/users/{ALICE}")  # Calendars.ReadWrite alone cannot read users
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "Authorization_RequestDenied"
    directory = {"Authorization": "Bearer " + graph.mint_token(TENANT, CLIENT, roles=["User.Read.All"])}
    user = http.get(f"{graph.graph_url}/users/{ALICE}", params={"$select": "id,mail"}, headers=directory).json()
    assert user["mail"] == ALICE and "displayName" not in user
    assert http.get(f"{graph.graph_url}/users/{ALICE}/events", headers=directory).status_code == 403
    resp = http.get(f"{graph.graph_url}/users/bob@fabrikam.example/events")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "ErrorInvalidUser"


def test_transaction_id_dedupes_create(graph, http):
    url = f"{graph.graph_url}/users/{ALICE}/calendar/events"
    first = http.post(url, json=event_body(transactionId="txn-1"))
    again = http.post(url, json=event_body(transactionId="txn-1"))
    assert first.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert len(graph.events(ALICE)) == 1
    event = first.json()
    assert event["@odata.etag"] == f'W/"{event["changeKey"]}"' and len(event["id"]) > 100
    assert event["createdDateTime"].endswith("Z") and len(event["createdDateTime"]) == 28


def test_an_html_body_comes_back_in_exchanges_own_document(graph, http):
    sent = "<p>Agenda</p>Loose <b>text</b> &amp; more<!-- a note --><script>x()</script><br/>"
    event = http.post(f"{graph.graph_url}/users/{ALICE}/events",
                      json=event_body(body={"contentType": "HTML", "content": sent})).json()
    assert event["body"] == {"contentType": "html", "content": (
        '<html>\r\n<head>\r\n<meta http-equiv="Content-Type" content="text/html; charset=utf-8">\r\n</head>\r\n'
        '<body>\r\n<p>Agenda</p>\r\n<div class="elementToProof">Loose <b>text</b> &amp; more<br></div>\r\n'
        '</body>\r\n</html>\r\n')}
    assert event["bodyPreview"] == "Agenda Loose text & more"


@pytest.mark.parametrize("name", ["Europe/Amsterdam", "Australia/Melbourne", "America/Toronto", "Mars/Olympus"])
def test_a_time_zone_graph_does_not_list_is_refused(graph, http, name):
    refused = http.post(f"{graph.graph_url}/users/{ALICE}/events", json={
        "subject": "x", "start": {"dateTime": "2026-03-30T00:00:00", "timeZone": name},
        "end": {"dateTime": "2026-03-31T00:00:00", "timeZone": name}, "isAllDay": True})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "TimeZoneNotSupportedException"
    assert graph.events(ALICE) == []


@pytest.mark.parametrize("name", ["W. Europe Standard Time", "AUS Eastern Standard Time", "UTC", "Europe/Kiev",
                                  "Australia/Sydney"])
def test_windows_zone_names_and_the_listed_extras_are_accepted(graph, http, name):
    created = http.post(f"{graph.graph_url}/users/{ALICE}/events", json={
        "subject": "x", "start": {"dateTime": "2026-03-30T00:00:00", "timeZone": name},
        "end": {"dateTime": "2026-03-31T00:00:00", "timeZone": name}, "isAllDay": True})
    assert created.status_code == 201, created.text


def test_every_endpoint_checks_the_app_roles_of_the_token(graph, http):
    none = {"Authorization": "Bearer " + graph.mint_token(TENANT, CLIENT, roles=[])}
    url = f"{graph.graph_url}/users/{ALICE}/events"
    for method, path in (("GET", url), ("POST", url), ("GET", f"{graph.graph_url}/subscriptions"),
                         ("GET", f"{graph.graph_url}/users/{ALICE}")):
        resp = http.request(method, path, json=event_body() if method == "POST" else None, headers=none)
        assert resp.status_code == 403, (method, path, resp.text)
    read_only = {"Authorization": "Bearer " + graph.mint_token(TENANT, CLIENT, roles=["Calendars.Read"])}
    assert http.get(url, headers=read_only).status_code == 200
    assert http.post(url, json=event_body(), headers=read_only).status_code == 403
    inner = http.post(f"{graph.graph_url}/$batch", headers=none, json={"requests": [
        {"id": "1", "method": "GET", "url": f"/users/{ALICE}/events"}]}).json()["responses"][0]
    assert inner["status"] == 403


def test_all_day_needs_midnight(graph, http):
    url = f"{graph.graph_url}/users/{ALICE}/events"
    bad = http.post(url, json=event_body(isAllDay=True))
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "ErrorInvalidRequest"
    good = http.post(url, json={"subject": "Offsite", "isAllDay": True,
                                "start": {"dateTime": "2026-03-29T00:00:00", "timeZone": "Australia/Sydney"},
                                "end": {"dateTime": "2026-03-31T00:00:00", "timeZone": "Australia/Sydney"}},
                     headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'})
    assert good.status_code == 201
    assert good.json()["start"] == {"dateTime": "2026-03-29T00:00:00.0000000", "timeZone": "Pacific Standard Time"}
    assert graph.events(ALICE)[0]["end"]["dateTime"] == "2026-03-31T00:00:00.0000000"


def test_times_are_utc_unless_prefer(graph, http):
    event = http.post(f"{graph.graph_url}/users/{ALICE}/events", json=event_body()).json()
    assert event["start"] == {"dateTime": "2026-03-30T07:00:00.0000000", "timeZone": "UTC"}
    assert event["originalStartTimeZone"] == "W. Europe Standard Time"
    pacific = http.get(f"{graph.graph_url}/users/{ALICE}/events/{event['id']}",
                       headers={"Prefer": 'outlook.timezone="America/Los_Angeles"'}).json()
    assert pacific["start"] == {"dateTime": "2026-03-30T00:00:00.0000000", "timeZone": "America/Los_Angeles"}


def test_extended_property_filter_and_expand(graph, http):
    url = f"{graph.graph_url}/users/{ALICE}/events"
    tagged = http.post(url, json=event_body(singleValueExtendedProperties=[{"id": EXT_ID, "value": "site/7"}])).json()
    http.post(url, json=event_body())
    assert "singleValueExtendedProperties" not in tagged
    found = http.get(url, params={"$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{EXT_ID}' "
                                             f"and ep/value eq 'site/7')"}).json()["value"]
    assert [e["id"] for e in found] == [tagged["id"]]
    one = http.get(f"{url}/{tagged['id']}", params={
        "$select": "subject", "$expand": f"singleValueExtendedProperties($filter=id eq '{EXT_ID}')"}).json()
    assert one["singleValueExtendedProperties"] == [{"id": EXT_ID, "value": "site/7"}] and "start" not in one


def test_patch_cancel_delete(graph, http):
    url = f"{graph.graph_url}/users/{ALICE}/events"
    event = http.post(url, json=event_body(attendees=[{"emailAddress": {"address": "c@x.example"}}])).json()
    patched = http.patch(f"{url}/{event['id']}", json={"subject": "Renamed"}).json()
    assert patched["subject"] == "Renamed" and patched["changeKey"] != event["changeKey"]
    assert patched["attendees"][0]["type"] == "required"
    assert http.post(f"{url}/{event['id']}/cancel", json={"Comment": "Sorry"}).status_code == 202
    assert graph.events(ALICE) == []
    assert (graph.cancellations[0].comment, graph.cancellations[0].attendees) == ("Sorry", ["c@x.example"])
    missing = http.delete(f"{url}/{event['id']}")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ErrorItemNotFound"
    other = http.post(url, json=event_body()).json()
    assert http.delete(f"{url}/{other['id']}").status_code == 204


def test_cancelling_an_event_without_attendees_is_refused_by_default_and_delete_always_works(graph, http):
    url = f"{graph.graph_url}/users/{ALICE}/events"
    alone = http.post(url, json=event_body()).json()
    refused = http.post(f"{url}/{alone['id']}/cancel", json={"Comment": "Sorry"})
    assert refused.status_code == 400 and len(graph.events(ALICE)) == 1
    graph.cancel_without_attendees = "allow"
    assert http.post(f"{url}/{alone['id']}/cancel", json={}).status_code == 202 and graph.events(ALICE) == []
    graph.cancel_without_attendees = "refuse"
    again = http.post(url, json=event_body()).json()
    assert http.delete(f"{url}/{again['id']}").status_code == 204 and graph.events(ALICE) == []


def test_default_ids_change_with_a_move_and_immutable_ids_do_not(graph, http):
    """concepts/outlook-immutable-id.md: without the preference a request gets default ids, which change when
    the item moves to another folder; the immutable id stays; translateExchangeIds maps one to the other."""
    url = f"{graph.graph_url}/users/{ALICE}/events"
    immutable = http.post(url, json=event_body()).json()["id"]
    plain = plain_session(graph)
    default = plain.get(f"{url}/{immutable}").json()["id"]
    assert default != immutable and plain.get(f"{url}/{default}").status_code == 200
    graph.outlook_move(ALICE, immutable, graph.outlook_add_calendar(ALICE, "Projects"))
    assert plain.get(f"{url}/{default}").json()["error"]["code"] == "ErrorItemNotFound"
    moved = plain.get(f"{url}/{immutable}").json()["id"]
    assert moved not in (default, immutable) and http.get(f"{url}/{moved}").json()["id"] == immutable
    translate = {"inputIds": [moved, default], "sourceIdType": "restId", "targetIdType": "restImmutableEntryId"}
    translate_url = f"{graph.graph_url}/users/{ALICE}/translateExchangeIds"
    assert plain.post(translate_url, json=translate).status_code == 403  # needs User.Read.All (its page)
    directory = graph.mint_token(TENANT, CLIENT, roles=["Calendars.ReadWrite", "User.Read.All"])
    answer = plain.post(translate_url, json=translate, headers={"Authorization": f"Bearer {directory}"}).json()
    assert answer["value"][0]["targetId"] == immutable and "errorDetails" in answer["value"][1]


def plain_session(graph):
    """A client that does not ask for immutable ids."""
    session = graph.http_session()
    session.headers["Authorization"] = "Bearer " + graph.mint_token(TENANT, CLIENT)
    return session


def test_a_repeated_transaction_id_gives_the_first_event_or_a_conflict(graph, http):
    url = f"{graph.graph_url}/users/{ALICE}/events"
    first = http.post(url, json=event_body(transactionId="t-9")).json()
    graph.transaction_duplicate = "conflict"
    again = http.post(url, json=event_body(transactionId="t-9"))
    assert again.status_code == 409 and [e["id"] for e in graph.events(ALICE)] == [first["id"]]


def test_subscription_validation_handshake(graph, http, receiver):
    created = subscribe(graph, http, receiver.url)
    assert created.status_code == 201, created.text
    sub = created.json()
    assert sub["clientState"] == "secret-state" and sub["applicationId"] == CLIENT
    assert "Validation: Testing" in graph.validations[0].url.replace("+", " ").replace("%3A", ":")
    refusing = Receiver(echo=False)
    failed = subscribe(graph, http, refusing.url)
    assert failed.status_code == 400 and failed.json()["error"]["code"] == "ValidationError"
    too_long = subscribe(graph, http, receiver.url, expirationDateTime=in_hours(71))
    assert too_long.status_code == 400 and "4230" in too_long.json()["error"]["message"]
    assert subscribe(graph, http, "http://example.com/hook").status_code == 400
    assert http.get(f"{graph.graph_url}/subscriptions/{sub['id']}").status_code == 200
    other_app = {"Authorization": "Bearer " + graph.mint_token(TENANT, "another-app")}
    assert http.get(f"{graph.graph_url}/subscriptions/{sub['id']}", headers=other_app).status_code == 404
    assert http.delete(f"{graph.graph_url}/subscriptions/{sub['id']}").status_code == 204
    refusing.server.shutdown()


def test_notification_on_outlook_update(graph, http, receiver):
    sub = subscribe(graph, http, receiver.url).json()
    event = graph.outlook_create(ALICE, **event_body())
    graph.outlook_update(ALICE, event["id"], subject="Moved")
    posts = receiver.wait_for(2)
    path, body = next((p, b) for p, b in posts if b["value"][0]["changeType"] == "updated")
    note = body["value"][0]
    user_id = graph.user(ALICE).id
    assert path.endswith("?code=k")
    assert (note["changeType"], note["clientState"], note["subscriptionId"], note["tenantId"]) == \
        ("updated", "secret-state", sub["id"], TENANT)
    assert note["resource"] in (f"Users/{user_id}/Events/{event['id']}", f"users/{user_id}@{TENANT}/events/{event['id']}",
                                f"Users('{user_id}')/Events('{event['id']}')")
    assert note["resourceData"]["id"] == event["id"] and note["resourceData"]["@odata.type"] == "#Microsoft.Graph.Event"
    etag, change_key = note["resourceData"]["@odata.etag"], graph.get_event(ALICE, event["id"])["changeKey"]
    assert etag.startswith('W/"CQAAABYAAA') and change_key not in (etag, etag[3:-1])
    assert base64.b64decode(etag[3:-1])[8:] == base64.b64decode(change_key)


def test_notification_resources_rotate_through_the_published_spellings(graph, http, receiver):
    subscribe(graph, http, receiver.url)
    event = graph.outlook_create(ALICE, **event_body())
    for n in range(2):
        graph.outlook_update(ALICE, event["id"], subject=f"Moved {n}")
    resources = [b["value"][0]["resource"] for _, b in receiver.wait_for(3)]
    user_id = graph.user(ALICE).id
    assert sorted(r.split(event["id"])[0] for r in resources) == sorted(
        [f"Users/{user_id}/Events/", f"Users('{user_id}')/Events('", f"users/{user_id}@{TENANT}/events/"])


def test_both_notification_and_lifecycle_urls_are_validated(graph, http, receiver):
    refusing = Receiver(echo=False)
    failed = subscribe(graph, http, receiver.url, lifecycleNotificationUrl=refusing.url)
    assert failed.status_code == 400 and failed.json()["error"]["code"] == "ValidationError"
    assert subscribe(graph, http, receiver.url, lifecycleNotificationUrl=receiver.url).status_code == 201
    assert len([v for v in graph.validations if v.url.startswith(receiver.url)]) == 1 + 2
    refusing.server.shutdown()


def test_paused_changes_are_missed_and_lifecycle_sent(graph, http, receiver):
    sub = subscribe(graph, http, receiver.url).json()
    graph.pause_notifications()
    graph.outlook_create(ALICE, **event_body())
    graph.resume_notifications(drop=True)
    graph.send_lifecycle(sub["id"], "missed")
    graph.wait_idle()
    assert [b["value"][0].get("lifecycleEvent") for _, b in receiver.posts] == ["missed"]


def test_delta_then_delta_link(graph, http):
    url = f"{graph.graph_url}/users/{ALICE}/calendarView/delta"
    first, second = (graph.outlook_create(ALICE, **event_body(subject=s)) for s in ("One", "Two"))
    page = http.get(url, params={"startDateTime": "2026-03-01T00:00:00Z", "endDateTime": "2026-04-30T00:00:00Z"},
                    headers={"Prefer": f"odata.maxpagesize=1, {IMMUTABLE}"}).json()
    seen = [e["id"] for e in page["value"]]
    while "@odata.nextLink" in page:
        page = http.get(page["@odata.nextLink"]).json()
        seen += [e["id"] for e in page["value"]]
    assert seen == [first["id"], second["id"]]
    graph.outlook_update(ALICE, first["id"], subject="One!")
    graph.outlook_delete(ALICE, second["id"])
    changes = http.get(page["@odata.deltaLink"]).json()
    assert [(e["id"], e.get("subject"), "@removed" in e) for e in changes["value"]] == \
        [(first["id"], "One!", False), (second["id"], None, True)]
    assert http.get(changes["@odata.deltaLink"]).json()["value"] == []
    graph.expire_delta_tokens()
    expired = http.get(changes["@odata.deltaLink"])
    assert expired.status_code == 410 and expired.json()["error"]["code"] == "SyncStateNotFound"


def test_batch_limit_and_inner_requests(graph, http):
    requests_ = [{"id": str(i), "method": "POST", "url": f"/users/{ALICE}/events", "body": event_body()}
                 for i in range(20)]
    resp = http.post(f"{graph.graph_url}/$batch", json={"requests": requests_})
    assert resp.status_code == 200 and {r["status"] for r in resp.json()["responses"]} == {201}
    assert graph.count(path_contains="$batch") == 1 and graph.count(batch_inner=True) == 20
    assert graph.max_concurrency(ALICE) <= 4
    too_many = http.post(f"{graph.graph_url}/$batch", json={"requests": requests_ + [dict(requests_[0], id="x")]})
    assert too_many.status_code == 400


def test_fail_next_429_carries_retry_after(graph, http):
    graph.fail_next(1, status=429, retry_after=7, path_contains="/events")
    url = f"{graph.graph_url}/users/{ALICE}/events"
    throttled = http.get(url)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "7"
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert http.get(url).status_code == 200


def test_a_fifth_concurrent_request_to_one_mailbox_gets_429_mailbox_concurrency(graph, http):
    graph.latency = 0.5
    url = f"{graph.graph_url}/users/{ALICE}/events"
    statuses, refusals = [], []

    def call():
        session = graph.http_session()
        answer = session.get(url, headers={"Authorization": http.headers["Authorization"]})
        statuses.append(answer.status_code)
        if answer.status_code == 429:
            refusals.append((answer.json()["error"]["code"], answer.json()["error"]["message"],
                             answer.headers.get("Retry-After")))

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200] * 4 + [429] * 2 and graph.max_concurrency(ALICE) == 4
    assert refusals == [("ApplicationThrottled", "Application is over its MailboxConcurrency limit.", "1")] * 2
    assert graph.mailbox_concurrency_429s(ALICE) == 2 and graph.mailbox_concurrency_429s() == 2


@pytest.mark.parametrize("variant", ["ignore", "412", "409"])
def test_a_stale_if_match_on_patch_is_ignored_by_default_or_refused_per_variant(graph, http, variant):
    graph.if_match = variant
    url = f"{graph.graph_url}/users/{ALICE}/events"
    created = http.post(url, json=event_body()).json()
    stale = created["@odata.etag"]
    assert http.patch(f"{url}/{created['id']}", json={"subject": "one"}, headers={"If-Match": stale}).status_code == 200
    second = http.patch(f"{url}/{created['id']}", json={"subject": "two"}, headers={"If-Match": stale})
    if variant == "ignore":
        assert second.status_code == 200 and graph.get_event(ALICE, created["id"])["subject"] == "two"
    else:
        assert second.status_code == int(variant) and second.json()["error"]["code"] == "ErrorIrresolvableConflict"
        assert graph.get_event(ALICE, created["id"])["subject"] == "one"
