"""Microsoft Graph, as the app's own identity sees the tenant: its token and application roles, then
the organisers' mailboxes, the site's bounds and the app's Exchange scope (mailbox_bounds.py), and what the
site's features need of them: free/busy (conflicts_column, one getSchedule, a POST that only reads), Teams
(the calendars' online meeting providers), user lookup, the tenant's room list (room_column: Place.Read.All)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from ...config import SiteConfig
from ...model.app_permissions import FEATURES, OPTIONS, permissions, site_features
from .findings import FAIL, NETWORK_ERRORS, OK, WARN, Section, counted
from .mailbox_bounds import check_bounds, within
from .tokens import jwt_claims, token_fix

MAX_MAILBOXES = 20
# getSchedule (conflicts_column): includes/permissions/calendar-getschedule-permissions.md, least privileged first
FREE_BUSY_ROLES = ("Calendars.ReadBasic", "Calendars.Read", "Calendars.ReadWrite")
FREE_BUSY_CHECK = "free/busy for conflicts_column (getSchedule)"
FREE_BUSY_FIX = "Calendars.ReadBasic (least privileged; Calendars.Read or Calendars.ReadWrite also allow it)"


USER_LOOKUP = "user lookup (GET /users/{upn})"


def required_roles(site: SiteConfig | None = None) -> list[str]:
    """What this site (or any site) needs granted: the list the setup script grants (model/app_permissions.py)."""
    return permissions(site_features(site) if site is not None else ())


def check_graph(section: Section, svc, site: SiteConfig, organisers: list[str]) -> None:
    """The Graph token and its roles, then the organisers' mailboxes (the first MAX_MAILBOXES) and, through
    the first one reached, each permission the site's features need."""
    from ...clients.graph import GRAPH_SCOPE

    try:
        token = svc.tokens.token(site, GRAPH_SCOPE)
    except NETWORK_ERRORS as e:
        section.add(FAIL, "Graph token", str(e), token_fix(site))
        return
    section.add(OK, "Graph token obtained", f"tenant {site.aad_tenant}")
    claims, required = jwt_claims(token), required_roles(site)
    grant = f"grant the application permission(s) to app {site.client_id} and give admin consent"
    free_busy = check_roles(section, site, claims.get("roles"), required, grant)
    if not organisers:
        section.add(WARN, "organiser mailboxes", "no organiser found in the newest meetings",
                    "create a meeting with an organiser, then run the check again")
        return
    headers = {"Authorization": f"Bearer {token}"}
    if site.room_column:
        check_rooms(section, svc, headers, grant)
    reached = reachable_mailboxes(section, svc, headers, organisers)
    check_bounds(section, svc, site, organisers, headers)
    reached = within(svc, site, reached)  # free/busy, Teams and the user lookup only through mailboxes inside
    if not reached:
        return
    if free_busy:
        check_free_busy(section, svc, site, reached[0], grant)
    if site.teams or site.teams_column:
        check_teams(section, svc, site, reached, headers)
    check_user_lookup(section, svc, claims.get("roles"), headers, reached[0], grant)


def check_user_lookup(section: Section, svc, roles: list[str] | None, headers: dict, mailbox: str, grant: str) -> None:
    """User.Read.All is optional (OPTIONS "object-ids"): probed when granted, else said to be off."""
    lookup = OPTIONS["object-ids"]
    if roles is not None and not set(lookup) & set(roles):
        section.add(OK, USER_LOOKUP, "not granted (optional): subscriptions are made by UPN",
                    f"to subscribe by object id, {grant}: {', '.join(lookup)} (infra/setup_app.py --with object-ids)")
    elif error := _graph_get_error(svc, headers, f"/users/{quote(mailbox, safe='@')}", "get user", **{"$select": "id"}):
        section.add(FAIL, USER_LOOKUP, error, f"{grant}: {', '.join(lookup)}")
    else:
        section.add(OK, USER_LOOKUP, mailbox)


def check_roles(section: Section, site: SiteConfig, roles: list[str] | None, required: list[str],
                grant: str) -> bool:
    """The token's application roles against those the app needs; whether free/busy is worth probing
    (the site has conflicts on and nothing says the roles forbid getSchedule)."""
    if roles is None:
        section.add(WARN, "Graph roles", "the token carries no roles claim: no application permission is granted, "
                    "or the token is not a JWT (the mailbox reads below decide)",
                    f"{grant}: {', '.join(required)}")
    elif missing := [r for r in required if r not in roles]:
        section.add(FAIL, "Graph roles", f"missing {', '.join(missing)} (has: {', '.join(roles) or 'none'})",
                    f"{grant}: {', '.join(missing)}")
    else:
        section.add(OK, "Graph roles", ", ".join(roles))
    free_busy = bool(site.conflicts_column)
    if free_busy and roles is not None and not set(roles) & set(FREE_BUSY_ROLES):
        section.add(FAIL, FREE_BUSY_CHECK, f"the token's roles allow no getSchedule (has: {', '.join(roles) or 'none'})",
                    f"{grant}: {FREE_BUSY_FIX}")
        free_busy = False
    return free_busy


