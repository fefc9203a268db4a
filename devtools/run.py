"""`make run`: the demo's stack, left running until Ctrl-C. Play with it over HTTP."""

from __future__ import annotations

import os
import signal
import sys
import threading

from .stack import FUNCTION_KEY, MASTER_KEY, ORGANISER, Stack


def main() -> int:
    stack = Stack()
    try:
        stack.start_backends()
        log_path = os.path.join(os.getcwd(), ".run", "host.log")
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        stack.start_host_process(log_path=log_path)
        site = stack.sites["acme/sales"]
        token = site.sim.token(person=ORGANISER)  # a person's edits fire the site's webhooks
        print(f"""
rapid-meetings is running locally (Ctrl-C stops everything).

  Functions host     {stack.host_url}   (function key {FUNCTION_KEY}, master key {MASTER_KEY})
    site webhooks    {stack.host_url}/acme/sales/0/services/rapid-meetings/event/create?code={FUNCTION_KEY}
    notifications    {stack.host_url}/graph/notifications?code={FUNCTION_KEY}
    host log         {log_path}
  Graph simulator    {stack.graph.base_url}/_sim/   (calendars, subscriptions; CA {stack.graph.ca_path})
  RAPID site         {site.sim.url}
    site view        {stack.rapid.base_url}/_sim/
  Azurite            {stack.azurite.connection_string}

Try it: create a meeting and an event in the simulated site (its webhooks call the app), then look
at {ORGANISER}'s calendar in the Graph simulator's view:
  curl -s -X POST -H "Authorization: Bearer {token}" -H "Content-Type: application/json" \\
       '{site.sim.url}/lists/Meetings/items' -d '{{"title": "Demo", "organiser_id": {site.principals[ORGANISER]}}}'
  curl -s -X POST -H "Authorization: Bearer {token}" -H "Content-Type: application/json" \\
       '{site.sim.url}/lists/Meeting%20Events/items' -d '{{"title": "Hello Outlook", "meeting_id": <meeting id>,
       "start_date": "2026-12-01T09:00:00Z", "end_date": "2026-12-01T10:00:00Z",
       "ScopedLinkedItemsToAdd": [{{"column": "invitees", "link": "Principals/{site.principals["bob@contoso.test"]}"}}]}}'
""", flush=True)
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        try:
            stopped.wait()
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
