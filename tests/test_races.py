"""Safe under scale-out (issue 11): the three races close with one ETag-checked lease per mailbox, made to
happen deterministically with barriers; and a create or a delete interrupted at any step, by a storage
failure or by the process dying, is finished by the retry without leaving an Outlook event behind.

Each job runs here in its own `Services` (as on its own instance), against the same Azurite and simulators.
Items are written with the app's own token (webhooks=false), so the running host stays out of it."""

from __future__ import annotations

import threading
import uuid

import pytest
import requests
from azure.core.exceptions import ServiceRequestError

from devtools.stack import CLIENT_ID, ORGANISER
from shared.config import get_settings
from shared.model.errors import JobAbandoned, Throttled
from shared.services import Services
from shared.storage.store import LINKS, SUBSCRIPTIONS, table_key
from shared.subscriptions.lifecycle import handle_lifecycle
from shared.subscriptions.meetings import apply_subscription_item, register_meeting
from shared.sync.engine import apply_site_event

from .scenario import settle

BOB = "bob@contoso.test"
WAIT = 10  # a barrier's safety limit: a broken test fails instead of hanging


@pytest.fixture(autouse=True)
def no_dead_holders_left(stack):
    """A job killed here under a mailbox lease leaves it held for LEASE_SECONDS, as a dead host would:
    the next tests of this world must not wait a minute on it."""
    yield
    table = Services(get_settings()).store._table(SUBSCRIPTIONS)
    for lease in table.query_entities(f"PartitionKey eq '{table_key('lease')}'"):
        table.delete_entity(lease["PartitionKey"], lease["RowKey"])


class Killed(BaseException):
    """The process died here: nothing after this point of the job ran, no handler saw it."""


def quiet(site, method: str, path: str, **body):
    """A write by an application user: RAPID fires no webhook for it (release 1.30.12)."""
    answer = requests.request(method, f"{site.sim.url}/lists/{path}", json=body or None, timeout=10,
                              verify=get_settings().ca_bundle, headers={"Authorization": f"Bearer {site.sim.token(appid=CLIENT_ID)}"})
    assert answer.ok, answer.text
    return answer.json()[0] if answer.content else None


def fresh(site) -> tuple[Services, object]:
    svc = Services(get_settings())
    return svc, svc.site(site.key)


def run(results: dict, name: str, barrier, job) -> threading.Thread:
    def target():
        try:
            results[name] = job()
        except Throttled:
            results[name] = "throttled"
            barrier.abort()  # it never reaches the barrier: release the other job
        except Exception as e:  # noqa: BLE001 - recorded for the assertion
            results[name] = e
    thread = threading.Thread(target=target)
    thread.start()
    return thread


def wait_at(barrier):
    try:
        barrier.wait(WAIT)
    except threading.BrokenBarrierError:
        pass  # the other job was refused before getting here


def test_the_same_meeting_registered_twice_at_once_gets_one_subscriptions_item(stack, site):
    meeting = quiet(site, "POST", "Meetings/items", title=f"Twice {uuid.uuid4().hex[:6]}",
                    organiser_id=site.principals["carol@contoso.test"])
    barrier, results, threads = threading.Barrier(2), {}, []
    for name in ("first", "second"):
        svc, config = fresh(site)
        client = svc.rapid(config)
        real = client.query

        def query(list_name, *args, real=real, **kwargs):
            if list_name == "subscriptions":  # both have looked for an existing item; now both would create
                wait_at(barrier)
            return real(list_name, *args, **kwargs)
        client.query = query
        threads.append(run(results, name, barrier, lambda svc=svc, config=config:
                           register_meeting(svc, config, str(meeting["id"]))))
    for thread in threads:
        thread.join(WAIT * 2)
    assert sorted(map(str, results.values())) == ["registered", "throttled"]
    svc, config = fresh(site)
    assert register_meeting(svc, config, str(meeting["id"])) == "registered"  # the rescheduled one, later
    items = [i for i in site.sim.items("Meeting Subscriptions") if i["meeting_id"] == meeting["id"]]
    assert len(items) == 1


def test_a_meeting_deactivated_while_another_registers_leaves_the_organiser_subscribed(stack, site):
    organiser = site.principals["carol@contoso.test"]
    first = quiet(site, "POST", "Meetings/items", title="Stays", organiser_id=organiser)
    svc, config = fresh(site)
    register_meeting(svc, config, str(first["id"]))
    first_item = svc.store.get_meeting(site.key, str(first["id"])).subscription_item_id
    second = quiet(site, "POST", "Meetings/items", title="Joins", organiser_id=organiser)

    has_subscription, deactivated, results = threading.Event(), threading.Event(), {}
    joining, joining_config = fresh(site)
    client = joining.rapid(joining_config)
    real_create = client.create_item

    def create_item(list_name, fields, real=real_create):
        has_subscription.set()       # the second meeting has its subscription, not yet recorded as using it
        deactivated.wait(WAIT)       # … and the first meeting is switched off right now
        return real(list_name, fields)
    client.create_item = create_item
    thread = threading.Thread(target=lambda: results.update(second=register_meeting(joining, joining_config,
                                                                                    str(second["id"]))))
    thread.start()
    assert has_subscription.wait(WAIT)
    quiet(site, "PUT", f"Meeting Subscriptions/items/{first_item}", status="Inactive")
    leaving, leaving_config = fresh(site)
    try:
        results["first"] = apply_subscription_item(leaving, leaving_config, first_item)
    except Throttled:
        results["first"] = "throttled"
    deactivated.set()
    thread.join(WAIT * 2)
    if results["first"] == "throttled":  # rescheduled: it runs once the registration is done
        results["first"] = apply_subscription_item(leaving, leaving_config, first_item)
    assert results == {"first": "inactive", "second": "registered"}
    store = fresh(site)[0].store
    joined = store.get_meeting(site.key, str(second["id"]))
    sub = store.subscription_for(site.key, "carol@contoso.test")
    assert sub is not None and joined.subscription_id == sub.id and joined.active
    assert stack.graph.subscriptions[sub.id]["active"]