def check_rooms(section: Section, svc, headers: dict, grant: str) -> None:
    """The site names rooms (room_column): the tenant's room list must answer (api/place-list.md)."""
    what = "room list (GET /places/microsoft.graph.room)"
    if error := _graph_get_error(svc, headers, "/places/microsoft.graph.room", "list rooms", **{"$top": "1"}):
        section.add(FAIL, what, error, f"{grant}: {', '.join(FEATURES['room_column'])}")
    else:
        section.add(OK, what, "readable: the site's rooms are matched against it")


def reachable_mailboxes(section: Section, svc, headers: dict, organisers: list[str]) -> list[str]:
    """The organisers (the first MAX_MAILBOXES) whose calendar the app can read; each one it cannot is a finding."""
    reached = []
    for mailbox in organisers[:MAX_MAILBOXES]:
        user = f"/users/{quote(mailbox, safe='@')}"
        if error := _graph_get_error(svc, headers, f"{user}/events", "read calendar", **{"$top": "1", "$select": "id"}):
            section.add(FAIL, f"mailbox {mailbox}", error,
                        "a 404: the organiser's email is not a mailbox of this tenant; a 403: grant "
                        "Calendars.ReadWrite (or widen the Exchange application access policy)")
        else:
            reached.append(mailbox)
    if reached:
        more = f" (of {len(organisers)}; the first {MAX_MAILBOXES} checked)" if len(organisers) > MAX_MAILBOXES else ""
        section.add(OK, "organiser mailboxes reachable", f"{len(reached)}{more}: {', '.join(reached[:5])}"
                    + (" …" if len(reached) > 5 else ""))
    return reached


def _graph_get_error(svc, headers: dict, path: str, what: str, **params) -> str | None:
    """One GET to Graph: None when it answers, else what went wrong."""
    from ...clients.remote import send

    try:
        send(svc.session, "GET", svc.settings.graph_url + path, f"Graph {what}", headers=headers, params=params)
        return None
    except NETWORK_ERRORS as e:
        return str(e)


def check_free_busy(section: Section, svc, site: SiteConfig, mailbox: str, grant: str) -> None:
    """The site turns conflicts on: one getSchedule of the organiser's own free/busy must answer (a POST
    that reads only, sent as the sync sends it)."""
    hour = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    try:
        svc.graph(site).get_schedule(mailbox, [mailbox], hour, hour + timedelta(hours=1), 60)
    except NETWORK_ERRORS as e:
        section.add(FAIL, FREE_BUSY_CHECK, str(e), f"{grant}: {FREE_BUSY_FIX}; a 403 with the permission granted: "
                    "widen the application access policy to the organisers' mailboxes")
        return
    section.add(OK, FREE_BUSY_CHECK, f"read through {mailbox}")

def check_teams(section: Section, svc, site: SiteConfig, mailboxes: list[str], headers: dict) -> None:
    """Which organisers' calendars offer Teams meetings (calendar.md, allowedOnlineMeetingProviders)."""
    from ...clients.remote import send

    without = []
    for mailbox in mailboxes:
        try:
            calendar = send(svc.session, "GET", f"{svc.settings.graph_url}/users/{quote(mailbox, safe='@')}/calendar",
                            "Graph get calendar", headers=headers,
                            params={"$select": "allowedOnlineMeetingProviders"}).json()
        except NETWORK_ERRORS as e:
            section.add(FAIL, f"calendar of {mailbox}", str(e), "grant Calendars.ReadWrite")
            continue
        if "teamsForBusiness" not in (calendar.get("allowedOnlineMeetingProviders") or ()):
            without.append(mailbox)
    if without:
        section.add(WARN, "Teams meetings", f"{counted(len(without), 'organiser')} cannot have Teams meetings (their "
                    f"calendar offers none): {', '.join(without[:5])}" + (" …" if len(without) > 5 else ""),
                    "their events are made without Teams (the status column says so); give them a Teams licence")
    elif mailboxes:
        section.add(OK, "Teams meetings",
                    f"offered by the calendars of all {counted(len(mailboxes), 'organiser')} checked")
