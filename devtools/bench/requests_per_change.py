"""Figure 2, requests per change: the Graph, site and token requests each kind of change costs, counted at the
simulators (no simulator latency), and its echo (Graph's notification of our own write) counted apart.

Also the site reads per created and per updated event that issue 19 part 6 sets goals for ("read each
thing once per job"), beside the figures before it.
"""

from __future__ import annotations

from .harness import Requests, World, progress

# issue 19 part 6: site requests before one snapshot per job, and the goals
PREVIOUS_CREATE, PREVIOUS_UPDATE = (5, 1), (4, 0)   # (site reads, site writes)
GOAL_CREATE_READS, GOAL_UPDATE_READS = 3, 2
# an update reads the event before its PATCH (Outlook may have changed since the last sync; If-Match is not
# documented for events), then compares the PATCH answer with what it wrote
# delete: a read first (a series made in Outlook is never cancelled whole: sync/series.py), then the cancel
GRAPH_GOALS = {"create": 1, "update": 2, "no-op update": 0, "delete": 2}


def figure2_requests_per_change(world: World) -> None:
    from .agenda_requests import requests_per_agenda_change

    progress("figure 2: requests per change (no simulator latency)")
    world.guarded("2 requests per change", lambda: requests_per_site_change(world))
    world.guarded("2 requests per agenda change", lambda: requests_per_agenda_change(world))


def requests_per_site_change(world: World) -> None:
    results, echoes = {}, {}

    def measure(name, change, pause=True):
        measured = world.measure(change, pause)
        results[name] = measured.cost
        if measured.echo is not None:
            echoes[name] = measured.echo

    site_changes(world, measure)
    teams_creates(world, measure)
    report_changes(world, results)
    report_teams(world, results, echoes.pop("Teams create, join URL late"))
    report_answer(world, results["answer"])
    report_echoes(world, echoes)
    report_reads_per_change(world, results)
    for name, c in {**results, **{f"echo of {k}": v for k, v in echoes.items()}}.items():
        world.report.note(f"2: {name}: {c.detail()}")


def site_changes(world: World, measure) -> None:
    """Create, update (etag decoded and not), no-op update, Outlook change, invitee's answer, delete."""
    from ..stack import ORGANISER

    graph, site = world.stack.graph, world.stack.sites["acme/sales"]
    sim, state = site.sim, {}

    def create():
        state["item"] = sim.create_item(
            "Meeting Events", title="Bench: counted", meeting_id=world.meeting["id"],
            start_date="2026-12-01T09:00:00Z", end_date="2026-12-01T10:00:00Z", all_day=False,
            location="Room 1", description="<p>Agenda</p>", invitees=[site.principals["bob@contoso.test"]],
            guests=[site.contacts["guest@partner.test"]])

    measure("create", create)
    item_id = state["item"]["id"]
    measure("update", lambda: sim.update_item("Meeting Events", item_id, title="Bench: counted, renamed"))
    graph.etag_form = "opaque"  # Graph's etag, should the unpublished decoding fail: the echo is read
    try:
        measure("update, etag not decoded", lambda: sim.update_item("Meeting Events", item_id,
                                                                    title="Bench: counted, renamed again"))
    finally:
        graph.etag_form = "exchange"
    measure("no-op update", lambda: sim.update_item("Meeting Events", item_id, notes="not a synced column"))
    event_id = sim.get("Meeting Events", item_id)["sys_external_id"]
    measure("Outlook change", lambda: graph.outlook_update(ORGANISER, event_id, subject="Bench: renamed in Outlook"),
            pause=False)
    # an invitee answers in Outlook: Outlook notifies the organiser's event, the answers reach the site
    measure("answer", lambda: graph.attendee_answers(ORGANISER, event_id, "bob@contoso.test", "declined"),
            pause=False)
    measure("delete", lambda: sim.delete_items("Meeting Events", [item_id]))


def teams_creates(world: World, measure) -> None:
    """A Teams create with the join URL in the create's answer, and one where Graph fills it in late."""
    graph, site = world.stack.graph, world.stack.sites["acme/sales"]

    def teams_create(late: int):
        graph.join_info_after_reads = late  # 0: the join URL is in the create's answer; 2: on the 2nd read
        site.sim.create_item("Meeting Events", title=f"Bench: Teams {late}", meeting_id=world.meeting["id"],
                             start_date="2026-12-02T09:00:00Z", end_date="2026-12-02T10:00:00Z", all_day=False,
                             location="Room 2", description="<p>Teams</p>",
                             invitees=[site.principals["bob@contoso.test"]], bench_teams=True)
    try:
        measure("Teams create", lambda: teams_create(0))
        measure("Teams create, join URL late", lambda: teams_create(2))
    finally:
        graph.join_info_after_reads = 0


def report_changes(world: World, results: dict[str, Requests]) -> None:
    report = world.report
    for name, graph_goal in GRAPH_GOALS.items():
        c = results[name]
        report.row(f"2 requests/change: site {name}", c.brief(), f"Graph {graph_goal}", "—", f"Graph = {graph_goal}",
                   c.graph == graph_goal)
    c = results["Outlook change"]
    report.row("2 requests/change: Outlook change", c.brief(), "G 1 read · site W 1", "—",
               "1 Graph read + 1 site write", c.graph == 1 and c.graph_reads == 1 and c.site_writes == 1)


