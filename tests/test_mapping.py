"""The field mapping, property-based: any valid site event maps to Outlook and back unchanged."""

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.sim.graph.exchange import exchange_html
from devtools.stack import AAD_TENANT, CLIENT_ID
from shared.model.html_body import html_form
from shared.model.mapping import (Synced, local_midnight, normalise, outlook_patch, outlook_payload, synced_from_outlook,
                            synced_from_site, windows_zone)
from shared.sync.reconcile import reconcile
from tzlocal.windows_tz import tz_win

UTC = timezone.utc
DST_ZONES = ["Europe/London", "America/New_York", "Australia/Sydney", "America/Santiago", "Asia/Beirut",
             "America/Havana", "Pacific/Chatham", "Asia/Kolkata", "UTC", "Africa/Casablanca", "America/Asuncion"]
zones = st.one_of(st.sampled_from(DST_ZONES), st.timezone_keys()).filter(lambda k: k in tz_win)  # config refuses others
text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)
html = st.lists(st.one_of(text, st.sampled_from(["<p>", "</p>", "<b>", "</b>", "&amp;", "<br/>", "😀", "é", "<a href='x'>"])),
                max_size=8).map("".join)
emails = st.lists(st.from_regex(r"[a-z]{1,8}@[a-z]{1,8}\.test", fullmatch=True), max_size=4, unique=True)
instants = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)).map(
    lambda d: d.replace(microsecond=0))


def graph_echo(payload: dict) -> dict:
    """What Graph answers for a created event: HTML in Exchange's document, times in UTC except floating
    all-day dates."""
    event = {**payload, "body": {"contentType": "html", "content": exchange_html(payload["body"]["content"])}}
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
    back = synced_from_outlook(graph_echo(outlook_payload(site, zone)), zone, site.attendees, (site.description,))
    assert back == site


@given(all_day_events())
def test_an_all_day_event_spans_the_same_local_days_both_ways(zone_and_event):
    zone, event = zone_and_event
    site = normalise(event, zone)
    payload = outlook_payload(site, zone)
    assert payload["start"]["dateTime"].endswith("T00:00:00.0000000")
    assert payload["end"]["dateTime"].endswith("T00:00:00.0000000")
    assert payload["start"]["timeZone"] == payload["end"]["timeZone"] == tz_win[zone.key]  # Windows names only
    assert synced_from_outlook(graph_echo(payload), zone, site.attendees, (site.description,)) == site


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
    assert synced_from_outlook(read, zone, site.attendees, (site.description,)) == site


def test_a_zone_without_a_windows_name_cannot_reach_graph():
    try:
        windows_zone(ZoneInfo("Antarctica/Troll"))
    except ValueError as e:
        assert "'Antarctica/Troll' has no Windows name" in str(e)
    else:
        raise AssertionError("gave Graph a zone name it refuses")


def test_windows_zone_names_read_back_as_the_same_instants():
    event = {"subject": "x", "isAllDay": False, "body": {"contentType": "html", "content": ""},
             "start": {"dateTime": "2026-07-01T09:00:00.0000000", "timeZone": "W. Europe Standard Time"},
             "end": {"dateTime": "2026-07-02T10:30:00.0000000", "timeZone": "AUS Eastern Standard Time"}}
    back = synced_from_outlook(event, ZoneInfo("UTC"))
    assert (back.start, back.end) == ("2026-07-01T07:00:00Z", "2026-07-02T00:30:00Z")


# -- HTML: any site description, rewritten by Exchange, comes back as no change

TAGS = ["p", "div", "b", "strong", "i", "em", "u", "span", "a", "ul", "ol", "li", "h2", "blockquote", "table", "tr",
        "td", "font", "code", "SPAN", "x-custom"]
words = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=12).map(
    lambda t: t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
attrs = st.sampled_from(["", ' class="x"', ' style="color:red"', " href='https://e.test/?a=1&amp;b=2'", ' dir="ltr"'])
site_html = st.recursive(
    st.one_of(words, st.sampled_from(["<br>", "<br/>", "&nbsp;", "&#233;", "\r\n", "  ", "<hr>", "<!-- note -->",
                                      '<img src="cid:1">'])),
    lambda inner: st.builds(lambda tag, attr, parts: f"<{tag}{attr}>{''.join(parts)}</{tag}>",
                            st.sampled_from(TAGS), attrs, st.lists(inner, max_size=4)),
    max_leaves=12,
).flatmap(lambda first: st.lists(st.just(first) | words, min_size=1, max_size=3).map("".join))
# and what a site may hold as a whole document of its own
site_descriptions = st.one_of(site_html, site_html.map(lambda h: f"<html><head><title>t</title></head><body>{h}</body></html>"))


@settings(max_examples=300)
@given(site_descriptions)
def test_exchanges_rewrite_of_any_site_html_keeps_its_meaning(description):
    assert html_form(exchange_html(description)) == html_form(description)


@settings(max_examples=200)
@given(timed_events(), site_descriptions)
def test_an_exchange_rewrapped_body_reads_back_as_no_change_and_writes_nothing_to_the_site(event, description):
    zone = ZoneInfo("Europe/Amsterdam")
    site = normalise(Synced(**{**event.__dict__, "description": description}), zone)
    echo = {**graph_echo(outlook_payload(site, zone)), "lastModifiedDateTime": "2030-01-01T00:00:00Z"}
    back = synced_from_outlook(echo, zone, site.attendees, (site.description,))
    assert back == site
    plan = reconcile(site, site, "2020-01-01T00:00:00Z", back, echo["lastModifiedDateTime"], zone, lambda n: n)
    assert plan.to_site == {} and plan.to_outlook == {} and not plan.conflicts


def test_a_real_outlook_edit_of_the_body_is_still_a_change():
    zone = ZoneInfo("UTC")
    before = exchange_html("<p>Agenda</p>")
    edited = before.replace("Agenda", "Agenda, <b>revised</b>")
    back = synced_from_outlook({"subject": "", "isAllDay": False, "body": {"contentType": "html", "content": edited},
                                "start": {"dateTime": "2026-01-01T09:00:00", "timeZone": "UTC"},
                                "end": {"dateTime": "2026-01-01T10:00:00", "timeZone": "UTC"}}, zone, (), ("<p>Agenda</p>",))
    assert back.description == "<p>Agenda, <b>revised</b></p>"  # what is inside Exchange's <body>


def test_an_item_is_private_only_when_its_column_says_so_and_public_again_when_it_stops():
    from shared.features.recognisable import item_sensitivity, look_on_create

    assert item_sensitivity({"p": True}, "p", "") == "private"
    assert item_sensitivity({"p": "no"}, "p", "") == "normal"
    assert item_sensitivity({"p": False}, "p", "personal") == "personal"
    assert item_sensitivity({}, "", "") == ""
    assert look_on_create("", "", None, "") == {}
    assert look_on_create("RAPID", "free", 0, "private") == {
        "categories": ["RAPID"], "showAs": "free", "isReminderOn": True, "reminderMinutesBeforeStart": 0,
        "sensitivity": "private"}


def test_a_line_feed_left_where_exchange_dropped_a_comment_is_no_change():
    # found by the property test above: text that is only a line feed is whitespace, not a block's break
    description = "<b>\r\n<!-- note -->\r\n</b>"
    assert html_form(exchange_html(description)) == html_form(description) == ("<b>", "</b>")
