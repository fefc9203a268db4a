"""The Graph simulator's playground (`make run`): each mailbox as a week calendar (Monday to Sunday, by
the hour, in UTC) where a person moves, renames, cancels or deletes an event, as in Outlook.

Every action goes through the simulator's Outlook API (`outlook_update`, `outlook_cancel`,
`outlook_delete`), so it sends change notifications exactly like a person's edit in Outlook. Plain HTML
forms, POST then redirect (303); Jinja2 with autoescape.

  GET  /_sim/calendars                                   the mailboxes
  GET  /_sim/calendars/{mailbox}?week=YYYY-MM-DD         the week holding that day (default: this week)
  POST /_sim/calendars/{mailbox}/events/{id}             move (start, end), rename, relocate
  POST /_sim/calendars/{mailbox}/events/{id}/cancel      cancel (attendees are told)
  POST /_sim/calendars/{mailbox}/events/{id}/delete      delete

Only the simulator serves these pages; the deployed app has nothing of them.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from ..base import HttpError, Request, Response, utcnow
from ..playground import HTML, environment, redirect
from ..playground import form as form_fields
from .events import _preview
from .exchange import zone

if TYPE_CHECKING:
    from . import GraphSimulator
    from .model import Event, User

HOUR_PX = 44                 # the grid's height of one hour
DAY_HOURS = (7, 20)          # hours always shown; the grid grows to hold earlier or later events
_BOX = r"/_sim/calendars/(?P<mailbox>[^/]+)"

_env = environment(__file__)


def register(sim: GraphSimulator) -> None:
    """Add the playground's routes to the simulator (`/_sim/` is never faulted nor throttled)."""
    pages = CalendarPages(sim)
    r = sim.route
    r("GET", r"/_sim/calendars", pages.index)
    r("GET", _BOX, pages.week_page)
    r("POST", _BOX + r"/events/(?P<id>[^/]+)", pages.update_event)
    r("POST", _BOX + r"/events/(?P<id>[^/]+)/cancel", pages.cancel_event)
    r("POST", _BOX + r"/events/(?P<id>[^/]+)/delete", pages.delete_event)


# -- values ----------------------------------------------------------------------------------------

def form(req: Request) -> dict[str, str]:
    return {k: v[-1].strip() for k, v in form_fields(req).items()}


def monday_of(text: str | None) -> date:
    """The Monday of the week holding `text` (YYYY-MM-DD), or of today (UTC) when absent."""
    day = utcnow().date() if not text else date.fromisoformat(text)
    return day - timedelta(days=day.weekday())


def parse_input(value: str, name: str) -> datetime:
    """A datetime-local (or date) input's value as a naive datetime."""
    if not value:
        raise ValueError(f"{name} is required")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name}: {value!r} is not a date and time") from None
    return parsed.astimezone(timezone.utc).replace(tzinfo=None) if parsed.tzinfo else parsed


