"""The field mapping between a site's Meeting Event and an Outlook event. Pure: no I/O.

Both directions meet in one canonical form, `Synced`, which is also what the store keeps as "the
content last synced" for each link:
  - site → Outlook: `outlook_payload(synced, zone)` builds the Graph body; `outlook_patch(old, new,
    zone)` only what changed.
  - Outlook → site: `synced_from_outlook(event, zone)`; `site_fields(synced, changed, site)` the
    columns to write.
Timed events travel in UTC. All-day events are midnight to midnight in the site's time zone: in
the site as the UTC instants of those local midnights, in Outlook as local dates in that zone, named
by its Windows name (Graph takes no IANA name but a short list: resources/datetimetimezone.md).
Descriptions are HTML that Exchange rewrites (html_body): an Outlook body that says what a known
description says is that description.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from .errors import BAD_CONTENT, BAD_DATE, END_BEFORE_START
from .html_allow_list import clean_html
from .html_body import compose_body, same_html, split_body

UTC = timezone.utc
INBOUND_FIELDS = ("title", "description", "start", "end", "all_day", "location")


class UnreadableItem(ValueError):
    """A site item the mapping cannot read; `code` and `about` say why (model/errors.py's reason codes)."""

    def __init__(self, message: str, code: str, about: str):
        super().__init__(message)
        self.code, self.about = code, about


@dataclass(frozen=True)
class Synced:
    """A meeting event's mapped content, in site terms (times as UTC ISO strings)."""

    title: str
    description: str
    start: str
    end: str
    all_day: bool
    location: str
    attendees: tuple[str, ...] = ()
    agenda: str = ""  # the agenda section's HTML (issue 15): written from the site's agenda, never read back

    def texts(self) -> tuple[str, str]:
        """The HTML texts Outlook may give back in Exchange's words."""
        return self.description, self.agenda

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> "Synced":
        data = json.loads(raw)
        data["attendees"] = tuple(data.get("attendees", ()))
        return cls(**data)

    def digest(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    def changed_fields(self, other: "Synced", fields=INBOUND_FIELDS) -> set[str]:
        return {f for f in fields if getattr(self, f) != getattr(other, f)}


def parse_utc(value: str) -> datetime:
    """An ISO 8601 instant; naive means UTC. Raises ValueError on anything else."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"not a date-time: {value!r}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Graph sends 7 fractional digits; Python reads at most 6.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_utc(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The instant a local day starts (where midnight does not exist, the first instant after the gap)."""
    moment = datetime.combine(day, time(0), tzinfo=zone)
    roundtrip = moment.astimezone(UTC).astimezone(zone)
    if roundtrip.replace(tzinfo=None) != moment.replace(tzinfo=None):
        moment = roundtrip  # midnight fell in a DST gap
    return moment.astimezone(UTC)


def all_day_span(start: datetime, end: datetime, zone: ZoneInfo) -> tuple[date, date]:
    """First local day and the day after the last one, from two instants."""
    first = start.astimezone(zone).date()
    local_end = end.astimezone(zone)
    after_last = local_end.date()
    if local_end.time() != time(0) and local_midnight(after_last, zone) != end:
        after_last += timedelta(days=1)
    return first, max(after_last, first + timedelta(days=1))


def normalise(synced: Synced, zone: ZoneInfo) -> Synced:
    """The one form of a content: all-day spans snapped to local midnights, attendees sorted."""
    attendees = tuple(sorted({a.strip().lower() for a in synced.attendees if a and a.strip()}))
    start, end = parse_utc(synced.start), parse_utc(synced.end)
    if synced.all_day:
        first, after_last = all_day_span(start, end, zone)
        start, end = local_midnight(first, zone), local_midnight(after_last, zone)
    if end < start:
        raise UnreadableItem(f"end {synced.end} is before start {synced.start}", END_BEFORE_START, synced.end)
    return replace(synced, start=format_utc(start), end=format_utc(end), attendees=attendees,
                   title=synced.title or "", description=clean_html(synced.description or ""),
                   location=synced.location or "")


def windows_zone(zone: ZoneInfo) -> str:
    """Graph's name for a zone: its Windows name, from CLDR's mapping as tzlocal ships it."""
    from tzlocal.windows_tz import tz_win  # imported on first use: keeps the cold start light

    name = tz_win.get(zone.key)
    if name is None:
        raise ValueError(f"time zone {zone.key!r} has no Windows name (CLDR windowsZones), and Microsoft Graph "
                         f"takes no other for all-day events")
    return name


def zone_named(name: str):
    """The zone a Graph dateTimeTimeZone names: a Windows name, UTC, or one of Graph's IANA extras."""
    if name.upper() in ("UTC", "GMT", "ETC/UTC"):
        return UTC
    from tzlocal.windows_tz import win_tz

    return ZoneInfo(win_tz.get(name, name))


def _graph_time(moment: datetime) -> dict:
    return {"dateTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0", "timeZone": "UTC"}


def _times(synced: Synced, zone: ZoneInfo) -> dict:
    start, end = parse_utc(synced.start), parse_utc(synced.end)
    if not synced.all_day:
        return {"start": _graph_time(start), "end": _graph_time(end), "isAllDay": False}
    first, after_last = all_day_span(start, end, zone)
    return {
        "start": {"dateTime": f"{first.isoformat()}T00:00:00.0000000", "timeZone": windows_zone(zone)},
        "end": {"dateTime": f"{after_last.isoformat()}T00:00:00.0000000", "timeZone": windows_zone(zone)},
        "isAllDay": True,
    }


def outlook_payload(synced: Synced, zone: ZoneInfo) -> dict:
    return {
        "subject": synced.title,
        "body": {"contentType": "html", "content": compose_body(synced.description, synced.agenda)},
        **_times(synced, zone),
        "location": {"displayName": synced.location},
        "attendees": attendee_list(synced.attendees),
    }


def attendee_list(people: tuple[str, ...], rooms: tuple[tuple[str, str], ...] = ()) -> list[dict]:
    """Graph's attendees (resources/attendee.md): the people required, each room (address, name) a
    `resource` - Exchange's booking policy answers for it."""
    return ([{"emailAddress": {"address": a}, "type": "required"} for a in people]
            + [{"emailAddress": {"address": a, **({"name": n} if n else {})}, "type": "resource"} for a, n in rooms])


def outlook_patch(old: Synced, new: Synced, zone: ZoneInfo) -> dict:
    """Only what changed; times travel together (Graph checks isAllDay against start and end)."""
    fresh = outlook_payload(new, zone)
    before = outlook_payload(old, zone)
    patch = {k: v for k, v in fresh.items() if before.get(k) != v}
    if patch.keys() & {"start", "end", "isAllDay"}:
        patch.update(start=fresh["start"], end=fresh["end"], isAllDay=fresh["isAllDay"])
    return patch


def _known(text: str, known: tuple[str, ...]) -> str:
    """`text` as one of the `known` texts when it says the same (Exchange's rewrite is no change)."""
    return next((k for k in known if same_html(text, k)), text)


def body_parts(body: dict | None, known: tuple[str, ...] = ()) -> tuple[str, str, str]:
    """An Outlook body as (description, agenda section, Teams block): the description and the agenda
    each one of the `known` texts when it says the same; the Teams block as Exchange wrote it."""
    content = (body or {}).get("content") or ""
    if (body or {}).get("contentType", "html").lower() == "text":
        content = content.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if known and same_html(content, known[0]):
        return known[0], "", ""  # the common case: Exchange's copy of the one text we sent
    description, agenda, teams = split_body(content)
    return _known(description, known), (_known(agenda, known) if agenda else ""), teams


def keep_outlook_parts(patch: dict, event: dict) -> dict:
    """A PATCH that rewrites the body carries over what Outlook added to it (the Teams block, which a
    body written without it would lose: the join link would vanish from the invitation)."""
    if "body" not in patch:
        return patch
    teams = split_body((event.get("body") or {}).get("content") or "")[2]
    if not teams:
        return patch
    return {**patch, "body": {**patch["body"], "content": patch["body"]["content"] + teams}}


def _instant(value: dict, zone_of_event: str) -> datetime:
    moment = parse_utc(value["dateTime"]).replace(tzinfo=None)
    return moment.replace(tzinfo=zone_named(value.get("timeZone") or zone_of_event)).astimezone(UTC)


def synced_from_outlook(event: dict, zone: ZoneInfo, attendees: tuple[str, ...] = (),
                        known: tuple[str, ...] = ()) -> Synced:
    """An Outlook event read back (asked with Prefer outlook.timezone="UTC") in site terms; `known`
    are descriptions it may say again in Exchange's words (the last synced, the site's)."""
    all_day = bool(event.get("isAllDay"))
    description, agenda, _ = body_parts(event.get("body"), known)
    if all_day:
        # all-day events are floating dates: take the wall-clock dates, place them in the site's zone
        first = date.fromisoformat(event["start"]["dateTime"][:10])
        after_last = date.fromisoformat(event["end"]["dateTime"][:10])
        start, end = local_midnight(first, zone), local_midnight(after_last, zone)
    else:
        start, end = _instant(event["start"], "UTC"), _instant(event["end"], "UTC")
    return normalise(Synced(
        title=event.get("subject") or "",
        description=description,
        start=format_utc(start),
        end=format_utc(end),
        all_day=all_day,
        location=((event.get("location") or {}).get("displayName") or ""),
        attendees=attendees,
        agenda=agenda,
    ), zone)


def site_fields(synced: Synced, changed: set[str], col) -> dict:
    """Site columns for the changed inbound fields; `col` maps a logical name to the site's column."""
    names = {"title": "title", "description": "description", "start": "start_date",
             "end": "end_date", "all_day": "all_day", "location": "location"}
    return {col(names[f]): getattr(synced, f) for f in INBOUND_FIELDS if f in changed}


def truthy(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "y", "on")
    return bool(value)


def synced_from_site(item: dict, col, attendees: tuple[str, ...], zone: ZoneInfo) -> Synced:
    """A site Meeting Event item in canonical form. Raises ValueError naming the bad column."""
    values = {}
    for name in ("start_date", "end_date"):
        try:
            values[name] = format_utc(parse_utc(item.get(col(name))))
        except (TypeError, ValueError):
            raise UnreadableItem(f"column {col(name)!r} is not an ISO 8601 date-time: {item.get(col(name))!r}",
                                 BAD_DATE, col(name)) from None
    for name in ("title", "description", "location"):
        value = item.get(col(name))
        if value is not None and not isinstance(value, str):
            raise UnreadableItem(f"column {col(name)!r} must be text, not {type(value).__name__}", BAD_CONTENT,
                                 col(name))
    return normalise(Synced(
        title=item.get(col("title")) or "",
        description=item.get(col("description")) or "",
        start=values["start_date"],
        end=values["end_date"],
        all_day=truthy(item.get(col("all_day"))),
        location=item.get(col("location")) or "",
        attendees=attendees,
    ), zone)
