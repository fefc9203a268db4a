"""`make demo`: the whole app on this machine, a scripted scenario, a readable timeline.

Starts Azurite, the Graph and RAPID simulators and the local Functions host (a child process,
as `func start` would be), plays changes on both sides through real HTTP, prints what arrived
where, then stops everything it started.
"""

from __future__ import annotations

import sys
import time

from .azurite import eventually
from .stack import ORGANISER, Stack

START = time.monotonic()


def say(side: str, text: str) -> None:
    print(f"[{time.monotonic() - START:6.2f}s] {side:<8} {text}", flush=True)


def when(event: dict) -> str:
    start, end = event["start"]["dateTime"][:16].replace("T", " "), event["end"]["dateTime"][11:16]
    return f"{start}–{end} {event['start']['timeZone']}"


def outlook_event(stack: Stack, subject: str, check=lambda e: True):
    return next((e for e in stack.graph.events(ORGANISER) if e["subject"] == subject and check(e)), None)


def scenario(stack: Stack) -> None:
    site = stack.sites["acme/sales"]
    sim = site.sim
    say("site", f"creates meeting 'Product launch' organised by {ORGANISER}")
    meeting = sim.create_item("Meetings", title="Product launch", organiser_id=site.principals[ORGANISER])
    people = [site.principals["bob@contoso.test"], site.principals["carol@contoso.test"]]
    guests = [site.contacts["guest@partner.test"]]
    kickoff = sim.create_item("Meeting Events", title="Kick-off", meeting_id=meeting["id"],
                              start_date="2026-12-01T09:00:00Z", end_date="2026-12-01T10:00:00Z",
                              location="Room 1", description="<p>Goals and owners</p>",
                              invitees=people, guests=guests)
    say("site", "creates event 'Kick-off' 2026-12-01 09:00–10:00 UTC, 2 invitees + 1 guest")
    review = sim.create_item("Meeting Events", title="Launch review", meeting_id=meeting["id"],
                             start_date="2026-12-08T14:00:00Z", end_date="2026-12-08T15:00:00Z",
                             location="Room 2", invitees=people[:1])
    say("site", "creates event 'Launch review' 2026-12-08 14:00–15:00 UTC, 1 invitee")
    for subject in ("Kick-off", "Launch review"):
        event = eventually(lambda: outlook_event(stack, subject), 30, f"{subject} in Outlook")
        attendees = ", ".join(a["emailAddress"]["address"] for a in event["attendees"])
        say("outlook", f"'{subject}' is in {ORGANISER}'s calendar: {when(event)}, attendees {attendees}")
    item = eventually(lambda: sim.get("Meeting Events", kickoff["id"]).get("sys_external_id"), 30, "sys_external_id")
    say("site", f"'Kick-off' carries its Outlook id in sys_external_id ({item[:16]}…)")

    sim.update_item("Meeting Events", kickoff["id"], start_date="2026-12-01T13:00:00Z", end_date="2026-12-01T14:30:00Z")
    say("site", "moves 'Kick-off' to 13:00–14:30 UTC")
    event = eventually(lambda: outlook_event(stack, "Kick-off", lambda e: e["start"]["dateTime"].startswith("2026-12-01T13:00")),
                       30, "the move in Outlook")
    say("outlook", f"'Kick-off' now {when(event)}")

    sim.delete_items("Meeting Events", [review["id"]])
    say("site", "deletes 'Launch review'")
    eventually(lambda: outlook_event(stack, "Launch review") is None, 30, "the cancellation in Outlook")
    sent = [c for c in stack.graph.cancellations if c.subject == "Launch review"]
    say("outlook", f"'Launch review' cancelled; cancellation sent to {', '.join(sent[0].attendees) if sent else 'nobody'}")

    outlook_to_site(stack, site, kickoff)


def outlook_to_site(stack: Stack, site, kickoff: dict) -> None:
    """The Outlook → site half, through the Graph subscription the meeting's registration made."""
    sim = site.sim
    sub = eventually(lambda: next((s for s in stack.graph.subscriptions.values()
                                 if s["resource"].lower() == f"users/{stack.user_ids[ORGANISER]}/events"), None),
                     30, "the organiser's Graph subscription")
    say("outlook", f"{ORGANISER}'s calendar has a Graph subscription (expires {sub['expirationDateTime'][:16]})")
    event = outlook_event(stack, "Kick-off")
    stack.graph.outlook_update(ORGANISER, event["id"], start={"dateTime": "2026-12-02T09:00:00", "timeZone": "UTC"},
                               end={"dateTime": "2026-12-02T10:00:00", "timeZone": "UTC"})
    say("outlook", f"{ORGANISER} drags 'Kick-off' to 2026-12-02 09:00–10:00 UTC in Outlook")
    item = eventually(lambda: (lambda i: i if i["start_date"].startswith("2026-12-02T09:00") else None)(
        sim.get("Meeting Events", kickoff["id"])), 30, "the move in the site")
    say("site", f"'Kick-off' now {item['start_date']} – {item['end_date']}")
    stack.graph.outlook_cancel(ORGANISER, event["id"])
    say("outlook", f"{ORGANISER} cancels 'Kick-off' in Outlook")
    item = eventually(lambda: (lambda i: i if i.get("status") == "Cancelled" else None)(
        sim.get("Meeting Events", kickoff["id"])), 30, "the cancellation in the site")
    say("site", f"'Kick-off' status is now {item['status']}")


def main() -> int:
    stack = Stack()
    try:
        say("setup", "starting Azurite, the Graph and RAPID simulators, the local Functions host")
        stack.start_backends()
        stack.start_host_process()
        say("setup", f"ready: host {stack.host_url}, Graph {stack.graph.base_url}, site {stack.sites['acme/sales'].sim.url}")
        scenario(stack)
        say("done", "both sides agree; stopping everything")
        return 0
    except Exception as e:
        say("FAILED", f"{type(e).__name__}: {e}")
        return 1
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
