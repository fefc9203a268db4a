"""The mass-removal guard's state (sync/removal_guard.py), in its own table (`heldremovals`), one partition
per site:

- a held removal per item (`held|<item id>`): the Outlook event or the site item it would have removed,
  since when and why, and whether an operator released it (then the removal's own job performs it);
- the site's removal window (`window`): how many removals were let through in each of the last 60
  minutes, and the site's linked events as last counted. Written with its ETag, so instances racing on
  one site's removals count each one once and none passes the limit unseen.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from .tables import Conflict, Tables, entity_values, from_key, make_entity, table_key

HELD = "heldremovals"
OUTLOOK, SITE = "outlook", "site"  # what a removal removes: the Outlook event, or the site item (cancelled)
TRANSACTION = 100                  # Table Storage's most operations in one batch


@dataclass
class HeldRemoval:
    site: str
    item_id: str
    event_id: str
    mailbox: str
    direction: str                 # OUTLOOK (a site deletion or cancellation) or SITE (an Outlook one)
    since: str                     # when it was held (UTC ISO)
    why: str                       # the removal's own reason and the guard's
    released: bool = False         # an operator let it through: its job performs it without counting it
    etag: str | None = field(default=None, repr=False, compare=False)


@dataclass
class Window:
    """The removals let through per minute (epoch minute -> count) and the linked events last counted."""

    minutes: dict[int, int] = field(default_factory=dict)
    links: int = 0
    links_at: str = ""
    etag: str | None = field(default=None, repr=False, compare=False)


class HeldRemovals(Tables):
    # -- held removals

    def _entity(self, row: HeldRemoval) -> dict:
        return make_entity(row.site, f"held|{row.item_id}", event_id=row.event_id, mailbox=row.mailbox,
                           direction=row.direction, since=row.since, why=row.why[:1000], released=row.released)

    def _from(self, site: str, entity) -> HeldRemoval:
        data = entity_values(entity)
        return HeldRemoval(site=site, item_id=from_key(entity["RowKey"]).split("|", 1)[1],
                           event_id=data.get("event_id", ""), mailbox=data.get("mailbox", ""),
                           direction=data.get("direction", OUTLOOK), since=data.get("since", ""),
                           why=data.get("why", ""), released=bool(data.get("released", False)),
                           etag=entity.metadata["etag"])

    def get(self, site: str, item_id: str) -> HeldRemoval | None:
        entity = self._get(HELD, site, f"held|{item_id}")
        return self._from(site, entity) if entity else None

    def held(self, site: str, direction: str | None = None) -> list[HeldRemoval]:
        """The site's held removals (of one direction), oldest first."""
        prefix = table_key("held|")
        query = "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high"
        params = {"pk": table_key(site), "low": prefix, "high": prefix[:-1] + chr(ord(prefix[-1]) + 1)}
        if direction:
            query += " and direction eq @direction"
            params["direction"] = direction
        rows = [self._from(site, e) for e in self._table(HELD).query_entities(query, parameters=params)]
        return sorted(rows, key=lambda r: (r.since, r.item_id))

    def any_held(self, site: str, direction: str) -> bool:
        """Whether the site has a removal of this direction held and not released (one page of one row)."""
        query = "PartitionKey eq @pk and direction eq @direction and released eq false"
        rows = self._table(HELD).query_entities(query, parameters={"pk": table_key(site), "direction": direction},
                                                results_per_page=1, select=["RowKey"])
        return next(iter(rows), None) is not None

    def hold(self, rows: list[HeldRemoval]) -> list[HeldRemoval]:
        """Write these held removals, 100 to a transaction; an item already held keeps its row. The rows
        written (those not held before)."""
        written = []
        for i in range(0, len(rows), TRANSACTION):
            chunk = rows[i:i + TRANSACTION]
            try:
                self._table(HELD).submit_transaction([("create", self._entity(r)) for r in chunk])
                written += chunk
            except Exception:  # one is held already (or the batch mixes partitions): one by one
                for row in chunk:
                    try:
                        written.append(replace(row, etag=self._create(HELD, self._entity(row))))
                    except Conflict:
                        pass
        return written

    def release(self, row: HeldRemoval) -> HeldRemoval:
        """Mark a held removal released (ETag-checked: Conflict when it changed or went meanwhile)."""
        released = replace(row, released=True)
        return replace(released, etag=self._replace(HELD, self._entity(released), row.etag))

    def forget(self, site: str, item_id: str) -> None:
        self._delete(HELD, site, f"held|{item_id}")

    # -- the removal window

    def window(self, site: str) -> Window:
        entity = self._get(HELD, site, "window")
        if entity is None:
            return Window()
        data = entity_values(entity)
        minutes = {int(k): int(v) for k, v in json.loads(data.get("minutes") or "{}").items()}
        return Window(minutes, int(data.get("links", 0)), data.get("links_at", ""), entity.metadata["etag"])

    def save_window(self, site: str, window: Window) -> Window:
        """Write the window with its ETag (a new one is created); Conflict when another instance wrote first."""
        entity = make_entity(site, "window", minutes=json.dumps({str(k): v for k, v in window.minutes.items()}),
                             links=window.links, links_at=window.links_at)
        if window.etag is None:
            return replace(window, etag=self._create(HELD, entity))
        return replace(window, etag=self._replace(HELD, entity, window.etag))

    def reset(self, site: str) -> None:
        """Forget every held removal and the window of one site (tests and a site removed from SITES)."""
        for row in self.held(site):
            self.forget(site, row.item_id)
        self._delete(HELD, site, "window")
