"""What operators and the catch-up need to remember, in its own table (`opsstate`) beside the sync's:

- runs: per site the last site-side catch-up and sweep (when, outcome, counts, and the watermark the
  next catch-up reads from); the last renewal run for the whole app;
- the last Graph notification received per site;
- the sync state last written to each item's status column (so it is written only when it changes);
- the invitees' answers last written to each item's answers column (likewise);
- the conflicts last written to each item's conflicts column (likewise);
- the last failures per site (abandoned or failed tasks), newest first, at most KEEP_FAILURES;
- the agenda index (agenda item → its event(s)) and each event's coalesced agenda update (when its
  job is due): shared/features/agenda_changes.py.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import UpdateMode

from ..model.mapping import format_utc, parse_utc
from .store import FAILURES, Store
from .tables import Conflict, entity_values, from_key, make_entity, table_key

OPS = "opsstate"
KEEP_FAILURES = 20
APP = "*"  # the partition suffix for app-wide runs (renewal)


@dataclass
class Run:
    """One kind of periodic run for one site (or the app): what happened last time."""

    kind: str                     # catch_up, sweep, renewal
    site: str
    scheduled: str = ""           # when the timer last enqueued it (so it is not enqueued twice)
    started: str = ""
    finished: str = ""
    outcome: str = ""             # "ok", or the error
    counts: dict = field(default_factory=dict)
    watermark: str = ""           # catch-up: the start of the last successful run (reads go on from there)


@dataclass(frozen=True)
class ItemState:
    key: str    # what the state is, without times: "synced", "waiting:busy", "not-synced:<reason>"…
    text: str   # what the status column shows
    at: str


@dataclass(frozen=True)
class AgendaDue:
    due: str    # when the job becomes visible in the queue (UTC ISO)
    job: str    # its id
    etag: str


class OpsStore(Store):
    # -- runs

    def run(self, kind: str, site: str) -> Run:
        entity = self._get(OPS, f"run|{site}", kind)
        if entity is None:
            return Run(kind=kind, site=site)
        data = entity_values(entity)
        return Run(kind=kind, site=site, scheduled=data.get("scheduled", ""), started=data.get("started", ""),
                   finished=data.get("finished", ""), outcome=data.get("outcome", ""),
                   counts=json.loads(data.get("counts") or "{}"), watermark=data.get("watermark", ""))

    def note_run(self, kind: str, site: str, **values) -> None:
        """Merge what is known about a run (a run in progress and its timer may write different fields)."""
        if "counts" in values:
            values["counts"] = json.dumps(values["counts"], sort_keys=True)
        entity = make_entity(f"run|{site}", kind, **values)
        self._table(OPS).upsert_entity(entity, mode=UpdateMode.MERGE)

    def runs(self, site: str) -> dict[str, Run]:
        return {kind: self.run(kind, site) for kind in ("catch_up", "sweep")}

    # -- notifications

    def note_notification(self, site: str, when: datetime) -> None:
        self._table(OPS).upsert_entity(make_entity("notified", site, at=format_utc(when)), mode=UpdateMode.REPLACE)

    def last_notification(self, site: str) -> str:
        entity = self._get(OPS, "notified", site)
        return entity["at"] if entity else ""

    # -- what was last written to an item's feature column, per kind: "state" (the status column,
    #    shared/features/status.py), "answers" (shared/features/answers.py), "conflicts" (shared/features/conflicts.py)

    def written(self, kind: str, site: str, item_id: str) -> ItemState | None:
        entity = self._get(OPS, f"{kind}|{site}", item_id)
        return ItemState(entity["key"], entity["text"], entity["at"]) if entity else None

    def save_written(self, kind: str, site: str, item_id: str, state: ItemState) -> None:
        entity = make_entity(f"{kind}|{site}", item_id, **asdict(state))
        self._table(OPS).upsert_entity(entity, mode=UpdateMode.REPLACE)

    def forget_written(self, kind: str, site: str, item_id: str) -> None:
        self._delete(OPS, f"{kind}|{site}", item_id)

    # -- the agenda index: which event(s) each agenda item belongs to (shared/features/agenda_changes.py)

    def agenda_events(self, site: str, agenda_id: str) -> list[str] | None:
        """The events the agenda item was last seen with; None when it was never seen."""
        entity = self._get(OPS, f"agenda|{site}", agenda_id)
        return [e for e in entity["events"].split(",") if e] if entity else None

    def note_agenda_events(self, site: str, entries: dict[str, list[str]]) -> None:
        """Remember agenda item → events, 100 to a transaction; what this process already wrote is skipped."""
        memo = self.__dict__.setdefault("_agenda_memo", {})
        fresh = [(i, ",".join(e)) for i, e in entries.items() if memo.get((site, i)) != ",".join(e)]
        table = self._table(OPS)
        for n in range(0, len(fresh), 100):
            chunk = fresh[n:n + 100]
            table.submit_transaction([("upsert", make_entity(f"agenda|{site}", i, events=e),
                                       {"mode": UpdateMode.REPLACE}) for i, e in chunk])
            if len(memo) > 50_000:
                memo.clear()
            memo.update({(site, i): e for i, e in chunk})

    def agenda_index(self, site: str) -> dict[str, list[str]]:
        """The whole index of a site: agenda item → events (the sweep)."""
        rows = self._table(OPS).query_entities("PartitionKey eq @pk", parameters={"pk": table_key(f"agenda|{site}")})
        return {from_key(e["RowKey"]): [i for i in e["events"].split(",") if i] for e in rows}

    def forget_agenda_items(self, site: str, agenda_ids: list[str]) -> None:
        memo = self.__dict__.setdefault("_agenda_memo", {})
        for agenda_id in agenda_ids:
            memo.pop((site, agenda_id), None)
            self._delete(OPS, f"agenda|{site}", agenda_id)

    def agenda_due(self, site: str, event_id: str) -> AgendaDue | None:
        """The agenda update of the event last enqueued: when it becomes visible, its job."""
        entity = self._get(OPS, f"agendadue|{site}", event_id)
        return AgendaDue(entity["due"], entity["job"], entity.metadata["etag"]) if entity else None

    def set_agenda_due(self, site: str, event_id: str, due: str, job: str, etag: str | None) -> bool:
        """Record the update just enqueued (ETag-checked); False when another writer got there first."""
        entity = make_entity(f"agendadue|{site}", event_id, due=due, job=job)
        try:
            if etag is None:
                self._create(OPS, entity)
            else:
                self._replace(OPS, entity, etag)
        except Conflict:
            return False
        return True

    # -- failures per site

    def note_failure(self, site: str, when: datetime, op: str, item: str, reason: str) -> None:
        # newest first: row keys sort by the time left until year 10000
        order = f"{int((parse_utc('9999-01-01T00:00:00Z') - when).total_seconds() * 1000):015d}"
        table = self._table(OPS)
        table.upsert_entity(make_entity(f"fail|{site}", f"{order}|{op}|{item}"[:400], at=format_utc(when), op=op,
                                        item=item, reason=reason[:1000]), mode=UpdateMode.REPLACE)
        for old in self.failures(site, limit=1000)[KEEP_FAILURES:]:
            try:
                table.delete_entity(table_key(f"fail|{site}"), old["row"])
            except ResourceNotFoundError:
                pass

    def failures(self, site: str, limit: int = KEEP_FAILURES) -> list[dict]:
        rows = self._table(OPS).query_entities("PartitionKey eq @pk", parameters={"pk": table_key(f"fail|{site}")})
        out = []
        for entity in rows:
            out.append({"row": entity["RowKey"], **entity_values(entity)})
            if len(out) >= limit:
                break
        return out

    # -- why poisoned jobs failed (written by the sync worker, Store.record_failure)

    def job_failures(self) -> dict[str, dict]:
        rows = self._table(FAILURES).query_entities("PartitionKey eq 'failure'")
        return {from_key(e["RowKey"]): entity_values(e) for e in rows}
