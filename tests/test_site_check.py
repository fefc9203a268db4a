"""The site check (docs/product-rules.md, "The site check") against the simulated sites, in each RAPID
variant, and a misconfigured world.

The sites here are this file's own (no webhooks installed, so nothing syncs); the check only reads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jwt
import pytest
import requests

from devtools import site_check as cli
from devtools.azurite import free_port
from devtools.sim.rapid import RapidVariant
from devtools.stack import (AAD_TENANT, CLIENT_ID, CLIENT_SECRET, FUNCTION_KEY, GRAPH_ROLES, GUESTS, MASTER_KEY,
                            ORGANISER, OTHER_TENANT, PEOPLE, RAPID_APP, ROOT)
from shared.config import settings_from
from shared.ops.site_check import (FAIL, OK, WARN, check_all, check_env, failed, jwt_claims, link_shape, schema_columns,
                               to_text)

ALL_ROLES = ["Calendars.ReadWrite", "User.Read.All"]
LOCAL_WARNINGS = {"notification URL", "rapid_url"}  # http on this machine; https in Azure


# -- the pure readers -------------------------------------------------------------------------------

def test_link_shapes_are_named_for_each_unpublished_guess():
    column_key = {"id": 9001, "invitees": 12, "__metadata": {"type": "Principals"}}
    descriptor = {"id": 9001, "column": "invitees", "list": "Principals", "item_id": 12}
    assert link_shape(column_key, "invitees") == "column-key"
    assert link_shape(descriptor, "invitees") == "descriptor"
    assert link_shape({"id": 9001, "invitees": "Principals/12"}, "invitees") == "path"
    assert link_shape({"id": 9001, "guests": 3}, "invitees") is None
    assert link_shape({"id": 9001, "item_id": 3}, "invitees") is None  # a universal link


def test_schema_columns_read_rapid_column_json_and_the_connector_schema():
    doc = {"Fields": [{"ColumnName": "title", "FieldType": "Text"},
                      {"ColumnName": "invitees", "FieldType": "MultiLookup"}],
           "Schema": {"properties": {"meeting_id": {"type": "integer"}, "location": {"type": "string"}}}}
    assert schema_columns(doc) == {"title": "Text", "invitees": "MultiLookup", "meeting_id": "",
                                   "meeting": "Lookup", "location": ""}
    assert schema_columns(["not", "a", "schema"]) == {}


def test_jwt_claims_are_read_without_verifying():
    token = jwt.encode({"roles": ALL_ROLES, "oid": "abc"}, "a-key-long-enough-for-hs256-0123456789", algorithm="HS256")
    assert jwt_claims(token)["roles"] == ALL_ROLES
    assert jwt_claims("opaque-token") == {}


def test_the_check_reports_bad_settings_per_site_and_never_prints_the_function_key():
    env = {"AzureWebJobsStorage": "UseDevelopmentStorage=true", "NOTIFICATION_URL": "http://127.0.0.1:9/x?code=s3cret",
           "SITES": json.dumps([{"tenant": "a", "site": "b"},
                                {"tenant": "c", "site": "d", "rapid_url": "https://x", "aad_tenant": "contoso.com",
                                 "client_id": "id", "client_secret_setting": "UNSET"}])}
    report = check_env(env)
    text = to_text(report)
    assert "s3cret" not in text and "code=***" in text
    incomplete = _find(report, "a/b", "settings")
    assert incomplete.level == FAIL and "missing rapid_url" in incomplete.detail
    assert "UNSET" in _find(report, "c/d", "settings").detail
    assert _find(report, "app", "notification URL unreachable").level == FAIL


# -- against the simulators -------------------------------------------------------------------------

def _find(report, section: str, what: str):
    found = [f for s in report if s.name == section for f in s.findings if f.what.startswith(what)]
    assert found, f"no finding {what!r} in {section}: {to_text(report)}"
    return found[0]


def _levels(report, level: str) -> list:
    return [(s.name, f.what) for s in report for f in s.findings if f.level == level]


@pytest.fixture
def graph_roles(stack):
    """The application roles an admin consented to for the app (the simulator puts them in its tokens)."""
    def with_roles(roles):
        for tenant in (AAD_TENANT, OTHER_TENANT):
            stack.graph.register_app(tenant, CLIENT_ID, CLIENT_SECRET, roles=roles)
    with_roles(GRAPH_ROLES)
    yield with_roles
    with_roles(GRAPH_ROLES)


def _populate(sim) -> dict:
    people = {email: sim.create_item("Principals", title=name, email=email)["id"] for email, name in PEOPLE.items()}
    guests = {email: sim.create_item("External Contacts", title=name, email=email)["id"]
              for email, name in GUESTS.items()}
    meeting = sim.create_item("Meetings", title="Weekly sync", organiser_id=people[ORGANISER])
    sim.create_item("Meeting Events", title="Planning", meeting_id=meeting["id"], start_date="2026-12-01T09:00:00Z",
                    end_date="2026-12-01T10:00:00Z", all_day=False, location="Room 1", description="<p>Agenda</p>",
                    status="Scheduled", invitees=[people["bob@contoso.test"], people["carol@contoso.test"]],
                    guests=list(guests.values()))
    return people


@pytest.fixture(scope="module")
def checked(stack):
    """A healthy site of this file's own: the Meetings bundle with one meeting and one event."""
    sim = stack.rapid.add_site("acme", "checked", AAD_TENANT, RAPID_APP)
    _populate(sim)
    return sim


