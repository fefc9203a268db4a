"""Event links in Azure Table Storage: one entity per item ("item|<id>") and a reverse one per Outlook event
("event|<id>"), in the site's partition so both are written in one transaction; claims of changes being
applied. Part of `store.Store` (this is its link half)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import UpdateMode

from .. import clock
from ..model.mapping import Synced
from .tables import Conflict, Tables, entity_values, from_key, make_entity, table_key

LINKS = "eventlinks"
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
    immutable: bool = False  # event_id is Graph's immutable id (created asking for one, or migrated: immutable_ids.py)
    ical_uid: str = ""       # the event's iCalUId: the key it keeps across calendars and mailboxes
    elsewhere: bool = False  # moved in Outlook to a calendar its subscription does not cover (sync/inbound.py)
    series_id: str = ""     # the event became a series in Outlook: its master's id (event_id: the item's occurrence)
    room: str = ""          # rooms: the item's room column as last synced ("" = none)
    room_address: str = ""  # rooms: the room mailbox invited for it ("" = none, or a room the tenant does not have)
    etag: str | None = field(default=None, repr=False, compare=False)

    @property
    def pending(self) -> bool:
        """Written before Outlook was asked to create the event: the event may exist, its id is not known."""
        return not self.event_id


class LinkRows(Tables):
    """Event links and change claims (store.Store)."""

    # -- event links: one entity per item ("item|<id>") and a reverse one per Outlook event ("event|<id>"),
    #    in the site's partition so both are written in one transaction.

    def _link_entity(self, link: EventLink) -> dict:
        return make_entity(link.site, f"item|{link.item_id}", event_id=link.event_id, mailbox=link.mailbox,
                           synced=link.synced.to_json(), change_key=link.change_key, meeting_id=link.meeting_id,
                           removing=link.removing, sensitivity=link.sensitivity, online=link.online,
                           join_url=link.join_url, people=link.people, series_id=link.series_id,
                           immutable=link.immutable, ical_uid=link.ical_uid, elsewhere=link.elsewhere,
                           room=link.room, room_address=link.room_address)

    def _link_from(self, site: str, entity) -> EventLink:
        data = entity_values(entity)
        return EventLink(site=site, item_id=from_key(entity["RowKey"]).split("|", 1)[1], event_id=data["event_id"],
                         mailbox=data["mailbox"], synced=Synced.from_json(data["synced"]),
                         change_key=data.get("change_key", ""), meeting_id=data.get("meeting_id", ""),
                         removing=bool(data.get("removing", False)), sensitivity=data.get("sensitivity", ""),
                         online=data.get("online", ""), join_url=data.get("join_url", ""),
                         people=data.get("people", ""), series_id=data.get("series_id", ""),
                         immutable=bool(data.get("immutable", False)), ical_uid=data.get("ical_uid", ""),
                         elsewhere=bool(data.get("elsewhere", False)), room=data.get("room", ""),
                         room_address=data.get("room_address", ""),
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

    def rekey_link(self, link: EventLink, event_id: str) -> EventLink:
        """The link's event under its immutable id (subscriptions/immutable_ids.py): the item row and the new
        reverse row in one ETag-checked transaction (Conflict when the link changed meanwhile); the old
        reverse row goes after (left behind, it is a stale one get_link_by_event ignores)."""
        moved = replace(link, event_id=event_id, immutable=True)
        moved = self._link_transaction(moved, [
            ("update", self._link_entity(moved), {"mode": UpdateMode.REPLACE, "etag": link.etag,
                                                  "match_condition": MatchConditions.IfNotModified}),
            ("upsert", make_entity(link.site, f"event|{event_id}", item_id=link.item_id))])
        if link.event_id and link.event_id != event_id:
            self._delete(LINKS, link.site, f"event|{link.event_id}")
        return moved

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
        """Claim an event for applying one Outlook change of it (changeKey) in one job. One claim per event,
        not per change: two deliveries of one change must not apply it side by side, and two different
        changes must not either — the job holding the older one would write its stale read into the site
        after the newer one, and then find the event's changeKey already recorded (`claimed_change` tells a
        loser which). A claim older than CLAIM_SECONDS was left by a job that died (no job runs that long):
        another job takes it over, with an ETag-checked write, so of two jobs taking over at once one wins."""
        at = (now or clock.now()).timestamp()
        entity = make_entity(site, f"claim|{event_id}", owner=owner, at=at, change_key=change_key)
        try:
            self._create(LINKS, entity)
            return True
        except Conflict:
            current = self._get(LINKS, site, f"claim|{event_id}")
        if current is None or (current["owner"] == owner and current.get("change_key") == change_key):
            return True
        if at - float(current.get("at", 0)) < CLAIM_SECONDS:  # a claim from before claims aged is stale
            return False
        try:
            self._replace(LINKS, entity, current.metadata["etag"])
            return True
        except Conflict:
            return False

    def claimed_change(self, site: str, event_id: str) -> str | None:
        """The change key the event's claim is held for (None: no claim)."""
        current = self._get(LINKS, site, f"claim|{event_id}")
        return None if current is None else current.get("change_key", "")

    def release_change(self, site: str, event_id: str, change_key: str) -> None:
        """Let the event's claim go, if it is still the one for this change (a takeover's is not ours)."""
        current = self._get(LINKS, site, f"claim|{event_id}")
        if current is not None and current.get("change_key") == change_key:
            self._delete(LINKS, site, f"claim|{event_id}")

    def links(self, site: str) -> list[EventLink]:
        prefix = table_key("item|")
        query = "PartitionKey eq @pk and RowKey ge @low and RowKey lt @high"
        rows = self._table(LINKS).query_entities(query, parameters={
            "pk": table_key(site), "low": prefix, "high": prefix[:-1] + chr(ord(prefix[-1]) + 1)})
        return [self._link_from(site, e) for e in rows]

