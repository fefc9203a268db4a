"""A whole-site "sync now" (`sync.site`: a full catch-up with a sweep, then a delta read of every calendar)
runs at most once per SYNC_SITE_MINUTES per site, and asking again while one waits is merged into it.

A whole-site run reads every item and every link of the site: asked for ten times, it must not run ten
times. The site's mark (`health`, `load|<site>`/`sync-site`, ETag-checked) holds the job waiting to run
(`job`, and when it may start: `due`) and the last one that started (`ran`, `started`):
- a request while a job waits (`job` ≠ `ran`) is merged into it: it has not read anything yet, so it covers
  every change made before the request; the caller is answered 202 with that job and `"merged": true`;
- otherwise a job is sent, to start SYNC_SITE_MINUTES after the last start at the earliest (the rate
  limit): a request while a run is going, or just after one, is not refused (a person who pressed "Sync
  with Outlook now" expects it to happen, not an error) but kept and run once, when the window ends; the
  answer says when (`starts`). Repeated presses meanwhile merge into that one.
- a job starts only as the mark's job (`claim`): one that finds a later job waiting ends as merged (two
  requests that raced each sent one; the row names one). A job the row names but that never started
  within STALE_MINUTES of its due time (lost: its message poisoned or deleted) is not waited on.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from ..model.mapping import format_utc, parse_utc
from ..storage.health import Conflict
from ..storage.work_queue import new_job

log = logging.getLogger("rapid_meetings")
MARK = "sync-site"
STALE_MINUTES = 30
TRIES = 3


def _waiting(values: dict, now) -> bool:
    """The mark names a job that has not started and is not presumed lost."""
    return bool(values.get("job")) and values.get("job") != values.get("ran") and \
        now < parse_utc(values["due"]) + timedelta(minutes=STALE_MINUTES)


def request_site_sync(svc, site_key: str, task: dict) -> dict:
    """Ask for a whole-site sync: merged into the one waiting, or sent to start when the site's window allows.
    The answer's body (202)."""
    for _ in range(TRIES):
        now = svc.clock()
        values, etag = svc.health.load_row(site_key, MARK) or ({}, None)
        if _waiting(values, now):
            log.info("site=%s whole-site sync now merged into job=%s (starts %s)", site_key, values["job"], values["due"])
            return {"accepted": 1, "jobs": [values["job"]], "merged": True, "starts": values["due"]}
        window = timedelta(minutes=svc.settings.sync_site_minutes)
        due = max(now, parse_utc(values["started"]) + window) if values.get("started") else now
        job = new_job([task])
        svc.queue.send(job, delay_seconds=(due - now).total_seconds())
        try:
            svc.health.save_load_row(site_key, MARK, {**values, "job": job["id"], "due": format_utc(due)}, etag)
        except Conflict:  # another request sent one at the same time: ours ends as merged when it runs
            continue
        return {"accepted": 1, "jobs": [job["id"]], "merged": False, "starts": format_utc(due)}
    return {"accepted": 1, "jobs": [job["id"]], "merged": False, "starts": format_utc(due)}


def claim(svc, site_key: str, job_id: str) -> str | None:
    """Before a whole-site sync runs: None when this job may run (the mark now says it started), else the
    id of the waiting job it is merged into. Conflict (the worker decides again) when the mark changed."""
    now = svc.clock()
    values, etag = svc.health.load_row(site_key, MARK) or ({}, None)
    if values.get("ran") == job_id:
        return None  # a retry of the run that already claimed it
    if _waiting(values, now) and values["job"] != job_id:
        return values["job"]
    svc.health.save_load_row(site_key, MARK, {**values, "job": job_id, "due": values.get("due") or format_utc(now),
                                              "ran": job_id, "started": format_utc(now)}, etag)
    return None
