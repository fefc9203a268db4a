"""Teams meetings (issue 14, part 1): a Meeting Event can ask for an online meeting (SITES `teams`, the
site's default, and an optional per-item `teams_column`); its Outlook event is then created as a Teams
meeting and the join URL written to the item's `join_url_column`.

Graph's contract (concepts/outlook-calendar-online-meetings.md, event.md, calendar.md): an event is made
online with isOnlineMeeting + onlineMeetingProvider, "one of the providers supported by the parent
calendar" (allowedOnlineMeetingProviders); once online it stays online (the provider cannot change,
isOnlineMeeting cannot be set back to false); `onlineMeeting.joinUrl` holds the link, and Exchange adds
its Teams block to the body. The join information may come after the create's answer: it is then read
again by follow-up tasks on the work queue, with growing delays (never by sleeping a worker), and taken
from any later read of the event (an `updated` notification, a site edit). The body's Teams block is
Outlook's: never sent to the site (html_body.split_body), always carried over when we rewrite a body
(mapping.keep_outlook_parts).
"""

from __future__ import annotations

import logging
from dataclasses import replace

from ..config import SiteConfig
from ..model.errors import RemoteNotFound
from ..model.mapping import truthy
from ..context import SiteContext
from ..services import Services
from ..storage.work_queue import new_job
from .base import Feature

log = logging.getLogger("rapid_meetings")
PROVIDER = "teamsForBusiness"
UNAVAILABLE = "unavailable"
JOIN_URL_OP = "event.join_url"
JOIN_URL_DELAYS = (2, 4, 8, 15, 30, 60, 120, 240)  # seconds before each further read: ~8 minutes in all


def wants_teams(site: SiteConfig, item: dict) -> bool:
    """The item's own choice when its column has a value, else the site's default."""
    if site.teams_column and item.get(site.teams_column) not in (None, ""):
        return truthy(item.get(site.teams_column))
    return site.teams


def join_url_of(event: dict) -> str:
    return str(((event or {}).get("onlineMeeting") or {}).get("joinUrl") or "")


def online_fields(site: SiteConfig, mailbox: str, providers: tuple[str, ...]) -> tuple[dict, dict]:
    """(the event fields that make it a Teams meeting, the link's `online` state). A calendar that offers
    no Teams gets an ordinary event, and the reason is logged (and shown in the sync status)."""
    if PROVIDER not in providers:
        log.warning("site=%s organiser %s cannot have Teams meetings (their calendar offers %s): the event is "
                    "made without one", site.key, mailbox, ", ".join(providers) or "no online meeting provider")
        return {}, {"online": UNAVAILABLE}
    return {"isOnlineMeeting": True, "onlineMeetingProvider": PROVIDER}, {"online": PROVIDER}


def join_url_columns(site: SiteConfig, link, event: dict) -> dict:
    """The site column to write when the event's join URL is one the site does not have yet."""
    url = join_url_of(event)
    if site.join_url_column and url and url != link.join_url:
        return {site.join_url_column: url}
    return {}


def await_join_url(ctx: SiteContext, item_id: str, tries: int = 0) -> bool:
    """Queue the next read of a Teams meeting whose join URL Graph has not filled in yet; False when the
    wait is over (logged)."""
    site = ctx.site
    if tries >= len(JOIN_URL_DELAYS):
        log.warning("site=%s item=%s Teams gave no join URL within %d s: left to the next change of the event",
                    site.key, item_id, sum(JOIN_URL_DELAYS))
        return False
    ctx.queue.send(new_job([{"op": JOIN_URL_OP, "site": site.key, "item": item_id, "tries": tries}]),
                   delay_seconds=JOIN_URL_DELAYS[tries])
    return True


def fetch_join_url(svc: Services, task: dict) -> str:
    """A follow-up read of a Teams meeting created without its join URL (one Graph read)."""
    site = svc.site(task["site"])
    ctx = SiteContext.of(svc, site)
    link = ctx.store.get_link(site.key, task["item"])
    if link is None or link.pending or link.removing or link.online != PROVIDER or link.join_url:
        return "noop"
    try:
        event = ctx.graph.get_event(link.mailbox, link.event_id)
    except RemoteNotFound:
        return "noop"  # gone: the removal is someone else's job
    url = join_url_of(event)
    if not url:
        return "waiting" if await_join_url(ctx, link.item_id, int(task.get("tries", 0)) + 1) else "gave up"
    columns = join_url_columns(site, link, event)
    if columns:
        try:
            ctx.rapid.update_item("events", link.item_id, columns)
        except RemoteNotFound:
            return "noop"
    ctx.store.save_link(replace(link, join_url=url))
    log.info("site=%s item=%s Teams join URL %s (event=%s)", site.key, link.item_id,
             "written to the site" if columns else "known", link.event_id)
    return "join url"


class Teams(Feature):
    """The item asks for a Teams meeting; its join URL goes back to the site."""

    name = "teams"
    handlers = {JOIN_URL_OP: fetch_join_url}

    def columns(self, site):
        return (site.teams_column,) if site.teams_column else ()

    def contribute(self, site, item, link, target, ctx):
        wants = wants_teams(site, item)
        asks = {"teams": wants}
        if wants and ctx is not None and (link is None or link.pending or link.online != PROVIDER):
            asks["teams_providers"] = ctx.graph.online_providers(target.mailbox)  # cached hourly per mailbox
        return replace(target, asks={**target.asks, **asks})

    def differs(self, site, target, link):
        if not target.ask("teams") or link.online == PROVIDER:
            return None
        if not link.online or PROVIDER in target.ask("teams_providers", ()):
            return "it asks for a Teams meeting"  # asked later, or its organiser's calendar now offers Teams
        return None

    def create_fields(self, site, target):
        if not target.ask("teams"):
            return {}, {"online": ""}
        return online_fields(site, target.mailbox, target.ask("teams_providers", ()))

    def patch_fields(self, site, target, link):
        if self.differs(site, target, link) is None:
            return {}, {}  # once online it stays online (Graph cannot make it offline again)
        return online_fields(site, link.mailbox, target.ask("teams_providers", ()))

    def item_columns(self, site, link):
        return {site.join_url_column: link.join_url} if site.join_url_column and link.join_url else {}

    def from_event(self, site, link, event):
        return join_url_columns(site, link, event), {"join_url": join_url_of(event) or link.join_url}

    @staticmethod
    def join_url_awaited(site, outcome) -> bool:
        """A Teams meeting created without its join URL (Graph answered before Teams had the meeting), for a
        site that shows it: it is read again later. Pure."""
        link = outcome.link
        return outcome.kind == "created" and link.online == PROVIDER and not link.join_url and bool(site.join_url_column)

    def after_sync(self, ctx, outcome):
        if self.join_url_awaited(ctx.site, outcome):
            await_join_url(ctx, outcome.link.item_id)
