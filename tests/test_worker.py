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


def test_the_status_column_says_it_will_retry_exactly_when_the_worker_will():
    """Words with "retry" only for what the worker reschedules (is_transient); a refusal or a bug says an
    operator has been told, never "retrying" when nothing will retry."""
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    from shared.features.status import state_after
    from shared.jobs.retries import is_transient
    from shared.model.errors import BAD_DATE, JobAbandoned, RemoteError, StorageUnavailable

    ctx = SimpleNamespace(now=lambda: datetime(2026, 12, 3, 9, 12, tzinfo=timezone.utc),
                          site=SimpleNamespace(zone=ZoneInfo("Europe/London"), key="acme/sales"),
                          services=SimpleNamespace(health=SimpleNamespace(breakers=lambda site: {})))
    errors = [Throttled(5.0, "Graph get event: busy"), Throttled(1.0, "site get item: down", 503),
              TransientError("Graph update event: 502"), StorageUnavailable("table did not answer"),
              RemoteError(403, "Graph create event: ErrorAccessDenied"), ValueError("a bug"),
              JobAbandoned("item 7: start is not a date", BAD_DATE, "start_date")]
    for error in errors:
        words = state_after(ctx, "7", error).text
        assert ("will retry" in words) is is_transient(error), (error, words)
        assert "retrying" not in words
    assert state_after(ctx, "7", TransientError("Graph update event: 502")).text == \
        "Waiting for Outlook, which has not answered since 09:12 on 3 Dec; will retry"