def _entry(sim, **overrides) -> dict:
    return {"tenant": sim.tenant, "site": sim.site, "rapid_url": sim.url, "aad_tenant": AAD_TENANT,
            "client_id": CLIENT_ID, "client_secret_setting": "SIM_CLIENT_SECRET", "time_zone": "Europe/London",
            **overrides}


def _env(stack, *entries, **extra) -> dict:
    return {**stack.settings(), "SITES": json.dumps(list(entries)), **extra}


@pytest.fixture
def variant(checked):
    """Switch the site's variant for one test; the default comes back afterwards."""
    def switch(**fields):
        checked.variant = RapidVariant(**fields)
    yield switch
    checked.variant = RapidVariant()


def test_a_healthy_site_passes_every_check(stack, checked, graph_roles, tmp_path, capsys):
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": _env(stack, _entry(checked))}))
    assert cli.main(["--settings", str(settings)], environ={}) == 0
    out = capsys.readouterr().out
    report = check_env(_env(stack, _entry(checked)))
    assert _levels(report, FAIL) == []
    assert {what.split(":")[0] for _, what in _levels(report, WARN)} <= LOCAL_WARNINGS
    for what in ("settings valid", "RAPID token obtained", "list Meetings found", "list Meeting Events found",
                 "columns of Meeting Events present", "Meeting Events.meeting (single lookup)",
                 "Meetings.organiser (single lookup)", "Meeting Events.invitees (multi-lookup)",
                 "Meeting Events.guests (multi-lookup)", "Graph token obtained", "Graph roles",
                 "organiser mailboxes reachable", "user lookup", "notification URL answers"):
        assert f"✓ {what}" in out, out
    assert "meeting_id, meeting, meeting$type" in _find(report, "acme/checked", "Meeting Events.meeting").detail
    assert ORGANISER in _find(report, "acme/checked", "organiser mailboxes reachable").detail
    assert not failed(check_all(settings_from(_env(stack, _entry(checked)))))


@pytest.mark.parametrize("shape", ["column-key", "descriptor", "path"])
def test_each_link_shape_is_reported_and_read_by_the_link_reader(stack, checked, variant, shape):
    variant(link_shape=shape)
    report = check_env(_env(stack, _entry(checked)))
    invitees = _find(report, "acme/checked", "Meeting Events.invitees")
    assert invitees.level == OK, invitees
    assert f"shape {shape}, 2 links of invitees" in invitees.detail
    assert _find(report, "acme/checked", "Meeting Events.guests").level == OK


def test_links_missing_from_the_item_get_fail_the_link_reader_and_name_the_setting(stack, checked, variant):
    variant(links_in_get=False)
    report = check_env(_env(stack, _entry(checked, multi_lookup="links")))
    invitees = _find(report, "acme/checked", "Meeting Events.invitees")
    assert invitees.level == FAIL
    assert "no LinkedItems in the item GET" in invitees.detail
    assert invitees.fix == "set multi_lookup to 'query' for this site in SITES"


def test_links_missing_from_the_item_get_are_fine_for_the_query_reader(stack, checked, variant):
    variant(links_in_get=False)
    report = check_env(_env(stack, _entry(checked, multi_lookup="query")))
    invitees = _find(report, "acme/checked", "Meeting Events.invitees")
    assert invitees.level == OK and "query 2" in invitees.detail
    assert _levels(report, FAIL) == []


