"""`make chaos`: a workload of site and Outlook changes under faults, then both sides compared.

    python -m devtools.chaos [--site-changes 300] [--outlook-changes 200] [--seed 7] [--hosts 3] [--kills 1]

Site changes (creates, moves, renames, single and bulk deletes, duplicated and out-of-order
webhook deliveries) and Outlook changes (edits, moves, cancellations, duplicated notifications)
run through several local Functions host processes on one queue and one set of tables (as Azure runs
several instances), while the Graph simulator answers a share of requests with
429 + Retry-After, 503, slow answers, dropped connections and lost answers, the site API is down
for a stretch, Azurite is stopped and started again, and a host process is killed (SIGKILL) mid-work and
started again: the messages it held reappear after their lease for the other hosts. Then every item is compared with its
Outlook event and with the last change the workload made to it. Exit code 0 only when nothing
was lost, duplicated or left different.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import requests

from .stack import ORGANISER, Stack

ORGANISERS = [ORGANISER, "bob@contoso.test", "carol@contoso.test"]
TAG = "acme/sales|"


WORDS = ("rescheduled", "created Outlook event", "updated Outlook event", "merged with an Outlook change",
         "Outlook event cancelled", "Outlook change applied", "site item cancelled", "conflict on",
         "already in sync", "duplicate notification", "abandoned", "failed")


def _when(line: str) -> float:
    """The time of a host log line (`%(asctime)s`: local time, milliseconds after a comma)."""
    try:
        return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    except ValueError:
        return 0.0


@dataclass
class HostLogs:
    """What the host processes' logs tell: the worker's decisions, host retries, redelivered messages."""

    counts: Counter = field(default_factory=Counter)
    host_failures: int = 0
    redelivered: dict[str, float] = field(default_factory=dict)  # message id → first time seen with dequeue > 1

    @classmethod
    def read(cls, paths: list[str]) -> "HostLogs":
        out = cls()
        for path in paths:
            with open(path, errors="replace") as f:
                for line in f:
                    parts = line.split(" ", 4)
                    if len(parts) < 5:
                        continue
                    name, text = parts[3], parts[4]
                    if name == "rapid_meetings":
                        out.counts.update(w for w in WORDS if w in text)
                    elif name == "localhost" and text.startswith("message "):
                        if " redelivered (dequeue" in text:
                            out.redelivered.setdefault(text.split()[1], _when(line))
                        elif " failed (dequeue" in text:
                            out.host_failures += 1
        return out


@dataclass
class Expected:
    """What the workload last did to an item: the state both sides must end in."""

    title: str
    start: str
    end: str
    location: str
    state: str = "live"  # live | deleted | cancelled
    history: list = field(default_factory=list)
    titles: set = field(default_factory=set)  # after a deliberate conflict: either side's title may win

    def did(self, what: str) -> None:
        self.history.append(f"{time.strftime('%H:%M:%S')}.{int(time.time() * 1000) % 1000:03d} {what}")


@dataclass
class Summary:
    site_changes: int = 0
    outlook_changes: int = 0
    duplicate_deliveries: int = 0
    counts: Counter = field(default_factory=Counter)
    retried: int = 0
    poisoned: int = 0
    hosts: int = 0
    host_crashes: int = 0
    held_at_crash: int = 0
    redelivered_after_crash: int = 0
    redelivered: int = 0
    mailbox_concurrency_429s: int = 0
    duplicates: int = 0
    mismatches: list = field(default_factory=list)
    lost: list = field(default_factory=list)
    seconds: float = 0.0

    def ok(self) -> bool:
        return not (self.duplicates or self.mismatches or self.lost or self.poisoned)

    def table(self) -> str:
        applied = sum(self.counts[k] for k in ("created Outlook event", "updated Outlook event",
                                               "merged with an Outlook change", "Outlook event cancelled",
                                               "Outlook change applied", "site item cancelled"))
        rows = [
            ("site changes sent", self.site_changes),
            ("Outlook changes sent", self.outlook_changes),
            ("duplicate / out-of-order deliveries sent", self.duplicate_deliveries),
            ("changes applied (writes to the other side)", applied),
            ("echoes and duplicates recognised", self.counts["already in sync"] + self.counts["duplicate notification"]),
            ("conflicts resolved (later wins)", self.counts["conflict on"]),
            ("jobs rescheduled (429/503/transient)", self.counts["rescheduled"]),
            ("jobs retried by the host (failed)", self.retried),
            ("host processes", self.hosts),
            ("host crashes (SIGKILL mid-work)", self.host_crashes),
            ("messages the killed host held", self.held_at_crash),
            ("messages redelivered after a crash", self.redelivered_after_crash),
            ("messages redelivered (any cause)", self.redelivered),
            ("Graph 429s for mailbox concurrency", self.mailbox_concurrency_429s),
            ("poisoned", self.poisoned),
            ("duplicate Outlook events", self.duplicates),
            ("mismatched fields", len(self.mismatches)),
            ("lost changes", len(self.lost)),
            ("wall time (s)", f"{self.seconds:.1f}"),
        ]
        width = max(len(r[0]) for r in rows)
        return "\n".join(f"| {name:<{width}} | {value!s:>8} |" for name, value in rows)


def when(day: int, hour: int) -> tuple[str, str]:
    return f"2027-01-{day:02d}T{hour:02d}:00:00Z", f"2027-01-{day:02d}T{hour + 1:02d}:00:00Z"


def _depth(queue) -> int:
    try:
        return queue.get_queue_properties().approximate_message_count  # Azurite counts invisible ones too
    except Exception as e:
        if type(e).__name__ == "ResourceNotFoundError":
            return 0
        raise


def quiet(stack: Stack, timeout: float = 240.0) -> None:
    """Wait until both simulators have delivered everything and the work queue is empty (messages held
    by a host, or invisible after a crash until their lease ends, count too)."""
    from azure.storage.queue import QueueClient

    queue = QueueClient.from_connection_string(stack.azurite.connection_string, stack.queue_name)

    def idle():
        for world in stack.sites.values():
            world.sim.wait_idle(timeout)
        stack.graph.wait_idle(timeout)
        return _depth(queue) == 0
    stable = 0
    deadline = time.monotonic() + timeout
    while stable < 3:  # idle three polls in a row: nothing was in flight between them
        if time.monotonic() > deadline:
            raise TimeoutError("the sync did not settle")
        try:
            stable = stable + 1 if idle() else 0
        except Exception:  # storage not back yet
            stable = 0
        time.sleep(0.2)


class Workload:
    def __init__(self, stack: Stack, seed: int):
        self.stack = stack
        self.site = stack.sites["acme/sales"]
        self.rng = random.Random(seed)
        self.expected: dict[int, Expected] = {}
        self.meetings: dict[str, dict] = {}
        self.summary = Summary()

    def live(self) -> list[int]:
        return [i for i, e in self.expected.items() if e.state == "live" and not e.titles]

    def event_of(self, item_id: int) -> tuple[str, dict] | tuple[None, None]:
        event_id = self.site.sim.get("Meeting Events", item_id).get("sys_external_id")
        for mailbox in ORGANISERS:
            event = self.stack.graph.get_event(mailbox, event_id) if event_id else None
            if event:
                return mailbox, event
        return None, None

    def settled(self, item_id: int) -> bool:
        """Both sides show the item's last change. Random edits go only to settled items: an edit on
        one side before the other side's edit arrived is a conflict, and those are made on purpose."""
        exp, item = self.expected[item_id], self.site.sim.get("Meeting Events", item_id)
        _, event = self.event_of(item_id)
        want = (exp.title, exp.start, exp.end, exp.location)
        return bool(event) and want == (item["title"], item["start_date"], item["end_date"], item.get("location")) \
            == (event["subject"], event["start"]["dateTime"][:19] + "Z", event["end"]["dateTime"][:19] + "Z",
                event["location"]["displayName"])

    def pick(self) -> int | None:
        live = self.live()
        for _ in range(40):
            if not live:
                return None
            item_id = self.rng.choice(live)
            if self.settled(item_id):
                return item_id
        return None

    def create(self) -> None:
        organiser = self.rng.choice(ORGANISERS)
        start, end = when(self.rng.randint(1, 28), self.rng.randint(8, 17))
        title = f"Chaos {len(self.expected)}"
        item = self.site.sim.create_item("Meeting Events", title=title, meeting_id=self.meetings[organiser]["id"],
                                         start_date=start, end_date=end, location="Room A",
                                         invitees=[self.site.principals["bob@contoso.test"]])
        self.expected[item["id"]] = Expected(title, start, end, "Room A")
        self.summary.site_changes += 1

    def site_change(self) -> None:
        item_id = self.pick()
        if item_id is None:
            return self.create()
        roll, live = self.rng.random(), [i for i in self.live() if i != item_id]
        exp = self.expected[item_id]
        sim = self.site.sim
        if roll < 0.15:
            return self.create()
        if roll < 0.4:
            exp.start, exp.end = when(self.rng.randint(1, 28), self.rng.randint(8, 17))
            sim.update_item("Meeting Events", item_id, start_date=exp.start, end_date=exp.end)
            exp.did(f"site move {exp.start}")
        elif roll < 0.65:
            exp.title = f"{exp.title.split(' ~')[0]} ~site{self.summary.site_changes}"
            sim.update_item("Meeting Events", item_id, title=exp.title)
            exp.did(f"site title {exp.title}")
        elif roll < 0.8:
            exp.state = "deleted"
            sim.delete_items("Meeting Events", [item_id])
        elif roll < 0.9:
            group = [item_id] + self.rng.sample(live, min(2, len(live)))
            for i in group:
                self.expected[i].state = "deleted"
            sim.delete_items("Meeting Events", group)
        else:
            return self.duplicate_delivery(item_id)
        self.summary.site_changes += 1

    def conflict(self, item_id: int, mailbox: str, event_id: str) -> None:
        """Both sides rename the item before either change arrived: either title may win, both must agree."""
        exp = self.expected[item_id]
        base = exp.title.split(" ~")[0]
        ours, theirs = f"{base} ~conflict-outlook", f"{base} ~conflict-site"
        self.stack.graph.outlook_update(mailbox, event_id, subject=ours)
        self.site.sim.update_item("Meeting Events", item_id, title=theirs)
        exp.titles = {ours, theirs}
        exp.did(f"conflict {ours!r} vs {theirs!r}")
        self.summary.outlook_changes += 1
        self.summary.site_changes += 1

    def duplicate_delivery(self, item_id: int) -> None:
        """A webhook delivered again, late: an old body of the item, create and update alike."""
        stale = dict(self.site.sim.get("Meeting Events", item_id), title="stale body")
        path = self.rng.choice(["create", "update"])
        try:
            requests.post(self.stack.function_url(f"acme/sales/0/services/rapid-meetings/event/{path}"), json=stale,
                          timeout=30)
        except requests.ConnectionError:
            return  # it reached a host as it was killed: a lost duplicate is no change (the site would retry)
        self.summary.duplicate_deliveries += 1

    def outlook_change(self) -> None:
        item_id = self.pick()
        if item_id is None:
            return
        exp = self.expected[item_id]
        mailbox, event = self.event_of(item_id)
        event_id = event["id"]
        roll = self.rng.random()
        if roll < 0.08:
            return self.conflict(item_id, mailbox, event_id)
        if roll < 0.35:
            exp.title = f"{exp.title.split(' ~')[0]} ~outlook{self.summary.outlook_changes}"
            self.stack.graph.outlook_update(mailbox, event_id, subject=exp.title)
            exp.did(f"outlook title {exp.title}")
        elif roll < 0.6:
            exp.location = f"Room {self.summary.outlook_changes}"
            self.stack.graph.outlook_update(mailbox, event_id, location={"displayName": exp.location})
            exp.did(f"outlook location {exp.location}")
        elif roll < 0.85:
            exp.start, exp.end = when(self.rng.randint(1, 28), self.rng.randint(8, 17))
            self.stack.graph.outlook_update(mailbox, event_id, start={"dateTime": exp.start[:19], "timeZone": "UTC"},
                                            end={"dateTime": exp.end[:19], "timeZone": "UTC"})
            exp.did(f"outlook move {exp.start}")
        else:
            exp.state = "cancelled"
            self.stack.graph.outlook_cancel(mailbox, event_id)
        self.summary.outlook_changes += 1


