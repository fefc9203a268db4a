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

from shared.config import StorageAccount
from shared.storage.store import Store
from shared.storage.work_queue import PoisonQueue, WorkQueue, message_key

from .localhost import load_local_settings


class SignedInAccount(StorageAccount):
    """The identity-based account, reached as the person running this (`az login`), not a managed identity."""

    def credential(self):
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential()


def _storage(args):
    if args.connection_string:
        return args.connection_string
    load_local_settings()
    if os.environ.get("AzureWebJobsStorage"):
        return os.environ["AzureWebJobsStorage"]
    name = os.environ.get("AzureWebJobsStorage__accountName")
    if not name:
        sys.exit("no storage: pass --connection-string or set AzureWebJobsStorage")
    return SignedInAccount(name)


def describe(text: str) -> str:
    try:
        job = json.loads(text)
        tasks = job.get("tasks", [])
        ops = ", ".join(f"{t.get('op')} {t.get('site', t.get('sub', ''))} {t.get('item', t.get('event', ''))}".strip()
                        for t in tasks[:3])
        return f"job {job.get('id')}: {ops}{' …' if len(tasks) > 3 else ''}"
    except (ValueError, AttributeError):
        return f"not a job: {text[:60]!r}"


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
    # the app's own poison queue (storage/work_queue.PoisonQueue): messages are leased while we look, a list
    # shows them all, then they reappear
    poison = PoisonQueue(WorkQueue(storage, queue))
    messages = poison.take(lease_seconds=30)
    if args.command == "list":
        for m in messages:
            failure = store.failure(message_key(m.content)) or {}
            print(f"{m.id}  {m.inserted_on:%Y-%m-%d %H:%M:%S}  tries={failure.get('dequeue_count', '?')}  "
                  f"{describe(m.content)}\n    reason: {failure.get('reason', 'unknown (no failure recorded)')}", file=out)
        print(f"{len(messages)} poisoned message(s) in {queue}-poison", file=out)
        for m in messages:
            poison.release(m)
        return 0
    chosen = [m for m in messages if args.all or m.id in args.ids]
    missing = set(args.ids) - {m.id for m in messages}
    for m in chosen:
        poison.requeue(m)
        store.forget_failure(message_key(m.content))
        print(f"requeued {m.id}: {describe(m.content)}", file=out)
    for m in messages:
        if m not in chosen:
            poison.release(m)
    if missing:
        print(f"not found in {queue}-poison: {', '.join(sorted(missing))}", file=out)
        return 1
    return 0

if __name__ == "__main__":
    sys.exit(main())
