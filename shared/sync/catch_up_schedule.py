"""When each site's catch-up is due (the timer, every few minutes): a `site.catch_up` task for each site
whose interval (CATCH_UP_MINUTES, or the site's `catch_up_minutes`) has passed, with a sweep when
SWEEP_HOURS have passed since the last one, or when no catch-up succeeded for a while (an outage)."""

from __future__ import annotations

import logging
from datetime import timedelta

from ..config import SiteConfig
from ..model.mapping import format_utc, parse_utc
from ..services import Services
from .catch_up import SCHEDULE_OP

log = logging.getLogger("rapid_meetings")


def catch_up_interval(settings, site: SiteConfig) -> timedelta:
    return timedelta(minutes=site.catch_up_minutes or settings.catch_up_minutes)


def _after_a_gap(run, now, interval: timedelta) -> bool:
    """No catch-up succeeded for three intervals (the site, Graph or our storage was down): deletions whose
    webhooks were lost meanwhile are only seen by a sweep, so this catch-up sweeps, not the next daily one."""
    return bool(run.watermark) and now - parse_utc(run.watermark) > 3 * interval


def schedule_due(svc: Services) -> list[str]:
    """The timer: enqueue a catch-up for each site that is due; the ids of the jobs."""
    now, ops, tasks = svc.clock(), svc.ops, []
    for site in svc.settings.sites.values():
        run = ops.run("catch_up", site.key)
        last = max((parse_utc(t) for t in (run.scheduled, run.started) if t), default=None)
        if last is not None and now - last < catch_up_interval(svc.settings, site):
            continue
        sweep = ops.run("sweep", site.key)
        last_sweep = max((parse_utc(t) for t in (sweep.scheduled, sweep.started) if t), default=None)
        sweep_due = last_sweep is None or now - last_sweep >= timedelta(hours=svc.settings.sweep_hours) \
            or _after_a_gap(run, now, catch_up_interval(svc.settings, site))
        tasks.append({"op": SCHEDULE_OP, "site": site.key, "sweep": sweep_due})
        ops.note_run("catch_up", site.key, scheduled=format_utc(now))
        if sweep_due:
            ops.note_run("sweep", site.key, scheduled=format_utc(now))
    if not tasks:
        return []
    jobs = svc.queue.enqueue(tasks)
    log.info("site catch-up scheduled for %s", ", ".join(f"{t['site']}{' (+sweep)' if t['sweep'] else ''}"
                                                         for t in tasks))
    return jobs
