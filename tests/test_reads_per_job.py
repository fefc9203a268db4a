"""Each job reads each thing once, and only what its decision needs: what a site create and a site
update cost the site, counted in the RAPID simulator's request log."""

from __future__ import annotations

from .scenario import new_event, new_meeting, settle, svc


def site_reads(stack, since: int) -> list[str]:
    return [e.path.rsplit("/lists/", 1)[-1] for e in stack.rapid.log[since:] if e.method == "GET"]


def test_a_create_reads_the_item_its_meeting_and_its_people_once_each(stack, site):
    meeting = new_meeting(site)
    settle(stack)
    mark = len(stack.rapid.log)
    item = new_event(site, meeting, title="Counted create")
    settle(stack)
    reads = site_reads(stack, mark)
    # the item, its meeting, the organiser and invitees in one query, the guests, and (RAPID's connector
    # answers a PUT with 204) the item again after the Outlook id is written: a delete or cancel that
    # raced the create must be seen
    assert reads == [f"Meeting Events/items/{item['id']}", f"Meetings/items/{meeting['id']}",
                     "Principals/All$/items", "External Contacts/All$/items", f"Meeting Events/items/{item['id']}"]


def test_an_edit_naming_the_same_people_reads_only_the_item_and_its_meeting(stack, site):
    meeting = new_meeting(site)
    item = new_event(site, meeting, title="Counted update")
    settle(stack)
    mark = len(stack.rapid.log)
    site.sim.update_item("Meeting Events", item["id"], title="Counted update, renamed")
    settle(stack)
    assert site_reads(stack, mark) == [f"Meeting Events/items/{item['id']}", f"Meetings/items/{meeting['id']}"]
    link = svc().store.get_link("acme/sales", str(item["id"]))
    assert link.synced.title == "Counted update, renamed" and link.synced.attendees == (
        "bob@contoso.test", "guest@partner.test")


def test_an_edit_naming_other_people_reads_them(stack, site):
    meeting = new_meeting(site)
    item = new_event(site, meeting, title="Counted invitees")
    settle(stack)
    mark = len(stack.rapid.log)
    site.sim.update_item("Meeting Events", item["id"], invitees=[site.principals["carol@contoso.test"]])
    settle(stack)
    assert "Principals/All$/items" in site_reads(stack, mark)
    link = svc().store.get_link("acme/sales", str(item["id"]))
    assert link.synced.attendees == ("carol@contoso.test", "guest@partner.test")


def test_a_changed_address_is_found_by_the_catch_up_although_nobody_edited_the_event(stack, site):
    from .test_catch_up import checkpoint, one_run

    meeting = new_meeting(site)
    item = new_event(site, meeting, title="Counted address", guests=[])
    settle(stack)
    checkpoint()  # the catch-up is due, and reads what changes from now on
    bob = site.principals["bob@contoso.test"]
    site.sim.update_item("Principals", bob, email="robert@contoso.test")
    try:
        site.sim.update_item("Meeting Events", item["id"], title="Counted address, renamed")
        settle(stack)
        link = svc().store.get_link("acme/sales", str(item["id"]))
        assert link.synced.attendees == ("bob@contoso.test",)  # the same people: taken from the link
        one_run(stack)
        settle(stack)
        link = svc().store.get_link("acme/sales", str(item["id"]))
        assert link.synced.attendees == ("robert@contoso.test",)
    finally:
        site.sim.update_item("Principals", bob, email="bob@contoso.test")
