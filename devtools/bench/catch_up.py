"""Figure 7, site catch-up (issue 12): a site with 10,000 synced Meeting Events, 100 of them edited while their
webhooks were lost (half the title, half the invitees): one catch-up run's site and Graph requests and wall
time, then a run that finds nothing, then the sweep. Baseline: comparing every item (all pages + one GET each).

The items, events and links are seeded straight into the simulators' state and the app's table, as the app
would have left them after syncing long ago; Graph answers with LATENCY (as every full run has measured it).
"""

from __future__ import annotations

import random
import time
from datetime import timedelta

from ..azurite import eventually
from .harness import World, progress, seed_table
from .sizes import CATCH_UP_CHANGED, CATCH_UP_ITEMS, LATENCY

PAGE = 250  # items per All$ page


def figure7_catch_up(world: World) -> None:
    progress(f"figure 7: site catch-up, {CATCH_UP_ITEMS:,} synced items, {CATCH_UP_CHANGED} edited with their "
             f"webhooks lost")
    world.guarded("7 site catch-up", lambda: catch_up(world))


def catch_up(world: World) -> None:
    from shared.config import settings_from
    from shared.services import Services

    svc = Services(settings_from(world.stack.settings()))
    site = svc.site("acme/sales")
    t = time.perf_counter()
    links = seed(world, svc, site)
    progress(f"  seeded in {time.perf_counter() - t:.1f} s")
    edited = edit_unseen(world, random.Random(7).sample(links, CATCH_UP_CHANGED))
    with world.latency(graph=LATENCY):
        found = timer_tick(world, svc, site)
        outcome = landed(world, edited)
        quiet = timer_tick(world, svc, site)
        swept = timer_tick(world, svc, site, sweep=True)
    report(world, found, quiet, swept, outcome)


def seed(world: World, svc, site) -> list:
    """CATCH_UP_ITEMS items, their events and links, synced a day ago; the last catch-up ran just now."""
    from shared.model.mapping import format_utc
    from shared.storage.store import Meeting

    meeting, links = seed_items(world, site, format_utc(svc.clock() - timedelta(days=1)))
    seed_links(svc.store, links)
    svc.store.put_meeting(Meeting(site.key, str(meeting.id), links[0].mailbox, world.alice_sub.id))
    svc.ops.note_run("catch_up", site.key, watermark=format_utc(svc.clock()))  # the last run: just now
    return links


def seed_items(world: World, site, long_ago: str):
    """The items and their Outlook events, without webhooks or notifications: (meeting, links)."""
    from shared.model.mapping import outlook_payload, synced_from_site
    from shared.storage.store import EventLink

    from ..stack import ORGANISER

    people_world, graph = world.stack.sites["acme/sales"], world.stack.graph
    sim, links = people_world.sim, []
    people = (people_world.principals["bob@contoso.test"], people_world.contacts["guest@partner.test"])
    graph._changed = lambda ev, change: None  # seeding is not an Outlook edit: no notifications
    with sim.sim.lock:
        meeting = type(sim)._create(sim, "Meetings", {"title": "Bench: catch-up",
                                                      "organiser_id": people_world.principals[ORGANISER]},
                                    sim.person, by_person=True, fire=False, via="seed")
        for n in range(CATCH_UP_ITEMS):
            body = {"title": f"Catch-up {n}", "meeting_id": meeting.id, "start_date": "2026-12-01T09:00:00Z",
                    "end_date": "2026-12-01T10:00:00Z", "location": "Room 1", "description": "<p>Agenda</p>",
                    "invitees": [people[0]], "guests": [people[1]]}
            item = type(sim)._create(sim, "Meeting Events", body, sim.person, by_person=True, fire=False, via="seed")
            synced = synced_from_site(body, site.col, ("bob@contoso.test", "guest@partner.test"), site.zone)
            event = graph.outlook_create(ORGANISER, **outlook_payload(synced, site.zone))
            item.values["sys_external_id"] = event["id"]
            item.created = item.modified = long_ago  # synced long before the last catch-up
            links.append(EventLink(site.key, str(item.id), event["id"], ORGANISER, synced,
                                   event.get("changeKey", ""), str(meeting.id)))
    del graph._changed
    return meeting, links


def seed_links(store, links: list) -> None:
    """The links as the app's create_link writes them (item entity and its reverse `event|` one), 100 to a
    transaction."""
    from shared.storage.store import LINKS, table_key

    entities = [e for link in links for e in (store._link_entity(link), {
        "PartitionKey": table_key(link.site), "RowKey": table_key(f"event|{link.event_id}"),
        "item_id": link.item_id})]
    seed_table(store._table(LINKS), [entities[i:i + 100] for i in range(0, len(entities), 100)])


def edit_unseen(world: World, edited: list) -> list:
    """Edit the items in the site without firing their webhooks: half the title, half the invitees."""
    people_world = world.stack.sites["acme/sales"]
    sim = people_world.sim
    with sim.sim.lock:
        for n, link in enumerate(edited):
            fields = ({"title": f"Catch-up edited {n}"} if n % 2 == 0
                      else {"invitees": [people_world.principals["carol@contoso.test"]]})
            type(sim)._update(sim, "Meeting Events", int(link.item_id), fields, sim.person, by_person=True,
                              fire=False, via="user")
    return edited


