"""The RAPID simulator's playground (`make run`): a page per site where a person creates, edits and
deletes meetings and their events in forms, as a site user would in RAPID's UI.

Every action goes through the site's people API (`SiteSim.create_item`, `update_item`, `delete_items`),
so it fires the site's webhooks exactly like a person's edit. Plain HTML forms, POST then redirect (303)
back to the page; Jinja2 with autoescape; times are UTC (`datetime-local` inputs read as UTC).

  GET  /_sim/sites                                         the sites
  GET  /_sim/sites/{tenant}/{site}                         meetings, their events, recent webhooks
  POST /_sim/sites/{tenant}/{site}/meetings                create a meeting
  POST /_sim/sites/{tenant}/{site}/meetings/{id}           edit a meeting
  POST /_sim/sites/{tenant}/{site}/meetings/{id}/delete    delete a meeting
  POST /_sim/sites/{tenant}/{site}/events                  create an event
  POST /_sim/sites/{tenant}/{site}/events/{id}             edit an event
  POST /_sim/sites/{tenant}/{site}/events/{id}/delete      delete an event
  POST /_sim/sites/{tenant}/{site}/agendas                 add an agenda item to an event
  POST /_sim/sites/{tenant}/{site}/agendas/{id}            edit an agenda item
  POST /_sim/sites/{tenant}/{site}/agendas/{id}/delete     delete an agenda item

Only the simulator serves these pages; the deployed app has nothing of them.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from ..base import HttpError, Request, Response, utcnow
from ..playground import HTML, environment, form, redirect
from .schema import TITLE_FIELD

if TYPE_CHECKING:
    from .server import RapidSimulator
    from .site import SiteSim

MEETINGS, EVENTS, PRINCIPALS, CONTACTS = "Meetings", "Meeting Events", "Principals", "External Contacts"
AGENDAS = "Meeting Agendas"
STATUSES = ("", "Cancelled")
_SITE = r"/_sim/sites/(?P<tenant>[^/]+)/(?P<site>[^/]+)"

_env = environment(__file__)


def register(sim: RapidSimulator) -> None:
    """Add the playground's routes to the simulator (after its API routes; `/_sim/` is never faulted)."""
    pages = SitePages(sim)
    r = sim.route
    r("GET", r"/_sim/sites", pages.index)
    r("GET", _SITE, pages.site_page)
    r("POST", _SITE + r"/meetings", pages.create_meeting)
    r("POST", _SITE + r"/meetings/(?P<id>\d+)", pages.update_meeting)
    r("POST", _SITE + r"/meetings/(?P<id>\d+)/delete", pages.delete_meeting)
    r("POST", _SITE + r"/events", pages.create_event)
    r("POST", _SITE + r"/events/(?P<id>\d+)", pages.update_event)
    r("POST", _SITE + r"/events/(?P<id>\d+)/delete", pages.delete_event)
    r("POST", _SITE + r"/agendas", pages.create_agenda)
    r("POST", _SITE + r"/agendas/(?P<id>\d+)", pages.update_agenda)
    r("POST", _SITE + r"/agendas/(?P<id>\d+)/delete", pages.delete_agenda)


# -- form values ---------------------------------------------------------------------------------

def one(fields: dict[str, list[str]], name: str, default: str = "") -> str:
    return (fields.get(name) or [default])[-1].strip()


def ids(fields: dict[str, list[str]], name: str) -> list[int]:
    try:
        return [int(v) for v in fields.get(name, []) if v.strip()]
    except ValueError:
        raise ValueError(f"{name}: item ids are whole numbers") from None


def utc_from_input(value: str, name: str) -> str:
    """`2026-12-01T09:00` (a datetime-local input, read as UTC) or an ISO instant → `2026-12-01T09:00:00Z`."""
    if not value:
        raise ValueError(f"{name} is required")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{name}: {value!r} is not a date and time") from None
    when = when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def input_from_utc(value) -> str:
    """A stored UTC ISO value as a datetime-local input's value (`2026-12-01T09:00`), '' if unreadable."""
    if not isinstance(value, str) or not value:
        return ""
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return ""
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M")


