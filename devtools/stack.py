"""The whole app on one machine: Azurite, the Graph and RAPID simulators, the local Functions host.

One definition of the local world, shared by tests, `make run`, `make demo` and the benchmarks:
a Microsoft 365 tenant (Contoso) with three mailboxes, and a RAPID site (acme/sales) whose
Principals and External Contacts match them, with the Meetings bundle's webhooks installed.

`Stack(clock=world_clock.accelerated(speed))` runs the whole world on one accelerated clock: installed in
this process (the simulators, an in-process host) when the backends start, and handed to every child host
process (DEVTOOLS_APP_CLOCK), so an outage of hours or a week of renewals passes in minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

from .azurite import ROOT, Azurite, free_port, stop_process, wait_for_port
from .sim import GraphSimulator, RapidSimulator
from .sim.rapid import AGENDA_WEBHOOKS, MEETINGS_WEBHOOKS, RapidVariant
from .storage_proxy import StorageProxy
from . import world_clock

AAD_TENANT = "8f3c1b2a-0d4e-4c5f-9a6b-7c8d9e0f1a2b"
OTHER_TENANT = "2b1a0f9e-8d7c-4b6a-9f5c-4e0d2a1b3c8f"
CLIENT_ID = "3e6f9a1c-5b2d-4e8f-a7c0-1d2e3f4a5b6c"
CLIENT_SECRET = "local-sim-secret-not-real"  # the simulator's, never a real one
RAPID_APP = "cd5db0ec-1419-4ae6-9434-21cfb83fc42d"  # RAPID's published app id: the app's default scope
GRAPH_ROLES = ("Calendars.ReadWrite", "User.Read.All", "Place.Read.All")  # Place.Read.All: rooms (room_column)
FUNCTION_KEY = "local-function-key"
WEBHOOK_SECRET = "local-webhook-secret-for-the-simulated-sites"  # the local world's, never a real one
MASTER_KEY = "local-master-key"
# One test session removes hundreds of events within minutes, more than the mass-removal guard lets through
# in an hour by default; the guard's own tests set their limits (tests/test_removal_guard.py), and a world
# that should meet the default sets `removal_limit` in its site options.
SUITE_REMOVAL_LIMIT = 100_000
# Likewise a test session starts thousands of tasks a minute on acme/sales, far past a site's share of the
# worker (SITE_TASKS_PER_MINUTE, 600 by default): the worlds here run with the share off (0), and the fairness
# tests set a share of their own (tests/test_fairness.py). The bench measures the engine, not that policy.
SUITE_SITE_TASKS_PER_MINUTE = 0
ORGANISER = "alice@contoso.test"
PEOPLE = {"alice@contoso.test": "Alice Organiser", "bob@contoso.test": "Bob Invitee",
          "carol@contoso.test": "Carol Invitee"}
GUESTS = {"guest@partner.test": "Gina Guest"}
# The seven internal webhooks of the RAPID integration guide, and one it lacks: a single Meeting
# Subscriptions deletion fires "Item Deleted", which must reach the app too. And the agenda's (issue 15).
WEBHOOKS = MEETINGS_WEBHOOKS + (("Meeting Subscriptions", "Item Deleted", "subscriptions/delete"),) + AGENDA_WEBHOOKS


def site_params(path: str) -> dict:
    """`{"site_token": …}` for a site route (`tenant/site/0/services/…`), as the site's webhooks carry it."""
    parts = path.lstrip("/").split("/")
    if len(parts) > 4 and parts[2:4] == ["0", "services"]:
        from shared.intake.webhooks import site_token

        return {"site_token": site_token(WEBHOOK_SECRET, "/".join(parts[:2]))}
    return {}


@dataclass
class SiteWorld:
    """A simulated site and the ids of its people."""

    sim: object
    tenant: str
    name: str
    principals: dict[str, int] = field(default_factory=dict)  # email → Principals item id
    contacts: dict[str, int] = field(default_factory=dict)    # email → External Contacts item id

    @property
    def key(self) -> str:
        return f"{self.tenant}/{self.name}"


