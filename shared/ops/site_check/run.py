"""The order the site check runs in: the app settings, each SITES entry on its own, the notification URL,
then per valid site its RAPID part and its Graph part (the organisers RAPID shows are the mailboxes Graph
reads). A part that crashes is a finding; the next part still runs."""

from __future__ import annotations

from dataclasses import replace

from ...config import Settings, SiteConfig
from .configuration import check_notification_url, read_app_settings, validated_sites
from .findings import FAIL, CannotContinue, Finding, Section
from .graph_permissions import check_graph
from .rapid_lists import check_rapid


def check_env(env, only: str | None = None) -> list[Section]:
    """Validate the app settings site by site, then check every valid site (or only `only`)."""
    app = Section("app")
    read = read_app_settings(app, env)
    if read is None:
        return [app]
    settings, entries = read
    site_sections, sites = validated_sites(env, entries, only)
    sections = [app] + site_sections
    if only and len(sections) == 1:
        app.add(FAIL, f"site {only}", "is not configured in SITES")
    check_notification_url(app, settings)
    for section in site_sections:
        site = sites.get(section.name.lower())
        if site is not None:
            section.findings += check_site(_services(replace(settings, sites={site.key.lower(): site})), site)
    return sections


def check_all(settings: Settings) -> list[Section]:
    """Check already-parsed settings: the notification URL, then each site."""
    app = Section("app")
    check_notification_url(app, settings)
    return [app] + [Section(site.key, check_site(_services(settings), site)) for site in settings.sites.values()]


def check_site(svc, site: SiteConfig) -> list[Finding]:
    """Everything about one site: RAPID (token, lists, columns, lookups, links), then Graph."""
    section = Section(site.key)
    organisers = _run_part(section, "rapid", check_rapid, section, svc, site) or []
    _run_part(section, "graph", check_graph, section, svc, site, organisers)
    return section.findings


def _run_part(section: Section, name: str, part, *args):
    """One part of a site's check (RAPID or Graph): what it returns, or None when it stopped early."""
    try:
        return part(*args)
    except CannotContinue:
        return None
    except Exception as e:  # a check must report, never crash
        section.add(FAIL, f"{name} check", f"unexpected {type(e).__name__}: {e}",
                    "report this with the output of the check")
        return None


def _services(settings: Settings):
    from ...services import Services  # a fresh one per site: its own token, proving its own credential

    return Services(settings)
