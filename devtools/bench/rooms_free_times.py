"""Figure 10, rooms and free times (issue 23): the Graph and site requests of a create and a move on a site
with a room column, the room status, working hours and free times on (acme/rooms, acme/sales' twin), against
the same changes on acme/sales with them off. The goal: one getSchedule per create or move and nothing else
on Graph, but the room list, read once an hour (the first create of the hour)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from .harness import Requests, World, progress

ROOM, ROOM_NAME = "bench-room@contoso.test", "Bench room"
COLUMNS = {"room": "Text", "room_status": "Text", "conflicts": "Text", "free_times": "Text"}
# Graph beyond the change's own requests, with the features on: (getSchedule, room list reads)
EXTRA = {"site create, first of the hour": (1, 1), "site create": (1, 0), "site move into a conflict": (1, 0),
         "site move to a free slot": (1, 0)}


def figure10_rooms_free_times(world: World) -> None:
    progress("figure 10: requests per create and move with rooms and free times on (acme/rooms) and off")
    world.guarded("10 rooms and free times", lambda: rooms_free_times(world))


def rooms_free_times(world: World) -> None:
    from ..stack import ORGANISER

    graph = world.stack.graph
    if graph.user(ROOM) is None:
        graph.add_room(ROOM, ROOM_NAME, capacity=10, tenant=graph.user(ORGANISER).tenant_id)
    world.restart_main_host(env={"SITES": json.dumps(sites_with_twin(world))})
    results: dict[str, dict[str, Requests]] = {}
    try:
        for key, week in (("acme/sales", 2), ("acme/rooms", 3)):  # a week apart: the sites' events never meet
            day = next_monday() + timedelta(weeks=week)
            graph.outlook_create("bob@contoso.test", subject="Bench: Bob's own",
                                 start={"dateTime": f"{day:%Y-%m-%d}T14:00:00", "timeZone": "UTC"},
                                 end={"dateTime": f"{day:%Y-%m-%d}T14:30:00", "timeZone": "UTC"})
            results[key] = changes(world, world.stack.sites[key], f"{day:%Y-%m-%d}", ORGANISER)
    finally:
        world.restart_main_host()
    report(world, results)


def next_monday() -> datetime:
    """Rooms book within 180 days of now (Set-CalendarProcessing BookingWindowInDays): dates near now."""
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + timedelta(days=7 - today.weekday())


def sites_with_twin(world: World) -> list[dict]:
    """The SITES setting with acme/rooms added: acme/sales' settings, its own URL, the features on."""
    from ..stack import AAD_TENANT, GUESTS, PEOPLE

    if "acme/rooms" not in world.stack.sites:
        twin = world.stack._add_site("acme", "rooms", AAD_TENANT, PEOPLE, GUESTS)
        twin.sim.schemas["Meeting Events"].columns.update(COLUMNS)
    entries = json.loads(world.stack.settings()["SITES"])
    sales = next(e for e in entries if e["site"] == "sales")
    return entries + [{**sales, "site": "rooms", "rapid_url": world.stack.sites["acme/rooms"].sim.url,
                       "room_column": "room", "room_status_column": "room_status", "conflicts_column": "conflicts",
                       "working_hours": True, "free_times_column": "free_times"}]


def changes(world: World, site, day: str, organiser: str) -> dict[str, Requests]:
    """Two creates (the first reads the room list), a move into Bob's appointment, a move to a free slot;
    each one's requests, echo apart (figure 2 counts it)."""
    sim = site.sim
    meeting = sim.create_item("Meetings", title=f"Bench: rooms {site.key}", organiser_id=site.principals[organiser])
    world.subscription(site.key, organiser)
    world.settle()
    state = {}
    room = {"room": ROOM_NAME} if site.key == "acme/rooms" else {}

    def create(hour):
        def made():
            state["item"] = sim.create_item(
                "Meeting Events", title=f"Bench: rooms {site.key} {hour}", meeting_id=meeting["id"],
                start_date=f"{day}T{hour:02d}:00:00Z", end_date=f"{day}T{hour + 1:02d}:00:00Z", all_day=False,
                location="Room 1", description="<p>Agenda</p>", invitees=[site.principals["bob@contoso.test"]],
                guests=[site.contacts["guest@partner.test"]], **room)
        return made

    def move(start, end):
        return lambda: sim.update_item("Meeting Events", state["item"]["id"], start_date=f"{day}T{start}:00Z",
                                       end_date=f"{day}T{end}:00Z")

    out = {"site create, first of the hour": world.measure(create(9)).cost,
           "site create": world.measure(create(11)).cost,
           "site move into a conflict": world.measure(move("14:00", "15:00")).cost,
           "site move to a free slot": world.measure(move("16:00", "17:00")).cost}
    world.stack.graph.deliver_room_answers()
    world.settle()
    return out


def brief(c: Requests) -> str:
    return (f"G {c.graph} (getSchedule {c.graph_detail.get('POST getSchedule', 0)}, rooms "
            f"{c.graph_detail.get('GET places', 0)}) · site R {c.site_reads} W {c.site_writes}")


def report(world: World, results: dict[str, dict[str, Requests]]) -> None:
    for name, (schedule, places) in EXTRA.items():
        on, off = results["acme/rooms"][name], results["acme/sales"][name]
        ok = (on.graph_detail.get("POST getSchedule", 0) == schedule and on.graph_detail.get("GET places", 0) == places
              and on.graph - off.graph == schedule + places)
        world.report.row(f"10 rooms + free times: {name}", brief(on), f"{brief(off)} (off)", "—",
                         f"+G {schedule} getSchedule" + (" + 1 room list/h" if places else ""), ok)
    for key, measured in results.items():
        for name, c in measured.items():
            world.report.note(f"10: {key} {name}: Graph {dict(c.graph_detail)}; site reads {c.site_reads}, "
                              f"writes {c.site_writes}")