def compare(stack: Stack, work: Workload) -> None:
    """Both sides agree with each other and with the last change the workload made."""
    summary, sim = work.summary, work.site.sim
    tags = Counter()
    events = {}
    for mailbox in ORGANISERS:
        for event in stack.graph.events(mailbox):
            for prop in event.get("singleValueExtendedProperties") or []:
                if prop["value"].startswith(TAG):
                    item_id = int(prop["value"][len(TAG):])
                    tags[item_id] += 1
                    events[item_id] = event
    summary.duplicates = sum(n - 1 for n in tags.values() if n > 1)
    for item_id, exp in work.expected.items():
        item, event = sim.get("Meeting Events", item_id), events.get(item_id)
        if exp.state == "deleted":
            if event is not None:
                summary.mismatches.append((item_id, "deleted in the site, still in Outlook"))
            continue
        if exp.state == "cancelled":
            if event is not None or item.get("status") != "Cancelled":
                summary.lost.append((item_id, f"cancelled in Outlook: site status {item.get('status')!r}, "
                                              f"event {'present' if event else 'gone'}"))
            continue
        if event is None:
            summary.lost.append((item_id, "live in the site, missing in Outlook"))
            continue
        site_side = (item["title"], item["start_date"], item["end_date"], item.get("location"))
        outlook_side = (event["subject"], event["start"]["dateTime"][:19] + "Z", event["end"]["dateTime"][:19] + "Z",
                        event["location"]["displayName"])
        title = site_side[0] if site_side[0] in exp.titles else exp.title
        if site_side != outlook_side:
            summary.mismatches.append((item_id, f"site {site_side} != Outlook {outlook_side}"))
        elif site_side != (title, exp.start, exp.end, exp.location):
            summary.lost.append((item_id, f"both say {site_side}, the last change was "
                                          f"{(exp.title, exp.start, exp.end, exp.location)}; history: "
                                          + " | ".join(exp.history)))


