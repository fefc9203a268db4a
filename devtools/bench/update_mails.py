"""Figure 9, attendee update mails per site change (issue 21, part 4): Exchange mails every PATCH of an
organiser's meeting to all its attendees (the Graph simulator counts them: devtools/sim/graph/mail.py), so
the goal is at most one update per visible change, one per burst of quick edits, none for a change nobody
sees. Each case runs on a host with EDIT_SETTLE_SECONDS at the app's default, and (the baseline) on one with
0, where every site edit goes to Outlook at once; what the settle time costs in latency is a note.
"""

from __future__ import annotations

import time

from shared.config import Settings

from .agenda_requests import agenda_meeting
from .harness import World, progress

APP_SETTLE = Settings.__dataclass_fields__["edit_settle_seconds"].default
BURST, SPACING = 5, 0.5  # five saves of one item, half a second apart (a person fixing a form)


def figure9_update_mails(world: World) -> None:
    progress("figure 9: attendee update mails per site change")
    world.guarded("9 update mails", lambda: update_mails(world))


def update_mails(world: World) -> None:
    progress("  host with EDIT_SETTLE_SECONDS=0 (the baseline: every edit at once)")
    world.restart_main_host("worker-settle-0", env={"EDIT_SETTLE_SECONDS": "0"})
    baseline = site_cases(world, "settle 0")
    progress(f"  host with EDIT_SETTLE_SECONDS at the app's default ({APP_SETTLE} s)")
    world.restart_main_host("worker-settle-default", env={"EDIT_SETTLE_SECONDS": ""})
    measured = site_cases(world, "settle default")
    measured["agenda change"] = agenda_case(world)
    world.restart_main_host("worker")
    report(world, measured, baseline)


def _meeting(world: World, title: str) -> tuple[str, str]:
    """A synced meeting of acme/sales with two attendees: (its item id, its event id)."""
    site = world.stack.sites["acme/sales"]
    item = site.sim.create_item("Meeting Events", title=title, meeting_id=world.meeting["id"],
                                start_date="2026-12-04T09:00:00Z", end_date="2026-12-04T10:00:00Z",
                                location="Room 9", description="<p>Mail bench</p>",
                                invitees=[site.principals["bob@contoso.test"]],
                                guests=[site.contacts["guest@partner.test"]])
    world.settle()
    return str(item["id"]), site.sim.get("Meeting Events", item["id"])["sys_external_id"]


def counted(world: World, event_id: str, change) -> tuple[int, int, float]:
    """(update mails, PATCHes, seconds from the change to its first PATCH) that `change` cost the event."""
    graph, t0 = world.stack.graph, time.time()
    mails, patches = graph.update_mails(event_id=event_id), len(world.observed.graph_updates)
    change()
    world.settle()
    mine = [t for e, _, t in world.observed.graph_updates[patches:] if e == event_id]
    return graph.update_mails(event_id=event_id) - mails, len(mine), (min(mine) - t0) if mine else float("nan")


def site_cases(world: World, label: str) -> dict[str, tuple]:
    """Each case: (mails, PATCHes, latency, attendees, visible changes)."""
    from ..stack import ORGANISER

    sim = world.stack.sites["acme/sales"].sim
    item_id, event_id = _meeting(world, f"Bench: mails ({label})")
    attendees = len(world.stack.graph.get_event(ORGANISER, event_id)["attendees"])

    def burst():
        for n in range(BURST):
            sim.update_item("Meeting Events", item_id, title=f"Bench: mails ({label}), take {n + 1}")
            time.sleep(SPACING)

    cases = {"edit": (lambda: sim.update_item("Meeting Events", item_id, location="Room 10"), 1),
             f"burst of {BURST} edits": (burst, 1),  # one burst: one update is the goal
             "status-only change": (lambda: sim.update_item("Meeting Events", item_id, status="Confirmed"), 0)}
    return {name: (*counted(world, event_id, change), attendees, visible)
            for name, (change, visible) in cases.items()}


def agenda_case(world: World) -> tuple:
    """An agenda topic renamed (features/agenda_changes.py: its event's update after AGENDA_SETTLE_SECONDS)."""
    from ..stack import ORGANISER

    item, topics = agenda_meeting(world)
    sim, event_id = world.stack.sites["acme/agenda-lookup"].sim, item["sys_external_id"]
    attendees = len(world.stack.graph.get_event(ORGANISER, event_id)["attendees"])
    change = lambda: sim.update_item("Meeting Agendas", topics[1]["id"], title="Topic 1, renamed")  # noqa: E731
    return (*counted(world, event_id, change), attendees, 1)


def report(world: World, measured: dict, baseline: dict) -> None:
    for name, (mails, patches, _, attendees, visible) in measured.items():
        per = mails / attendees
        base = baseline.get(name)
        base_text = f"{base[0] / base[3]:.0f} per attendee at settle 0 ({base[1]} PATCH)" if base else "—"
        goal = ("0 (nothing an attendee sees changed)" if not visible else
                f"≤ 1 per burst ({BURST} visible changes)" if name.startswith("burst") else "≤ 1 per visible change")
        world.report.row(f"9 attendee update mails per site change: {name}",
                         f"{per:.0f} per attendee ({mails} mail(s), {attendees} attendee(s), {patches} PATCH)",
                         base_text, f"{per / (base[0] / base[3]):.2f}×" if base and base[0] else "—", goal,
                         per <= visible)
    edit, base_edit = measured["edit"][2], baseline["edit"][2]
    world.report.note(f"9: a site edit of a meeting reaches Outlook {edit:.1f} s after the edit with "
                      f"EDIT_SETTLE_SECONDS={APP_SETTLE} (the app's default), {base_edit:.1f} s with 0: the settle "
                      f"time is the price of one update per burst (events without attendees go at once)")
    world.report.note(f"9: burst = {BURST} title edits of one item {SPACING:g} s apart; agenda change = one topic "
                      f"renamed on acme/agenda-lookup ({measured['agenda change'][2]:.1f} s to its PATCH, "
                      f"AGENDA_SETTLE_SECONDS default); mails counted by the Graph simulator (one per attendee "
                      f"per PATCH of a meeting, devtools/sim/graph/mail.py)")
