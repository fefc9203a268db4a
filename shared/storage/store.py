"""The app's own state in Azure Table Storage: event links, Graph subscriptions, meetings.

Every write that replaces an entity is ETag-checked, so two workers racing on one item cannot
silently overwrite each other (the loser gets `Conflict` and re-runs its decision). Keys, entities
and those checked writes are tables.py's; `Conflict`, `table_key` and `from_key` are imported from here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from .links import CLAIM_SECONDS, LINKS, EventLink, LinkRows
from .tables import ANSWERING, Conflict, entity_values, from_key, make_entity, table_key

SUBSCRIPTIONS, MEETINGS, FAILURES = "subscriptions", "meetings", "jobfailures"
__all__ = ["Store", "EventLink", "Subscription", "Meeting", "Conflict", "LINKS", "SUBSCRIPTIONS", "MEETINGS",
           "FAILURES", "CLAIM_SECONDS", "LEASE_SECONDS", "table_key", "from_key"]
LEASE_SECONDS = 60.0  # longer than any piece of work done under a lease; a dead holder's lease expires
# "A filter string can contain at most 15 discrete comparisons" (Querying tables and entities,
# https://learn.microsoft.com/rest/api/storageservices/querying-tables-and-entities#constructing-filter-strings)
IDS_PER_QUERY = 15 - 1  # and one of them is PartitionKey's
POINT_READS = 4          # ids read one by one before a query is cheaper


@dataclass
class Subscription:
    id: str
    site: str
    mailbox: str
    user_id: str
    resource: str
    client_state: str = field(repr=False)  # a secret: never in a log line
    expires: str
    aad_tenant: str
    delta_link: str = ""
    immutable_ids: bool = False  # made asking for immutable ids: its notifications carry them
    etag: str | None = field(default=None, repr=False, compare=False)


@dataclass
class Meeting:
    site: str
    meeting_id: str
    mailbox: str
    subscription_id: str = ""
    subscription_item_id: str = ""
    active: bool = True
    etag: str | None = field(default=None, repr=False, compare=False)


class Store(LinkRows):
    """Event links, Graph subscriptions, meetings, leases, and why poisoned jobs failed."""

    # -- subscriptions: by id (notifications) and by (site, mailbox) (meetings share one per organiser)

    def _sub_entity(self, sub: Subscription) -> dict:
        data = {k: v for k, v in vars(sub).items() if k not in ("id", "etag")}
        return make_entity("sub", sub.id, **data)

    def _sub_from(self, entity) -> Subscription:
        return Subscription(id=from_key(entity["RowKey"]), etag=entity.metadata["etag"], **entity_values(entity))

    def get_subscription(self, sub_id: str) -> Subscription | None:
        entity = self._get(SUBSCRIPTIONS, "sub", sub_id)
        return self._sub_from(entity) if entity else None

    def get_subscriptions(self, ids: list[str]) -> dict[str, Subscription]:
        """The subscriptions among `ids`, by id. Up to POINT_READS ids (Graph's usual POST names one or two)
        are point reads, the cheapest lookup; more (only a hostile or unusual POST) cost one query per
        IDS_PER_QUERY ids, which Table Storage answers by scanning the partition ("Design for querying":
        an `or` of RowKeys is not a range query) but which bounds the work of one request. Both with the
        point reads' timeouts (a notification is answered while this waits)."""
        if len(ids) <= POINT_READS:
            return {sub.id: sub for sub in map(self.get_subscription, ids) if sub is not None}
        found = {}
        for i in range(0, len(ids), IDS_PER_QUERY):
            chunk = ids[i:i + IDS_PER_QUERY]
            names = {f"k{n}": table_key(sub_id) for n, sub_id in enumerate(chunk)}
            where = " or ".join(f"RowKey eq @{name}" for name in names)
            rows = self._table(SUBSCRIPTIONS).query_entities(f"PartitionKey eq 'sub' and ( {where} )",
                                                             parameters=names, **ANSWERING)
            found.update((sub.id, sub) for sub in map(self._sub_from, rows))
        return found

    def subscription_for(self, site: str, mailbox: str) -> Subscription | None:
        index = self._get(SUBSCRIPTIONS, "mailbox", f"{site}|{mailbox.lower()}")
        return self.get_subscription(index["subscription_id"]) if index and index["subscription_id"] else None

    # -- leases: one holder at a time for work that must not interleave (a mailbox's subscription and the
    #    meetings sharing it); taken with an ETag-checked write, taken over once the holder's time is up

    def acquire_lease(self, name: str, holder: str, now: float, ttl: float = LEASE_SECONDS) -> str | None:
        """The lease's ETag when `holder` now holds it; None while another holder's lease runs."""
        entity = make_entity("lease", name, holder=holder, until=now + ttl)
        try:
            return self._create(SUBSCRIPTIONS, entity)
        except Conflict:
            current = self._get(SUBSCRIPTIONS, "lease", name)
        if current is None or (current["holder"] != holder and float(current["until"]) > now):
            return None
        try:
            return self._replace(SUBSCRIPTIONS, entity, current.metadata["etag"])
        except Conflict:
            return None

    def release_lease(self, name: str, etag: str) -> None:
        """Give a lease back, unless it was taken over meanwhile (its ETag changed)."""
        try:
            self._table(SUBSCRIPTIONS).delete_entity(table_key("lease"), table_key(name), etag=etag,
                                                     match_condition=MatchConditions.IfNotModified)
        except (ResourceNotFoundError, ResourceModifiedError):
            pass

    def drop_lease(self, name: str) -> None:
        """End a lease whoever holds it (a mark of queued work, once the work starts: intake/lifecycle_once.py)."""
        self._delete(SUBSCRIPTIONS, "lease", name)

    # -- marks: one-time work done (e.g. a site's links moved to immutable ids)

    def mark(self, name: str, key: str) -> None:
        self._table(SUBSCRIPTIONS).upsert_entity(make_entity("mark", f"{name}|{key}", done=True))

    def marked(self, name: str, key: str) -> bool:
        return self._get(SUBSCRIPTIONS, "mark", f"{name}|{key}") is not None

    def put_subscription(self, sub: Subscription) -> Subscription:
        table = self._table(SUBSCRIPTIONS)
        meta = table.upsert_entity(self._sub_entity(sub), mode=UpdateMode.REPLACE)
        table.upsert_entity(make_entity("mailbox", f"{sub.site}|{sub.mailbox.lower()}", subscription_id=sub.id))
        return replace(sub, etag=meta["etag"])

    def save_subscription(self, sub: Subscription) -> Subscription:
        return replace(sub, etag=self._replace(SUBSCRIPTIONS, self._sub_entity(sub), sub.etag))

    def delete_subscription(self, sub: Subscription) -> None:
        index = self._get(SUBSCRIPTIONS, "mailbox", f"{sub.site}|{sub.mailbox.lower()}")
        keys = [("sub", sub.id)]
        if index and index["subscription_id"] == sub.id:
            keys.append(("mailbox", f"{sub.site}|{sub.mailbox.lower()}"))
        for pk, rk in keys:
            self._delete(SUBSCRIPTIONS, pk, rk)

    def set_expiries(self, expiries: dict[str, str]) -> None:
        """Record renewed expiry times, 100 to a transaction (a renewal run may renew thousands)."""
        table, items = self._table(SUBSCRIPTIONS), list(expiries.items())
        for i in range(0, len(items), 100):
            ops = [("update", make_entity("sub", sub_id, expires=expires), {"mode": UpdateMode.MERGE})
                   for sub_id, expires in items[i:i + 100]]
            try:
                table.submit_transaction(ops)
            except Exception:  # one was deleted meanwhile: the others one by one
                for op in ops:
                    try:
                        table.update_entity(op[1], mode=UpdateMode.MERGE)
                    except ResourceNotFoundError:
                        pass

    def subscriptions(self) -> list[Subscription]:
        rows = self._table(SUBSCRIPTIONS).query_entities("PartitionKey eq 'sub'")
        return [self._sub_from(e) for e in rows]

    # -- meetings

    def _meeting_entity(self, m: Meeting) -> dict:
        return make_entity(m.site, m.meeting_id, mailbox=m.mailbox, subscription_id=m.subscription_id,
                           subscription_item_id=m.subscription_item_id, active=m.active)

    def _meeting_from(self, site: str, entity) -> Meeting:
        data = entity_values(entity)
        return Meeting(site=site, meeting_id=from_key(entity["RowKey"]), etag=entity.metadata["etag"], **data)

    def get_meeting(self, site: str, meeting_id: str) -> Meeting | None:
        entity = self._get(MEETINGS, site, meeting_id)
        return self._meeting_from(site, entity) if entity else None

    def put_meeting(self, meeting: Meeting) -> Meeting:
        meta = self._table(MEETINGS).upsert_entity(self._meeting_entity(meeting), mode=UpdateMode.REPLACE)
        return replace(meeting, etag=meta["etag"])

    def meetings(self, site: str, subscription_id: str | None = None) -> list[Meeting]:
        query, params = "PartitionKey eq @pk", {"pk": table_key(site)}
        if subscription_id:
            query += " and subscription_id eq @sub"
            params["sub"] = subscription_id
        return [self._meeting_from(site, e) for e in self._table(MEETINGS).query_entities(query, parameters=params)]

    # -- why jobs failed, so poisoned messages can be explained and replayed

    def record_failure(self, key: str, reason: str, dequeue_count: int) -> None:
        entity = make_entity("failure", key, reason=reason[:2000], dequeue_count=dequeue_count)
        self._table(FAILURES).upsert_entity(entity)

    def failure(self, key: str) -> dict | None:
        entity = self._get(FAILURES, "failure", key)
        return entity_values(entity) if entity else None

    def forget_failure(self, key: str) -> None:
        self._delete(FAILURES, "failure", key)
