"""Deciding what to write when both sides may have changed since the last sync. Pure.

Fields move in groups (the times travel together: a start from one side and an end from the other
could make no sense). A group changed on one side only takes that side's value; changed on both to
different values is a conflict, won by the later modification.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

from ..model.mapping import Synced, outlook_patch, parse_utc, site_fields

GROUPS = (("title",), ("description",), ("start", "end", "all_day"), ("location",))


@dataclass(frozen=True)
class Plan:
    to_outlook: dict     # the Graph PATCH body, empty when Outlook already agrees
    to_site: dict        # site columns to write, empty when the site already agrees
    synced: Synced       # what both sides hold afterwards
    conflicts: tuple[str, ...]
    winner: str = ""


def _later(site_modified: str | None, outlook_modified: str | None) -> str:
    try:
        return "outlook" if parse_utc(outlook_modified) > parse_utc(site_modified) else "site"
    except (TypeError, ValueError):
        return "site"


def reconcile(base: Synced, site: Synced, site_modified: str | None, outlook: Synced,
              outlook_modified: str | None, zone: ZoneInfo, col) -> Plan:
    winner = _later(site_modified, outlook_modified)
    values, conflicts = {}, []
    for group in GROUPS:
        site_changed = any(getattr(site, f) != getattr(base, f) for f in group)
        outlook_changed = any(getattr(outlook, f) != getattr(base, f) for f in group)
        differ = any(getattr(site, f) != getattr(outlook, f) for f in group)
        take = site
        if outlook_changed and not site_changed:
            take = outlook
        elif outlook_changed and site_changed and differ:
            conflicts.extend(group)
            take = outlook if winner == "outlook" else site
        values.update({f: getattr(take, f) for f in group})
    merged = replace(site, **values)
    return Plan(
        to_outlook=outlook_patch(outlook, merged, zone),
        to_site=site_fields(merged, merged.changed_fields(site), col),
        synced=merged,
        conflicts=tuple(conflicts),
        winner=winner if conflicts else "",
    )
