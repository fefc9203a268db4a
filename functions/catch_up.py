"""The site-side catch-up timer (docs/product-rules.md, "Rule 8. Catch up after gaps, on both sides"): every 5
minutes it enqueues a catch-up for each site whose interval (CATCH_UP_MINUTES, default 15) has passed, with a
sweep every SWEEP_HOURS (default 24), and puts back to work the jobs an outage of our Storage poisoned
(shared/jobs/poison.py)."""

import logging

import azure.functions as func

from shared.model.audit import CATCH_UP, acting_as

from .http import services

bp = func.Blueprint()
log = logging.getLogger("rapid_meetings")


@bp.timer_trigger(arg_name="timer", schedule="0 */5 * * * *", run_on_startup=False)
@acting_as(CATCH_UP)
def site_catch_up(timer: func.TimerRequest) -> None:
    from shared.jobs.poison import requeue_outage_poison
    from shared.sync.catch_up_schedule import schedule_due

    svc = services()
    log.info("work queue backlog: %s", svc.queue.backlog())  # the backlog alert reads it (infra/main.bicep)
    jobs = schedule_due(svc)
    log.info("site catch-up%s: %d job(s) enqueued", " (past due)" if timer.past_due else "", len(jobs))
    requeue_outage_poison(svc)
