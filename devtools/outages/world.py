"""The world the outage scenarios run in: one Stack on one accelerated clock, the items the scenarios edit on
both sides, and how both sides are read back and compared.

Site edits go through the RAPID simulator's people API (they fire the site's webhooks), Outlook edits
through the Graph simulator's (they send change notifications); Graph redelivers an unanswered
notification for 4 hours of app time, as published (sim/graph/delivery.py).
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from dataclasses import dataclass, field

import requests

from shared import clock
from shared.model.site_defaults import DEFAULT_REMOVAL_FRACTION, DEFAULT_REMOVAL_LIMIT

from .. import world_clock
from ..azurite import eventually
from ..chaos import TAG, when
from ..stack import MASTER_KEY, ORGANISER, Stack
from .counts import Counts

ORGANISERS = (ORGANISER, "bob@contoso.test")
EVENTS = "Meeting Events"


@dataclass
class Expected:
    """What the scenarios last did to an item: the state both sides must end in."""

    title: str
    start: str
    end: str
    location: str = "Room A"
    live: bool = True


@dataclass
class World:
    """A running Stack on an accelerated clock, with one host process (queue triggers and timers)."""

    speed: float
    stack: Stack = None
    expected: dict[int, Expected] = field(default_factory=dict)
    meetings: dict[str, int] = field(default_factory=dict)
    lapses: int = 0
    log_dir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="outages-logs-"))
    _covered: dict[str, bool] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> "World":
        self.stack = Stack(azurite_location=tempfile.mkdtemp(prefix="outages-azurite-"),
                           clock=world_clock.accelerated(self.speed),
                           # the mass-removal guard as a site gets it: a list answering empty must meet it
                           sales_options={"removal_limit": DEFAULT_REMOVAL_LIMIT,
                                          "removal_fraction": DEFAULT_REMOVAL_FRACTION})
        self.stack.graph.notification_retry_window = 4 * 3600.0  # as published: up to 4 h, then dropped
        self.stack.graph.notification_backoff = 60.0             # first retry after a minute, doubling to 10
        self.stack.start_backends()
        self.stack.start_host_processes(1, self.log_dir, timers=True)
        self.site = self.stack.sites["acme/sales"]
        for organiser in ORGANISERS:
            self.meetings[organiser] = self.site.sim.create_item(
                "Meetings", title=f"Outages with {organiser}", organiser_id=self.site.principals[organiser])["id"]
        # the scenarios edit Outlook from the start: every organiser's mailbox must have its subscription first
        eventually(lambda: all(self._subscribed(m) for m in ORGANISERS), timeout=60,
                   what="a Graph subscription for every organiser")
        threading.Thread(target=self._watch_subscriptions, name="lapses", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.stack is not None:
            self.stack.stop()

    # -- time ------------------------------------------------------------------------------------------

    def app_hours(self, hours: float) -> None:
        """Let `hours` of app time pass (the world keeps running meanwhile)."""
        time.sleep(clock.wall_seconds(hours * 3600))  # the outage itself: time passing, not a condition

    # -- edits -----------------------------------------------------------------------------------------

    def create(self, organiser: str = ORGANISER, day: int = 5, hour: int = 9) -> int:
        start, end = when(day, hour)
        title = f"Outage item {len(self.expected) + 1}"
        item = self.site.sim.create_item(EVENTS, title=title, meeting_id=self.meetings[organiser],
                                         start_date=start, end_date=end, location="Room A",
                                         invitees=[self.site.principals["carol@contoso.test"]])
        self.expected[item["id"]] = Expected(title, start, end)
        return item["id"]

    def site_rename(self, item_id: int, title: str) -> None:
        self.expected[item_id].title = title
        self.site.sim.update_item(EVENTS, item_id, title=title)

    def site_move(self, item_id: int, day: int, hour: int) -> None:
        exp = self.expected[item_id]
        exp.start, exp.end = when(day, hour)
        self.site.sim.update_item(EVENTS, item_id, start_date=exp.start, end_date=exp.end)

    def site_delete(self, item_id: int) -> None:
        self.expected[item_id].live = False
        self.site.sim.delete_items(EVENTS, [item_id])

    def outlook_relocate(self, item_id: int, location: str) -> None:
        mailbox, event = self.event_of(item_id)
        self.expected[item_id].location = location
        self.stack.graph.outlook_update(mailbox, event["id"], location={"displayName": location})

    def outlook_rename(self, item_id: int, title: str) -> None:
        mailbox, event = self.event_of(item_id)
        self.expected[item_id].title = title
        self.stack.graph.outlook_update(mailbox, event["id"], subject=title)

    # -- reading both sides ----------------------------------------------------------------------------

    def events(self) -> dict[int, list[dict]]:
        """Outlook events by the site item they carry the tag of (more than one: a duplicate)."""
        found: dict[int, list[dict]] = {}
        for mailbox in ORGANISERS:
            for event in self.stack.graph.events(mailbox):
                for prop in event.get("singleValueExtendedProperties") or []:
                    if prop["value"].startswith(TAG):
                        found.setdefault(int(prop["value"][len(TAG):]), []).append(event)
        return found

    def event_of(self, item_id: int) -> tuple[str, dict]:
        for mailbox in ORGANISERS:
            for event in self.stack.graph.events(mailbox):
                if any(p["value"] == f"{TAG}{item_id}" for p in event.get("singleValueExtendedProperties") or []):
                    return mailbox, event
        raise LookupError(f"item {item_id} has no Outlook event")

    def check(self, items) -> Counts:
        """Lost, duplicated, mismatched and wrongly cancelled among `items`, from both sides as they are now."""
        counts, events, sim = Counts(), self.events(), self.site.sim
        for item_id in items:
            exp, item, found = self.expected[item_id], sim.get(EVENTS, item_id), events.get(item_id, [])
            counts.duplicated += max(0, len(found) - 1)
            if not exp.live:
                counts.mismatched += bool(found)  # deleted in the site, still in Outlook
                continue
            if item.get("deleted") or item.get("status") == "Cancelled" or (not found and item.get("sys_external_id")):
                counts.wrongly_cancelled += 1
                continue
            if not found:
                counts.lost += 1
                continue
            event = found[0]
            site_side = (item["title"], item["start_date"], item["end_date"], item.get("location"))
            outlook_side = (event["subject"], event["start"]["dateTime"][:19] + "Z",
                            event["end"]["dateTime"][:19] + "Z", event["location"]["displayName"])
            if site_side != outlook_side:
                counts.mismatched += 1
            elif site_side != (exp.title, exp.start, exp.end, exp.location):
                counts.lost += 1
        return counts

    def poisoned_so_far(self) -> int:
        """Messages the host moved to the poison queue since it started (its log says each one)."""
        total = 0
        for host in self.stack.hosts:
            if os.path.exists(host.log_path):
                with open(host.log_path, errors="replace") as f:
                    total += sum(1 for line in f if " moved to " in line and "-poison" in line)
        return total

    def waiting_for_a_person(self) -> int:
        """Jobs in the poison queue, and removals the status page shows as held (released only by a person)."""
        from ..chaos import poisoned

        try:
            answer = requests.get(f"{self.stack.host_url}/ops/status?format=json",
                                  headers={"x-functions-key": MASTER_KEY}, timeout=30)
            page = answer.json() if answer.status_code == 200 else {}
        except (requests.RequestException, ValueError):
            page = {}
        return poisoned(self.stack) + _held(page)

    def empty_poison_queue(self) -> None:
        """After a scenario's row is counted: what it left in the poison queue is its own, not the next one's."""
        from azure.core.exceptions import ResourceNotFoundError
        from azure.storage.queue import QueueClient

        try:
            QueueClient.from_connection_string(self.stack.azurite.connection_string,
                                               f"{self.stack.queue_name}-poison").clear_messages()
        except ResourceNotFoundError:
            pass  # nothing was ever poisoned: the host makes the queue with its first poisoned message

    # -- subscriptions ---------------------------------------------------------------------------------

    def _watch_subscriptions(self) -> None:
        """Every 10 app minutes: an organiser whose mailbox had an active subscription and now has none is a
        lapse (Graph would send no notification for it)."""
        while not self._stop.wait(max(0.02, clock.wall_seconds(600))):
            for mailbox in ORGANISERS:
                covered = self._subscribed(mailbox)
                if self._covered.get(mailbox) and not covered:
                    self.lapses += 1
                self._covered[mailbox] = covered

    def _subscribed(self, mailbox: str) -> bool:
        """Graph holds an active subscription to `mailbox`'s events."""
        ids = (mailbox.lower(), self.stack.user_ids[mailbox].lower())
        active = [s["resource"].lower() for s in self.stack.graph.subscriptions.values() if s["active"]]
        return any(i in resource for resource in active for i in ids)


def _held(page) -> int:
    """Held removals wherever the status page lists them (a `held…` key: a count, or a list of them)."""
    if isinstance(page, list):
        return sum(_held(p) for p in page)
    if not isinstance(page, dict):
        return 0
    total = 0
    for key, value in page.items():
        if key.lower().startswith("held"):
            total += _count(value)
        else:
            total += _held(value)
    return total


def _count(value) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, list):
        return len(value)
    if isinstance(value, dict):
        return _count(value.get("count", value.get("items", 0)))
    return 0
