"""The queue-triggered worker: runs the jobs HTTP functions persisted."""

import functools
import json
import logging
from pathlib import Path

import azure.functions as func

from .http import services

bp = func.Blueprint()
log = logging.getLogger("rapid_meetings")


@functools.cache
def max_dequeue_count() -> int:
    """The deliveries after which the host moves a failing message to <queue>-poison (host.json)."""
    host = json.loads((Path(__file__).resolve().parent.parent / "host.json").read_text())
    return int(host.get("extensions", {}).get("queues", {}).get("maxDequeueCount", 5))


@bp.queue_trigger(arg_name="msg", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
def sync_worker(msg: func.QueueMessage) -> None:
    from shared.storage.work_queue import message_key
    from shared.jobs.worker import run_job

    text = msg.get_body().decode("utf-8", "replace")
    svc = services()
    try:
        job = json.loads(text)
        if not isinstance(job, dict):
            raise ValueError("message is not a job object")
        outcomes = run_job(svc, job)
    except Exception as e:
        # the host retries, then moves the message to <queue>-poison: keep the reason for whoever replays it
        try:
            svc.store.record_failure(message_key(text), f"{type(e).__name__}: {e}", msg.dequeue_count or 0)
        except Exception as store_error:
            log.error("could not record why message %s failed: %s", msg.id, type(store_error).__name__)
        if (msg.dequeue_count or 0) >= max_dequeue_count():  # the poison alert counts these lines (infra/main.bicep)
            log.error("job poisoned: message %s moves to %s-poison after %s deliveries: %s: %s", msg.id,
                      svc.settings.work_queue, msg.dequeue_count, type(e).__name__, str(e)[:300])
        raise
    log.info("job=%s done (dequeue %s): %s", job.get("id"), msg.dequeue_count, ", ".join(outcomes))
