"""The queue-triggered worker: runs the jobs HTTP functions persisted."""

import json
import logging

import azure.functions as func

from .http import services

bp = func.Blueprint()
log = logging.getLogger("rapid_meetings")


@bp.queue_trigger(arg_name="msg", queue_name="%WORK_QUEUE%", connection="AzureWebJobsStorage")
def sync_worker(msg: func.QueueMessage) -> None:
    from shared.worker import run_job

    try:
        job = json.loads(msg.get_body().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"message {msg.id} is not a job: {e}") from None
    outcomes = run_job(services(), job)
    log.info("job=%s done (dequeue %s): %s", job.get("id"), msg.dequeue_count, ", ".join(outcomes))
