"""Which occurrence of a series made in Outlook is a site item's own: the one whose `originalStart` is the
item's start (api-reference/v1.0/resources/event.md, originalStart; read with one /instances call around
it, api/event-list-instances.md). Used where the sync follows the series (sync/series.py) and where a
removal must cancel that occurrence, never the series (sync/perform.py)."""

from __future__ import annotations

from datetime import timedelta

from ..model.mapping import format_utc, parse_utc

AROUND = timedelta(days=1)       # the /instances window either side of the item's start
SAME_MEETING = timedelta(hours=12)  # an occurrence further than this from the item's start is another meeting


def own_occurrence(instances: list[dict], start: str) -> dict | None:
    """The occurrence that was the item's meeting: the one whose originalStart is the item's start; when
    the organiser moved the series' time as they made it, the one nearest to it within half a day."""
    wanted = parse_utc(start)
    dated = [(abs(parse_utc(i["originalStart"]) - wanted), i) for i in instances if i.get("originalStart")]
    dated = [(gap, i) for gap, i in dated if gap < SAME_MEETING]
    return min(dated, key=lambda pair: pair[0])[1] if dated else None


def find_own(graph, link, series_id: str) -> dict | None:
    """The item's own occurrence of the series `series_id` (None when the series has none near its start)."""
    start = parse_utc(link.synced.start)
    instances = graph.instances(link.mailbox, series_id, format_utc(start - AROUND), format_utc(start + AROUND))
    return own_occurrence(instances, link.synced.start)
