"""Figure 8, conflict check (issue 15): the Graph and site requests of a create or a move on a site with
`conflicts_column`, against the same change on a site without (acme/conflicts, acme/sales' twin)."""

from __future__ import annotations

import json

from .harness import Requests, World, progress

COLUMN = "bench_conflicts"
# what the check may add to the change's own requests: one getSchedule; names read and one write only when
# there is something new to say (item, Principals, External Contacts; the column): (site reads, site writes)
EXTRA = {"site create, nobody busy": (0, 0), "site move into a conflict": (3, 1),
         "site move to a free slot": (0, 1), "Outlook move into a conflict": (3, 1)}
DAYS = {"acme/sales": "2027-02-01", "acme/conflicts": "2027-02-08"}  # a week apart: the sites' events never meet


def figure8_conflict_check(world: World) -> None:
    progress("figure 8: requests per conflict check (the same changes on a site with conflicts_column and one "
             "without)")
    world.guarded("8 conflict check", lambda: conflict_check(world))


def conflict_check(world: World) -> None:
    from ..stack import ORGANISER

    graph = world.stack.graph
    world.restart_main_host(env={"SITES": json.dumps(sites_with_twin(world))})
    results: dict[str, dict[str, Requests]] = {}
    try:
        for key, day in DAYS.items():  # Bob is busy 14:00–14:30 on each site's day
            graph.outlook_create("bob@contoso.test", subject="Bench: Bob's own",
                                 start={"dateTime": f"{day}T14:00:00", "timeZone": "UTC"},
                                 end={"dateTime": f"{day}T14:30:00", "timeZone": "UTC"})
            results[key] = changes(world, world.stack.sites[key], day, ORGANISER)
    finally:
        world.restart_main_host()
    report(world, results)


def sites_with_twin(world: World) -> list[dict]:
    """The SITES setting with acme/conflicts added: acme/sales' settings, its own URL, the column on."""
    from ..stack import AAD_TENANT, GUESTS, PEOPLE

    if "acme/conflicts" not in world.stack.sites:
        twin = world.stack._add_site("acme", "conflicts", AAD_TENANT, PEOPLE, GUESTS)
        twin.sim.schemas["Meeting Events"].columns[COLUMN] = "Text"
    entries = json.loads(world.stack.settings()["SITES"])
    sales = next(e for e in entries if e["site"] == "sales")
    return entries + [{**sales, "site": "conflicts", "rapid_url": world.stack.sites["acme/conflicts"].sim.url,
                       "conflicts_column": COLUMN}]


def changes(world: World, site, day: str, organiser: str) -> dict[str, Requests]:
    """A create with nobody busy, two moves in the site, one in Outlook: each one's requests, echo apart
    (figure 2 counts it)."""
    graph, sim = world.stack.graph, site.sim
    meeting = sim.create_item("Meetings", title=f"Bench: conflicts {site.key}", organiser_id=site.principals[organiser])
    world.subscription(site.key, organiser)
    world.settle()
    state = {}

    def create():
        state["item"] = sim.create_item(
            "Meeting Events", title=f"Bench: conflict check {site.key}", meeting_id=meeting["id"],
            start_date=f"{day}T09:00:00Z", end_date=f"{day}T10:00:00Z", all_day=False, location="Room 1",
            description="<p>Agenda</p>", invitees=[site.principals["bob@contoso.test"]],
            guests=[site.contacts["guest@partner.test"]])

    def move(start, end):
        return lambda: sim.update_item("Meeting Events", state["item"]["id"], start_date=f"{day}T{start}:00Z",
                                       end_date=f"{day}T{end}:00Z")

    def outlook_move():
        event_id = sim.get("Meeting Events", state["item"]["id"])["sys_external_id"]
        graph.outlook_update(organiser, event_id, start={"dateTime": f"{day}T14:00:00", "timeZone": "UTC"},
                             end={"dateTime": f"{day}T15:00:00", "timeZone": "UTC"})

    out = {"site create, nobody busy": world.measure(create).cost,
           "site move into a conflict": world.measure(move("14:00", "15:00")).cost,
           "site move to a free slot": world.measure(move("16:00", "17:00")).cost}
    out["Outlook move into a conflict"] = world.measure(outlook_move, pause=False).cost
    world.settle()
    return out


def brief(c: Requests) -> str:
    return (f"G {c.graph} (getSchedule {c.graph_detail.get('POST getSchedule', 0)}) · "
            f"site R {c.site_reads} W {c.site_writes}")


def report(world: World, results: dict[str, dict[str, Requests]]) -> None:
    for name, (reads, writes) in EXTRA.items():
        on, off = results["acme/conflicts"][name], results["acme/sales"][name]
        extra = (on.graph - off.graph, on.site_reads - off.site_reads, on.site_writes - off.site_writes)
        ok = on.graph_detail.get("POST getSchedule", 0) == 1 and extra == (1, reads, writes)
        world.report.row(f"8 conflict check: {name}", brief(on), f"{brief(off)} (off)", "—",
                         f"+G 1 · +R {reads} W {writes}", ok)
    for key, measured in results.items():
        for name, c in measured.items():
            world.report.note(f"8: {key} {name}: Graph {dict(c.graph_detail)}; site reads {c.site_reads}, "
                              f"writes {c.site_writes}")
