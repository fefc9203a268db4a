"""The bench's world and its meters: one place that starts everything and counts what it saw.

`World` starts Azurite, the Graph and RAPID simulators (devtools/stack.py) and local Functions hosts
(child processes, devtools/bench/host.py) behind one round-robin front door (devtools.localhost.Balancer),
as Azure's front end spreads HTTP over an app's instances. It watches the simulators from inside this
process (events created and updated in Outlook, items updated in the site) without changing their
files, waits for the work to settle, and counts the requests a change costs (`measure`).
"""

from __future__ import annotations

import sys
import time
import traceback
from collections import Counter
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields

from ..azurite import eventually, free_port
from .host import Host
from .table import Report

T0 = time.perf_counter()


def progress(text: str) -> None:
    print(f"[bench {time.perf_counter() - T0:6.1f}s] {text}", file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]


def request_kind(method: str, path: str) -> str:
    """`POST events`, `GET user`, `PATCH subscription`… for a Graph request path."""
    parts = [p for p in path.split("/") if p][1:]  # drop v1.0
    if parts[:1] == ["users"]:
        rest = parts[2:]
        if not rest:
            return f"{method} user"
        if rest[0] == "calendar":
            rest = rest[1:] or ["calendar"]
        name = rest[0] if len(rest) <= 2 else f"{rest[0]}/{rest[2]}"
        return f"{method} {name}"
    return f"{method} {parts[0] if parts else path}"


def seed_table(table, chunks: list[list[dict]], workers: int = 4) -> None:
    """Each chunk in one transaction, `workers` at a time: create, not upsert (Azurite's upsert cost grows with
    the table's size), then upsert should Azurite drop one."""
    def submit(chunk):
        for attempt in range(4):
            try:
                return table.submit_transaction([("create" if attempt == 0 else "upsert", e) for e in chunk])
            except Exception as e:
                if attempt == 3:
                    raise
                progress(f"  seeding: {type(e).__name__}, retrying a chunk")
                time.sleep(1)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(submit, chunks))


