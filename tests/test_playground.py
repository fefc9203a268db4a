"""`make run` as a playground (issue 12, deliverable 5): the RAPID simulator's site page and the Graph
simulator's week calendars, driven as a browser would (form posts, 303 redirects), end to end through
the app: site page → webhooks → Outlook, and Outlook page → notifications → site."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import uuid
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from devtools.azurite import eventually
from devtools.stack import ORGANISER

from .scenario import settle

XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
BOB, CAROL, GUEST = "bob@contoso.test", "carol@contoso.test", "guest@partner.test"


@pytest.fixture
def browser(stack):
    """An HTTP client like a browser's: trusts the simulators' local CA, follows no redirect by itself."""
    session = stack.graph.http_session()
    yield session
    session.close()


def site_page(stack, site) -> str:
    return f"{stack.rapid.base_url}/_sim/sites/{site.tenant}/{site.name}"


def calendar_page(stack, mailbox: str = ORGANISER) -> str:
    return f"{stack.graph.base_url}/_sim/calendars/{quote(mailbox, safe='@')}"


def submit(browser, url: str, fields) -> dict:
    """POST a form (a list of pairs, a multi-select repeating its name); the redirect's query as a dict."""
    answer = browser.post(url, data=fields, allow_redirects=False, timeout=30)
    assert answer.status_code == 303, answer.text
    location = answer.headers["Location"]
    assert location.startswith("/_sim/")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def create_meeting(stack, site, browser, title: str) -> dict:
    done = submit(browser, site_page(stack, site) + "/meetings",
                  [("title", title), ("organiser_id", site.principals[ORGANISER])])
    assert "error" not in done, done
    [meeting] = [m for m in site.sim.items("Meetings") if m["title"] == title]
    return meeting


def create_event(stack, site, browser, meeting: dict, title: str, start="2026-12-07T09:00",
                 end="2026-12-07T10:00") -> dict:
    done = submit(browser, site_page(stack, site) + "/events", [
        ("meeting_id", meeting["id"]), ("title", title), ("start_date", start), ("end_date", end),
        ("location", "Room 2"), ("description", "<p>From the page</p>"),
        ("invitees", site.principals[BOB]), ("invitees", site.principals[CAROL]),
        ("guests", site.contacts[GUEST])])
    assert "error" not in done, done
    [item] = [e for e in site.sim.items("Meeting Events") if e["title"] == title]
    assert done["done"] == f"Event {item['id']} created"
    return item


def outlook_event(stack, site, item_id: int, what: str = "the Outlook event") -> dict:
    def found():
        external = site.sim.get("Meeting Events", item_id)["sys_external_id"]
        return external and stack.graph.get_event(ORGANISER, external)
    return eventually(found, 30, what=what)


@pytest.fixture
def paged_event(stack, site, browser):
    """A meeting and an event made on the site page, synced to the organiser's Outlook."""
    tag = uuid.uuid4().hex[:8]
    meeting = create_meeting(stack, site, browser, f"Playground {tag}")
    item = create_event(stack, site, browser, meeting, f"Kick-off {tag}")
    event = outlook_event(stack, site, item["id"])
    settle(stack)
    return {"meeting": meeting, "item": item, "event": event}


def test_an_event_made_in_the_site_page_reaches_outlook_with_its_invitees(stack, site, paged_event):
    item, event = paged_event["item"], paged_event["event"]
    # the page acted as the site's person: its writes fired the site's webhooks, as RAPID's UI does
    fired = [d for d in site.sim.deliveries if d.trigger == "Item Created" and isinstance(d.body, dict)
             and d.body.get("id") == item["id"] and d.table == "Meeting Events"]
    assert fired and fired[0].status == 202
    assert item["start_date"] == "2026-12-07T09:00:00Z" and item["end_date"] == "2026-12-07T10:00:00Z"
    assert site.sim.linked_ids("Meeting Events", item["id"], "invitees") == sorted(
        [site.principals[BOB], site.principals[CAROL]])
    assert event["subject"] == item["title"] and event["location"]["displayName"] == "Room 2"
    assert {a["emailAddress"]["address"] for a in event["attendees"]} == {BOB, CAROL, GUEST}


def test_site_page_edits_and_deletes_reach_outlook(stack, site, browser, paged_event):
    item, meeting = paged_event["item"], paged_event["meeting"]
    done = submit(browser, f"{site_page(stack, site)}/events/{item['id']}", [
        ("meeting_id", meeting["id"]), ("title", item["title"] + " (moved)"), ("start_date", "2026-12-08T13:00"),
        ("end_date", "2026-12-08T14:30"), ("location", "Room 3"), ("description", ""), ("status", ""),
        ("invitees", site.principals[BOB])])
    assert done["done"] == f"Event {item['id']} saved"
    event = eventually(lambda: (e := outlook_event(stack, site, item["id"]))["subject"].endswith("(moved)") and e,
                       30, what="the page's edit in Outlook")
    assert event["location"]["displayName"] == "Room 3"
    assert {a["emailAddress"]["address"] for a in event["attendees"]} == {BOB}
    settle(stack)

    done = submit(browser, f"{site_page(stack, site)}/events/{item['id']}/delete", [])
    assert done["done"] == f"Event {item['id']} deleted"
    assert site.sim.get("Meeting Events", item["id"])["deleted"]
    eventually(lambda: stack.graph.get_event(ORGANISER, event["id"]) is None, 30, what="the Outlook event removed")
    settle(stack)


