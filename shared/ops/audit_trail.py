"""The audit trail read out (`GET ops/audit`, the status page's `?item=`): one site's rows in a time range as
JSON lines, a page at a time, for a customer's SIEM (devtools/audit_export.py pages through it).

Parameters: `site` (tenant/site), `since` (ISO 8601), optional `until` (after `since`), `item` (one site
item's rows), `limit` (1–1000, default 1000) and `after` (the `X-Continuation` of the page before). A bad
parameter is refused naming it, before anything is read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime

from ..model.audit import check_item_id
from ..model.errors import BadRequest, NotFound
from ..model.mapping import parse_utc
from ..services import Services

MAX_LIMIT = 1000
CONTINUATION = re.compile(r"^\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{8}$")  # a RowKey of storage/audit.py


@dataclass(frozen=True)
class AuditQuery:
    site: str
    since: datetime
    until: datetime | None = None
    item: str | None = None
    limit: int = MAX_LIMIT
    after: str = ""


def _instant(params: dict, name: str) -> datetime | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        if not raw.isascii():
            raise ValueError
        return parse_utc(raw)
    except ValueError:
        raise BadRequest(f"parameter {name}: {raw[:40]!r} is not an ISO 8601 date-time "
                         f"(e.g. 2026-01-31T00:00:00Z)") from None


def audit_query(svc: Services, params: dict) -> AuditQuery:
    """The query the parameters ask for; BadRequest names a bad parameter, NotFound an unknown site."""
    key = params.get("site") or ""
    if not key:
        raise BadRequest("parameter site is missing (tenant/site)")
    site = svc.settings.sites.get(key.lower())
    if site is None:
        raise NotFound(f"parameter site: unknown site {key[:80]!r}")
    since = _instant(params, "since")
    if since is None:
        raise BadRequest("parameter since is missing (an ISO 8601 date-time: the oldest row wanted)")
    until = _instant(params, "until")
    if until is not None and until <= since:
        raise BadRequest("parameter until must be later than since")
    raw_limit = params.get("limit") or str(MAX_LIMIT)
    if not (raw_limit.isascii() and raw_limit.isdigit()) or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise BadRequest(f"parameter limit must be a whole number from 1 to {MAX_LIMIT}, not {raw_limit[:20]!r}")
    after = params.get("after") or ""
    if after and not CONTINUATION.match(after):
        raise BadRequest("parameter after is not a continuation this route gave (its X-Continuation header)")
    item = params.get("item")
    if item is not None:
        try:
            item = check_item_id(item)
        except ValueError as e:
            raise BadRequest(f"parameter {e}") from None
    return AuditQuery(site.key, since, until, item, int(raw_limit), after)


def audit_page(svc: Services, params: dict) -> tuple[str, str]:
    """One page of rows as JSON lines, and the continuation ("" when this was the last page)."""
    query = audit_query(svc, params)
    rows, continuation = svc.audit.query(query.site, query.since, query.until, query.item, query.after, query.limit)
    return "".join(json.dumps(row.to_json(), ensure_ascii=False) + "\n" for _, row in rows), continuation


def item_audit(svc: Services, site: str, item: str, since: datetime, shown: int = 200) -> list[dict]:
    """A Meeting Events item's last `shown` rows since `since` for the status page (oldest first), as plain
    data: the writes to it and to its Outlook event."""
    rows, _ = svc.audit.query(site, since, item=item, limit=MAX_LIMIT, list_name="events")
    return [row.to_json() for _, row in rows[-shown:]]
