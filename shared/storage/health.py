"""What the app remembers about outages, in its own table (`health`), shared by every instance:

- breakers: per (site, dependency) whether it is down — since when, failures seen, when the next probe
  may run — and, once it is up again, how long it was down and how long its backlog took to drain
  (shared/jobs/breakers.py decides; this only keeps the rows, ETag-checked);
- unsettled marks: per site, the work whose last run did not finish (an item, an Outlook event), kept
  until a run of it finishes, so the catch-up replays it whatever its watermark says
  (shared/jobs/unsettled.py);
- load rows: per site, what keeps one site from crowding out the others — its share of the worker in the
  current minute (shared/jobs/fair_share.py) and its whole-site "sync now" (shared/jobs/site_sync.py).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields

from .tables import Conflict, Tables, entity_values, from_key, make_entity, table_key

HEALTH = "health"
__all__ = ["Breaker", "Conflict", "HealthStore", "Mark"]


@dataclass(frozen=True)
class Breaker:
    site: str
    dependency: str            # graph | site | identity
    state: str = "closed"      # closed | open
    failures: int = 0          # transient failures in a row while closed
    down_since: str = ""       # the first failure of this outage (UTC ISO)
    probe_at: str = ""         # open: when the next job may try the dependency
    probes: int = 0            # open: probes that failed (the wait grows with them)
    up_since: str = ""         # closed after an outage: when a probe succeeded
    was_down_since: str = ""   # closed after an outage: when that outage began
    drained_at: str = ""       # the last parked job that ran after the outage
    etag: str = ""

    @property
    def open(self) -> bool:
        return self.state == "open"


@dataclass(frozen=True)
class Mark:
    site: str
    key: str          # "item:<id>" or "event:<id>"
    task: dict        # the work that brings it in line again
    since: str        # when it first failed
    replayed: str = ""  # when the catch-up last enqueued it


class HealthStore(Tables):
    # -- breakers

    def breakers(self, site: str) -> dict[str, Breaker]:
        rows = self._table(HEALTH).query_entities("PartitionKey eq @pk", parameters={"pk": table_key(f"breaker|{site}")})
        return {b.dependency: b for b in (self._breaker(site, e) for e in rows)}

    def _breaker(self, site: str, entity) -> Breaker:
        names = {f.name for f in fields(Breaker)} - {"site", "dependency", "etag"}
        values = {k: v for k, v in entity_values(entity).items() if k in names}
        return Breaker(site, from_key(entity["RowKey"]), etag=entity.metadata["etag"], **values)

    def save_breaker(self, breaker: Breaker) -> Breaker:
        """Write a breaker if nobody changed it since it was read (Conflict otherwise)."""
        values = {k: v for k, v in asdict(breaker).items() if k not in ("site", "dependency", "etag")}
        entity = make_entity(f"breaker|{breaker.site}", breaker.dependency, **values)
        etag = self._replace(HEALTH, entity, breaker.etag) if breaker.etag else self._create(HEALTH, entity)
        return Breaker(**{**asdict(breaker), "etag": etag})

    def forget_breakers(self, site: str) -> None:
        for dependency in self.breakers(site):
            self._delete(HEALTH, f"breaker|{site}", dependency)

    # -- unsettled marks

    def mark(self, mark: Mark) -> None:
        """Remember unfinished work; a mark already there keeps its first `since`."""
        entity = make_entity(f"unsettled|{mark.site}", mark.key, task=json.dumps(mark.task), since=mark.since,
                             replayed=mark.replayed)
        try:
            self._create(HEALTH, entity)
        except Conflict:
            pass

    def marks(self, site: str) -> list[Mark]:
        rows = self._table(HEALTH).query_entities("PartitionKey eq @pk", parameters={"pk": table_key(f"unsettled|{site}")})
        return [Mark(site, from_key(e["RowKey"]), json.loads(e["task"]), e["since"], e.get("replayed", "")) for e in rows]

    def note_replayed(self, mark: Mark, when: str) -> None:
        entity = make_entity(f"unsettled|{mark.site}", mark.key, task=json.dumps(mark.task), since=mark.since,
                             replayed=when)
        self._table(HEALTH).upsert_entity(entity)

    def unmark(self, site: str, key: str) -> None:
        self._delete(HEALTH, f"unsettled|{site}", key)

    # -- load rows (jobs/fair_share.py, jobs/site_sync.py)

    def load_row(self, site: str, kind: str) -> tuple[dict, str] | None:
        """A site's load row of this kind: its values and its ETag; None when there is none."""
        entity = self._get(HEALTH, f"load|{site}", kind)
        return (entity_values(entity), entity.metadata["etag"]) if entity else None

    def save_load_row(self, site: str, kind: str, values: dict, etag: str | None) -> str:
        """Write it if nobody changed it since it was read at `etag` (None: create it); Conflict otherwise."""
        entity = make_entity(f"load|{site}", kind, **values)
        return self._replace(HEALTH, entity, etag) if etag else self._create(HEALTH, entity)