def test_moving_an_event_on_the_calendar_page_moves_the_site_item(stack, site, browser, paged_event):
    item, event = paged_event["item"], paged_event["event"]
    page = calendar_page(stack)
    week = browser.get(page, params={"week": "2026-12-09"}, timeout=30)  # a Wednesday: the week from Monday 7th
    assert week.status_code == 200 and week.headers["Content-Type"].startswith("text/html")
    assert "Mon 07 Dec" in week.text and "Sun 13 Dec" in week.text and item["title"] in week.text
    assert "?week=2026-11-30" in week.text and "?week=2026-12-14" in week.text  # previous and next
    assert f"/events/{quote(event['id'])}/cancel" in week.text

    done = submit(browser, f"{page}/events/{event['id']}", [
        ("week", "2026-12-07"), ("subject", event["subject"]), ("location", "Room 2"),
        ("start", "2026-12-15T15:00"), ("end", "2026-12-15T16:00")])
    assert done["week"] == "2026-12-14"  # back to the week the event now sits in
    eventually(lambda: site.sim.get("Meeting Events", item["id"])["start_date"] == "2026-12-15T15:00:00Z",
               30, what="the site item moved")
    settle(stack)
    stored = site.sim.get("Meeting Events", item["id"])
    assert stored["end_date"] == "2026-12-15T16:00:00Z" and stored["title"] == item["title"]
    shown = browser.get(page, params={"week": done["week"]}, timeout=30).text
    assert "Tue 15 Dec 15:00 – 16:00" in shown


def test_cancelling_an_event_on_the_calendar_page_marks_the_site_item_cancelled(stack, site, browser, paged_event):
    item, event = paged_event["item"], paged_event["event"]
    done = submit(browser, f"{calendar_page(stack)}/events/{event['id']}/cancel",
                  [("week", "2026-12-07"), ("comment", "Not needed")])
    assert done == {"done": "Event cancelled", "week": "2026-12-07"}
    assert stack.graph.get_event(ORGANISER, event["id"]) is None
    assert any(c.event_id == event["id"] and c.comment == "Not needed" for c in stack.graph.cancellations)
    eventually(lambda: site.sim.get("Meeting Events", item["id"]).get("status") == "Cancelled",
               30, what="the site item cancelled")
    settle(stack)
    assert "Cancelled" in browser.get(site_page(stack, site), timeout=30).text


def test_refused_values_come_back_as_an_error_and_change_nothing(stack, site, browser, paged_event):
    item, meeting = paged_event["item"], paged_event["meeting"]
    before = len(site.sim.items("Meeting Events"))
    done = submit(browser, site_page(stack, site) + "/events", [
        ("meeting_id", meeting["id"]), ("title", "Backwards"), ("start_date", "2026-12-07T10:00"),
        ("end_date", "2026-12-07T09:00")])
    assert done == {"error": "The end comes before the start"}
    assert len(site.sim.items("Meeting Events")) == before
    done = submit(browser, f"{calendar_page(stack)}/events/{paged_event['event']['id']}", [
        ("subject", "x"), ("start", "not a time"), ("end", "2026-12-07T10:00")])
    assert "error" in done and "not a date and time" in done["error"]
    assert site.sim.get("Meeting Events", item["id"])["title"] == item["title"]
    page = browser.get(site_page(stack, site), params={"error": XSS}, timeout=30).text
    assert XSS not in page and ESCAPED in page
    assert browser.get(f"{stack.rapid.base_url}/_sim/sites/nobody/nowhere", timeout=30).status_code == 404
    assert browser.get(calendar_page(stack, "nobody@contoso.test"), timeout=30).status_code == 404
    bad_week = browser.get(calendar_page(stack), params={"week": "soon"}, timeout=30)
    assert bad_week.status_code == 200 and "is not a date" in bad_week.text


def test_the_pages_escape_what_people_type(stack, site, browser):
    meeting = create_meeting(stack, site, browser, XSS)
    item = create_event(stack, site, browser, meeting, XSS, start="2026-12-21T09:00", end="2026-12-21T10:00")
    event = outlook_event(stack, site, item["id"])
    assert event["subject"] == XSS
    settle(stack)
    pages = {"site": browser.get(site_page(stack, site), timeout=30),
             "sites": browser.get(f"{stack.rapid.base_url}/_sim/sites", timeout=30),
             "calendar": browser.get(calendar_page(stack), params={"week": "2026-12-21"}, timeout=30),
             "mailboxes": browser.get(f"{stack.graph.base_url}/_sim/calendars", timeout=30)}
    for name, answer in pages.items():
        assert answer.status_code == 200, name
        assert "<script" not in answer.text.lower(), name
    assert pages["site"].text.count(ESCAPED) >= 2 and ESCAPED in pages["calendar"].text

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:  # `make test` installs Debian's chromium where apt can
        print("chromium not installed: the pages are checked from their HTML only")
        return
    folder = tempfile.mkdtemp(prefix="playground-")
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--disable-background-networking", "--ignore-certificate-errors", "--hide-scrollbars",
             "--window-size=1400,1000"]
    for name in ("site", "calendar"):
        url = pages[name].url
        shot = os.path.join(folder, f"{name}.png")
        subprocess.run(flags + [f"--screenshot={shot}", url], check=True, capture_output=True, timeout=120)
        assert os.path.getsize(shot) > 10_000
        dom = subprocess.run(flags + ["--dump-dom", url], check=True, capture_output=True, text=True,
                             timeout=120).stdout
        # the browser read the title as text: no script element, the words on the page
        assert not re.search(r"<script\b", dom, re.I) and ESCAPED in dom, name
        print(f"playground {name} page screenshot: {shot}")
