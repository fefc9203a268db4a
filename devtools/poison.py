"""List poisoned work-queue messages with the reason they failed, and requeue chosen ones.

    python -m devtools.poison list
    python -m devtools.poison requeue <message id> [...]     # or --all

Storage comes from --connection-string, else AzureWebJobsStorage (environment or
local.settings.json), else the identity-based account in AzureWebJobsStorage__accountName (signed
in with `az login`). The queue is WORK_QUEUE (default sync-jobs); poison is `<queue>-poison`.
Requeue after fixing the cause: the message goes back to the work queue unchanged, its failure
record is forgotten, and it leaves the poison queue.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from shared.storage.store import Store
from shared.storage.work_queue import message_key

from .localhost import load_local_settings


def _storage(args):
    if args.connection_string:
        return args.connection_string
    load_local_settings()
    if os.environ.get("AzureWebJobsStorage"):
        return os.environ["AzureWebJobsStorage"]
    from shared.config import StorageAccount

    name = os.environ.get("AzureWebJobsStorage__accountName")
    if not name:
        sys.exit("no storage: pass --connection-string or set AzureWebJobsStorage")
    return StorageAccount(name)


def _queue(storage, name: str) -> QueueClient:
    policies = dict(message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=TextBase64DecodePolicy())
    if isinstance(storage, str):
        return QueueClient.from_connection_string(storage, name, **policies)
    from azure.identity import DefaultAzureCredential

    return QueueClient(storage.url("queue"), name, credential=DefaultAzureCredential(), **policies)


def describe(text: str) -> str:
    try:
        job = json.loads(text)
        tasks = job.get("tasks", [])
        ops = ", ".join(f"{t.get('op')} {t.get('site', t.get('sub', ''))} {t.get('item', t.get('event', ''))}".strip()
                        for t in tasks[:3])
        return f"job {job.get('id')}: {ops}{' …' if len(tasks) > 3 else ''}"
    except (ValueError, AttributeError):
        return f"not a job: {text[:60]!r}"


def poisoned(storage, queue: str) -> list:
    client = _queue(storage, f"{queue}-poison")
    try:
        return list(client.receive_messages(max_messages=32, visibility_timeout=30)), client
    except Exception as e:
        if type(e).__name__ == "ResourceNotFoundError":
            return [], client
        raise


def main(argv=None, out=sys.stdout) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["list", "requeue"])
    parser.add_argument("ids", nargs="*", help="message ids to requeue")
    parser.add_argument("--all", action="store_true", help="requeue every poisoned message")
    parser.add_argument("--connection-string")
    parser.add_argument("--queue", default=None)
    args = parser.parse_args(argv)
    storage = _storage(args)
    queue = args.queue or os.environ.get("WORK_QUEUE", "sync-jobs")
    store = Store(storage)
    # messages are leased for 30 s while we look: a list shows them all, then they reappear
    messages, poison = poisoned(storage, queue)
    if args.command == "list":
        for m in messages:
            failure = store.failure(message_key(m.content)) or {}
            print(f"{m.id}  {m.inserted_on:%Y-%m-%d %H:%M:%S}  tries={failure.get('dequeue_count', '?')}  "
                  f"{describe(m.content)}\n    reason: {failure.get('reason', 'unknown (no failure recorded)')}", file=out)
        print(f"{len(messages)} poisoned message(s) in {queue}-poison", file=out)
        for m in messages:
            poison.update_message(m, visibility_timeout=0)
        return 0
    chosen = [m for m in messages if args.all or m.id in args.ids]
    missing = set(args.ids) - {m.id for m in messages}
    work = _queue(storage, queue)
    for m in chosen:
        work.send_message(m.content)
        poison.delete_message(m)
        store.forget_failure(message_key(m.content))
        print(f"requeued {m.id}: {describe(m.content)}", file=out)
    for m in messages:
        if m not in chosen:
            poison.update_message(m, visibility_timeout=0)
    if missing:
        print(f"not found in {queue}-poison: {', '.join(sorted(missing))}", file=out)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
