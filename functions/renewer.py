"""The timer that keeps Graph subscriptions alive: every 30 minutes, renew what expires within 2 hours."""

import logging

import azure.functions as func

from .http import services

bp = func.Blueprint()
log = logging.getLogger("rapid_meetings")


@bp.timer_trigger(arg_name="timer", schedule="0 */30 * * * *", run_on_startup=False)
def subscription_renewer(timer: func.TimerRequest) -> None:
    from shared.model.mapping import format_utc
    from shared.subscriptions.registry import renew_due

    svc = services()
    started = format_utc(svc.clock())
    try:
        outcome = renew_due(svc)
    except Exception as e:
        svc.ops.note_run("renewal", "*", started=started, finished=format_utc(svc.clock()),
                         outcome=f"{type(e).__name__}: {e}"[:500])
        raise
    svc.ops.note_run("renewal", "*", started=started, finished=format_utc(svc.clock()), outcome="ok",
                     counts=outcome)
    log.info("subscription renewal%s: %s", " (past due)" if timer.past_due else "", outcome)
