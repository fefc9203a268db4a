"""Each site bounded to its own people, and the app scoped to a group of mailboxes in Exchange (issue 22, 1-2):
an organiser outside the site's bounds gets a status and nothing in Outlook, an invitee outside is invited but
their free/busy never read, Exchange's 403 for a mailbox outside the app's scope is a status (never a retry,
never a poisoned job), and the site check lists the people outside and proves the scope."""

from __future__ import annotations

import json

import pytest

from devtools.stack import AAD_TENANT, CLIENT_ID, CLIENT_SECRET, GRAPH_ROLES, ORGANISER, PEOPLE, RAPID_APP
from shared.clients.bounds import GROUP_CACHE_SECONDS, MailboxBounds, forget_groups
from shared.config import ConfigError
from shared.model.errors import MailboxRefused
from shared.ops.site_check import FAIL, OK, WARN, check_env, required_roles, to_text
from shared.site_settings import SiteConfig, site_from

from .scenario import column_writes, new_event, new_meeting, queue_depth, settle, site_with, svc

DAVE = "dave@fabrikam.test"   # a person of the site whose mailbox is outside its bounds
STATUS, CONFLICTS = "sync_status", "conflicts"
INSIDE = ("contoso.test",)


@pytest.fixture
def dave(stack, site) -> str:
    """Dave: a mailbox of the tenant, and a Principal of acme/sales (made once per session)."""
    if stack.graph.user(DAVE) is None:
        stack.graph.add_user(AAD_TENANT, DAVE, "Dave Outside")
    if DAVE not in site.principals:
        site.principals[DAVE] = site.sim.create_item("Principals", title="Dave Outside", email=DAVE)["id"]
    return site.principals[DAVE]


@pytest.fixture
def scoped(stack):
    """The app's access scoped in Exchange to some mailboxes for one test (None: tenant-wide again)."""
    yield lambda mailboxes: stack.graph.scope_app(AAD_TENANT, CLIENT_ID, mailboxes)
    stack.graph.scope_app(AAD_TENANT, CLIENT_ID, None)
    stack.graph.scope_refusal = "access-policy"


def mentions(stack, address: str) -> list:
    """Every Graph request that names the address, in its path or its body."""
    return [e for e in stack.graph.log if address in e.path or address in json.dumps(e.body, default=str)]


def poisoned(stack) -> int:
    return queue_depth(stack, f"{stack.queue_name}-poison")


def test_an_item_whose_organiser_is_outside_the_sites_bounds_writes_nothing_to_outlook_and_says_why(
        stack, site, dave, monkeypatch):
    site_with(site, monkeypatch, {STATUS: "Text"}, status_column=STATUS, mailbox_domains=INSIDE)
    stack.graph.reset_log()
    meeting = site.sim.create_item("Meetings", title="Dave's meeting", organiser_id=dave)
    item = new_event(site, meeting, title="Outside the bounds")
    settle(stack)
    assert mentions(stack, DAVE) == []            # not a subscription, not a read, not a create: nothing asked
    assert stack.graph.events(DAVE) == []
    assert column_writes(stack, item["id"], STATUS) == [
        f"Not synced: {DAVE} is outside the mailboxes this site may use; nothing was written to Outlook (an "
        "administrator can widen the site's mailbox_domains or mailbox_group)"]
    assert any(f["item"] == str(item["id"]) and "outside the mailboxes" in f["reason"]
               for f in svc().ops.failures("acme/sales"))   # the status page tells the operator too