def test_a_multi_lookup_kept_as_a_column_is_reported_and_read_by_the_column_reader(stack, checked, variant):
    variant(multi_lookup_column=True)
    report = check_env(_env(stack, _entry(checked, multi_lookup="column")))
    invitees = _find(report, "acme/checked", "Meeting Events.invitees")
    assert invitees.level == OK and "also a plain column invitees" in invitees.detail


@pytest.mark.parametrize("body, said", [("value", "an object with value"), ("array", "a JSON array")])
def test_the_list_body_shape_is_reported(stack, checked, variant, body, said):
    variant(list_body=body)
    report = check_env(_env(stack, _entry(checked)))
    assert said in _find(report, "acme/checked", "list Meetings found").detail
    assert _levels(report, FAIL) == []


def test_calendars_readwrite_alone_passes_and_user_lookup_is_optional(stack, checked, graph_roles):
    graph_roles(["Calendars.ReadWrite"])
    report = check_env(_env(stack, _entry(checked)))
    assert _find(report, "acme/checked", "Graph roles").level == OK
    lookup = _find(report, "acme/checked", "user lookup (GET /users/{upn})")
    assert lookup.level == OK and "not granted (optional)" in lookup.detail and "User.Read.All" in lookup.fix
    assert _levels(report, FAIL) == []


def test_missing_graph_roles_are_named(stack, checked, graph_roles):
    graph_roles(["User.Read.All"])
    report = check_env(_env(stack, _entry(checked)))
    roles = _find(report, "acme/checked", "Graph roles")
    assert roles.level == FAIL and "missing Calendars.ReadWrite" in roles.detail and "Calendars.ReadWrite" in roles.fix


@pytest.fixture(scope="module")
def misconfigured(stack):
    """Three more sites: one that does not admit this app, one for a wrong secret, and one that is down."""
    locked = stack.rapid.add_site("initech", "locked", AAD_TENANT, RAPID_APP, app_principals=["another-app"])
    _populate(locked)
    secret = stack.rapid.add_site("acme", "secret", AAD_TENANT, RAPID_APP)
    return locked, secret


def test_a_misconfigured_world_names_each_problem_and_exits_non_zero(stack, checked, misconfigured, graph_roles,
                                                                     tmp_path, capsys):
    locked, secret = misconfigured
    down = f"https://127.0.0.1:{free_port()}/api/acme/down"
    values = _env(stack,
                  _entry(checked, lists={"meetings": "Meetngs"}, columns={"location": "venue"}),
                  _entry(locked),
                  _entry(secret, client_secret_setting="WRONG_SECRET"),
                  {**_entry(checked), "site": "down", "rapid_url": down},
                  WRONG_SECRET="not-the-secret")
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": values}))
    assert cli.main(["--json", "--settings", str(settings)], environ={}) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    fails = {s["name"]: [f for f in s["findings"] if f["level"] == FAIL] for s in report["sections"]}

    meetings, = [f for f in fails["acme/checked"] if f["what"] == "list Meetngs not found"]
    assert "close: Meetings" in meetings["detail"] and "lists.meetings" in meetings["fix"]
    venue, = [f for f in fails["acme/checked"] if f["what"] == "column venue not in Meeting Events"]
    assert "columns.location = 'venue'" in venue["detail"] and "columns.location" in venue["fix"]

    refused = fails["initech/locked"][0]
    assert "403" in refused["detail"] and "Principal" in refused["fix"] and CLIENT_ID in refused["fix"]

    assert [f["what"] for f in fails["acme/secret"]] == ["RAPID token", "Graph token"]
    token = fails["acme/secret"][0]
    assert "invalid_client" in token["detail"] and "secret" in token["fix"]

    unreachable = fails["acme/down"][0]
    assert unreachable["what"].startswith("site did not answer") and "ConnectionError" in unreachable["detail"]


def test_a_multi_lookup_override_to_a_missing_column_is_named_and_nothing_crashes(stack, checked, graph_roles):
    # the query reader's inScoped(…, attendeez, …) is refused with 400: RapidClient retries once with a fresh
    # token (docs/rapid-api.md, "An expired token may answer 400"), then the refusal must come back as a
    # finding like any other
    report = check_env(_env(stack, _entry(checked, columns={"invitees": "attendeez"})))
    column = _find(report, "acme/checked", "column attendeez not in Meeting Events")
    assert column.level == FAIL and "close: attendees" in column.detail and "columns.invitees" in column.fix
    assert not [f for s in report for f in s.findings if "unexpected" in f.detail], to_text(report)


