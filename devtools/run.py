"""`make run`: the demo's stack, left running until Ctrl-C. Play with it in a browser: the simulators' pages."""

from __future__ import annotations

import os
import signal
import sys
import threading

from .stack import FUNCTION_KEY, MASTER_KEY, ORGANISER, Stack


def main() -> int:
    stack = Stack(edit_settle_seconds=None)  # the app's own EDIT_SETTLE_SECONDS, as deployed
    try:
        stack.start_backends()
        log_path = os.path.join(os.getcwd(), ".run", "host.log")
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        stack.start_host_process(log_path=log_path)
        site = stack.sites["acme/sales"]
        rapid, graph = stack.rapid.base_url, stack.graph.base_url
        print(f"""
rapid-meetings is running locally (Ctrl-C stops everything).

  Play with it in a browser (no tokens needed):
    RAPID sites      {rapid}/_sim/sites/acme/sales   create, edit, delete meetings and events (fires webhooks)
    Outlook          {graph}/_sim/calendars/{ORGANISER}   each mailbox's week: move, rename, cancel (notifies)
  Both simulators serve https with a local CA: let the browser proceed past its warning once, or
  trust {stack.graph.ca_path}.

  Functions host     {stack.host_url}   (function key {FUNCTION_KEY}, master key {MASTER_KEY})
    site webhooks    {stack.function_url("acme/sales/0/services/rapid-meetings/event/create")}
    notifications    {stack.host_url}/graph/notifications?code={FUNCTION_KEY}
    host log         {log_path}
  Graph simulator    {graph}/_sim/   (state as JSON; all mailboxes at {graph}/_sim/calendars)
  RAPID site API     {site.sim.url}
    site state       {rapid}/_sim/   (all sites at {rapid}/_sim/sites)
  Azurite            {stack.azurite.connection_string}

Try it: on the RAPID page create a meeting (organiser: Alice Organiser), then an event in it with Bob
as an invitee and Gina as a guest. Open {ORGANISER}'s calendar on the Graph page, go to the event's
week (the list under the grid links to it) and see it with its attendees. Click it there to move it
or cancel it: the RAPID page then shows the new time, or the event marked Cancelled.
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