def test_an_item_refused_for_its_organiser_keeps_no_trace_and_syncs_once_its_organiser_is_inside(
        stack, site, dave, monkeypatch):
    """Review finding: the refused create left a pending link, and every later sync of the item tried to
    remove it through the refused mailbox - the item could never sync again."""
    site_with(site, monkeypatch, {STATUS: "Text"}, status_column=STATUS, mailbox_domains=INSIDE)
    meeting = site.sim.create_item("Meetings", title="Dave's meeting, then Alice's", organiser_id=dave)
    item = new_event(site, meeting, title="Refused, then moved inside")
    settle(stack)
    assert svc().store.get_link("acme/sales", str(item["id"])) is None
    site.sim.update_item("Meetings", meeting["id"], organiser_id=site.principals[ORGANISER])
    site.sim.update_item("Meeting Events", item["id"], title="Refused, then moved inside (Alice)")
    settle(stack)
    assert [e for e in stack.graph.events(ORGANISER) if e["subject"] == "Refused, then moved inside (Alice)"]
    assert svc().store.get_link("acme/sales", str(item["id"])).mailbox == ORGANISER


def test_free_busy_is_never_read_for_an_invitee_outside_the_bounds_who_is_still_invited(stack, site, dave,
                                                                                        monkeypatch):
    site_with(site, monkeypatch, {CONFLICTS: "Text"}, conflicts_column=CONFLICTS, mailbox_domains=INSIDE)
    stack.graph.reset_log()
    new_event(site, new_meeting(site), title="Bounded free/busy", start_date="2027-06-01T09:00:00Z",
              end_date="2027-06-01T10:00:00Z", invitees=[site.principals["bob@contoso.test"], dave])
    settle(stack)
    event = next(e for e in stack.graph.events(ORGANISER) if e["subject"] == "Bounded free/busy")
    invited = {a["emailAddress"]["address"].lower() for a in event["attendees"]}
    assert {"bob@contoso.test", DAVE} <= invited          # an invitee outside is only an address: invited
    asked = [e.body["schedules"] for e in stack.graph.log if e.path.endswith("/calendar/getSchedule")]
    assert asked == [[ORGANISER, "bob@contoso.test"]]      # one read, of the people inside only
    assert [e for e in mentions(stack, DAVE) if e.method != "POST" or not e.path.endswith("/events")] == []


@pytest.mark.parametrize("refusal", ["access-policy", "denied"])
def test_a_mailbox_outside_the_apps_exchange_scope_becomes_a_status_not_a_retry(stack, site, monkeypatch, scoped,
                                                                              refusal):
    site_with(site, monkeypatch, {STATUS: "Text"}, status_column=STATUS)
    meeting = new_meeting(site, title="Scoped out")
    settle(stack)
    stack.graph.scope_refusal = refusal
    scoped([m for m in PEOPLE if m != ORGANISER])        # Exchange lets the app reach everyone but Alice
    stack.graph.reset_log()
    before = poisoned(stack)
    item = new_event(site, meeting, title=f"Refused by Exchange ({refusal})")
    settle(stack)
    refused = [e for e in stack.graph.log if e.status == 403]
    assert refused and all(e.mailbox == stack.graph.user(ORGANISER).id for e in refused)
    assert len(refused) <= 2                              # the sync's first calls to the mailbox; never retried
    assert stack.graph.events(ORGANISER) == [] or all(e["subject"] != item["title"] for e in stack.graph.events(ORGANISER))
    assert queue_depth(stack) == 0 and poisoned(stack) == before
    assert column_writes(stack, item["id"], STATUS) == [
        f"Not synced: Exchange refuses the app access to {ORGANISER} (outside the app's scope in Exchange); "
        "nothing was written to Outlook; an operator has been told"]
    settle(stack)
    assert len([e for e in stack.graph.log if e.status == 403]) == len(refused)   # nothing came back to try again


# -- the site check ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bounded_site(stack):
    """A site of this file's own whose people include Dave (fabrikam.test), and one meeting of Alice's."""
    sim = stack.rapid.add_site("acme", "bounded", AAD_TENANT, RAPID_APP)
    if stack.graph.user(DAVE) is None:
        stack.graph.add_user(AAD_TENANT, DAVE, "Dave Outside")
    people = {email: sim.create_item("Principals", title=name, email=email)["id"]
              for email, name in {**PEOPLE, DAVE: "Dave Outside"}.items()}
    sim.create_item("Meetings", title="Weekly sync", organiser_id=people[ORGANISER])
    return sim