def report_reads_per_change(world: World, results: dict[str, Requests]) -> None:
    """Issue 19 part 6: site reads per created event ≤ 3 and per updated event ≤ 2, from 5 + 1 write and 4."""
    create, update = results["create"], results["update"]
    world.report.row("2 site reads per created event (issue 19)", f"R {create.site_reads} W {create.site_writes}",
                     f"previous R {PREVIOUS_CREATE[0]} W {PREVIOUS_CREATE[1]}",
                     f"{create.site_reads / PREVIOUS_CREATE[0]:.2f}×", f"R ≤ {GOAL_CREATE_READS}",
                     create.site_reads <= GOAL_CREATE_READS)
    world.report.row("2 site reads per updated event (issue 19)", f"R {update.site_reads} W {update.site_writes}",
                     f"previous R {PREVIOUS_UPDATE[0]} W {PREVIOUS_UPDATE[1]}",
                     f"{update.site_reads / PREVIOUS_UPDATE[0]:.2f}×", f"R ≤ {GOAL_UPDATE_READS}",
                     update.site_reads <= GOAL_UPDATE_READS)


def report_teams(world: World, results: dict[str, Requests], late_echo: Requests) -> None:
    report = world.report
    c = results["Teams create"]  # the first for this organiser: + the calendar's providers, read once an hour
    report.row("2 requests/change: Teams create", c.brief(), "G 1 + 1 calendar read/h · site W 1", "—",
               "POST + providers read once an hour; join URL in the one site write",
               c.graph == 2 and c.graph_reads == 1 and c.site_writes == 1)
    # Graph filling the join information in is a change of the event: its `updated` notification is read
    # once more (and writes nothing): counted here, not as an echo of ours
    c = results["Teams create, join URL late"] + late_echo
    report.row("2 requests/change: Teams create, URL late", c.brief(), "G 1 + 1 read/retry + 1 · site W 2", "—",
               "re-read until there (here 2) + Teams' notification read; 1 more site write",
               c.graph == 4 and c.graph_reads == 3 and c.site_writes == 2)


def report_answer(world: World, c: Requests) -> None:
    world.report.row("2 requests/change: invitee's answer", c.brief(), "G 1 read · site W 1", "—",
                     "1 Graph read, 0 Graph writes, 1 site write", c.graph == c.graph_reads == 1 and c.site_writes == 1)


def report_echoes(world: World, echoes: dict[str, Requests]) -> None:
    # notifications carry Exchange's etag (W/"CQAAABYAAAD…"), never the changeKey itself
    decoded = [c for name, c in echoes.items() if name != "update, etag not decoded"]
    worst = max(decoded, key=lambda c: (c.graph, c.site_writes))
    world.report.row(f"2 echo, etag decoded (unpublished; worst of {len(decoded)})", worst.brief(), "G 0 · site W 0",
                     "—", "0 Graph, 0 site writes", all(e.graph == 0 and e.site_writes == 0 for e in decoded))
    c = echoes["update, etag not decoded"]
    world.report.row("2 echo, etag not decoded (fallback)", c.brief(), "G 1 read · site W 0", "—",
                     "1 Graph read, 0 site writes", c.graph == c.graph_reads == 1 and c.site_writes == 0)


def tokens_row(world: World) -> None:
    """Token requests over the whole run, per (tenant, resource, host process): at most one each."""
    from collections import Counter

    per, windows = Counter(), Counter()
    for e in world.stack.graph.log:
        if "/oauth2/v2.0/token" not in e.path:
            continue
        tenant = e.path.strip("/").split("/")[0]
        scope = (e.body or {}).get("scope", "?") if isinstance(e.body, dict) else "?"
        resource = scope.split("/.default")[0].split()[-1]
        window = next((w for w in world.multi_host_windows if w[0] <= e.time <= w[1]), None)
        if window:  # figure 4's extra processes: at most one each
            windows[(window, tenant[:8], resource)] += 1
            continue
        host = next((h.name + f"#{n}" for n, h in enumerate(world.hosts)
                     if h.started and h.started <= e.time <= (h.stopped or float("inf"))), "other")
        per[(host, tenant[:8], resource)] += 1
    worst = max([*per.values(), *(n / w[2] for (w, _, _), n in windows.items())], default=0)
    world.report.row("2 tokens per (tenant, resource, host process)",
                     f"max {worst:g} (total {sum(per.values()) + sum(windows.values())})",
                     "1 per token lifetime (3599 s)", f"{worst:.0f}×", "≤ 1", worst <= 1)
    world.report.note(f"2: token requests over the whole run ({len({t for _, t, _ in per})} tenant(s), "
                      f"{len({h for h, _, _ in per})} host process(es) that asked): "
                      + ", ".join(f"{h} {t}… {s}: {n}" for (h, t, s), n in sorted(per.items()))
                      + "".join(f"; figure 4's {w[2]} extra host(s) {t}… {s}: {n}"
                                for (w, t, s), n in sorted(windows.items())))