@dataclass
class Requests:
    """What the simulators were asked in a window: Graph API (and its reads), the sites' API, tokens."""

    graph: int = 0
    graph_reads: int = 0
    site_reads: int = 0
    site_writes: int = 0
    tokens: int = 0
    graph_detail: Counter = field(default_factory=Counter)

    def __add__(self, other: "Requests") -> "Requests":
        return Requests(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def brief(self) -> str:
        return f"G {self.graph} (R {self.graph_reads}) · site R {self.site_reads} W {self.site_writes}"

    def detail(self) -> str:
        return (f"Graph {dict(self.graph_detail) or '{}'}; site reads {self.site_reads}, writes {self.site_writes}; "
                f"tokens {self.tokens}")


@dataclass
class Measured:
    """One change measured by `World.measure`: its own cost, and that of its echo (Graph's notifications of
    our own write, held back until the change settled), `settled_at` in time.time()."""

    cost: Requests
    echo: Requests | None
    settled_at: float


class Observed:
    """Outlook creates and updates and site updates, as the simulators applied them (wrapped in this
    process; the simulators' files are untouched)."""

    def __init__(self, stack):
        self.graph_updates: list[tuple[str, str, float]] = []      # (event id, subject, time.time())
        self.graph_creates: list[tuple[str, float]] = []           # (subject, perf_counter)
        self.site_updates: list[tuple[str, str, str, float]] = []  # (item id, title, via, time.time())
        self.watch_graph(stack.graph)
        for world in stack.sites.values():
            self.watch_site(world.sim)

    def watch_graph(self, graph) -> None:
        create, update = graph._create, graph._update

        def created(user, data):
            out = create(user, data)
            self.graph_creates.append((str(data.get("subject")), time.perf_counter()))
            return out

        def updated(user, event_id, data):
            out = update(user, event_id, data)
            self.graph_updates.append((event_id, str(data.get("subject")), time.time()))
            return out

        graph._create, graph._update = created, updated

    def watch_site(self, site) -> None:
        update = site._update

        def updated(name, item_id, body, *args, **kwargs):
            out = update(name, item_id, body, *args, **kwargs)
            via = kwargs.get("via", args[-1] if args else "")
            self.site_updates.append((str(item_id), str(body.get("title")), via, time.time()))
            return out

        site._update = updated


class World:
    """Azurite, the simulators, the hosts, and what they saw; figures share one."""

    def __init__(self):
        from ..stack import Stack

        # figure 2 counts an answer and Teams creates (an item asks for Teams in its own column)
        self.stack = Stack(sales_options={"answers_column": "bench_answers", "teams_column": "bench_teams",
                                          "join_url_column": "bench_join"},
                           agenda_sites=("lookup",))  # figure 2 counts agenda changes on acme/agenda-lookup
        self.report = Report()
        self.hosts: list[Host] = []         # every host started, for the token row
        self.main_host: Host | None = None  # the worker host figures share
        self.worker_hosts: list[Host] = []  # behind the front door now
        self.multi_host_windows: list[tuple[float, float, int]] = []  # figure 4: (from, to, extra processes)
        self.observed: Observed | None = None
        self.meeting = self.alice_sub = None  # acme/sales' meeting of the organiser, and its subscription
        self._store = self._queue = self._balancer = None

    # -- start and stop ---------------------------------------------------------------------------

    def start(self) -> None:
        from ..localhost import Balancer

        progress("starting Azurite and the Graph and RAPID simulators")
        self.stack.start_backends()
        self.declare_columns()
        self._queue = self.queue_client()
        self.observed = Observed(self.stack)
        self._balancer = Balancer(lambda: [h.port for h in self.worker_hosts])
        self._balancer.serve(self.stack.host_port)

    def declare_columns(self) -> None:
        """acme/sales has the columns its settings name (the simulator learns a column when it is first
        written, which figure 2 does; every sync $selects them, so any figure may run first)."""
        columns = self.stack.sites["acme/sales"].sim.schemas["Meeting Events"].columns
        for column, kind in (("bench_teams", "Boolean"), ("bench_join", "Text"), ("bench_answers", "Text")):
            columns.setdefault(column, kind)

    def stop(self) -> None:
        progress("stopping hosts, simulators and Azurite")
        for host in self.hosts:
            host.stop()
        if self._balancer:
            self._balancer.stop()
        self.stack.stop()

    def new_host(self, name: str, *, track: bool = True, **options) -> Host:
        """A started host process. `track`: its token requests are its own in the token row (figure 4's
        extra processes are counted by their time window instead)."""
        host = Host(self.stack.settings(), name, free_port(), **options).start()
        if track:
            self.hosts.append(host)
        return host

    def start_main_host(self, name: str = "worker", queue_overrides: dict | None = None,
                        env: dict | None = None) -> Host:
        self.main_host = self.new_host(name, queue_overrides=queue_overrides, env=env, sample=True)
        self.worker_hosts = [self.main_host]
        return self.main_host

    def stop_main_host(self) -> None:
        if self.main_host:
            self.main_host.stop()
            self.main_host = None
            self.worker_hosts = []

    def restart_main_host(self, name: str = "worker", **options) -> Host:
        self.stop_main_host()
        return self.start_main_host(name, **options)

    # -- state ------------------------------------------------------------------------------------

    def queue_client(self, name: str | None = None):
        from azure.storage.queue import QueueClient

        return QueueClient.from_connection_string(self.stack.azurite.connection_string,
                                                  name or self.stack.queue_name)

    def queue_depth(self) -> int:
        try:
            return self._queue.get_queue_properties().approximate_message_count
        except Exception:
            return 0

    def store(self):
        from shared.storage.store import Store

        if self._store is None:
            self._store = Store(self.stack.azurite.connection_string)
        return self._store

    def subscription(self, site: str, mailbox: str, timeout: float = 60.0):
        return eventually(lambda: self.store().subscription_for(site, mailbox), timeout,
                          f"the subscription of {mailbox}", interval=0.2)

    @contextmanager
    def latency(self, graph: float = 0.0, rapid: float = 0.0):
        """Seconds the Graph and RAPID simulators wait before answering each API request, while the block
        runs; none after it."""
        self.stack.graph.latency, self.stack.rapid.latency = graph, rapid
        try:
            yield
        finally:
            self.stack.graph.latency = self.stack.rapid.latency = 0.0

    def azurite_pid(self) -> int:
        return self.stack.azurite.process.pid

    # -- waiting and counting ---------------------------------------------------------------------

    def settle(self, timeout: float = 90.0) -> None:
        """Webhooks and notifications delivered, work queue empty (Azurite counts invisible messages too),
        and nothing new logged at the simulators for two checks in a row."""
        graph, rapid = self.stack.graph, self.stack.rapid
        deadline = time.monotonic() + timeout
        last, stable = None, 0
        while True:
            remaining = max(0.5, deadline - time.monotonic())
            for world in self.stack.sites.values():
                world.sim.wait_idle(remaining)
            graph.wait_idle(remaining)
            snap = (self.queue_depth(), len(graph.log), len(rapid.log), len(graph.notifications_sent),
                    sum(len(w.sim.deliveries) for w in self.stack.sites.values()))
            stable = stable + 1 if snap[0] == 0 and snap == last else 0
            if stable >= 2:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"work did not settle in {timeout:.0f}s (queue depth {snap[0]})")
            last = snap
            time.sleep(0.15)

    def mark(self) -> tuple[int, int]:
        """Where the simulators' request logs are now (Graph's, RAPID's)."""
        return len(self.stack.graph.log), len(self.stack.rapid.log)

    def requests_since(self, mark: tuple[int, int], until: tuple[int, int] | None = None) -> Requests:
        (g0, r0), (g1, r1) = mark, until or (None, None)
        graph, rapid = self.stack.graph.log[g0:g1], self.stack.rapid.log[r0:r1]
        api = [e for e in graph if e.path.startswith("/v1.0/")]
        site = [e for e in rapid if e.path.startswith("/api/")]
        return Requests(graph=len(api), graph_reads=sum(e.method == "GET" for e in api),
                        graph_detail=Counter(request_kind(e.method, e.path) for e in api),
                        site_reads=sum(e.method == "GET" for e in site),
                        site_writes=sum(e.method != "GET" for e in site),
                        tokens=sum("/oauth2/v2.0/token" in e.path for e in graph))

    def measure(self, change, pause: bool = True) -> Measured:
        """The requests `change` costs until the work settles. With `pause`, Graph's notifications are held
        back meanwhile, so the echo of our own write is counted apart (it is not the change's cost)."""
        graph, mark = self.stack.graph, self.mark()
        if not pause:
            change()
            self.settle()
            return Measured(self.requests_since(mark), None, time.time())
        graph.pause_notifications()
        try:
            change()
            self.settle()
        finally:
            during, settled_at = self.mark(), time.time()
            graph.resume_notifications(drop=False)
        cost = self.requests_since(mark, during)
        self.settle()
        return Measured(cost, self.requests_since(during), settled_at)

    def guarded(self, name: str, fn) -> None:
        """Run one figure's part; a failure is a row of its own, the other figures still run."""
        try:
            fn()
        except Exception as e:
            progress(f"{name} FAILED: {type(e).__name__}: {e}")
            traceback.print_exc(file=sys.stderr)
            self.report.failed(name, e)
