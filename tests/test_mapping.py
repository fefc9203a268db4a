"""The field mapping, property-based: any valid site event maps to Outlook and back unchanged."""

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.stack import AAD_TENANT, CLIENT_ID
from shared.mapping import (Synced, local_midnight, normalise, outlook_patch, outlook_payload, synced_from_outlook,
                            synced_from_site)

UTC = timezone.utc
DST_ZONES = ["Europe/London", "America/New_York", "Australia/Sydney", "America/Santiago", "Asia/Beirut",
             "America/Havana", "Pacific/Chatham", "Asia/Kolkata", "UTC", "Africa/Casablanca", "America/Asuncion"]
zones = st.one_of(st.sampled_from(DST_ZONES), st.timezone_keys()).filter(lambda k: k not in ("Factory", "localtime"))
text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)
html = st.lists(st.one_of(text, st.sampled_from(["<p>", "</p>", "<b>", "</b>", "&amp;", "<br/>", "😀", "é", "<a href='x'>"])),
                max_size=8).map("".join)
emails = st.lists(st.from_regex(r"[a-z]{1,8}@[a-z]{1,8}\.test", fullmatch=True), max_size=4, unique=True)
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)).map(
    lambda d: d.replace(microsecond=0))


def graph_echo(payload: dict) -> dict:
    """What Graph answers for a created event: HTML wrapped, times in UTC except floating all-day dates."""
    event = {**payload, "body": {"contentType": "html", "content":
             f"<html><head>\r\n<meta http-equiv=\"Content-Type\" content=\"text/html; charset=utf-8\">\r\n</head>"
             f"<body>{payload['body']['content']}</body></html>"}}
    if payload["isAllDay"]:
        event["start"] = {**payload["start"], "timeZone": "UTC"}
        event["end"] = {**payload["end"], "timeZone": "UTC"}
    return event


@st.composite
def timed_events(draw):
    start = draw(instants)
    return Synced(title=draw(text), description=draw(html), start=start.isoformat(),
                  end=(start + timedelta(minutes=draw(st.integers(0, 60 * 24 * 3)))).isoformat(),
                  all_day=False, location=draw(text), attendees=tuple(draw(emails)))


@st.composite
def all_day_events(draw):
    zone = ZoneInfo(draw(zones))
    first = draw(st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 1, 1)))
    days = draw(st.integers(1, 14))
    return zone, Synced(title=draw(text), description=draw(html),
                        start=local_midnight(first, zone).isoformat(),
                        end=local_midnight(first + timedelta(days=days), zone).isoformat(),
                        all_day=True, location=draw(text), attendees=tuple(draw(emails)))


@given(timed_events(), zones)
def test_a_timed_event_maps_to_outlook_and_back_to_the_same_fields(event, zone_name):
    zone = ZoneInfo(zone_name)
    site = normalise(event, zone)
    back = synced_from_outlook(graph_echo(outlook_payload(site, zone)), zone, site.attendees)
    assert back == site


@given(all_day_events())
def test_an_all_day_event_spans_the_same_local_days_both_ways(zone_and_event):
    zone, event = zone_and_event
    site = normalise(event, zone)
    payload = outlook_payload(site, zone)
    assert payload["start"]["dateTime"].endswith("T00:00:00.0000000")
    assert payload["end"]["dateTime"].endswith("T00:00:00.0000000")
    assert payload["start"]["timeZone"] == zone.key
    assert synced_from_outlook(graph_echo(payload), zone, site.attendees) == site


@given(timed_events(), zones)
def test_normalising_is_idempotent_and_a_no_change_patch_is_empty(event, zone_name):
    zone = ZoneInfo(zone_name)
    once = normalise(event, zone)
    assert normalise(once, zone) == once
    assert outlook_patch(once, once, zone) == {}


def test_a_site_item_with_a_bad_date_names_the_column():
    try:
        synced_from_site({"start_date": "tomorrow", "end_date": "2026-01-01T00:00:00Z"}, lambda n: n, (), ZoneInfo("UTC"))
    except ValueError as e:
        assert "'start_date'" in str(e)
    else:
        raise AssertionError("accepted a bad date")


def test_an_all_day_event_whose_midnight_does_not_exist_starts_after_the_gap():
    # Santiago springs forward at 00:00 on 2026-09-06: that day starts at 01:00 local (04:00 UTC)
    zone = ZoneInfo("America/Santiago")
    assert local_midnight(date(2026, 9, 6), zone) == datetime(2026, 9, 6, 4, 0, tzinfo=UTC)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=st.one_of(timed_events().map(lambda e: (ZoneInfo("Europe/London"), e)), all_day_events()))
def test_the_graph_simulator_round_trip_keeps_every_mapped_field(stack, event):
    zone, synced = event
    site = normalise(synced, zone)
    token = stack.graph.mint_token(AAD_TENANT, CLIENT_ID)
    session = requests.Session()
    session.verify, session.trust_env = stack.graph.ca_path, False
    headers = {"Authorization": f"Bearer {token}", "Prefer": 'outlook.timezone="UTC"'}
    created = session.post(f"{stack.graph.graph_url}/users/carol@contoso.test/events", json=outlook_payload(site, zone),
                           headers=headers, timeout=10)
    assert created.status_code == 201, created.text
    read = session.get(f"{stack.graph.graph_url}/users/carol@contoso.test/events/{created.json()['id']}",
                       headers=headers, timeout=10).json()
    assert synced_from_outlook(read, zone, site.attendees) == site
