"""The app's Storage queue of jobs. A job is JSON: {"id", "tasks": [...], "attempt"}.

HTTP functions put jobs here and answer 202; the sync worker takes them. Messages are Base64 text,
as the Functions queue trigger expects, and at most 64 KiB encoded, so big task lists are split.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from datetime import datetime, timezone
from typing import NamedTuple

from azure.core.exceptions import AzureError, ResourceExistsError, ResourceNotFoundError
from azure.storage.queue import LinearRetry, QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from .. import clock
from ..config import StorageAccount
from ..model.audit import with_reason
from ..model.errors import BadRequest, StorageUnavailable

MAX_MESSAGE_JSON = 45_000  # 64 KiB after Base64 (4/3) with room to spare
PARALLEL_SENDS = 2
MAX_DELAY_SECONDS = 7 * 24 * 3600  # the longest a Storage queue message can stay invisible
# A job's message never expires (time_to_live -1): the default, 7 days, would drop work an outage delayed.


def message_key(text: str) -> str:
    """Names a message by its content: the same job keeps its key through retries and the poison queue."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def new_job(tasks: list[dict], attempt: int = 0, job_id: str | None = None) -> dict:
    return {"id": job_id or uuid.uuid4().hex, "tasks": tasks, "attempt": attempt}


def task_bytes(task: dict) -> int:
    """What a task adds to a message, in UTF-8 bytes (the queue's 64 KiB limit counts bytes, not characters:
    an id of 75 four-byte characters is 300 bytes)."""
    return len(json.dumps(task, ensure_ascii=False).encode("utf-8")) + 2


def split_tasks(tasks: list[dict], limit: int = MAX_MESSAGE_JSON) -> list[list[dict]]:
    """Tasks in messages of at most `limit` UTF-8 bytes of JSON each."""
    chunks, current, size = [], [], 0
    for task in tasks:
        task_size = task_bytes(task)
        if current and size + task_size > limit:
            chunks.append(current)
            current, size = [], 0
        current.append(task)
        size += task_size
    if current:
        chunks.append(current)
    return chunks


