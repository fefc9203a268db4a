"""Figure 2, agenda changes: an agenda item changed in the site (acme/agenda-lookup, `agenda` on) reaches the
event's invitation after AGENDA_SETTLE_SECONDS; a burst of 20 changes within that window costs one update."""

from __future__ import annotations

import time

from .harness import World


def requests_per_agenda_change(world: World) -> None:
    item, topics = agenda_meeting(world)
    sim = world.stack.sites["acme/agenda-lookup"].sim

    def burst():
        for n in range(20):
            sim.update_item("Meeting Agendas", topics[n % 5]["id"], rank=100 - n)

    t0 = time.time()
    one = world.measure(lambda: sim.update_item("Meeting Agendas", topics[0]["id"], title="Topic 0, renamed"))
    patched = max((t for e, _, t in world.observed.graph_updates
                   if e == item["sys_external_id"] and t <= one.settled_at), default=0)
    many = world.measure(burst)
    report(world, one, many, patched - t0 if patched else float("nan"))


def agenda_meeting(world: World):
    """A synced event with five agenda topics: (the event's item as synced, the topics)."""
    from ..stack import ORGANISER

    site = world.stack.sites["acme/agenda-lookup"]
    sim = site.sim
    meeting = sim.create_item("Meetings", title="Bench: agenda", organiser_id=site.principals[ORGANISER])
    item = sim.create_item("Meeting Events", title="Bench: agenda", meeting_id=meeting["id"],
                           start_date="2026-12-03T09:00:00Z", end_date="2026-12-03T10:00:00Z",
                           description="<p>Agenda bench</p>", invitees=[site.principals["bob@contoso.test"]])
    topics = [sim.create_item("Meeting Agendas", title=f"Topic {n}", rank=n, meeting_event_id=item["id"],
                              owner_id=site.principals["carol@contoso.test"], duration=10) for n in range(5)]
    world.settle()
    return sim.get("Meeting Events", item["id"]), topics


def report(world: World, one, many, delay: float) -> None:
    c = one.cost
    world.report.row("2 requests/change: agenda change", c.brief(), "G 1 read + 1 PATCH", "—",
                     "1 Graph read + 1 PATCH, 0 site writes",
                     c.graph == 2 and c.graph_reads == 1 and c.site_writes == 0)
    c = many.cost
    world.report.row("2 requests/burst: 20 agenda changes", c.brief() + f" = G {c.graph / 20:.2f}/change",
                     "G 40 one update per change", f"{c.graph / 40:.3f}×", "1 Graph read + 1 PATCH per burst",
                     c.graph == 2 and c.graph_reads == 1)
    for name, c in (("agenda change", one.cost), ("echo of agenda change", one.echo), ("20 agenda changes", many.cost),
                    ("echo of 20 agenda changes", many.echo)):
        world.report.note(f"2: {name}: {c.detail()}")
    world.report.note(f"2: agenda change to Outlook PATCH: {delay:.1f} s (AGENDA_SETTLE_SECONDS "
                      f"{world.stack.settings().get('AGENDA_SETTLE_SECONDS', '5 (default)')})")
