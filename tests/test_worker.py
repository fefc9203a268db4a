"""The worker's reschedules: throttling waits what the remote asked; transient failures back off by their
own count, so a failure after a run of 429s is retried in seconds, not minutes."""

from types import SimpleNamespace

import pytest

from shared.jobs import worker
from shared.model.errors import Throttled, TransientError


class Queue:
    def __init__(self):
        self.sent = []

    def send(self, job, delay_seconds=0):
        self.sent.append((job, delay_seconds))


def failing(error):
    def handler(svc, task):
        raise error
    return handler


@pytest.mark.parametrize("error, delay, failures", [
    (TransientError("site did not answer"), 2.0, 1),
    (Throttled(3.0, "Graph create event: busy"), 3.0, 0),
])
def test_a_failure_after_five_429s_backs_off_by_its_own_kind(monkeypatch, error, delay, failures):
    monkeypatch.setitem(worker.HANDLERS, "test.flaky", failing(error))
    queue = Queue()
    svc = SimpleNamespace(queue=queue, settings=SimpleNamespace(backoff_cap_seconds=900))
    outcomes = worker.run_job(svc, {"id": "j1", "tasks": [{"op": "test.flaky"}], "attempt": 5, "failures": 0})
    assert outcomes == ["rescheduled"]
    [(job, waited)] = queue.sent
    # a transient wait is spread by up to a fifth, so jobs failing together do not come back together
    assert delay * 0.8 <= waited <= delay and job["failures"] == failures and job["attempt"] == 6 and job["id"] == "j1"


@pytest.mark.parametrize("error", [TransientError("Graph did not answer"), Throttled(30.0, "site busy", 503)])
def test_a_job_failing_for_days_is_never_given_up_and_waits_at_most_the_cap(monkeypatch, error):
    """No reschedule budget: the 500th transient failure in a row reschedules again, after at most the cap."""
    monkeypatch.setitem(worker.HANDLERS, "test.flaky", failing(error))
    queue = Queue()
    svc = SimpleNamespace(queue=queue, settings=SimpleNamespace(backoff_cap_seconds=20))
    outcomes = worker.run_job(svc, {"id": "j1", "tasks": [{"op": "test.flaky"}], "attempt": 500, "failures": 499})
    assert outcomes == ["rescheduled"]
    [(job, waited)] = queue.sent
    assert job["attempt"] == 501 and 0 < waited <= 20
