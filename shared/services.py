"""Everything the app talks to, built once per process and each part only when first used: an HTTP
function that only enqueues never imports the Graph, MSAL or HTTP client code (cold start)."""

from __future__ import annotations

import threading
import time
from datetime import datetime

from . import clock
from .config import Settings, SiteConfig

SUBSCRIPTION_CACHE_SECONDS = 60
MISS_CACHE_SECONDS = 5
MAX_CACHED = 10_000   # subscriptions kept for the worker's look-ups (notifications never read this cache)


def utcnow() -> datetime:
    return clock.now()


class Services:
    def __init__(self, settings: Settings, clock=utcnow):
        self.settings = settings
        self.clock = clock
        self._lock = threading.RLock()
        self._parts: dict = {}
        self._subscriptions: dict[str, tuple[float, object]] = {}

    def part(self, key, build):
        """What `build()` makes, once per these Services (once per process): for state a layer to the right
        keeps per process, e.g. the breakers (jobs/breakers.py) and the sites' shares (jobs/fair_share.py)."""
        return self._part(key, build)

    def _part(self, key, build):
        part = self._parts.get(key)
        if part is None:
            with self._lock:
                part = self._parts.get(key)
                if part is None:
                    part = self._parts[key] = build()
        return part

    @property
    def store(self):
        from .storage.store import Store

        return self._part("store", lambda: Store(self.settings.storage))

    @property
    def ops(self):
        from .storage.ops_store import OpsStore

        return self._part("ops", lambda: OpsStore(self.settings.storage))

    @property
    def health(self):
        from .storage.health import HealthStore

        return self._part("health", lambda: HealthStore(self.settings.storage))

    @property
    def held(self):
        from .storage.held_removals import HeldRemovals

        return self._part("held", lambda: HeldRemovals(self.settings.storage))

    @property
    def audit(self):
        from .storage.audit import AuditLog

        return self._part("audit", lambda: AuditLog(self.settings.storage, self.clock, self.settings.audit_days))

    @property
    def queue(self):
        from .storage.work_queue import WorkQueue

        return self._part("queue", lambda: WorkQueue(self.settings.storage, self.settings.work_queue))

    @property
    def session(self):
        from .clients.remote import new_session

        return self._part("session", lambda: new_session(self.settings.ca_bundle))

    @property
    def tokens(self):
        from .clients.remote import Tokens

        return self._part("tokens", lambda: Tokens(self.settings, self.session))

    @property
    def mailboxes(self):
        from .clients.graph import MailboxLimiter

        return self._part("mailboxes", MailboxLimiter)

    def graph(self, site: SiteConfig):
        from .clients.graph import GraphClient

        # a site whose bounds change (an app setting) gets a client checking the new ones
        return self._part(("graph", site.key, site.mailbox_domains, site.mailbox_group),
                          lambda: GraphClient(self.settings, site, self.session, self.tokens, self.mailboxes,
                                                   audit=self.audit))

    def rapid(self, site: SiteConfig):
        from .clients.rapid import RapidClient

        return self._part(("rapid", site.key), lambda: RapidClient(site, self.session, self.tokens, audit=self.audit))

    def site(self, key: str) -> SiteConfig:
        """A configured site by key; a job for a site no longer configured can never succeed."""
        site = self.settings.sites.get(str(key).lower())
        if site is None:
            from .model.errors import SITE_GONE, JobAbandoned

            raise JobAbandoned(f"site {key} is no longer configured", SITE_GONE)
        return site

    def find_subscription(self, sub_id: str):
        """A subscription by id, cached for a minute (an unknown id for a few seconds): for the worker and
        the status notes, which act on work already accepted. Notifications are verified with
        `subscriptions_now`, never with this cache."""
        now = time.monotonic()
        cached = self._subscriptions.get(sub_id)
        if cached and now - cached[0] < (SUBSCRIPTION_CACHE_SECONDS if cached[1] is not None else MISS_CACHE_SECONDS):
            return cached[1]
        sub = self.store.get_subscription(sub_id)
        self._remember(sub_id, sub, now)
        return sub

    def _remember(self, sub_id: str, sub, now: float) -> None:
        with self._lock:
            self._subscriptions.pop(sub_id, None)
            self._subscriptions[sub_id] = (now, sub)
            while len(self._subscriptions) > MAX_CACHED:  # the oldest goes, not all of them
                self._subscriptions.pop(next(iter(self._subscriptions)))

    def subscriptions_now(self, ids) -> dict:
        """Each id's subscription as the table holds it now (None: not ours). A notification is checked
        against this, never a cached copy, so a clientState rotated away or a subscription removed is
        refused at once in every process, and one made a moment ago is found at once (a miss is never
        remembered: a notification can arrive between Graph's answer to the create and our row, and the
        next one must not be dropped too). The ids are read together, a query per 14 (store.get_subscriptions):
        the 100 a POST may name cost at most 8 queries, and ids not found never enter the cache."""
        ids = set(ids)
        found = self.store.get_subscriptions(sorted(ids)) if ids else {}
        now = time.monotonic()
        for sub_id, sub in found.items():
            self._remember(sub_id, sub, now)  # the worker, about to act on it, finds it cached
        return {i: found.get(i) for i in ids}