class SitePages:
    def __init__(self, sim: RapidSimulator):
        self.sim = sim

    # -- reading ---------------------------------------------------------------------------------

    def _site(self, req: Request) -> SiteSim:
        site = self.sim.sites.get((req.params["tenant"].lower(), req.params["site"].lower()))
        if site is None:
            raise HttpError(404, "NotFound", f"Site '{req.params['tenant']}/{req.params['site']}' not found")
        return site

    def _path(self, site: SiteSim) -> str:
        return f"/_sim/sites/{quote(site.tenant, safe='')}/{quote(site.site, safe='')}"

    def _sites(self) -> list[dict]:
        with self.sim.lock:
            return [{"key": f"{s.tenant}/{s.site}", "path": self._path(s), "url": s.url,
                     "meetings": len([i for i in s.store[MEETINGS].values() if i.deleted is None]),
                     "events": len([i for i in s.store[EVENTS].values() if i.deleted is None])}
                    for s in self.sim.sites.values()]

    def index(self, req: Request) -> Response:
        page = _env.get_template("sites.html").render(sites=self._sites(), name=self.sim.name)
        return Response(200, page, content_type=HTML)

    def site_page(self, req: Request) -> Response:
        site = self._site(req)
        with self.sim.lock:
            principals = sorted(site.items(PRINCIPALS), key=lambda p: p["id"])
            contacts = sorted(site.items(CONTACTS), key=lambda p: p["id"])
            meetings = sorted(site.items(MEETINGS), key=lambda m: m["id"])
            events = sorted(site.items(EVENTS), key=lambda e: (str(e.get("start_date") or ""), e["id"]))
            agendas = site.items(AGENDAS)
            for event in events:
                event["invitee_ids"] = site.linked_ids(EVENTS, event["id"], "invitees")
                event["guest_ids"] = site.linked_ids(EVENTS, event["id"], "guests")
                # by its lookup or by a universal link, as the site is designed (RapidVariant.agenda_link)
                event["agenda"] = sorted(
                    (a for a in agendas if a.get("meeting_event_id") == event["id"]
                     or event["id"] in site.linked_ids(AGENDAS, a["id"])),
                    key=_rank_order)
            deliveries = [{"time": datetime.fromtimestamp(d.time, timezone.utc).strftime("%H:%M:%S"),
                           "trigger": d.trigger, "table": d.table, "status": d.status, "error": d.error,
                           "item": d.body.get("id") if isinstance(d.body, dict) else None}
                          for d in site.deliveries[-12:]][::-1]
            pending = site._deliverer.pending
        people = {p["id"]: p for p in principals}
        guests = {c["id"]: c for c in contacts}
        meeting_ids = {m["id"] for m in meetings}
        for event in events:
            event["start_input"] = input_from_utc(event.get("start_date"))
            event["end_input"] = input_from_utc(event.get("end_date"))
            event["invitee_names"] = [_who(people.get(i), i) for i in event["invitee_ids"]]
            event["guest_names"] = [_who(guests.get(i), i) for i in event["guest_ids"]]
        for meeting in meetings:
            meeting["events"] = [e for e in events if e.get("meeting_id") == meeting["id"]]
        start = (utcnow() + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
        page = _env.get_template("site.html").render(
            name=self.sim.name, site=site, path=self._path(site), sites=self._sites(),
            principals=principals, contacts=contacts, meetings=meetings,
            orphans=[e for e in events if e.get("meeting_id") not in meeting_ids],
            deliveries=deliveries, pending=pending, statuses=STATUSES, title_field=TITLE_FIELD,
            new_start=start.strftime("%Y-%m-%dT%H:%M"), new_end=(start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
            done=req.query.get("done", ""), error=req.query.get("error", ""))
        return Response(200, page, content_type=HTML)

    # -- writing, as the site's person -------------------------------------------------------------

    def _act(self, req: Request, action, anchor: str = "") -> Response:
        """Run `action(site, fields)` (returns the message shown after the redirect); a refused value
        comes back on the page as the error."""
        site = self._site(req)
        try:
            message = action(site, form(req))
            query = {"done": message}
        except (ValueError, KeyError, HttpError) as e:
            query, anchor = {"error": getattr(e, "message", None) or str(e)}, ""
        return redirect(f"{self._path(site)}?{urlencode(query)}{anchor}")

    def create_meeting(self, req: Request) -> Response:
        def act(site, f):
            item = site.create_item(MEETINGS, **_meeting_fields(f))
            return f"Meeting {item['id']} created"
        return self._act(req, act)

    def update_meeting(self, req: Request) -> Response:
        item_id = int(req.params["id"])

        def act(site, f):
            site.update_item(MEETINGS, item_id, **_meeting_fields(f))
            return f"Meeting {item_id} saved"
        return self._act(req, act, f"#meeting-{item_id}")

    def delete_meeting(self, req: Request) -> Response:
        item_id = int(req.params["id"])

        def act(site, f):
            site.delete_items(MEETINGS, item_id)
            return f"Meeting {item_id} deleted"
        return self._act(req, act)

    def create_event(self, req: Request) -> Response:
        created = {}

        def act(site, f):
            item = site.create_item(EVENTS, **_event_fields(f, creating=True))
            created["id"] = item["id"]
            return f"Event {item['id']} created"
        resp = self._act(req, act)
        if created:
            resp.headers["Location"] += f"#event-{created['id']}"
        return resp

    def update_event(self, req: Request) -> Response:
        item_id = int(req.params["id"])

        def act(site, f):
            site.update_item(EVENTS, item_id, **_event_fields(f, creating=False))
            return f"Event {item_id} saved"
        return self._act(req, act, f"#event-{item_id}")

    def delete_event(self, req: Request) -> Response:
        item_id = int(req.params["id"])

        def act(site, f):
            site.delete_items(EVENTS, item_id)
            return f"Event {item_id} deleted"
        return self._act(req, act)


    def create_agenda(self, req: Request) -> Response:
        def act(site, f):
            event = one(f, "event_id")
            if not event.isdigit() or not site.is_live(EVENTS, int(event)):
                raise ValueError("An agenda item belongs to an event: choose one")
            item = site.create_item(AGENDAS, **_agenda_fields(f), **site.agenda_link(int(event)))
            return f"Agenda item {item['id']} added"
        return self._act(req, act, f"#event-{one(form(req), 'event_id')}")

    def update_agenda(self, req: Request) -> Response:
        item_id = int(req.params["id"])

        def act(site, f):
            site.update_item(AGENDAS, item_id, **_agenda_fields(f))
            return f"Agenda item {item_id} saved"
        return self._act(req, act)

    def delete_agenda(self, req: Request) -> Response:
        item_id = int(req.params["id"])

        def act(site, f):
            site.delete_items(AGENDAS, item_id)
            return f"Agenda item {item_id} deleted"
        return self._act(req, act)


def _rank_order(item: dict) -> tuple:
    rank = str(item.get("rank") or "").strip()
    return (0, int(rank), "", item["id"]) if rank.isdigit() else (1 if rank else 2, 0, rank, item["id"])


def _agenda_fields(f: dict[str, list[str]]) -> dict:
    title = one(f, "title")
    if not title:
        raise ValueError("An agenda item needs a title")
    owner, minutes = one(f, "owner_id"), one(f, "duration")
    if minutes and not minutes.isdigit():
        raise ValueError("Minutes are a whole number")
    return {"title": title, "rank": one(f, "rank") or None, "owner_id": int(owner) if owner.isdigit() else None,
            "duration": int(minutes) if minutes else None}


def _who(item: dict | None, item_id: int) -> str:
    if not item:
        return f"#{item_id}"
    email = item.get("email")
    return f"{item.get(TITLE_FIELD) or '#' + str(item_id)}" + (f" <{email}>" if email else "")


def _meeting_fields(f: dict[str, list[str]]) -> dict:
    title = one(f, "title")
    if not title:
        raise ValueError("A meeting needs a title")
    organiser = one(f, "organiser_id")
    return {"title": title, "organiser_id": int(organiser) if organiser.isdigit() else None}


def _event_fields(f: dict[str, list[str]], creating: bool) -> dict:
    title = one(f, "title")
    if not title:
        raise ValueError("An event needs a title")
    meeting = one(f, "meeting_id")
    if not meeting.isdigit():
        raise ValueError("An event belongs to a meeting: choose one")
    start, end = utc_from_input(one(f, "start_date"), "start"), utc_from_input(one(f, "end_date"), "end")
    if end < start:
        raise ValueError("The end comes before the start")
    fields = {"title": title, "meeting_id": int(meeting), "start_date": start, "end_date": end,
              "all_day": one(f, "all_day") in ("on", "true", "1"),
              "invitees": ids(f, "invitees"), "guests": ids(f, "guests")}
    for name in ("location", "description", "status"):
        value = one(f, name)
        if value or not creating:   # a blank field clears the column on an edit; a new item leaves it out
            fields[name] = value or None
    return fields
