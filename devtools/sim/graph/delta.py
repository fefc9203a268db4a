"""Delta query of a calendar view: api-reference/v1.0/api/event-delta.md, concepts/delta-query-overview.md.
"""

from __future__ import annotations

import secrets

from ..base import HttpError, Request, Response, utcnow
from .model import READ_CALENDARS, _PAGE_PREFER, User


class CalendarDelta:
    """calendarView/delta with expiring state tokens."""

    def expire_delta_tokens(self) -> None:
        """Every delta and skip token issued so far now answers 410 SyncStateNotFound."""
        with self.lock:
            self._delta_states.clear()

    def _delta(self, req: Request) -> Response:
        _, user = self._mailbox(req, READ_CALENDARS)
        size = max(1, int(self._prefer(req, _PAGE_PREFER) or 50))
        token = req.query.get("$skiptoken") or req.query.get("$deltatoken")
        with self.lock:
            if token:
                # api-reference/v1.0/api/event-delta.md and concepts/delta-query-overview.md: state tokens
                # expire; the client then starts over with a full read (410 SyncStateNotFound).
                state = self._delta_states.get(token)
                if (state is None or state["mailbox"] != user.id
                        or (utcnow() - state["issued"]).total_seconds() > self.delta_token_lifetime):
                    raise HttpError(410, "SyncStateNotFound", "The sync state generation is not found.")
                if "$skiptoken" in req.query:
                    items, seq = state["items"], state["seq"]
                else:
                    items, seq = self._changes_since(user, state), self._seq
                start, end = state["start"], state["end"]
            else:
                start, end = self._window(req)
                items = [("event", ev.id) for ev in sorted(self.calendars[user.id].values(),
                                                           key=lambda ev: ev.window()[0])
                         if self._in_window(ev, start, end)]
                seq = self._seq
            page, rest = items[:size], items[size:]
            value = []
            for kind, event_id in page:
                ev = self.calendars[user.id].get(event_id)
                if kind == "event" and ev:
                    value.append(self._delta_render(ev, self._tz(req)))  # series.py: occurrences bare
                else:
                    value.append({"@odata.type": "#microsoft.graph.event", "id": self.shown_id(event_id),
                                  "@removed": {"reason": "deleted"}})
            new_token = secrets.token_urlsafe(24)
            self._delta_states[new_token] = {"mailbox": user.id, "start": start, "end": end, "seq": seq,
                                             "items": rest, "issued": utcnow()}
        link = f"{self.graph_url}/users/{user.id}/calendarView/delta?"
        out = {"@odata.context": self._context(user, "calendarView(event)"), "value": value}
        if rest:
            out["@odata.nextLink"] = link + "$skiptoken=" + new_token
        else:
            out["@odata.deltaLink"] = link + "$deltatoken=" + new_token
        return Response(200, out, headers={"Preference-Applied": f"odata.maxpagesize={size}"})

    def _changes_since(self, user: User, state: dict) -> list[tuple[str, str]]:
        changes = []
        for ev in self.calendars[user.id].values():
            if ev.seq > state["seq"]:
                inside = self._in_window(ev, state["start"], state["end"])
                changes.append((ev.seq, ("event" if inside else "removed", ev.id)))
        for event_id, (seq, _) in self._removed[user.id].items():
            if seq > state["seq"]:
                changes.append((seq, ("removed", event_id)))
        return [item for _, item in sorted(changes)]