class Stack:
    def __init__(self, time_zone: str = "Europe/London", graph_latency: float = 0.0, queue_name: str = "sync-jobs",
                 azurite_location: str | None = None, multi_lookup_sites: tuple[str, ...] = (),
                 sales_options: dict | None = None, agenda_sites: tuple[str, ...] = (), storage_proxy: bool = False,
                 clock=None, edit_settle_seconds: int | None = 0):
        self.time_zone = time_zone
        # EDIT_SETTLE_SECONDS (features/coalesce.py): 0 here, so a site edit reaches Outlook at once in worlds
        # whose point is not mail (tests set their own; the bench's World asks for the app's default: None)
        self.edit_settle_seconds = edit_settle_seconds
        self.clock = clock  # a shared.clock.Accelerated for the whole world, or None: the real clock
        # extra sites acme/<strategy>, configured to read multi-lookups that way (`query`, `column`)
        self.multi_lookup_sites = multi_lookup_sites
        self.sales_options = dict(sales_options or {})  # more SITES keys for acme/sales (e.g. answers_column)
        # extra sites acme/agenda-<way>, agenda on, whose agenda items reach their event that way
        # (RapidVariant.agenda_link: `lookup`, `link`)
        self.agenda_sites = agenda_sites
        self.queue_name = queue_name
        self.azurite = Azurite(location=azurite_location)
        # the app reaches Azurite's queues and tables through a proxy that can refuse or hang (storage_proxy.py);
        # the tests' own clients use self.azurite.connection_string, straight to Azurite
        self.storage_proxy = StorageProxy([self.azurite.queue_port, self.azurite.table_port]) if storage_proxy else None
        self.graph = GraphSimulator(latency=graph_latency)
        self.rapid = RapidSimulator(ca=self.graph._ca)  # https, trusted through the same local CA
        self.host = None          # in-process FunctionHost
        self.host_process = None  # or a `python -m devtools.localhost` child
        self.hosts = []           # or several (localhost.HostProcess) behind self.balancer on host_port
        self.balancer = None
        self.host_port = free_port()
        self.sites: dict[str, SiteWorld] = {}
        self.user_ids: dict[str, str] = {}

    @property
    def host_url(self) -> str:
        return f"http://127.0.0.1:{self.host_port}"

    @property
    def storage(self) -> str:
        """The app's AzureWebJobsStorage: Azurite, or the storage proxy in front of it."""
        connection = self.azurite.connection_string
        return self.storage_proxy.rewrite(connection) if self.storage_proxy else connection

    def function_url(self, path: str) -> str:
        """A function's URL with its key; a site route also carries that site's token."""
        return f"{self.host_url}/{path}?" + "&".join(f"{k}={v}" for k, v in {"code": FUNCTION_KEY, **site_params(path)}.items())

    def _add_site(self, tenant: str, name: str, aad_tenant: str, people: dict, guests: dict,
                  variant: RapidVariant | None = None) -> SiteWorld:
        # the app must be a Principal of the site, or RAPID refuses it (docs/rapid-api.md, "The app must be a
        # Principal of the site")
        sim = self.rapid.add_site(tenant, name, aad_tenant, RAPID_APP, app_principals=[CLIENT_ID], variant=variant)
        world = SiteWorld(sim=sim, tenant=tenant, name=name)
        for email, title in people.items():
            world.principals[email] = sim.create_item("Principals", title=title, email=email)["id"]
        for email, title in guests.items():
            world.contacts[email] = sim.create_item("External Contacts", title=title, email=email)["id"]
        for table, trigger, path in WEBHOOKS:
            sim.add_webhook(table, trigger, self.function_url(f"{tenant}/{name}/0/services/rapid-meetings/{path}"))
        self.sites[world.key] = world
        return world

    def start_backends(self) -> "Stack":
        if self.clock is not None:
            world_clock.install(self.clock)
        self.azurite.start()
        if self.storage_proxy:
            self.storage_proxy.start()
        self.graph.start()
        self.rapid.start()
        for tenant in (AAD_TENANT, OTHER_TENANT):  # the permissions docs/operations.md asks an admin to grant
            self.graph.register_app(tenant, CLIENT_ID, CLIENT_SECRET, roles=GRAPH_ROLES)
        for email, name in PEOPLE.items():
            self.user_ids[email] = self.graph.add_user(AAD_TENANT, email, name)
        self.user_ids["olivia@fabrikam.test"] = self.graph.add_user(OTHER_TENANT, "olivia@fabrikam.test", "Olivia")
        self._add_site("acme", "sales", AAD_TENANT, PEOPLE, GUESTS)
        self._add_site("globex", "ops", OTHER_TENANT, {"olivia@fabrikam.test": "Olivia"}, {})
        for strategy in self.multi_lookup_sites:
            world = self._add_site("acme", strategy, AAD_TENANT, PEOPLE, GUESTS)
            world.sim.variant.multi_lookup_column = strategy == "column"  # a site that keeps ids in a column
        for way in self.agenda_sites:
            self._add_site("acme", f"agenda-{way}", AAD_TENANT, PEOPLE, GUESTS, RapidVariant(agenda_link=way))
        return self

    def settings(self) -> dict[str, str]:
        """The app settings of this world (what local.settings.json's Values would hold)."""
        def site(tenant, name, aad, zone, multi_lookup="links"):
            return {"tenant": tenant, "site": name, "rapid_url": self.sites[f"{tenant}/{name}"].sim.url,
                    "aad_tenant": aad, "client_id": CLIENT_ID, "multi_lookup": multi_lookup,
                    "client_secret_setting": "SIM_CLIENT_SECRET", "time_zone": zone,
                    "removal_limit": SUITE_REMOVAL_LIMIT, "removal_floor": SUITE_REMOVAL_LIMIT}
        return {
            "AzureWebJobsStorage": self.storage,
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "WORK_QUEUE": self.queue_name,
            "SITES": json.dumps([{**site("acme", "sales", AAD_TENANT, self.time_zone), **self.sales_options},
                                 site("globex", "ops", OTHER_TENANT, "America/New_York")]
                                + [site("acme", s, AAD_TENANT, self.time_zone, s) for s in self.multi_lookup_sites]
                                + [{**site("acme", f"agenda-{w}", AAD_TENANT, self.time_zone), "agenda": True}
                                   for w in self.agenda_sites]),
            "SIM_CLIENT_SECRET": CLIENT_SECRET,
            "GRAPH_URL": self.graph.graph_url,
            "AUTHORITY_HOST": self.graph.base_url,
            "HTTP_CA_BUNDLE": self.graph.ca_path,
            "NOTIFICATION_URL": self.function_url("graph/notifications"),
            "LOCAL_FUNCTION_KEY": FUNCTION_KEY,
            "LOCAL_MASTER_KEY": MASTER_KEY,
            "WEBHOOK_SECRETS": WEBHOOK_SECRET,
            "SITE_TASKS_PER_MINUTE": str(SUITE_SITE_TASKS_PER_MINUTE),
            **({} if self.edit_settle_seconds is None else {"EDIT_SETTLE_SECONDS": str(self.edit_settle_seconds)}),
        }

    def start_host_in_process(self, timers: bool = False, queue_overrides: dict | None = None):
        from .localhost import FunctionHost

        os.environ.update(self.settings())
        self.host = FunctionHost(queue_overrides=queue_overrides)
        self.host.serve(self.host_port)
        self.host.start_triggers(timers=timers)
        return self.host

    def host_env(self) -> dict[str, str]:
        """The environment of a child host process: this one's, the app settings, and the world's clock."""
        clock = {world_clock.CLOCK_ENV: self.clock.text()} if self.clock is not None else {}
        return {**os.environ, **self.settings(), **clock}

    def start_host_process(self, log_path: str | None = None, timers: bool = True) -> subprocess.Popen:
        env = self.host_env()
        self._host_log = open(log_path or os.path.join(tempfile.mkdtemp(), "host.log"), "w")
        args = [sys.executable, "-m", "devtools.localhost", "--port", str(self.host_port)]
        if not timers:
            args.append("--no-timers")
        self.host_process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._host_log,
                                             stderr=subprocess.STDOUT)
        wait_for_port(self.host_port, deadline_s=30, process=self.host_process)
        return self.host_process

    def start_host_processes(self, count: int, log_dir: str, timers: bool = True,
                             queue_overrides: dict | None = None, lease: float | None = None) -> list:
        """`count` host processes on the same queue and tables, behind one port (host_port), as Azure
        runs several instances of the app behind its front end."""
        from .localhost import start_hosts

        args = ([] if timers else ["--no-timers"]) \
            + ([f"--queue-overrides={json.dumps(queue_overrides)}"] if queue_overrides else []) \
            + ([f"--lease={lease:g}"] if lease else [])
        _, self.balancer, self.hosts = start_hosts(count, self.host_env(), log_dir, args,
                                                   port=self.host_port)
        return self.hosts

    def stop(self) -> None:
        """Simulators first (they call the host), then the host, then storage."""
        for part in (self.rapid, self.graph):
            try:
                part.stop()
            except Exception:
                pass
        if self.host:
            self.host.stop()
        stop_process(self.host_process)
        if self.balancer:
            self.balancer.stop()
        for host in self.hosts:
            host.stop()
        if self.storage_proxy:
            self.storage_proxy.stop()
        self.azurite.stop()
        if self.clock is not None:
            world_clock.install(None)
