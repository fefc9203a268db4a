"""The audit trail in Table Storage (table `audit`): one row per write the app made to Outlook or a site.

PartitionKey is the site key (escaped), RowKey the write's time to the microsecond and a random suffix
(sortable, unique), so one site's rows read in time order and a time range is a RowKey range. Recording
never fails the sync: a row that cannot be written is logged as "AUDIT ROW LOST" and counted. Rows older
than AUDIT_DAYS are purged by the site's catch-up, at most PURGE_PER_RUN a run (docs/operations.md,
"The audit trail").
"""

from __future__ import annotations

import logging
import secrets
import threading
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote

from ..model.audit import OUTLOOK, AuditRow, current, field_names, row_key_at
from .tables import Tables, table_key

log = logging.getLogger("rapid_meetings")
AUDIT = "audit"
PURGE_PER_RUN = 2000   # a site's catch-up deletes at most this many old rows (it never takes over a run)
TRANSACTION = 100      # an entity group transaction holds at most 100 operations (one partition)
COLUMNS = ("at", "site", "target", "action", "why", "item", "event", "mailbox", "list", "subscription", "fields",
           "op", "job")


def _at(moment: datetime) -> str:
    return f"{moment.astimezone(timezone.utc):%Y-%m-%dT%H:%M:%S.%f}Z"


def _row(entity) -> AuditRow:
    values = {k: str(entity.get(k) or "") for k in COLUMNS}
    values["fields"] = tuple(f for f in values["fields"].split(",") if f)
    return AuditRow(**values)


class AuditLog(Tables):
    def __init__(self, storage, clock, days: int = 90):
        super().__init__(storage)
        self._clock = clock
        self.days = days
        self.lost = 0  # rows this process could not write
        self._lost_lock = threading.Lock()

    def wrote(self, site, target: str, action: str, *, item=None, event=None, mailbox=None, list_name="",
              subscription=None, fields=None) -> AuditRow | None:
        """Record one write (`site` a SiteConfig or its key); the reason, task and (unless given) item come
        from what the running code acts for. Never raises: a row not written is logged and counted."""
        now = current()
        row = AuditRow(at=_at(self._clock()), site=str(getattr(site, "key", site)), target=target, action=action,
                       why=now.why, item=str(item or now.item or ""), event=str(event or ""),
                       mailbox=str(mailbox or ""), list=list_name or (now.list if not item else ""),
                       subscription=str(subscription or ""),
                       fields=field_names(fields or {}), op=now.op, job=now.job)
        try:
            self.add(row)
        except Exception as e:  # whatever went wrong, the write it records has happened: the sync goes on
            with self._lost_lock:
                self.lost += 1
            log.error("AUDIT ROW LOST (%d in this process): site=%s %s %s item=%s event=%s why=%s: %s: %s",
                      self.lost, row.site, row.target, row.action, row.item, row.event, row.why,
                      type(e).__name__, str(e)[:200])
            return None
        return row

    def add(self, row: AuditRow) -> None:
        moment = datetime.fromisoformat(row.at.replace("Z", "+00:00"))
        values = row.to_json()
        values["fields"] = ",".join(row.fields)
        self._table(AUDIT).create_entity({"PartitionKey": table_key(row.site),
                                          "RowKey": f"{row_key_at(moment)}-{secrets.token_hex(4)}", **values})

    def query(self, site: str, since: datetime, until: datetime | None = None, item: str | None = None,
              after: str = "", limit: int = 1000, list_name: str = "") -> tuple[list[tuple[str, AuditRow]], str]:
        """A site's rows from `since` (and before `until`; of one `item`, of `list_name`), oldest first, after
        the RowKey `after` (a continuation), at most `limit`: the rows with their RowKeys, and the
        continuation when more remain."""
        flt, params = "PartitionKey eq @pk and RowKey ge @start", {"pk": table_key(site), "start": row_key_at(since)}
        if after:
            flt, params["after"] = flt + " and RowKey gt @after", after
        if until is not None:
            flt, params["until"] = flt + " and RowKey lt @until", row_key_at(until)
        if item:
            flt, params["item"] = flt + " and item eq @item", item
        if list_name:
            flt, params["list"] = flt + " and list eq @list", list_name
        out: list[tuple[str, AuditRow]] = []
        for entity in self._table(AUDIT).query_entities(flt, parameters=params, results_per_page=min(1000, limit + 1)):
            if len(out) == limit:
                return out, out[-1][0]
            out.append((entity["RowKey"], _row(entity)))
        return out, ""

    def purge(self, site: str, limit: int = PURGE_PER_RUN) -> int:
        """Delete the site's rows older than `days` (at most `limit` of them); how many went."""
        cutoff = row_key_at(self._clock() - timedelta(days=self.days))
        table = self._table(AUDIT)
        keys = []
        for entity in table.query_entities("PartitionKey eq @pk and RowKey lt @cutoff", select=["PartitionKey", "RowKey"],
                                           parameters={"pk": table_key(site), "cutoff": cutoff}, results_per_page=1000):
            keys.append((entity["PartitionKey"], entity["RowKey"]))
            if len(keys) == limit:
                break
        for at in range(0, len(keys), TRANSACTION):
            table.submit_transaction([("delete", {"PartitionKey": pk, "RowKey": rk}) for pk, rk in keys[at:at + TRANSACTION]])
        if keys:
            log.info("site=%s audit: %d row(s) older than %d days purged", site, len(keys), self.days)
        return len(keys)


_BATCH_ACTIONS = {("PATCH", "subscriptions"): "renew subscription", ("DELETE", "subscriptions"): "delete subscription",
                  ("POST", "subscriptions"): "create subscription", ("PATCH", "events"): "update event",
                  ("DELETE", "events"): "delete event", ("POST", "events"): "create event"}


def subscription_mailbox(resource: str) -> str:
    """The mailbox a subscription's resource names (`/users/{mailbox}/events`, `users/{id}/calendar/…`)."""
    parts = [p for p in str(resource or "").split("/") if p]
    return unquote(parts[1]) if len(parts) > 1 and parts[0].lower() == "users" else ""


def batch_writes(audit, site, requests_: list[dict], answers: dict[str, dict]) -> None:
    """Record each write of a Graph $batch that answered 2xx (a renewal's PATCHes)."""
    for request in requests_:
        method, url = str(request.get("method", "GET")).upper(), str(request.get("url", ""))
        status = (answers.get(str(request.get("id"))) or {}).get("status", 0)
        if method == "GET" or not 200 <= status < 300:
            continue
        parts = [p for p in url.split("?")[0].split("/") if p]
        kind = "subscriptions" if parts[:1] == ["subscriptions"] else "events" if "events" in parts else ""
        action = _BATCH_ACTIONS.get((method, kind), f"{method} {'/'.join(parts[:1])}")
        audit.wrote(site, OUTLOOK, action, fields=request.get("body"),
                    subscription=parts[1] if kind == "subscriptions" and len(parts) > 1 else None,
                    mailbox=subscription_mailbox(url) or None,
                    event=parts[3] if kind == "events" and len(parts) > 3 else None)


def purge_audit(svc, site) -> int:
    """The site's catch-up purges its old audit rows; a purge that fails is tried again by the next run."""
    try:
        return svc.audit.purge(site.key)
    except Exception as e:
        log.warning("site=%s audit purge failed (the next catch-up tries again): %s: %s", site.key, type(e).__name__, e)
        return 0


class NoAudit:
    """The recorder of a client built without one (tests, tools): records nothing."""

    lost = 0

    def wrote(self, *args, **kwargs) -> None:
        return None


NO_AUDIT = NoAudit()
