"""The timer that keeps Graph subscriptions alive: every 30 minutes, renew what expires within 36 hours
(shared/subscriptions/renewal.py), and every DELTA_MINUTES read every watched calendar by delta."""

import logging

import azure.functions as func

from shared.model.audit import RENEWAL, acting_as

from .http import services

bp = func.Blueprint()
log = logging.getLogger("rapid_meetings")


@bp.timer_trigger(arg_name="timer", schedule="0 */30 * * * *", run_on_startup=False)
@acting_as(RENEWAL)
def subscription_renewer(timer: func.TimerRequest) -> None:
    from shared.subscriptions.renewal import run_renewal

    outcome = run_renewal(services())
    log.info("subscription renewal%s: %s", " (past due)" if timer.past_due else "", outcome)