class WorkQueue:
    def __init__(self, storage: "str | StorageAccount", name: str):
        self.name = name
        options = dict(
            message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy(),
            # callers wait on us (Graph gives 3 s): fail fast and let them retry, rather than retry for a minute.
            # A try gets 1 s to connect and 1.5 s for the answer (the SDK's defaults are 20 s and 60 s); a refused
            # connection or a 5xx is tried once more, a send left unanswered is not (the caller retries).
            retry_policy=LinearRetry(backoff=0.2, random_jitter_range=0.1, retry_total=1, retry_read=0),
            connection_timeout=1.0, read_timeout=1.5)
        if isinstance(storage, StorageAccount):
            self._client_for = lambda queue: QueueClient(storage.url("queue"), queue, credential=storage.credential(),
                                                         **options)
        else:
            self._client_for = lambda queue: QueueClient.from_connection_string(storage, queue, **options)
        self._client = self._client_for(name)
        self._ready = False
        self._lock = threading.Lock()
        self._open: dict[str, _Batch] = {}  # per site: the message callers arriving now share
        self._senders = threading.BoundedSemaphore(PARALLEL_SENDS)

    def _ensure(self):
        if not self._ready:
            try:
                self._client.create_queue()
            except ResourceExistsError:
                pass
            self._ready = True

    def send(self, job: dict, delay_seconds: float = 0) -> str:
        """Persist a job; raises StorageUnavailable when it could not be."""
        text = json.dumps({**job, "tasks": with_reason(job["tasks"])} if "tasks" in job else job, ensure_ascii=False)
        delay = min(MAX_DELAY_SECONDS, max(0, int(round(clock.wall_seconds(delay_seconds))))) or None
        try:
            try:
                self._client.send_message(text, visibility_timeout=delay, time_to_live=-1)
            except ResourceNotFoundError:  # the first send to a new queue: create it, once
                self._ensure()
                self._client.send_message(text, visibility_timeout=delay, time_to_live=-1)
        except AzureError as e:
            raise StorageUnavailable(f"could not persist job to queue {self.name}: {type(e).__name__}") from e
        return job["id"]

    def backlog(self) -> "Backlog":
        """How many messages wait (approximately, as the service counts them, delayed ones included) and how
        long the oldest visible one has waited (peeked; wall time, as the service stamps it)."""
        try:
            waiting = self._client.get_queue_properties().approximate_message_count or 0
            oldest = next(iter(self._client.peek_messages(max_messages=1)), None)
        except ResourceNotFoundError:
            return Backlog(0, 0)
        except AzureError as e:
            raise StorageUnavailable(f"could not read queue {self.name}: {type(e).__name__}") from e
        age = (datetime.now(timezone.utc) - oldest.inserted_on).total_seconds() if oldest and oldest.inserted_on else 0
        return Backlog(waiting, max(0, int(age)))

    def enqueue(self, tasks: list[dict]) -> list[str]:
        """Persist tasks; the ids of the jobs that hold them. Returns only once they are stored.

        Group commit: callers arriving while sends are in flight share the next message, so a burst
        of single-notification POSTs costs a few queue writes instead of one each. Only tasks of one site
        share a message (tasks that name none, Outlook notifications, share theirs): a message that fails
        as a whole (a run past the function timeout, a crash) is retried and poisoned with everything in it,
        so one site's work never rides, or is poisoned, with another's."""
        tasks = with_reason(tasks)  # each carries why it was made (the audit trail: model/audit.py)
        by_site: dict[str, tuple[list, list]] = {}
        for task in tasks:
            try:  # what cannot be stored is refused now, before any of it is sent or shares a message
                size = task_bytes(task)
            except (UnicodeEncodeError, TypeError, ValueError) as e:
                raise BadRequest(f"the work cannot be stored: {type(e).__name__}") from None
            own, sizes = by_site.setdefault(str(task.get("site") or "").lower(), ([], []))
            own.append(task)
            sizes.append(size)
        return [job for site, (own, sizes) in by_site.items() for job in self._enqueue(site, own, sum(sizes))]

    def _enqueue(self, site: str, tasks: list[dict], size: int) -> list[str]:
        chunks = split_tasks(tasks)
        if len(chunks) != 1:
            return [self.send(new_job(chunk)) for chunk in chunks]
        with self._lock:
            batch = self._open.get(site)
            leader = batch is None or batch.size + size > MAX_MESSAGE_JSON
            if leader:
                batch = self._open[site] = _Batch()
            batch.tasks += tasks
            batch.size += size
        if leader:
            with self._senders:
                with self._lock:
                    if self._open.get(site) is batch:
                        del self._open[site]  # later callers start the next message
                try:
                    batch.job_id = self.send(new_job(batch.tasks))
                except StorageUnavailable as e:
                    batch.error = e
                except Exception as e:  # whatever it was, no caller of this message may be told 202
                    batch.error = StorageUnavailable(f"could not persist job to queue {self.name}: {type(e).__name__}")
                finally:
                    batch.done.set()
        else:
            batch.done.wait()
        if batch.error:
            raise batch.error
        return [batch.job_id]


class Backlog(NamedTuple):
    waiting: int
    oldest_seconds: int

    def __str__(self) -> str:  # the words the backlog alert reads (infra/main.bicep)
        return f"{self.waiting} waiting, oldest {self.oldest_seconds} s"


class _Batch:
    def __init__(self):
        self.tasks: list[dict] = []
        self.size = 0
        self.done = threading.Event()
        self.job_id = ""
        self.error: StorageUnavailable | None = None


class PoisonQueue:
    """`<work queue>-poison`, where the host moves a message after maxDequeueCount failed runs."""

    def __init__(self, work: WorkQueue):
        self.work = work
        self._client = work._client_for(f"{work.name}-poison")

    def take(self, count: int = 32, lease_seconds: int = 60) -> list:
        """Up to `count` poisoned messages, hidden from others for `lease_seconds`; none if there is no queue."""
        try:
            return list(self._client.receive_messages(max_messages=count, visibility_timeout=lease_seconds))
        except ResourceNotFoundError:
            return []
        except AzureError as e:
            raise StorageUnavailable(f"could not read queue {self.work.name}-poison: {type(e).__name__}") from e

    def requeue(self, message) -> None:
        """Back to the work queue as it was, then out of the poison queue (a crash between: it runs twice,
        which every task tolerates)."""
        self.work.send(json.loads(message.content))
        self._client.delete_message(message)

    def release(self, message) -> None:
        self._client.update_message(message, visibility_timeout=0)
