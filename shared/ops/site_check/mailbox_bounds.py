"""The site's bounds (SITES `mailbox_domains`, `mailbox_group`) and the app's scope in Exchange, as the tenant
shows them: the group's members (GroupMember.Read.All, only when the site names a group), the site's people
(Principals) outside the bounds, and proof of the scope: a mailbox inside the bounds answers, one outside is
refused (403 ErrorAccessDenied; docs/operations.md, "Scoping the app to a group of mailboxes"). The probes are
one GET of one event id each, sent past the app's own bounds on purpose (the sync never sends them)."""

from __future__ import annotations

from urllib.parse import quote

from ...config import SiteConfig
from ...model.bounds import bounded
from ...model.errors import MailboxRefused
from .findings import FAIL, NETWORK_ERRORS, OK, WARN, Section, counted

SHOWN = 20  # people listed by name in a finding
SCOPE_FIX = ("docs/operations.md, \"Scoping the app to a group of mailboxes\"; a change takes 30 minutes to 2 hours "
             "to apply in Graph, Test-ServicePrincipalAuthorization shows it at once")


def check_bounds(section: Section, svc, site: SiteConfig, organisers: list[str], headers: dict) -> None:
    """Only for a site that names its bounds: the people outside them, then the Exchange scope's proof."""
    if not bounded(site):
        return
    outside = people_outside(section, svc, site)
    if outside is None:
        return
    bounds = svc.graph(site).bounds
    inside = next((m for m in organisers if bounds.inside(m)), None)
    if inside:
        refused = _probe(svc, headers, inside)
        if refused == "refused":
            section.add(FAIL, "Exchange scope", f"{inside}, inside the site's bounds, is refused (403 ErrorAccessDenied): "
                        "the app's scope in Exchange leaves out mailboxes this site uses",
                        f"add {inside} to the management scope of the app's role assignment ({SCOPE_FIX})")
        elif refused is None:
            section.add(OK, "Exchange scope: a mailbox inside the bounds answers", inside)
    _prove_outside(section, svc, headers, outside)


def within(svc, site: SiteConfig, mailboxes: list[str]) -> list[str]:
    """The mailboxes inside the site's bounds (none when its group cannot be read: check_bounds says why)."""
    try:
        return [m for m in mailboxes if svc.graph(site).bounds.inside(m)]
    except MailboxRefused:
        return []


def people_outside(section: Section, svc, site: SiteConfig) -> list[str] | None:
    """The emails of the site's Principals outside its bounds (listed in a finding); None when unknown."""
    email = site.col("email")
    try:
        rows = svc.rapid(site).query("principals", None, ("id", site.col("title"), email))
        bounds = svc.graph(site).bounds
        outside = [(r.get(site.col("title")) or r["id"], r[email]) for r in rows
                   if r.get(email) and not bounds.inside(str(r[email]))]
    except MailboxRefused as e:  # the group could not be read
        section.add(FAIL, "mailbox_group", str(e), "grant the application permission GroupMember.Read.All to the app "
                    "and give admin consent (needed only because the site names a group)")
        return None
    except NETWORK_ERRORS as e:
        section.add(FAIL, "the site's people (Principals)", str(e), f"check columns.email ({email!r})")
        return None
    if not outside:
        section.add(OK, "people inside the site's bounds", f"all {counted(len(rows), 'Principal')}")
        return []
    shown = ", ".join(f"{name} <{address}>" for name, address in outside[:SHOWN]) + (" …" if len(outside) > SHOWN else "")
    section.add(WARN, "people outside the site's bounds", f"{counted(len(outside), 'Principal')}: {shown}",
                "items they organise are not synced (their status says why); as invitees they are invited but "
                "their free/busy is never read; widen SITES mailbox_domains or mailbox_group if they belong")
    return [address for _, address in outside]


def _prove_outside(section: Section, svc, headers: dict, outside: list[str]) -> None:
    """The first person outside the bounds whose mailbox is in the tenant must be refused by Exchange."""
    for address in outside[:SHOWN]:
        answer = _probe(svc, headers, address)
        if answer == "refused":
            section.add(OK, "Exchange scope: a mailbox outside the bounds is refused", f"{address} (403 ErrorAccessDenied)")
            return
        if answer is None:
            section.add(WARN, "Exchange scope", f"the app can read {address}, outside the site's bounds: its access "
                        "is not scoped in Exchange (only this app's own bounds keep it out)",
                        f"scope the app to the site's mailboxes and remove its tenant-wide Calendars.ReadWrite grant "
                        f"({SCOPE_FIX})")
            return
    if outside:
        section.add(WARN, "Exchange scope", "no mailbox outside the bounds could be probed (not mailboxes of the tenant)")


def _probe(svc, headers: dict, address: str) -> str | None:
    """One GET of one event id: None when it answers, "refused" for 403 ErrorAccessDenied, else what failed."""
    from ...clients.remote import send

    try:
        send(svc.session, "GET", f"{svc.settings.graph_url}/users/{quote(address, safe='@')}/events", "Graph read calendar",
             headers=headers, params={"$top": "1", "$select": "id"})
        return None
    except NETWORK_ERRORS as e:
        return "refused" if getattr(e, "status", 0) == 403 and getattr(e, "code", "") == "ErrorAccessDenied" else str(e)