class CalendarPages:
    def __init__(self, sim: GraphSimulator):
        self.sim = sim

    def _user(self, req: Request) -> User:
        user = self.sim.user(req.params["mailbox"])
        if user is None:
            raise HttpError(404, "NotFound", f"No mailbox '{req.params['mailbox']}'")
        return user

    @staticmethod
    def _path(user: User) -> str:
        return f"/_sim/calendars/{quote(user.upn, safe='@')}"

    def _mailboxes(self) -> list[dict]:
        with self.sim.lock:
            return [{"upn": u.upn, "name": u.display_name, "path": self._path(u),
                     "events": len(self.sim.calendars.get(u.id, {}))} for u in self.sim.users.values()]

    def index(self, req: Request) -> Response:
        with self.sim.lock:
            sent = len(self.sim.notifications_sent)
        page = _env.get_template("mailboxes.html").render(name=self.sim.name, mailboxes=self._mailboxes(),
                                                          notifications=sent)
        return Response(200, page, content_type=HTML)

    def week_page(self, req: Request) -> Response:
        user = self._user(req)
        error = req.query.get("error", "")
        try:
            monday = monday_of(req.query.get("week"))
        except ValueError:
            monday, error = monday_of(None), f"week: {req.query['week']!r} is not a date (YYYY-MM-DD)"
        with self.sim.lock:
            events = [_view(self.sim, ev) for ev in self.sim.calendars.get(user.id, {}).values()]
            cancelled = [c for c in self.sim.cancellations if c.mailbox == user.upn][-5:][::-1]
            notes = [_note(d) for d in self.sim.notifications_sent[-8:]][::-1]
        days = [monday + timedelta(days=i) for i in range(7)]
        first, last = DAY_HOURS
        columns = []
        for day in days:
            start = datetime.combine(day, time(), timezone.utc)
            timed, all_day = [], []
            for ev in events:
                if ev["all_day"]:
                    if ev["first_day"] <= day < ev["after_last_day"]:
                        all_day.append(ev)
                    continue
                seg_start, seg_end = max(ev["start"], start), min(ev["end"], start + timedelta(days=1))
                if seg_end > seg_start or (ev["start"] == ev["end"] and start <= ev["start"] < start + timedelta(days=1)):
                    top = (seg_start - start).total_seconds() / 3600
                    bottom = max((seg_end - start).total_seconds() / 3600, top + 0.5)
                    timed.append({"ev": ev, "top": top, "bottom": bottom})
                    first, last = min(first, math.floor(top)), max(last, math.ceil(min(bottom, 24)))
            columns.append({"day": day, "timed": _lanes(timed), "all_day": all_day,
                            "today": day == utcnow().date()})
        for column in columns:
            for seg in column["timed"]:
                seg["y"] = (seg["top"] - first) * HOUR_PX
                seg["h"] = max((min(seg["bottom"], last) - seg["top"]) * HOUR_PX - 2, 18)
        events.sort(key=lambda ev: ev["start"])
        page = _env.get_template("week.html").render(
            name=self.sim.name, user=user, path=self._path(user), mailboxes=self._mailboxes(),
            monday=monday, columns=columns, hours=list(range(first, last)), first_hour=first,
            hour_px=HOUR_PX, grid_px=(last - first) * HOUR_PX, events=events, cancelled=cancelled,
            notes=notes, prev=(monday - timedelta(days=7)).isoformat(), next=(monday + timedelta(days=7)).isoformat(),
            this_week=monday_of(None).isoformat(), done=req.query.get("done", ""), error=error)
        return Response(200, page, content_type=HTML)

    # -- writing, as the mailbox's owner in Outlook ------------------------------------------------------

    def _act(self, req: Request, action) -> Response:
        user = self._user(req)
        fields = form(req)
        week = fields.get("week", "")
        try:
            message, week = action(user, fields, week)
            query = {"done": message}
        except (ValueError, KeyError, HttpError) as e:
            query = {"error": getattr(e, "message", None) or str(e)}
        if week:
            query["week"] = week
        return redirect(f"{self._path(user)}?{urlencode(query)}")

    def update_event(self, req: Request) -> Response:
        event_id = req.params["id"]

        def act(user, f, week):
            with self.sim.lock:
                ev = self.sim._event_or_404(user, event_id)
                all_day, (start, start_zone), (end, end_zone) = ev.fields.get("isAllDay"), ev.start, ev.end
                old = {"subject": ev.fields.get("subject") or "",
                       "location": (ev.fields.get("location") or {}).get("displayName") or ""}
                old_window = ev.window()
            changes = {}
            if "subject" in f and f["subject"] != old["subject"]:
                changes["subject"] = f["subject"]
            if "location" in f and f["location"] != old["location"]:
                changes["location"] = {"displayName": f["location"]}
            new_start, new_end = parse_input(f.get("start", ""), "start"), parse_input(f.get("end", ""), "end")
            if new_end < new_start:
                raise ValueError("The end comes before the start")
            if all_day:   # dates in the event's own zone, as Outlook keeps an all-day event
                if (new_start, new_end) != (start, end):
                    changes["start"] = {"dateTime": new_start.isoformat(), "timeZone": start_zone}
                    changes["end"] = {"dateTime": new_end.isoformat(), "timeZone": end_zone}
                shown = new_start.date()
            else:         # the inputs are UTC; the event keeps its own zone
                utc_start, utc_end = (t.replace(tzinfo=timezone.utc) for t in (new_start, new_end))
                if (utc_start, utc_end) != old_window:
                    changes["start"] = {"dateTime": _local(utc_start, start_zone), "timeZone": start_zone}
                    changes["end"] = {"dateTime": _local(utc_end, end_zone), "timeZone": end_zone}
                shown = utc_start.date()
            if not changes:
                return "Nothing changed", week
            self.sim.outlook_update(user.upn, event_id, **changes)
            return f"Saved “{f.get('subject') or old['subject']}”", (shown - timedelta(days=shown.weekday())).isoformat()
        return self._act(req, act)

    def cancel_event(self, req: Request) -> Response:
        event_id = req.params["id"]

        def act(user, f, week):
            self.sim.outlook_cancel(user.upn, event_id, f.get("comment") or None)
            return "Event cancelled", week
        return self._act(req, act)

    def delete_event(self, req: Request) -> Response:
        event_id = req.params["id"]

        def act(user, f, week):
            self.sim.outlook_delete(user.upn, event_id)
            return "Event deleted", week
        return self._act(req, act)