def test_the_cli_runs_as_a_module_and_exits_non_zero_on_a_problem(stack, misconfigured, tmp_path):
    locked, _ = misconfigured
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": _env(stack, _entry(locked))}))
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT")}
    run = subprocess.run([sys.executable, "-m", "devtools.site_check", "--settings", str(settings)], cwd=ROOT,
                         env={**env, "PYTHONIOENCODING": "utf-8"}, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    assert "initech/locked" in run.stdout and "✗ site refused the list of tables" in run.stdout


def test_the_admin_function_answers_with_the_master_key_and_refuses_the_function_key(stack):
    url = f"{stack.host_url}/ops/site-check"
    assert requests.get(url, params={"code": FUNCTION_KEY}, timeout=60).status_code == 401
    assert requests.get(url, timeout=60).status_code == 401
    answer = requests.get(url, params={"code": MASTER_KEY, "site": "acme/sales"}, timeout=120)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/json")
    body = answer.json()
    assert [s["name"] for s in body["sections"]] == ["app", "acme/sales"]
    assert any(f["what"] == "RAPID token obtained" for f in body["sections"][1]["findings"])
    text = requests.get(url, headers={"x-functions-key": MASTER_KEY}, params={"format": "text", "site": "acme/sales"},
                        timeout=120)
    assert text.status_code == 200 and text.headers["Content-Type"].startswith("text/plain")
    assert "acme/sales" in text.text and "✓ RAPID token obtained" in text.text


def test_the_printed_webhook_urls_carry_each_sites_token_and_are_accepted(stack, tmp_path, capsys):
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"Values": stack.settings()}))
    assert cli.main(["--settings", str(settings), "--webhook-urls", stack.host_url, "--site", "acme/sales"], environ={}) == 0
    urls = [line.strip() for line in capsys.readouterr().out.splitlines() if line.startswith("  ")]
    update = next(u for u in urls if "/event/update?" in u)
    answer = requests.post(f"{update}&code={FUNCTION_KEY}", json={"id": 515151}, timeout=30)
    assert answer.status_code == 202
    assert requests.post(f"{update.replace('acme/sales', 'globex/ops')}&code={FUNCTION_KEY}", json={"id": 1},
                         timeout=30).status_code == 403


def test_feature_columns_and_teams_are_checked_when_a_site_switches_them_on(stack, checked, graph_roles):
    checked.schemas["Meeting Events"].columns["teams_link"] = "Text"
    stack.graph.set_online_providers(ORGANISER, ())
    try:
        report = check_env(_env(stack, _entry(checked, teams=True, join_url_column="teams_link",
                                              answers_column="answerz")))
    finally:
        stack.graph.set_online_providers(ORGANISER, ("teamsForBusiness",))
        del checked.schemas["Meeting Events"].columns["teams_link"]
    missing = _find(report, "acme/checked", "column answerz not in Meeting Events")
    assert missing.level == FAIL and "answers_column" in missing.detail and "answers_column" in missing.fix
    assert "teams_link (join_url_column)" in _find(report, "acme/checked", "optional columns of Meeting Events").detail
    teams = _find(report, "acme/checked", "Teams meetings")
    assert teams.level == WARN and ORGANISER in teams.detail and "without Teams" in teams.fix
    healthy = check_env(_env(stack, _entry(checked, teams=True)))
    assert _find(healthy, "acme/checked", "Teams meetings").level == OK


def test_the_agenda_list_is_checked_only_when_a_site_shows_agendas(stack, checked, graph_roles):
    assert not [f for s in check_env(_env(stack, _entry(checked))) for f in s.findings if "Agenda" in f.what]
    found = _find(check_env(_env(stack, _entry(checked, agenda=True))), "acme/checked", "list Meeting Agendas found")
    assert found.level == OK
    report = check_env(_env(stack, _entry(checked, agenda=True, lists={"agendas": "Meeting Agendaz"})))
    missing = _find(report, "acme/checked", "list Meeting Agendaz not found")
    assert missing.level == FAIL and "close: Meeting Agendas" in missing.detail and "lists.agendas" in missing.fix
