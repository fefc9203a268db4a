"""The app's own state in Azure Table Storage: event links, Graph subscriptions, meetings.

Every write that replaces an entity is ETag-checked, so two workers racing on one item cannot
silently overwrite each other (the loser gets `Conflict` and re-runs its decision). Keys, entities
and those checked writes are tables.py's; `Conflict`, `table_key` and `from_key` are imported from here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from .. import clock
from ..model.mapping import Synced
from .tables import Conflict, Tables, entity_values, from_key, make_entity, table_key

LINKS, SUBSCRIPTIONS, MEETINGS, FAILURES = "eventlinks", "subscriptions", "meetings", "jobfailures"
LEASE_SECONDS = 60.0  # longer than any piece of work done under a lease; a dead holder's lease expires
CLAIM_SECONDS = 600.0  # twice host.json's functionTimeout (5 min): a claim this old is a crashed job's


@dataclass
class EventLink:
    site: str
    item_id: str
    event_id: str
    mailbox: str
    synced: Synced
    change_key: str = ""
    meeting_id: str = ""
    removing: bool = False  # we are removing its Outlook event: that event's notifications are our own
    sensitivity: str = ""   # the sensitivity we last set on the event ("" = none: Outlook's own)
    online: str = ""        # Teams: "" not asked, the provider asked for, or "unavailable" (the calendar offers none)
    join_url: str = ""      # the join URL last written to the site
    people: str = ""        # who the attendees were read from (sync/target.people_key): the same people, no re-read
    series_id: str = ""     # the event became a series in Outlook: its master's id (event_id: the item's occurrence)
    etag: str | None = field(default=None, repr=False, compare=False)

    @property
    def pending(self) -> bool:
        """Written before Outlook was asked to create the event: the event may exist, its id is not known."""
        return not self.event_id


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


class Store(Tables):
    """Event links, Graph subscriptions, meetings, leases, and why poisoned jobs failed."""

    # -- event links: one entity per item ("item|<id>") and a reverse one per Outlook event ("event|<id>"),
    #    in the site's partition so both are written in one transaction.

    def _link_entity(self, link: EventLink) -> dict:
        return make_entity(link.site, f"item|{link.item_id}", event_id=link.event_id, mailbox=link.mailbox,
                           synced=link.synced.to_json(), change_key=link.change_key, meeting_id=link.meeting_id,
                           removing=link.removing, sensitivity=link.sensitivity, online=link.online,
                           join_url=link.join_url, people=link.people, series_id=link.series_id)

    def _link_from(self, site: str, entity) -> EventLink:
        data = entity_values(entity)
        return EventLink(site=site, item_id=from_key(entity["RowKey"]).split("|", 1)[1], event_id=data["event_id"],
                         mailbox=data["mailbox"], synced=Synced.from_json(data["synced"]),
                         change_key=data.get("change_key", ""), meeting_id=data.get("meeting_id", ""),
                         removing=bool(data.get("removing", False)), sensitivity=data.get("sensitivity", ""),
                         online=data.get("online", ""), join_url=data.get("join_url", ""),
                         people=data.get("people", ""), series_id=data.get("series_id", ""),
                         etag=entity.metadata["etag"])

    def get_link(self, site: str, item_id: str) -> EventLink | None:
        entity = self._get(LINKS, site, f"item|{item_id}")
        return self._link_from(site, entity) if entity else None

    def get_link_by_event(self, site: str, event_id: str) -> EventLink | None:
        reverse = self._get(LINKS, site, f"event|{event_id}")
        link = self.get_link(site, reverse["item_id"]) if reverse else None
        if link is None or event_id not in (link.event_id, link.series_id):
            return None  # a stale reverse row says nothing
        return link

    def follow_occurrence(self, link: EventLink, occurrence_id: str, series_id: str) -> EventLink:
        """The linked event became a series: the link names the item's occurrence, and its master still finds
        it (the master's reverse row stays), in one ETag-checked transaction (sync/series.py)."""
        moved = replace(link, event_id=occurrence_id, series_id=series_id)
        return self._link_transaction(moved, [
            ("update", self._link_entity(moved), {"mode": UpdateMode.REPLACE, "etag": link.etag,
                                                  "match_condition": MatchConditions.IfNotModified}),
            ("upsert", make_entity(link.site, f"event|{occurrence_id}", item_id=link.item_id))])

    def create_link(self, link: EventLink) -> EventLink:
        """A new link; a pending one (no event id yet) has no reverse row. Conflict when the item has one."""
        if link.pending:
            return replace(link, etag=self._create(LINKS, self._link_entity(link)))
        reverse = make_entity(link.site, f"event|{link.event_id}", item_id=link.item_id)
        return self._link_transaction(link, [("create", self._link_entity(link)), ("upsert", reverse)])

    def complete_link(self, pending: EventLink, event_id: str, **changes) -> EventLink:
        """A pending link learns its event, with the reverse row, in one transaction (ETag-checked)."""
        link = replace(pending, event_id=event_id, **changes)
        reverse = make_entity(link.site, f"event|{event_id}", item_id=link.item_id)
        return self._link_transaction(link, [
            ("update", self._link_entity(link), {"mode": UpdateMode.REPLACE, "etag": pending.etag,
                                                 "match_condition": MatchConditions.IfNotModified}),
            ("upsert", reverse)])

    def _link_transaction(self, link: EventLink, operations: list) -> EventLink:
        try:
            result = self._table(LINKS).submit_transaction(operations)
        except Exception as e:  # TableTransactionError wraps the 409/412 of the first operation
            if any(code in str(e) for code in ("EntityAlreadyExists", "UpdateConditionNotSatisfied", "ResourceNotFound")) \
                    or isinstance(e, (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError)):
                raise Conflict(f"link for {link.site} item {link.item_id} changed meanwhile") from e
            raise
        return replace(link, etag=result[0]["etag"])

    def save_link(self, link: EventLink) -> EventLink:
        return replace(link, etag=self._replace(LINKS, self._link_entity(link), link.etag))

    def delete_link(self, link: EventLink) -> None:
        """Forget a link; the item row goes first, so a failure in between leaves only a stale reverse row
        (which get_link_by_event ignores)."""
        for rk in (f"item|{link.item_id}",) + tuple(f"event|{e}" for e in (link.event_id, link.series_id) if e):
            self._delete(LINKS, link.site, rk)

    def claim_change(self, site: str, event_id: str, change_key: str, owner: str,
                     now: datetime | None = None) -> bool:
        """Claim one Outlook change (event, changeKey) for one job: concurrent duplicates lose. A claim older
        than CLAIM_SECONDS was left by a job that died (no job runs that long): another job takes it over,
        with an ETag-checked write, so of two jobs taking over at once one wins."""
        at = (now or clock.now()).timestamp()
        entity = make_entity(site, f"claim|{event_id}|{change_key}", owner=owner, at=at)
        try:
            self._create(LINKS, entity)
            return True
        except Conflict:
            current = self._get(LINKS, site, f"claim|{event_id}|{change_key}")
        if current is None or current["owner"] == owner:
            return True
        if at - float(current.get("at", 0)) < CLAIM_SECONDS:  # a claim from before claims aged is stale
            return False
        try:
            self._replace(LINKS, entity, current.metadata["etag"])
            return True
        except Conflict:
            return False

    def release_change(self, site: str, event_id: str, change_key: str) -> None:
        self._delete(LINKS, site, f"claim|{event_id}|{change_key}")

    def links(self, site: str) -> list[EventLink]:
        prefix = table_key("item|")
        query = "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high"
        rows = self._table(LINKS).query_entities(query, parameters={
            "pk": table_key(site), "low": prefix, "high": prefix[:-1] + chr(ord(prefix[-1]) + 1)})
        return [self._link_from(site, e) for e in rows]

    # -- subscriptions: by id (notifications) and by (site, mailbox) (meetings share one per organiser)

    def _sub_entity(self, sub: Subscription) -> dict:
        data = {k: v for k, v in vars(sub).items() if k not in ("id", "etag")}
        return make_entity("sub", sub.id, **data)

    def _sub_from(self, entity) -> Subscription:
        return Subscription(id=from_key(entity["RowKey"]), etag=entity.metadata["etag"], **entity_values(entity))

    def get_subscription(self, sub_id: str) -> Subscription | None:
        entity = self._get(SUBSCRIPTIONS, "sub", sub_id)
        return self._sub_from(entity) if entity else None

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
