"""Links and subscriptions made before the app asked for immutable ids, moved to them once.

An Outlook event's default id changes when the event moves to another folder — another of the organiser's
calendars, or Deleted Items and back — and its immutable id does not (concepts/outlook-immutable-id.md;
docs/platform-facts.md, "Immutable ids"). Since clients/graph.py asks for immutable ids on every request,
every link made since holds one (`EventLink.immutable`). Older links are moved once:
- per site, by a queued `ids.migrate` job the renewal timer sends while the site is not marked done: each
  mailbox's default ids translated with translateExchangeIds (up to 1000 a call), each link re-keyed with an
  ETag-checked transaction (store.rekey_link); without User.Read.All (the app's contract needs only
  Calendars.ReadWrite, and translateExchangeIds asks for User.Read.All) each event is found by our tag,
  which answers the immutable id too. An event neither finds is gone or elsewhere: its link is left as
  it is, for the sync to decide as before.
- a subscription made without the preference keeps notifying default ids ("you must delete and recreate
  them"): it is made again, as a clientState rotation does (a queued rotation.rotate each).
Several instances: a job that loses a link's ETag race leaves the site unmarked (the next run finishes it);
re-keying twice writes the same id; a rotation takes the mailbox lease, and one queued twice finds its
subscription already replaced. Once marked, a site costs nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict

from ..model.audit import MIGRATION
from ..model.errors import MailboxRefused, RemoteError
from ..services import Services
from ..storage.tables import Conflict
from ..sync.perform import tag_of
from .rotation import ROTATE_OP

log = logging.getLogger("rapid_meetings")
MIGRATE_OP = "ids.migrate"
DONE = "immutable-ids"


def queue_migrations(svc: Services) -> int:
    """One `ids.migrate` job per site not yet migrated (renewal timer)."""
    sites = [key for key in svc.settings.sites if not svc.store.marked(DONE, key)]
    if sites:
        svc.queue.enqueue([{"op": MIGRATE_OP, "site": key, "why": MIGRATION} for key in sites])
    return len(sites)


def migrate_site(svc: Services, site_key: str) -> str:
    """Move one site's links and subscriptions to immutable ids; mark the site done when nothing is left."""
    site = svc.site(site_key)
    old = [link for link in svc.store.links(site.key) if link.event_id and not link.immutable]
    by_mailbox = defaultdict(list)
    for link in old:
        by_mailbox[link.mailbox].append(link)
    moved, raced = 0, 0
    for mailbox, links in by_mailbox.items():
        try:
            ids = _immutable_ids(svc, site, mailbox, links)
        except MailboxRefused as e:  # outside the site's bounds or Exchange's scope: nothing of it can move
            log.warning("site=%s immutable ids: mailbox %s skipped: %s", site.key, mailbox, e)
            continue
        for link in links:
            if link.event_id in ids:
                try:
                    svc.store.rekey_link(link, ids[link.event_id])
                    moved += 1
                except Conflict:  # changed meanwhile: by another migration (done), or a sync (the next run looks)
                    now = svc.store.get_link(site.key, link.item_id)
                    if now is not None and not now.immutable:
                        raced += 1
    subs = [s for s in svc.store.subscriptions() if s.site == site.key and not s.immutable_ids]
    if subs:  # one job each (a site may have hundreds of organisers): made again under the mailbox lease
        svc.queue.enqueue([{"op": ROTATE_OP, "site": s.site, "sub": s.id} for s in subs])
    log.warning("site=%s immutable ids: %d of %d links moved, %d subscriptions to make again%s", site.key, moved,
                len(old), len(subs), f", {raced} to retry" if raced else "")
    if not raced:
        svc.store.mark(DONE, site.key)
    return "migrated"


def _immutable_ids(svc: Services, site, mailbox: str, links: list) -> dict[str, str]:
    graph = svc.graph(site)
    try:
        return graph.immutable_ids(mailbox, [link.event_id for link in links])
    except (RemoteError, MailboxRefused) as e:  # a 403 ErrorAccessDenied on /users/… arrives as MailboxRefused
        if getattr(e, "status", None) != 403:
            raise
        log.info("site=%s mailbox=%s translateExchangeIds refused (%s): finding each event by its tag", site.key,
                 mailbox, e)
    found = {}
    for link in links:
        events = graph.find_tagged(mailbox, tag_of(site, link.item_id))
        if len(events) == 1:
            found[link.event_id] = events[0]["id"]
    return found


HANDLERS = {MIGRATE_OP: lambda svc, task: migrate_site(svc, task["site"])}
