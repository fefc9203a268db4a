"""The mailboxes a site may use (SITES `mailbox_domains`, `mailbox_group`), as pure rules: the setting's
check, and whether an address is inside by its domain. Group membership is read from Graph and cached by
clients/bounds.py; this module knows only addresses."""

from __future__ import annotations

import re
import uuid

_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def bounds_problem(entry: dict) -> str | None:
    """What is wrong with a SITES entry's bounds, in words naming the key; None when nothing is."""
    domains = entry.get("mailbox_domains", [])
    if not isinstance(domains, list) or not all(isinstance(d, str) and _DOMAIN.match(d.strip().lower())
                                                for d in domains):
        return f"mailbox_domains must be a list of domain names such as \"contoso.com\" (no '@'), not {str(domains)[:80]!r}"
    group = entry.get("mailbox_group") or ""
    try:
        if group:
            uuid.UUID(str(group))
    except ValueError:
        return (f"mailbox_group must be the Entra group's object ID (a GUID), not {str(group)[:60]!r}: "
                "Entra admin center > Groups > the group > Object ID")
    return None


def bounded(site) -> bool:
    """Whether the site names the mailboxes it may use at all (neither key set: every mailbox, as before)."""
    return bool(site.mailbox_domains or site.mailbox_group)


def in_domains(site, address: str) -> bool:
    """The address's domain is one of the site's (exactly: a subdomain is another domain)."""
    domain = address.rpartition("@")[2].strip().lower()
    return bool(domain) and domain in site.mailbox_domains