def run(site_changes: int = 300, outlook_changes: int = 200, seed: int = 7, verbose: bool = True,
        hosts: int = 3, kills: int = 1, log_dir: str | None = None) -> Summary:
    say = (lambda text: print(f"[{time.monotonic() - started:6.1f}s] {text}", file=sys.stderr, flush=True)) \
        if verbose else (lambda text: None)
    started = time.monotonic()
    log_dir = log_dir or tempfile.mkdtemp(prefix="chaos-logs-")
    stack = Stack(azurite_location=tempfile.mkdtemp(prefix="chaos-azurite-"))
    killed: list[tuple[str, float, list[str]]] = []  # (host, when, ids of the messages it held)
    try:
        stack.start_backends()
        stack.graph.notification_retries, stack.graph.notification_backoff = 12, 0.5  # Graph retries for hours
        for world in stack.sites.values():
            world.sim.retries, world.sim.backoff = 12, 0.5  # and so must the site, for the outage to be survivable
        # each host with queue triggers and timers; a message's lease is 4 s (renewed while it runs), so a
        # killed host's messages come back within seconds
        stack.start_host_processes(hosts, log_dir, timers=True, lease=4, queue_overrides={"visibilityTimeout": "00:00:02"})
        say(f"{hosts} host processes behind {stack.host_url}; logs in {log_dir}")
        work = Workload(stack, seed)
        site = work.site
        for organiser in ORGANISERS:
            work.meetings[organiser] = site.sim.create_item("Meetings", title=f"Chaos with {organiser}",
                                                            organiser_id=site.principals[organiser])
        quiet(stack)
        say(f"{len(stack.graph.subscriptions)} subscriptions; creating the first events")
        for _ in range(max(20, site_changes // 3)):
            work.create()
        quiet(stack)
        say("faults on: Graph 429/503/slow/dropped/lost answers, duplicated notifications")
        stack.graph.set_faults(rate_429=0.06, rate_503=0.03, rate_slow=0.02, slow_seconds=1.0, rate_drop=0.02,
                               rate_lost=0.02, retry_after=1, seed=seed)
        stack.graph.duplicate_notifications = 2
        total = site_changes + outlook_changes
        site_left, outlook_left = site_changes - work.summary.site_changes, outlook_changes
        # the workload arrives over `duration` seconds; the site outage comes a third of the way in, host kills
        # spread from 40% on, the storage outage half way
        duration = max(10.0, total * 0.1)
        kill_at = [duration * (0.4 + 0.4 * k / max(1, kills)) for k in range(kills)]
        begin, outage, stopped_storage, victim = time.monotonic(), 0.0, False, None
        for step in range(site_left + outlook_left):
            due = begin + duration * step / total
            while time.monotonic() < due:
                time.sleep(0.01)  # pacing the workload, not waiting for a condition
            elapsed = time.monotonic() - begin
            if not outage and elapsed > duration / 3 and not stack.rapid._down:
                say("the site API goes down for 4 s")
                stack.rapid.down(True)
                outage = time.monotonic()
            if outage and stack.rapid._down and time.monotonic() - outage > 4:
                stack.rapid.down(False)
                say("the site API is back")
            if victim is None and kill_at and elapsed > kill_at[0]:
                kill_at.pop(0)
                victim, held = kill_mid_work(stack, work.rng)
                killed.append((victim.name, time.time(), held))
                say(f"{victim.name} killed (SIGKILL) holding {len(held)} message(s)")
            elif victim is not None and time.time() - killed[-1][1] > 2:
                victim.start()
                say(f"{victim.name} started again")
                victim = None
            if not stopped_storage and elapsed > duration / 2:
                say("Azurite stops for 3 s")
                stack.azurite.stop()
                time.sleep(3)  # the outage itself
                stack.azurite.start()
                stopped_storage = True
                say("Azurite is back")
            if outlook_left and (not site_left or work.rng.random() < outlook_left / (site_left + outlook_left)):
                work.outlook_change()
                outlook_left -= 1
            else:
                work.site_change()
                site_left -= 1
        stack.rapid.down(False)
        if victim is not None:
            victim.start()
            say(f"{victim.name} started again")
        say(f"workload sent ({work.summary.site_changes} site, {work.summary.outlook_changes} Outlook changes); "
            "waiting for the sync to settle, faults still on")
        quiet(stack)
        say("settled under faults; faults off, final settle")
        stack.graph.clear_faults()
        quiet(stack)
        say("Graph answers: " + ", ".join(f"{k}×{v}" for k, v in sorted(Counter(e.status for e in stack.graph.log
                                                                               if "/v1.0/" in e.path).items())))
        compare(stack, work)
        logs = HostLogs.read([h.log_path for h in stack.hosts])
        summary = work.summary
        summary.counts = logs.counts
        summary.retried = logs.host_failures
        summary.poisoned = poisoned(stack)
        summary.hosts, summary.host_crashes = hosts, len(killed)
        summary.held_at_crash = sum(len(held) for _, _, held in killed)
        summary.redelivered = len(logs.redelivered)
        summary.redelivered_after_crash = sum(1 for _, when, held in killed for m in held
                                              if logs.redelivered.get(m, 0) >= when)
        summary.mailbox_concurrency_429s = stack.graph.mailbox_concurrency_429s()
        summary.seconds = time.monotonic() - started
        return summary
    finally:
        stack.stop()


def kill_mid_work(stack: Stack, rng: random.Random, within: float = 5.0):
    """SIGKILL a host while it runs queue messages (the first found holding some, polling its admin status
    for up to `within` s; else any): (the host, the ids of the messages it held)."""
    from .stack import MASTER_KEY

    deadline = time.monotonic() + within
    while True:
        for host in rng.sample(stack.hosts, len(stack.hosts)):
            held = host.held(MASTER_KEY)
            if held or time.monotonic() > deadline:
                host.kill()
                return host, held
        time.sleep(0.02)


def poisoned(stack: Stack) -> int:
    from azure.storage.queue import QueueClient

    return _depth(QueueClient.from_connection_string(stack.azurite.connection_string, f"{stack.queue_name}-poison"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--site-changes", type=int, default=300)
    parser.add_argument("--outlook-changes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--hosts", type=int, default=3, help="host processes on the same queue and tables")
    parser.add_argument("--kills", type=int, default=1, help="times a host is killed (SIGKILL) and started again")
    parser.add_argument("--logs", help="directory for the host processes' logs (default: a new temporary one)")
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.ERROR)
    logging.basicConfig(level=logging.WARNING, handlers=[handler], format="%(levelname)s %(name)s %(message)s")
    logging.getLogger("azure").setLevel(logging.ERROR)
    logging.getLogger("urllib3").setLevel(logging.ERROR)
    if args.logs:
        os.makedirs(args.logs, exist_ok=True)
    summary = run(args.site_changes, args.outlook_changes, args.seed, hosts=args.hosts, kills=args.kills,
                  log_dir=args.logs)
    print(summary.table())
    for item_id, why in summary.lost + summary.mismatches:
        print(f"  item {item_id}: {why}")
    print("OK: nothing lost, duplicated or different" if summary.ok() else "FAILED")
    return 0 if summary.ok() else 1


if __name__ == "__main__":
    sys.exit(main())