def _check(stack, sim, **bounds):
    entry = {"tenant": sim.tenant, "site": sim.site, "rapid_url": sim.url, "aad_tenant": AAD_TENANT,
             "client_id": CLIENT_ID, "client_secret_setting": "SIM_CLIENT_SECRET", **bounds}
    report = check_env({**stack.settings(), "SITES": json.dumps([entry])})
    return {f.what: f for s in report if s.name == "acme/bounded" for f in s.findings}, to_text(report)


def test_the_site_check_lists_people_outside_the_bounds_and_proves_the_scope(stack, bounded_site, scoped):
    found, text = _check(stack, bounded_site, mailbox_domains=list(INSIDE))
    assert found["Graph roles"].level == OK, text          # domains alone: Calendars.ReadWrite is enough
    outside = found["people outside the site's bounds"]
    assert outside.level == WARN and outside.detail == f"1 Principal: Dave Outside <{DAVE}>"
    assert found["Exchange scope"].level == WARN and f"the app can read {DAVE}" in found["Exchange scope"].detail
    scoped(list(PEOPLE))                                  # scoped to the site's domain: Dave is refused
    found, text = _check(stack, bounded_site, mailbox_domains=list(INSIDE))
    assert found["Exchange scope: a mailbox outside the bounds is refused"].level == OK, text
    assert found["Exchange scope: a mailbox inside the bounds answers"].detail == ORGANISER
    assert not [f for f in found.values() if f.level == FAIL], text


def test_the_site_check_reports_a_scope_that_leaves_out_the_sites_own_organisers(stack, bounded_site, scoped):
    scoped(["bob@contoso.test", "carol@contoso.test"])
    found, text = _check(stack, bounded_site, mailbox_domains=list(INSIDE))
    wrong = found["Exchange scope"]
    assert wrong.level == FAIL and f"{ORGANISER}, inside the site's bounds, is refused" in wrong.detail, text
    assert "management scope" in wrong.fix and "30 minutes to 2 hours" in wrong.fix


def test_a_site_bounded_by_a_group_needs_group_member_read_and_counts_its_members_inside(stack, bounded_site,
                                                                                         graph_roles):
    group = stack.graph.add_group(AAD_TENANT, [DAVE])
    forget_groups()
    found, text = _check(stack, bounded_site, mailbox_domains=list(INSIDE), mailbox_group=group)
    assert found["Graph roles"].level == FAIL and "GroupMember.Read.All" in found["Graph roles"].detail, text
    assert found["mailbox_group"].level == FAIL and "GroupMember.Read.All" in found["mailbox_group"].fix
    graph_roles((*GRAPH_ROLES, "GroupMember.Read.All"))
    forget_groups()
    found, text = _check(stack, bounded_site, mailbox_domains=list(INSIDE), mailbox_group=group)
    assert found["Graph roles"].level == OK and found["people inside the site's bounds"].level == OK, text


@pytest.fixture
def graph_roles(stack):
    yield lambda roles: stack.graph.register_app(AAD_TENANT, CLIENT_ID, CLIENT_SECRET, roles=roles)
    stack.graph.register_app(AAD_TENANT, CLIENT_ID, CLIENT_SECRET, roles=GRAPH_ROLES)
    forget_groups()


def test_the_group_permission_is_required_only_of_a_site_that_names_a_group():
    site = SiteConfig("t", "s", "https://x", "scope", AAD_TENANT, CLIENT_ID)
    assert "GroupMember.Read.All" not in required_roles(site) + required_roles()
    assert "GroupMember.Read.All" in required_roles(SiteConfig("t", "s", "https://x", "scope", AAD_TENANT, CLIENT_ID,
                                                               mailbox_group="6b1c…"))


# -- the group's cache, and the setting -----------------------------------------------------------------

