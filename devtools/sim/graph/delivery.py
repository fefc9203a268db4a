"""Posting change and lifecycle notifications to the app, and posting them again when it does not answer.

concepts/change-notifications-delivery-webhooks.md, "Processing the change notification": "If Microsoft
Graph doesn't receive a 2xx class code within 3 seconds, it tries to resend the change notification
multiple times, for up to 4 hours. If Microsoft Graph still doesn't receive a 2xx code within the period,
it discards the change notification"; and "Throttling": notifications to a failing endpoint are "retried
again in 10 minutes". The page gives no schedule beyond that, so two ways are offered:

  notification_retry_window  None (default)  `notification_retries` more attempts, the wait doubling from
                                             `notification_backoff` seconds (a short test-sized policy)
                             seconds         as published: attempts until that long after the first (4 h:
                                             NOTIFICATION_RETRY_WINDOW), the wait doubling from
                                             `notification_backoff` up to `notification_backoff_cap` (10
                                             minutes, the Throttling section's), then dropped
                                             (`notifications_dropped`)

Waits are world time (shared/clock.py): on an accelerated clock, 4 hours of retries pass in seconds. With a
window, each notification waits for its next attempt on a timer of its own, as Graph retries each one apart
from the others, so a failing endpoint never holds up the deliveries behind it. What counts as an answer is
unchanged: a 2xx-4xx status other than 429 ends the attempts; 429, 5xx, a timeout (`notification_timeout`,
3 s) or a connection error asks for another.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime

import requests

from shared import clock

from ..base import utcnow
from .model import Delivery, _Job

NOTIFICATION_RETRY_WINDOW = 4 * 3600.0   # "for up to 4 hours"
NOTIFICATION_BACKOFF_CAP = 600.0         # "retried again in 10 minutes"


@dataclass
class _Retry:
    """A notification Graph is trying again: where, what, since when, and how many attempts so far."""

    url: str
    items: list[dict]
    first: datetime
    attempts: int


class NotificationDelivery:
    """The delivery workers: fresh notifications from `_jobs` (grouped per URL when batching), and retries."""

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.trust_env = False
            session.verify = self.notification_verify
        return session

    def _enqueue(self, job: _Job) -> None:
        with self.lock:
            if self._paused is not None and "lifecycleEvent" not in job.items[0]:
                self._paused.append(job)
                return
            self._pending += 1
        self._jobs.put(job)

    def _deliver_loop(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if isinstance(job, _Retry):
                try:
                    self._attempt(job)
                finally:
                    with self.lock:
                        self._pending -= 1
                continue
            jobs = [job] + (self._more_of_batch() if self.batch_notifications else [])
            groups: dict[str, list[dict]] = {}
            for j in jobs:
                groups.setdefault(j.url, []).extend(j.items)
            for url, items in groups.items():
                self._post_notification(url, items)
            with self.lock:
                self._pending -= len(jobs)

    def _more_of_batch(self) -> list[_Job]:
        """Fresh notifications arriving within `batch_window` of the first, up to 100 in one POST."""
        more, deadline = [], time.monotonic() + self.batch_window
        while len(more) < 99:
            try:
                job = self._jobs.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is None or isinstance(job, _Retry):
                self._jobs.put(job)
                break
            more.append(job)
        return more

    def _live(self, items: list[dict]) -> list[dict]:
        """The items still worth sending: lifecycle events, and changes of subscriptions still active."""
        with self.lock:
            return [i for i in items if "lifecycleEvent" in i
                    or (i["subscriptionId"] in self._subs and self._subs[i["subscriptionId"]].active())]

    def _post_notification(self, url: str, items: list[dict]) -> None:
        items = self._live(items)
        if not items:
            return
        if self.notification_retry_window is not None:
            return self._attempt(_Retry(url, items, utcnow(), 0))
        for attempt in range(1, self.notification_retries + 2):
            if self._post_once(url, items, attempt):
                return
            if attempt <= self.notification_retries:
                time.sleep(clock.wall_seconds(self.notification_backoff * 2 ** (attempt - 1)))

    def _post_once(self, url: str, items: list[dict], attempt: int) -> bool:
        """One POST; True when the app answered (anything but 429, 5xx, a timeout or no connection)."""
        body = {"value": items}
        started = time.monotonic()
        status, error = None, None
        try:
            status = self._session().post(url, json=body, timeout=self.notification_timeout).status_code
        except requests.RequestException as e:
            error = f"{type(e).__name__}: {e}"
        with self.lock:
            self.notifications_sent.append(Delivery(url, body, status, time.monotonic() - started, attempt, error))
        return status is not None and status < 500 and status != 429

    def _drop(self, retry: _Retry, items: list[dict]) -> None:
        with self.lock:
            self.notifications_dropped.append(Delivery(retry.url, {"value": items}, None, 0.0, retry.attempts,
                                                       "dropped: no 2xx within the retry window"))

    def _attempt(self, retry: _Retry) -> None:
        """The next attempt of a notification under the published policy; schedules the one after, or drops it."""
        items = self._live(retry.items) if retry.attempts else retry.items
        if not items:
            return
        if retry.attempts and (utcnow() - retry.first).total_seconds() > self.notification_retry_window:
            return self._drop(retry, items)  # the timer woke late: no attempt past the window
        retry.attempts += 1
        if self._post_once(retry.url, items, retry.attempts):
            return
        wait = min(self.notification_backoff * 2 ** (retry.attempts - 1), self.notification_backoff_cap)
        if (utcnow() - retry.first).total_seconds() + wait > self.notification_retry_window:
            return self._drop(retry, items)
        retry.items = items
        with self.lock:
            self._pending += 1  # wait_idle waits for the retry too
        timer = threading.Timer(clock.wall_seconds(wait), self._jobs.put, (retry,))
        timer.daemon = True
        timer.start()