def test_a_duplicated_subscription_removed_makes_one_new_subscription(stack, site):
    meeting = quiet(site, "POST", "Meetings/items", title="Removed twice", organiser_id=site.principals[BOB])
    svc, config = fresh(site)
    register_meeting(svc, config, str(meeting["id"]))
    old = svc.store.subscription_for(site.key, BOB)
    stack.graph.expire_subscription(old.id)  # Graph removed it, and says so twice
    created_before = stack.graph.count("POST", "/subscriptions")
    barrier, results, threads = threading.Barrier(2), {}, []
    for name in ("first", "second"):
        svc, config = fresh(site)
        graph = svc.graph(config)
        real = graph.create_subscription

        def create_subscription(*args, real=real, **kwargs):
            wait_at(barrier)  # both found the old subscription still recorded as the mailbox's
            return real(*args, **kwargs)
        graph.create_subscription = create_subscription
        threads.append(run(results, name, barrier,
                           lambda svc=svc: handle_lifecycle(svc, old.id, "subscriptionRemoved")))
    for thread in threads:
        thread.join(WAIT * 2)
    assert sorted(map(str, results.values())) == ["recreated", "throttled"]
    with pytest.raises(JobAbandoned):  # the rescheduled duplicate finds nothing left to recreate
        handle_lifecycle(fresh(site)[0], old.id, "subscriptionRemoved")
    assert stack.graph.count("POST", "/subscriptions") - created_before == 1
    new = fresh(site)[0].store.subscription_for(site.key, BOB)
    assert new.id != old.id and stack.graph.subscriptions[new.id]["active"]
    settle(stack)


# -- no orphan: a failure or a crash at each step of a create or a delete ------------------------------

def _inject(svc, config, step: str, when: str, failure: BaseException):
    """Make the job fail `when` ('before' or 'after') the first call of `step`."""
    store, graph, rapid = svc.store, svc.graph(config), svc.rapid(config)
    table = store._table(LINKS)
    targets = {"create pending link": (store, "create_link"), "create in Outlook": (graph, "create_event"),
               "complete link": (store, "complete_link"), "write the Outlook id": (rapid, "update_item"),
               "mark removing": (store, "save_link"), "remove from Outlook": (graph, "remove_event"),
               "delete link rows": (table, "delete_entity")}
    owner, name = targets[step]
    real = getattr(owner, name)

    def failing(*args, **kwargs):
        if when == "before":
            raise failure
        real(*args, **kwargs)
        raise failure
    setattr(owner, name, failing)


FAILURES = {"storage failure": lambda: ServiceRequestError("Azurite is down"), "process killed": lambda: Killed()}


def _live(stack, title: str) -> list[dict]:
    return [e for e in stack.graph.events(ORGANISER) if e["subject"] == title]


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("step", ["create pending link", "create in Outlook", "complete link", "write the Outlook id"])
def test_a_create_interrupted_at_any_step_then_deleted_leaves_no_outlook_event(stack, site, step, when, failure):
    title = f"Create {step} {when} {failure}"
    meeting = quiet(site, "POST", "Meetings/items", title="Orphans", organiser_id=site.principals[ORGANISER])
    item = quiet(site, "POST", "Meeting Events/items", title=title, meeting_id=meeting["id"],
                 start_date="2026-12-04T09:00:00Z", end_date="2026-12-04T10:00:00Z")
    svc, config = fresh(site)
    _inject(svc, config, step, when, FAILURES[failure]())
    with pytest.raises((ServiceRequestError, Killed)):
        apply_site_event(svc, config, str(item["id"]), "create")
    quiet(site, "DELETE", f"Meeting Events/items/{item['id']}")
    retry, config = fresh(site)
    apply_site_event(retry, config, str(item["id"]), "delete")  # the delete webhook, or the create's retry
    assert _live(stack, title) == []
    assert retry.store.get_link(site.key, str(item["id"])) is None


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("step", ["mark removing", "remove from Outlook", "delete link rows"])
def test_a_delete_interrupted_at_any_step_is_finished_by_the_retry(stack, site, step, when, failure):
    title = f"Delete {step} {when} {failure}"
    meeting = quiet(site, "POST", "Meetings/items", title="Orphans", organiser_id=site.principals[ORGANISER])
    item = quiet(site, "POST", "Meeting Events/items", title=title, meeting_id=meeting["id"],
                 start_date="2026-12-05T09:00:00Z", end_date="2026-12-05T10:00:00Z")
    svc, config = fresh(site)
    assert apply_site_event(svc, config, str(item["id"]), "create") == "created"
    assert len(_live(stack, title)) == 1
    quiet(site, "DELETE", f"Meeting Events/items/{item['id']}")
    _inject(svc, config, step, when, FAILURES[failure]())
    with pytest.raises((ServiceRequestError, Killed)):
        apply_site_event(svc, config, str(item["id"]), "delete")
    retry, config = fresh(site)
    apply_site_event(retry, config, str(item["id"]), "delete")
    assert _live(stack, title) == []
    assert retry.store.get_link(site.key, str(item["id"])) is None