def test_group_membership_is_read_once_per_cache_period_and_a_change_applies_after_it():
    forget_groups()
    now, reads, members = [0.0], [], ["erin@fabrikam.test"]
    site = SiteConfig("t", "s", "https://x", "scope", AAD_TENANT, CLIENT_ID, mailbox_domains=INSIDE,
                      mailbox_group="1b4e28ba-2fa1-11d2-883f-0016d3cca427")
    bounds = MailboxBounds(site, lambda group: reads.append(group) or list(members), clock=lambda: now[0])
    assert bounds.inside("alice@contoso.test") and reads == []       # by its domain: no group read
    assert bounds.inside("Erin@Fabrikam.test") and not bounds.inside("frank@fabrikam.test")
    members.append("frank@fabrikam.test")                            # added to the group in Entra
    now[0] = GROUP_CACHE_SECONDS - 1
    assert not bounds.inside("frank@fabrikam.test") and len(reads) == 1
    now[0] = GROUP_CACHE_SECONDS
    assert bounds.inside("frank@fabrikam.test") and len(reads) == 2
    with pytest.raises(MailboxRefused) as refused:
        bounds.check("grace@fabrikam.test")
    assert refused.value.code == "outside-bounds" and refused.value.about == "grace@fabrikam.test"
    forget_groups()


@pytest.mark.parametrize("bounds, said", [
    ({"mailbox_domains": "contoso.com"}, "mailbox_domains must be a list of domain names"),
    ({"mailbox_domains": ["@contoso.com"]}, "mailbox_domains must be a list of domain names"),
    ({"mailbox_group": "Sales team"}, "mailbox_group must be the Entra group's object ID"),
])
def test_bad_bounds_are_refused_by_name(bounds, said):
    entry = {"tenant": "t", "site": "s", "rapid_url": "https://x", "aad_tenant": AAD_TENANT, "client_id": CLIENT_ID,
             "client_secret_setting": "SECRET", **bounds}
    with pytest.raises(ConfigError, match=rf"SITES\[t/s\]: {said}"):
        site_from(entry, {"SECRET": "s"})
    ok = site_from({**entry, "mailbox_domains": ["Contoso.com"], "mailbox_group": ""}, {"SECRET": "s"})
    assert ok.mailbox_domains == ("contoso.com",) and ok.mailbox_group == ""


def test_a_subscription_of_an_organiser_now_outside_the_bounds_is_not_renewed(stack, site, dave, monkeypatch):
    from datetime import datetime, timedelta, timezone

    from shared.model.mapping import format_utc
    from shared.storage.store import Subscription
    from shared.subscriptions.lifecycle import handle_lifecycle
    from shared.subscriptions.renewal import renew_due
    from shared.subscriptions.rotation import rotate

    site_with(site, monkeypatch, mailbox_domains=INSIDE)
    soon = format_utc(datetime.now(timezone.utc) + timedelta(minutes=50))
    sub = svc().store.put_subscription(Subscription(
        id="sub-of-dave", site="acme/sales", mailbox=DAVE, user_id=stack.graph.user(DAVE).id,
        resource=f"users/{stack.graph.user(DAVE).id}/events", client_state="c" * 40, expires=soon, aad_tenant=AAD_TENANT))
    try:
        stack.graph.reset_log()
        outcome = renew_due(svc())
        assert outcome["outside bounds"] >= 1
        assert [e for e in stack.graph.log + stack.graph.batch_inner_requests if sub.id in e.path] == []
        assert mentions(stack, DAVE) == []
        with pytest.raises(MailboxRefused):   # Graph asking to reauthorize it changes nothing either
            handle_lifecycle(svc(), sub.id, "reauthorizationRequired")
        assert [e for e in stack.graph.log + stack.graph.batch_inner_requests if sub.id in e.path] == []
        assert rotate(svc(), sub.id) == "dropped"   # a rotation deletes it instead of making it again
        assert svc().store.get_subscription(sub.id) is None
    finally:
        svc().store.delete_subscription(sub)
