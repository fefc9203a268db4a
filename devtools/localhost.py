"""A local stand-in for the Azure Functions host (`func start`), for machines without Core Tools.

    python -m devtools.localhost --port 7071

It loads function_app.py as the host does and serves it: HTTP functions at their routes under
host.json's routePrefix, function keys enforced for FUNCTION auth level (`x-functions-key` header or
`?code=`; ADMIN level takes only the master key), queue triggers fed from the Azurite queues they name
(host.json batchSize, newBatchThreshold, maxPollingInterval, visibilityTimeout, maxDequeueCount;
poisoned messages go to `<queue>-poison` with their body intact), timers on their NCRONTAB schedules, and, as the real host
does, `POST /admin/functions/<name>` with the master key runs a non-HTTP function on demand.
Settings come from the environment, then local.settings.json's Values.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import re
import secrets
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("localhost")


def _timespan(text: str) -> float:
    hours, minutes, seconds = text.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def load_local_settings(root: Path = ROOT) -> None:
    path = root / "local.settings.json"
    if path.exists():
        for key, value in json.loads(path.read_text()).get("Values", {}).items():
            os.environ.setdefault(key, str(value))


def resolve(name: str) -> str:
    """Binding expressions like %WORK_QUEUE% read app settings, as the host does."""
    return re.sub(r"%([^%]+)%", lambda m: os.environ[m.group(1)], name)


# -- NCRONTAB (sec min hour day month day-of-week)

def _cron_field(text: str, low: int, high: int) -> set[int]:
    values = set()
    for part in text.split(","):
        body, _, step = part.partition("/")
        if body == "*":
            start, end = low, high
        elif "-" in body:
            start, end = map(int, body.split("-"))
        else:
            start = end = int(body)
            if step:
                end = high
        values.update(range(start, end + 1, int(step or 1)))
    return values


def next_fire(schedule: str, after: datetime) -> datetime:
    fields = schedule.split()
    if len(fields) != 6:
        raise ValueError(f"NCRONTAB needs 6 fields: {schedule!r}")
    sec, minute, hour, day, month, dow = (
        _cron_field(f, lo, hi) for f, (lo, hi) in zip(fields, [(0, 59), (0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]))
    for offset in range(0, 366 * 5):
        d = after.date() + timedelta(days=offset)
        if d.month not in month or d.day not in day or (d.weekday() + 1) % 7 not in dow:
            continue
        for h in sorted(hour):
            for m in sorted(minute):
                for s in sorted(sec):
                    candidate = datetime(d.year, d.month, d.day, h, m, s, tzinfo=after.tzinfo)
                    if candidate > after:
                        return candidate
    raise ValueError(f"schedule {schedule!r} never fires")


class FunctionHost:
    def __init__(self, root: Path = ROOT, function_key: str | None = None, master_key: str | None = None,
                 queue_overrides: dict | None = None):
        self.root = root
        self.host_json = json.loads((root / "host.json").read_text())
        ext = self.host_json.get("extensions", {})
        self.route_prefix = ext.get("http", {}).get("routePrefix", "api").strip("/")
        queues = {**ext.get("queues", {}), **(queue_overrides or {})}
        self.batch_size = int(queues.get("batchSize", 16))
        self.new_batch_threshold = int(queues.get("newBatchThreshold", self.batch_size // 2))
        self.max_polling = _timespan(queues.get("maxPollingInterval", "00:01:00"))
        self.visibility_timeout = _timespan(queues.get("visibilityTimeout", "00:00:00"))
        self.max_dequeue = int(queues.get("maxDequeueCount", 5))
        self.function_key = function_key or os.environ.get("LOCAL_FUNCTION_KEY") or secrets.token_urlsafe(24)
        self.master_key = master_key or os.environ.get("LOCAL_MASTER_KEY") or secrets.token_urlsafe(24)
        sys.path.insert(0, str(root))
        self.app = importlib.import_module("function_app").app
        self.functions = {f.get_function_name(): f for f in self.app.get_functions()}
        self.routes = []
        for name, fn in self.functions.items():
            trigger = fn.get_trigger().get_dict_repr()
            if trigger["type"] == "httpTrigger":
                route = "/".join(p for p in (self.route_prefix, trigger.get("route") or name) if p)
                pattern = re.sub(r"\{(\w+)(:[^}]*)?\}", r"(?P<\1>[^/]+)", route)
                methods = {str(getattr(m, "value", m)).upper() for m in trigger.get("methods") or []}
                level = str(getattr(trigger.get("authLevel"), "value", trigger.get("authLevel") or "function"))
                self.routes.append((re.compile(f"^/{pattern}/?$"), methods, level.lower(), fn))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: ThreadingHTTPServer | None = None
        self._busy = 0
        self._busy_lock = threading.Lock()
        self.poisoned = 0
        self.failures = 0

    # -- HTTP

    def handle_http(self, method: str, target: str, headers: dict, body: bytes):
        import azure.functions as func

        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        lower = {k.lower(): v for k, v in headers.items()}
        admin = re.match(r"^/admin/functions/([^/]+)$", parts.path)
        if admin and method == "POST":
            if (lower.get("x-functions-key") or query.get("code")) != self.master_key:
                return 401, {}, b""
            self.run_function(admin.group(1))
            return 202, {}, b""
        for pattern, methods, level, fn in self.routes:
            match = pattern.match(parts.path)
            if not match:
                continue
            if methods and method not in methods:
                return 405, {}, b""
            key = lower.get("x-functions-key") or query.get("code")
            # as the host: ADMIN level takes only the master key; FUNCTION level a function key or the master key
            allowed = (self.master_key,) if level == "admin" else (self.function_key, self.master_key)
            if level != "anonymous" and key not in allowed:
                return 401, {}, b""
            request = func.HttpRequest(method, f"http://localhost{target}", headers=headers, params=query,
                                       route_params=match.groupdict(), body=body)
            try:
                response = fn.get_user_function()(request)
            except Exception:
                log.exception("function %s failed", fn.get_function_name())
                return 500, {}, b""
            out = dict(response.headers)
            out.setdefault("Content-Type", response.mimetype or "text/plain")
            return response.status_code, out, response.get_body()
        return 404, {}, b""

    def serve(self, port: int = 0, host: str = "127.0.0.1") -> int:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                # headers and body go out in two writes: without this, Nagle + delayed ACK add 40 ms
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = owner.handle_http(self.command, self.path, dict(self.headers), body)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.request_queue_size = 512
        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._spawn(self._server.serve_forever, "http")
        return self._server.server_address[1]

    # -- queues and timers

    def _spawn(self, target, name, *args):
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def start_triggers(self, connection: str | None = None, timers: bool = True) -> None:
        for name, fn in self.functions.items():
            trigger = fn.get_trigger().get_dict_repr()
            if trigger["type"] == "queueTrigger":
                self._spawn(self._listen, f"queue:{name}", fn, trigger)
            elif trigger["type"] == "timerTrigger" and timers:
                self._spawn(self._tick, f"timer:{name}", fn, trigger)

    def _queue_clients(self, trigger: dict):
        from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

        connection = os.environ[trigger.get("connection") or "AzureWebJobsStorage"]
        name = resolve(trigger["queueName"])
        make = lambda q: QueueClient.from_connection_string(  # noqa: E731
            connection, q, message_encode_policy=TextBase64EncodePolicy(),
            message_decode_policy=TextBase64DecodePolicy())
        return make(name), make(f"{name}-poison")

    def _listen(self, fn, trigger: dict) -> None:
        queue, poison = self._queue_clients(trigger)
        pool = ThreadPoolExecutor(self.batch_size + self.new_batch_threshold, thread_name_prefix="queue")
        in_flight = threading.Semaphore(self.batch_size + self.new_batch_threshold)
        delay = 0.0
        while not self._stop.is_set():
            try:
                queue.create_queue()
                break
            except Exception as e:  # exists, or storage not up yet
                if type(e).__name__ == "ResourceExistsError":
                    break
                self._stop.wait(0.5)
        while not self._stop.is_set():
            try:
                messages = list(queue.receive_messages(messages_per_page=self.batch_size,
                                                       max_messages=self.batch_size,
                                                       visibility_timeout=max(30, int(self.visibility_timeout))))
            except Exception as e:
                log.warning("queue %s unreachable: %s", queue.queue_name, type(e).__name__)
                messages = []
            if not messages:
                delay = min(self.max_polling, max(0.1, delay * 2))
                self._stop.wait(delay)
                continue
            delay = 0.0
            for message in messages:
                in_flight.acquire()
                with self._busy_lock:
                    self._busy += 1
                pool.submit(self._deliver, fn, queue, poison, message, in_flight)
        pool.shutdown(wait=True)

    def _deliver(self, fn, queue, poison, message, in_flight) -> None:
        from azure.functions.queue import QueueMessage

        try:
            body = message.content.encode("utf-8") if isinstance(message.content, str) else message.content
            msg = QueueMessage(id=message.id, body=body, dequeue_count=message.dequeue_count,
                                    pop_receipt=message.pop_receipt, insertion_time=message.inserted_on,
                                    expiration_time=message.expires_on, time_next_visible=message.next_visible_on)
            try:
                fn.get_user_function()(msg)
            except Exception as e:
                self.failures += 1
                if message.dequeue_count >= self.max_dequeue:
                    log.error("message %s failed %d times (%s): moved to %s", message.id, message.dequeue_count,
                              e, poison.queue_name)
                    try:
                        poison.create_queue()
                    except Exception:
                        pass
                    poison.send_message(message.content)
                    queue.delete_message(message)
                    self.poisoned += 1
                else:
                    log.warning("message %s failed (dequeue %d): %s", message.id, message.dequeue_count, e)
                    queue.update_message(message, visibility_timeout=int(self.visibility_timeout))
                return
            queue.delete_message(message)
        except Exception:
            log.exception("queue delivery of %s failed", message.id)
        finally:
            with self._busy_lock:
                self._busy -= 1
            in_flight.release()

    def _tick(self, fn, trigger: dict) -> None:
        schedule = resolve(trigger["schedule"])
        while not self._stop.is_set():
            now = datetime.now(timezone.utc)
            due = next_fire(schedule, now)
            if self._stop.wait((due - now).total_seconds()):
                return
            self.run_function(fn.get_function_name())

    def run_function(self, name: str) -> None:
        from azure.functions.timer import TimerRequest

        fn = self.functions[name]
        kind = fn.get_trigger().get_dict_repr()["type"]
        if kind != "timerTrigger":
            raise ValueError(f"{name} is a {kind}; only timers run on demand here")
        with self._busy_lock:
            self._busy += 1
        try:
            fn.get_user_function()(TimerRequest(past_due=False))
        except Exception:
            log.exception("timer %s failed", name)
        finally:
            with self._busy_lock:
                self._busy -= 1

    @property
    def busy(self) -> int:
        return self._busy

    def stop(self) -> None:
        self._stop.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--no-timers", action="store_true", help="do not run timers on their schedules")
    parser.add_argument("--no-triggers", action="store_true", help="serve HTTP only: no queue or timer triggers")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s",
                        stream=sys.stdout)
    logging.getLogger("azure").setLevel(logging.WARNING)
    load_local_settings()
    host = FunctionHost()
    port = host.serve(args.port)
    if not args.no_triggers:
        host.start_triggers(timers=not args.no_timers)
    print(f"local Functions host on http://127.0.0.1:{port} (routePrefix {host.route_prefix!r})", flush=True)
    print(f"function key: {host.function_key}", flush=True)
    print(f"master key:   {host.master_key}", flush=True)
    for pattern, methods, level, fn in host.routes:
        print(f"  {','.join(sorted(methods))} {pattern.pattern[1:-3]}  [{fn.get_function_name()}, {level}]", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        host.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
