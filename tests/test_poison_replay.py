"""Replaying poison: a job that failed for good is listed with its reason, requeued once fixed, then applied."""

import io

from devtools import poison
from devtools.azurite import eventually
from devtools.stack import ORGANISER

from .scenario import new_event, new_meeting, settle
from .test_local_host import queue


def run(stack, *argv) -> tuple[int, str]:
    out = io.StringIO()
    code = poison.main([*argv, "--connection-string", stack.azurite.connection_string, "--queue", stack.queue_name], out)
    return code, out.getvalue()


def test_a_poisoned_job_is_listed_with_its_reason_and_replayed_after_the_fix(stack, site):
    meeting = new_meeting(site)
    settle(stack)
    # Graph refuses every create for a while (e.g. a missing permission): the job fails five times
    stack.graph.fail_next(5, status=403, retry_after=None, path_contains="/events", method="POST")
    item = new_event(site, meeting, title="Poisoned then replayed")
    poisoned = queue(stack, f"{stack.queue_name}-poison")
    eventually(lambda: list(poisoned.peek_messages()), timeout=30, what="the job to be poisoned")
    settle(stack)
    code, listing = run(stack, "list")
    assert code == 0 and "1 poisoned message(s)" in listing
    assert f"event.create acme/sales {item['id']}" in listing
    assert "RemoteError: 403" in listing
    message_id = listing.split()[0]

    code, replay = run(stack, "requeue", message_id)  # the cause is fixed: Graph accepts creates again
    assert code == 0 and f"requeued {message_id}" in replay
    eventually(lambda: [e for e in stack.graph.events(ORGANISER) if e["subject"] == "Poisoned then replayed"],
               timeout=20, what="the replayed job to create the event")
    settle(stack)
    assert not list(poisoned.peek_messages())
    assert run(stack, "requeue", "no-such-message")[0] == 1
