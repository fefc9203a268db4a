"""The mailboxes one site may use, checked before any Graph call made for it (clients/graph.py): as organiser
(events, calendars, subscriptions, delta) and for free/busy. Inside is an address in one of the site's
`mailbox_domains`, or a member (direct or nested) of its `mailbox_group`; a site naming neither is unbounded.

The group's members are read from Graph (GET /groups/{id}/transitiveMembers, which needs GroupMember.Read.All:
api-reference/v1.0/api/group-list-transitivemembers.md) and kept per process for GROUP_CACHE_SECONDS: a
person added to or removed from the group is inside or outside within that time (docs/operations.md,
"Scoping the app to a group of mailboxes"). A site with domains alone never reads a group, so
Calendars.ReadWrite is all it needs.
"""

from __future__ import annotations

import threading
import time

from ..model import errors
from ..model.bounds import bounded, in_domains
from ..model.errors import MailboxRefused, RemoteError

GROUP_CACHE_SECONDS = 600.0  # 10 minutes: how long a change of the group's members takes to apply
_members: dict[tuple[str, str], tuple[float, frozenset[str]]] = {}
_lock = threading.Lock()


def forget_groups() -> None:
    """Drop every cached membership (tests; an operator's restart does the same)."""
    with _lock:
        _members.clear()


class MailboxBounds:
    """Whether an address is inside one site's bounds; `read_members(group_id)` reads the group's addresses."""

    def __init__(self, site, read_members, clock=time.monotonic):
        self._site = site
        self._read_members = read_members
        self._clock = clock

    def inside(self, address: str) -> bool:
        site = self._site
        if not bounded(site) or in_domains(site, address):
            return True
        return bool(site.mailbox_group) and address.strip().lower() in self._group(address)

    def outside(self, addresses) -> list[str]:
        return [a for a in addresses if not self.inside(a)]

    def check(self, address: str, what: str = "mailbox") -> None:
        """MailboxRefused (OUTSIDE_BOUNDS) for an address outside the bounds: no Graph call is made for it."""
        if not self.inside(address):
            raise MailboxRefused(f"{what} {address} is outside the mailboxes site {self._site.key} may use "
                                 f"({describe(self._site)}): nothing is asked of Outlook for it",
                                 errors.OUTSIDE_BOUNDS, address)

    def _group(self, address: str) -> frozenset[str]:
        site, now = self._site, self._clock()
        key = (site.aad_tenant, site.mailbox_group)
        with _lock:
            cached = _members.get(key)
        if cached is not None and now - cached[0] < GROUP_CACHE_SECONDS:
            return cached[1]
        try:
            members = frozenset(a.strip().lower() for a in self._read_members(site.mailbox_group) if a)
        except RemoteError as e:
            raise MailboxRefused(f"the members of group {site.mailbox_group} (SITES mailbox_group of {site.key}) "
                                 f"could not be read ({e}); grant GroupMember.Read.All to the app",
                                 errors.BOUNDS_UNREAD, address) from e
        with _lock:
            _members[key] = (now, members)
        return members


def describe(site) -> str:
    """The bounds in words: "contoso.com, fabrikam.com or group 1234…"."""
    parts = list(site.mailbox_domains) + ([f"members of group {site.mailbox_group}"] if site.mailbox_group else [])
    return " or ".join(parts) if parts else "any mailbox"
