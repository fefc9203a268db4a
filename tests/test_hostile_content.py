"""What a site or an Outlook user can put in a field never runs, forges or corrupts anything (issue 22,
the review's findings): descriptions cut to an allow-list both ways, the agenda marker no description can
carry, bodies nested too deep refused, RAPID filter values quoted, only ASCII digits read as numbers, an
answer of the wrong shape never read as "no items", addresses that are not one address never logged as
a line of their own."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from bs4 import BeautifulSoup

from devtools.azurite import eventually
from devtools.sim.rapid.filters import parse_filter
from devtools.stack import ORGANISER
from shared.model.addresses import usable_address
from shared.model.html_body import AGENDA_CLASS, AGENDA_HEADING, split_body
from shared.model.rapid_items import filter_value, lookup_write

from .scenario import column_writes, new_event, new_meeting, post, settle, svc
from .test_catch_up import checkpoint, one_run

HOSTILE = ('<p onclick="steal()">Hello <b>team</b></p><script>alert(1)</script>'
           '<a href="javascript:alert(2)">click</a><iframe src="https://evil.test/"></iframe>'
           '<img src="https://img.test/a.png" onerror="alert(3)"><style>p{display:none}</style>')


def outlook_event(stack, site, item):
    event_id = site.sim.get("Meeting Events", item["id"])["sys_external_id"]
    return next(e for e in stack.graph.events(ORGANISER) if e["id"] == event_id)


def assert_harmless(html: str) -> None:
    soup = BeautifulSoup(html, "html.parser")
    assert not soup.find_all(["script", "iframe", "style", "object", "embed"]), html
    for tag in soup.find_all(True):
        assert not [a for a in tag.attrs if a.startswith("on") or a in ("style", "class", "id")] or \
            tag.get("class") in (["elementToProof"],), (tag, html)  # Exchange's own wrapper
        assert not str(tag.get("href") or tag.get("src") or "").lower().startswith("javascript:"), html


def test_site_html_reaches_an_invitation_only_through_the_allow_list(stack, site):
    item = new_event(site, new_meeting(site), title="Hostile description", description=HOSTILE)
    settle(stack)
    body = outlook_event(stack, site, item)["body"]["content"]
    assert_harmless(body)
    text = BeautifulSoup(body, "html.parser").get_text(" ")
    assert "Hello" in text and "team" in text and "click" in text and "alert" not in text
    assert "<b>team</b>" in body and 'src="https://img.test/a.png"' in body


def test_outlook_html_reaches_the_site_only_through_the_allow_list(stack, site):
    item = new_event(site, new_meeting(site), title="Edited in Outlook")
    settle(stack)
    event = outlook_event(stack, site, item)
    stack.graph.outlook_update(ORGANISER, event["id"], body={"contentType": "html", "content": HOSTILE})
    eventually(lambda: "Hello" in site.sim.get("Meeting Events", item["id"])["description"], what="the site write")
    settle(stack)
    description = site.sim.get("Meeting Events", item["id"])["description"]
    assert_harmless(description)
    assert "<b>team</b>" in description and "alert" not in description


def test_a_description_carrying_the_agenda_marker_is_read_back_unchanged(stack, site):
    marked = (f'<p>Intro</p><div class="{AGENDA_CLASS}"><p>not an agenda</p></div>'
              f'<p><b>{AGENDA_HEADING}</b></p><ol><li>typed by a person</li></ol>')
    item = new_event(site, new_meeting(site), title="Marked", description=marked)
    settle(stack)
    event = outlook_event(stack, site, item)
    description, agenda, _ = split_body(event["body"]["content"])
    assert agenda == "" and "not an agenda" in description and "typed by a person" in description
    stack.rapid.reset_log()
    stack.graph.outlook_update(ORGANISER, event["id"], subject="Marked, renamed")
    eventually(lambda: site.sim.get("Meeting Events", item["id"])["title"] == "Marked, renamed", what="the rename")
    settle(stack)
    assert column_writes(stack, item["id"], "description") == []  # the description was read as it is
    text = BeautifulSoup(site.sim.get("Meeting Events", item["id"])["description"], "html.parser").get_text(" ")
    assert "not an agenda" in text and AGENDA_HEADING in text and "typed by a person" in text


def test_a_body_nested_too_deeply_is_refused_with_400_and_nothing_queued(stack, site):
    deep = b'[{"id": 1, "x": ' + b"[" * 900 + b"]" * 900 + b"}]"
    answer = post(stack, "acme/sales/0/services/rapid-meetings/event/update", None, raw=deep)
    assert answer.status_code == 400 and "deep" in answer.json()["message"]
    answer = post(stack, "graph/notifications", None, key=None, raw=b'{"value": ' + b"[" * 900 + b"]" * 900 + b"}")
    assert answer.status_code in (400, 401) and answer.status_code != 500


def test_rapid_filter_values_are_quoted_literals_and_only_ascii_digits_are_numbers():
    assert filter_value("42") == "42" and filter_value(42) == "42"
    assert filter_value("o'brien') or (1 eq 1") == "'o''brien'') or (1 eq 1'"
    for digits in ("²", "١٢", "４２"):  # str.isdigit() says yes to each; int() refuses or misreads them
        assert filter_value(digits) == f"'{digits}'"
        assert lookup_write("meeting", digits) == {"meeting_id": digits}
    hostile = parse_filter(f"sys_external_id eq {filter_value('x') } or id eq 1")  # what an unquoted value did
    quoted = parse_filter(f"sys_external_id eq {filter_value('x or id eq 1')}")
    row = SimpleNamespace(value=lambda column: {"sys_external_id": "other", "id": 1}[column])
    assert hostile.match(row) and not quoted.match(row)


def test_a_list_answer_of_the_wrong_shape_fails_the_catch_up_instead_of_reading_as_no_items(stack, site, caplog):
    item = new_event(site, new_meeting(site), title="Still here")
    settle(stack)
    checkpoint(sweep=True)
    # a 200 whose body is an object with no rows (RAPID's error shape): before, it read as an empty list
    stack.rapid.fail_next(1, status=200, retry_after=None, path_contains="/sales/", method="GET")
    with caplog.at_level(logging.WARNING, logger="rapid_meetings"):
        one_run(stack)
    assert [r for r in caplog.records if "transient failure" in r.getMessage() and "not rows" in r.getMessage()]
    run = svc().ops.run("catch_up", "acme/sales")  # finished by the retry, which read the real rows
    assert run.outcome == "ok" and run.counts["meetings_read"] >= 1
    assert outlook_event(stack, site, item)["subject"] == "Still here"  # nothing swept


def test_an_address_that_is_not_one_address_is_left_out_and_never_logged_as_a_line(stack, site, caplog):
    assert usable_address(" carol@contoso.test ") == "carol@contoso.test"
    for bad in ("carol@contoso.test\nINFO forged line", "Carol <carol@contoso.test>", "a@b.test, c@d.test",
                "no-at-sign", "x@localhost", 42):
        assert usable_address(bad) is None, bad
    forged = site.sim.create_item("Principals", title="Forger", email="mallory@contoso.test\nERROR site=globex/ops x")
    item = new_event(site, new_meeting(site), title="With a forger",
                     invitees=[site.principals["bob@contoso.test"], forged["id"]])
    with caplog.at_level(logging.INFO, logger="rapid_meetings"):
        settle(stack)
    attendees = [a["emailAddress"]["address"] for a in outlook_event(stack, site, item)["attendees"]]
    assert "bob@contoso.test" in attendees and not [a for a in attendees if "mallory" in a]
    assert not [r for r in caplog.records if "\n" in r.getMessage()]
    assert [r for r in caplog.records if "is not one e-mail address" in r.getMessage()]