def timer_tick(world: World, svc, site, sweep: bool = False) -> tuple:
    """One tick of the host's catch-up timer with only this site due: (the run's counts, compare, total),
    compare and total each (Graph API requests, this site's requests, seconds); compare is what happened
    before the run finished enqueuing."""
    import requests

    from shared.model.mapping import parse_utc

    from ..stack import MASTER_KEY

    graph, rapid, ops = world.stack.graph, world.stack.rapid, svc.ops
    only_this_site_due(svc, site, sweep)
    g0, r0, t0, before = len(graph.log), len(rapid.log), time.perf_counter(), ops.run("catch_up", site.key).finished
    requests.post(f"{world.stack.host_url}/admin/functions/site_catch_up", headers={"x-functions-key": MASTER_KEY},
                  timeout=60).raise_for_status()
    run = eventually(lambda: (r := ops.run("catch_up", site.key)).finished != before and r, 300,
                     "the catch-up run", interval=0.2)
    world.settle(300)
    done = parse_utc(run.finished).timestamp()
    g = [e for e in graph.log[g0:] if "/v1.0/" in e.path]
    r = [e for e in rapid.log[r0:] if f"/api/{site.tenant}/{site.site}/" in e.path]
    compare = (sum(e.time <= done for e in g), sum(e.time <= done for e in r),
               (parse_utc(run.finished) - parse_utc(run.started)).total_seconds())
    return run.counts, compare, (len(g), len(r), time.perf_counter() - t0)


def only_this_site_due(svc, site, sweep: bool) -> None:
    """The other sites ran just now; this one's catch-up (and, with `sweep`, its sweep) is overdue."""
    from shared.model.mapping import format_utc

    now, ops = svc.clock(), svc.ops
    old, recent = format_utc(now - timedelta(days=2)), format_utc(now)
    for other in svc.settings.sites.values():
        if other.key != site.key:
            ops.note_run("catch_up", other.key, scheduled=recent, started=recent)
    ops.note_run("catch_up", site.key, scheduled=old, started=old)
    ops.note_run("sweep", site.key, scheduled=old if sweep else recent, started=old if sweep else recent)


def landed(world: World, edited: list) -> dict:
    """Did the edits reach Outlook: the new titles, and Carol among the attendees."""
    from ..stack import ORGANISER

    graph = world.stack.graph
    subjects = {e["subject"] for e in graph.events(ORGANISER)}

    def attendees(link):
        return [a["emailAddress"]["address"] for a in (graph.get_event(ORGANISER, link.event_id) or {}).get(
            "attendees", [])]
    return {"titles": all(f"Catch-up edited {n}" in subjects for n in range(0, CATCH_UP_CHANGED, 2)),
            "attendees": all("carol@contoso.test" in attendees(link) for n, link in enumerate(edited) if n % 2)}


def report(world: World, found_run, quiet_run, swept_run, outcome: dict) -> None:
    found, (cg, cr, cs), (tg, tr, ts) = found_run
    quiet, (qg, qr, qs), _ = quiet_run
    swept, (sg, sr, ss), _ = swept_run
    items, changed, pages = CATCH_UP_ITEMS, CATCH_UP_CHANGED, -(-CATCH_UP_ITEMS // PAGE)
    ok = cg == 0 and found.get("enqueued") == changed and outcome["titles"] and outcome["attendees"] and qg == 0 \
        and not quiet.get("enqueued") and not swept.get("event.delete")
    world.report.row(f"7 site catch-up, {items:,} items / {changed} changed",
                     f"R {cr} · G {cg} · {cs:.1f} s (+syncs: G {tg - cg} · R {tr - cr}, {ts:.1f} s)",
                     f"compare all: R {pages + items:,} (extrapolated)", f"{cr / (pages + items):.3f}×",
                     f"G 0 to compare, {changed} enqueued", ok)
    world.report.note(
        f"7: one catch-up run read the site {cr} times (2 modified-since queries of All$, {found.get('item_reads')} "
        f"item GETs for the invitee-only edits, people in bulk) and Graph {cg} times, enqueued {found.get('enqueued')} "
        f"syncs (titles in Outlook: {outcome['titles']}, attendees: {outcome['attendees']}); the syncs then cost Graph "
        f"{tg - cg} and site {tr - cr} requests, {ts:.1f} s end to end. The next run (nothing changed since; it "
        f"re-reads the {quiet.get('events_read')} items the syncs wrote) read the site {qr} times, Graph {qg}, "
        f"enqueued {quiet.get('enqueued')}, {qs:.1f} s. The sweep ({swept.get('swept_links', 0):,} links against all "
        f"ids) read the site {sr} times ({pages}+ pages of {PAGE}), Graph {sg}, {ss:.1f} s.")