def _local(utc: datetime, zone_name: str) -> str:
    return utc.astimezone(zone(zone_name)).replace(tzinfo=None).isoformat()


def _view(sim: GraphSimulator, ev: Event) -> dict:
    """What the page shows of an event; times in UTC (an all-day event by its dates)."""
    f = ev.fields
    all_day = bool(f.get("isAllDay"))
    start, end = ev.window()
    view = {"id": ev.id, "subject": f.get("subject") or "(no title)", "all_day": all_day,
            "start": start, "end": end,
            "location": (f.get("location") or {}).get("displayName") or "",
            "attendees": [_who(a.get("emailAddress") or {}) for a in f.get("attendees") or []],
            "preview": _preview(f.get("body") or {}),
            "linked": bool(ev.ext), "modified": ev.modified.strftime("%Y-%m-%d %H:%M:%S")}
    if all_day:
        view.update(first_day=ev.start[0].date(), after_last_day=max(ev.end[0].date(), ev.start[0].date() + timedelta(days=1)),
                    start_input=ev.start[0].date().isoformat(), end_input=ev.end[0].date().isoformat(),
                    when=f"{ev.start[0]:%a %d %b} – {ev.end[0]:%a %d %b} (all day, end exclusive)",
                    week=(ev.start[0].date() - timedelta(days=ev.start[0].weekday())).isoformat())
    else:
        same_day = start.date() == end.date()
        view.update(start_input=start.strftime("%Y-%m-%dT%H:%M"), end_input=end.strftime("%Y-%m-%dT%H:%M"),
                    when=f"{start:%a %d %b %H:%M} – {end:%H:%M}" if same_day else f"{start:%a %d %b %H:%M} – {end:%a %d %b %H:%M}",
                    week=(start.date() - timedelta(days=start.weekday())).isoformat())
    return view


def _who(email: dict) -> str:
    address, name = email.get("address") or "", email.get("name") or ""
    return f"{name} <{address}>" if name and name.lower() != address.lower() else address


def _lanes(segments: list[dict]) -> list[dict]:
    """Side by side when they overlap: each segment gets a lane and the number of lanes of its cluster."""
    segments.sort(key=lambda s: (s["top"], -s["bottom"]))
    cluster, ends, cluster_end = [], [], -1.0
    for seg in segments:
        if seg["top"] >= cluster_end and cluster:
            for s in cluster:
                s["lanes"] = len(ends)
            cluster, ends = [], []
        lane = next((i for i, end in enumerate(ends) if end <= seg["top"]), None)
        if lane is None:
            lane = len(ends)
            ends.append(seg["bottom"])
        else:
            ends[lane] = seg["bottom"]
        seg["lane"] = lane
        cluster.append(seg)
        cluster_end = max(cluster_end, seg["bottom"]) if len(cluster) > 1 else seg["bottom"]
    for s in cluster:
        s["lanes"] = len(ends)
    return segments


def _note(delivery) -> dict:
    items = (delivery.body or {}).get("value") or []
    kinds = sorted({i.get("changeType") or i.get("lifecycleEvent") or "?" for i in items})
    return {"time": datetime.fromtimestamp(delivery.time, timezone.utc).strftime("%H:%M:%S"),
            "what": ", ".join(kinds), "count": len(items),
            "status": delivery.status if delivery.status is not None else delivery.error}
