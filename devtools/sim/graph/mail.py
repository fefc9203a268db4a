"""The mail Exchange sends attendees when an app updates the organiser's meeting through Graph.

What the pages say:
- api-reference/v1.0/api/event-update.md, "Notes for updating specific properties": "An event update that
  includes only the **attendees** property in the request body sends a meeting update to only the
  attendees that have changed" (an added attendee gets the invitation, a removed one the cancellation);
  "An event update that removes an attendee specified as a member of a distribution list sends a meeting
  update to all the attendees" (the simulator has no distribution lists). The same page: updating a
  series master whose instances were updated separately sends "one for the master series and one per
  instance that has been updated" (here a series master's PATCH is counted as one update per attendee, like
  any PATCH: the per-instance messages are not simulated).
- Graph has no switch to update a meeting without mailing its attendees: microsoftgraph/microsoft-graph-docs
  issue 2309 ("event adding/removing attendees without emailing other attendees", closed by the docs'
  owner: "it is actually not possible at the moment"), and many since (microsoft-graph-docs-contrib 2320,
  msgraph-sdk-dotnet 1549).
What they leave open: whether a PATCH that changes only the organiser's own copy (categories, reminders,
showAs, extended properties) or changes nothing at all is mailed. Exchange sends no diff, so the simulator
takes the safe reading: every other PATCH of an event with attendees mails every attendee once ("update"),
whatever it carries. The app sends no such PATCH (shared/sync/perform.py `update` PATCHes only a change).

Only PATCHes through Graph are counted (`_patch_event`, $batch included): those are the app's. An edit the
organiser makes in Outlook (`outlook_update`) is the organiser's own mail, sent when they press Send, and
is not counted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

UPDATE, INVITATION, CANCELLATION = "update", "invitation", "cancellation"


@dataclass
class AttendeeMail:
    mailbox: str      # the organiser's (UPN)
    event_id: str
    attendee: str     # the address it went to, as the event names it
    kind: str         # UPDATE, INVITATION (an attendee the PATCH added), CANCELLATION (one it removed)
    subject: str
    time: float = field(default_factory=time.time)


def _addresses(attendees: list[dict]) -> dict[str, str]:
    return {a["emailAddress"]["address"].lower(): a["emailAddress"]["address"] for a in attendees or []}


class AttendeeMailing:
    """Records `attendee_mails` (a list like `cancellations`) for each PATCH of a meeting (events.py)."""

    attendee_mails: list[AttendeeMail]

    def _send_update_mails(self, user, ev, attendees_before: list[dict], data: dict) -> None:
        """Called under the lock after a Graph PATCH applied `data` to `ev` (event-update.md, above)."""
        before, after = _addresses(attendees_before), _addresses(ev.fields.get("attendees") or [])
        added = [after[a] for a in after if a not in before]
        removed = [before[a] for a in before if a not in after]
        attendees_only = {k for k in data if not k.startswith("@")} == {"attendees"}
        kept = [] if attendees_only else [after[a] for a in after if a in before]
        subject = ev.fields.get("subject", "")
        for kind, people in ((UPDATE, kept), (INVITATION, added), (CANCELLATION, removed)):
            self.attendee_mails.extend(AttendeeMail(user.upn, ev.id, who, kind, subject) for who in people)

    def update_mails(self, mailbox: str | None = None, event_id: str | None = None, kind: str | None = None) -> int:
        """How many messages Exchange sent attendees for the app's PATCHes (of one organiser, one event, one
        kind: "update", "invitation", "cancellation"; all when None)."""
        with self.lock:
            return sum(1 for m in self.attendee_mails
                       if (mailbox is None or m.mailbox.lower() == mailbox.lower())
                       and (event_id is None or m.event_id == event_id) and (kind is None or m.kind == kind))
