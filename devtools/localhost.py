"""A local stand-in for the Azure Functions host (`func start`), for machines without Core Tools.

    python -m devtools.localhost --port 7071

It loads function_app.py as the host does and serves it: HTTP functions at their routes under
host.json's routePrefix, function keys enforced for FUNCTION auth level (`x-functions-key` header or
`?code=`; ADMIN level takes only the master key), queue triggers fed from the Azurite queues they name
(host.json batchSize, newBatchThreshold, maxPollingInterval, visibilityTimeout, maxDequeueCount;
poisoned messages go to `<queue>-poison` with their body intact), timers on their NCRONTAB schedules, and, as the real host
does, `POST /admin/functions/<name>` with the master key runs a non-HTTP function on demand.
Settings come from the environment, then local.settings.json's Values.

As Azure runs several instances of an app, `--hosts N` runs N host processes on the same queues and
tables behind one port (`Balancer`: a round-robin TCP front door, as the platform's load balancer).
A queue message is held, as the WebJobs queue listener holds it, with a visibility lease renewed at half
its length while the function runs (`--lease`): a host that dies mid-work lets its messages reappear
after the lease, with dequeue_count + 1, for another host.

`--clock <Accelerated.text()>` (or DEVTOOLS_APP_CLOCK; devtools/world_clock.py) runs the host and the app in
it on an accelerated clock: timers fire on app time (the next NCRONTAB occurrence computed on app time,
waited for in wall seconds), and the host's own waits that stand for app time (a failed message's
visibilityTimeout, maxPollingInterval) shrink with it; leases stay wall seconds (they guard a crash).
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
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from shared import clock  # the app's clock: the host's timers run on it

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
                 queue_overrides: dict | None = None, lease_seconds: float = 30.0):
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
        # how long a received message stays invisible; renewed at half of it while its function runs
        self.lease_seconds = max(2.0, float(lease_seconds))
        self._held: dict[str, _Held] = {}
        self._held_lock = threading.Lock()
        # FUNCTIONS_REQUEST_BODY_SIZE_LIMIT, in bytes, default 104857600 (functions-app-settings#functions_request_body_size_limit):
        # the host sets it as the request's MaxRequestBodySize (azure-functions-host, HttpRequestBodySizeMiddleware.cs),
        # and Kestrel refuses a larger Content-Length with 413 before it reads the body (dotnet/aspnetcore,
        # Kestrel MaxRequestBodySizeTests, "RejectsRequestWithContentLengthHeaderExceedingGlobalLimit")
        self.body_limit = int(os.environ.get("FUNCTIONS_REQUEST_BODY_SIZE_LIMIT") or 104857600)
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
        if parts.path == "/admin/host/status" and method == "GET":  # as the host's admin API, plus the
            if (lower.get("x-functions-key") or query.get("code")) != self.master_key:  # messages it holds
                return 401, {}, b""
            with self._held_lock:
                held = [m for m, h in self._held.items() if not h.done]
            body = json.dumps({"state": "Running", "processId": os.getpid(), "heldMessages": held}).encode()
            return 200, {"Content-Type": "application/json"}, body
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
                if length > owner.body_limit:  # refused unread; the connection closes with its body unread
                    self.close_connection = True
                    status, headers, payload = 413, {"Connection": "close"}, b""
                else:
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
        self._spawn(self._renew_leases, f"lease:{fn.get_function_name()}", queue)
        while not self._stop.is_set():
            try:
                messages = list(queue.receive_messages(messages_per_page=self.batch_size,
                                                       max_messages=self.batch_size,
                                                       visibility_timeout=int(self.lease_seconds)))
            except Exception as e:
                log.warning("queue %s unreachable: %s", queue.queue_name, type(e).__name__)
                messages = []
            if not messages:  # as the host: polling backs off to maxPollingInterval (app time)
                delay = min(max(0.1, clock.wall_seconds(self.max_polling)), max(0.1, delay * 2))
                self._stop.wait(delay)
                continue
            delay = 0.0
            for message in messages:
                in_flight.acquire()
                with self._busy_lock:
                    self._busy += 1
                held = _Held(message, time.monotonic())
                with self._held_lock:
                    self._held[message.id] = held
                pool.submit(self._deliver, fn, queue, poison, held, in_flight)
        pool.shutdown(wait=True)

    def _renew_leases(self, queue) -> None:
        """Keep running messages invisible, as the WebJobs queue listener does: update each one's
        visibility at half its lease, so only a dead host's messages reappear."""
        while not self._stop.wait(self.lease_seconds / 4):
            now = time.monotonic()
            with self._held_lock:
                due = [h for h in self._held.values() if now - h.renewed >= self.lease_seconds / 2]
            for held in due:
                with held.lock:
                    if held.done:
                        continue
                    try:
                        receipt = queue.update_message(held.message, visibility_timeout=int(self.lease_seconds))
                        held.message.pop_receipt = receipt.pop_receipt
                        held.renewed = now
                    except Exception as e:  # storage down: the next round tries again
                        log.warning("lease of message %s not renewed: %s", held.message.id, type(e).__name__)

    def _deliver(self, fn, queue, poison, held, in_flight) -> None:
        from azure.functions.queue import QueueMessage

        message = held.message
        try:
            if message.dequeue_count > 1:
                log.info("message %s redelivered (dequeue %d)", message.id, message.dequeue_count)
            body = message.content.encode("utf-8") if isinstance(message.content, str) else message.content
            msg = QueueMessage(id=message.id, body=body, dequeue_count=message.dequeue_count,
                                    pop_receipt=message.pop_receipt, insertion_time=message.inserted_on,
                                    expiration_time=message.expires_on, time_next_visible=message.next_visible_on)
            try:
                fn.get_user_function()(msg)
            except Exception as e:
                self.failures += 1
                with held.lock:
                    held.done = True
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
                        log.warning("message %s failed (dequeue %d): %s: %s (at %s)", message.id,
                                    message.dequeue_count, type(e).__name__, e, _app_frame(e))
                        queue.update_message(message, visibility_timeout=int(round(
                            clock.wall_seconds(self.visibility_timeout))))
                return
            with held.lock:
                held.done = True
                queue.delete_message(message)
        except Exception:
            log.exception("queue delivery of %s failed", message.id)
        finally:
            with self._held_lock:
                self._held.pop(message.id, None)
            with self._busy_lock:
                self._busy -= 1
            in_flight.release()

    def _tick(self, fn, trigger: dict) -> None:
        """Run a timer function at each occurrence of its schedule on app time (the wait in wall seconds)."""
        schedule = resolve(trigger["schedule"])
        while not self._stop.is_set():
            now = clock.now()
            due = next_fire(schedule, now)
            if self._stop.wait(clock.wall_seconds((due - now).total_seconds())):
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


def _app_frame(error: BaseException) -> str:
    """Where in the app an exception came from: its innermost shared/ or functions/ frame."""
    where, tb = "?", error.__traceback__
    while tb is not None:
        path = tb.tb_frame.f_code.co_filename
        if os.sep + "shared" + os.sep in path or os.sep + "functions" + os.sep in path:
            where = f"{Path(path).parent.name}/{Path(path).name}:{tb.tb_lineno} {tb.tb_frame.f_code.co_name}"
        tb = tb.tb_next
    return where


class _Held:
    """A message a host is running, with the lease it holds on it."""

    def __init__(self, message, renewed: float):
        self.message, self.renewed, self.done = message, renewed, False
        self.lock = threading.Lock()


# -- several hosts ----------------------------------------------------------------------------------

class Balancer:
    """One port in front of several host processes, as Azure's front end is in front of its instances:
    each new connection goes to the next backend that accepts it (a dead one is skipped)."""

    def __init__(self, backends):
        self.backends = backends  # a callable giving the ports of the hosts, in order
        self._next = 0
        self._stop = threading.Event()
        self._listener: socket.socket | None = None

    def serve(self, port: int = 0, host: str = "127.0.0.1") -> int:
        self._listener = socket.create_server((host, port), backlog=512)
        threading.Thread(target=self._accept, name="balancer", daemon=True).start()
        return self._listener.getsockname()[1]

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._forward, args=(client,), name="balancer-conn", daemon=True).start()

    def _connect(self) -> socket.socket | None:
        ports = list(self.backends())
        for _ in range(len(ports)):
            port = ports[self._next % len(ports)]
            self._next += 1
            try:
                upstream = socket.create_connection(("127.0.0.1", port), timeout=2)
                upstream.settimeout(None)
                return upstream
            except OSError:
                continue
        return None

    def _forward(self, client: socket.socket) -> None:
        upstream = self._connect()
        if upstream is None:
            client.close()
            return
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_pipe, args=(upstream, client), name="balancer-back", daemon=True).start()
        _pipe(client, upstream)

    def stop(self) -> None:
        self._stop.set()
        if self._listener:
            self._listener.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        for sock in (source, sink):  # either side gone: both connections end, as with a dead instance
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


class HostProcess:
    """One `python -m devtools.localhost` child: its own port and log; it can be killed and started again."""

    def __init__(self, name: str, port: int, env: dict, log_path: str, args: list[str] = ()):
        self.name, self.port, self.env, self.log_path, self.args = name, port, env, log_path, list(args)
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self, deadline_s: float = 30.0) -> "HostProcess":
        from .azurite import wait_for_port

        log_file = open(self.log_path, "a")
        log_file.write(f"--- start {self.starts + 1} of {self.name} at {time.time():.3f}\n")
        log_file.flush()
        self.process = subprocess.Popen([sys.executable, "-m", "devtools.localhost", "--port", str(self.port),
                                         *self.args], cwd=ROOT, env=self.env, stdout=log_file,
                                        stderr=subprocess.STDOUT)
        log_file.close()
        self.starts += 1
        wait_for_port(self.port, deadline_s=deadline_s, process=self.process)
        return self

    def held(self, master_key: str) -> list[str]:
        """The ids of the queue messages this host is running now (its admin status)."""
        import requests

        try:
            answer = requests.get(f"http://127.0.0.1:{self.port}/admin/host/status",
                                  headers={"x-functions-key": master_key}, timeout=2)
            return answer.json()["heldMessages"] if answer.status_code == 200 else []
        except (requests.RequestException, ValueError, KeyError):
            return []

    def kill(self) -> None:
        """SIGKILL: no cleanup, messages held stay invisible until their lease ends."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        from .azurite import stop_process

        stop_process(self.process)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def start_hosts(count: int, env: dict, log_dir: str, args: list[str] = (), port: int = 0):
    """`count` host processes on free ports behind one Balancer on `port`: (balancer port, balancer, hosts)."""
    from .azurite import free_port

    hosts = [HostProcess(f"host{n + 1}", free_port(), env, os.path.join(log_dir, f"host{n + 1}.log"), args)
             for n in range(count)]
    for host in hosts:
        host.start()
    balancer = Balancer(lambda: [h.port for h in hosts])
    return balancer.serve(port), balancer, hosts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--hosts", type=int, default=1, help="host processes behind the port (default 1)")
    parser.add_argument("--no-timers", action="store_true", help="do not run timers on their schedules")
    parser.add_argument("--no-triggers", action="store_true", help="serve HTTP only: no queue or timer triggers")
    parser.add_argument("--queue-overrides", default="", help="JSON merged over host.json's extensions.queues")
    parser.add_argument("--lease", type=float, default=30.0,
                        help="seconds a received message stays invisible, renewed at half while it runs")
    parser.add_argument("--clock", default="", help="an accelerated app clock (shared.clock.Accelerated.text(); "
                        "default: $DEVTOOLS_APP_CLOCK, else the real clock)")
    args = parser.parse_args(argv)
    from .world_clock import install_from

    install_from(args.clock)
    if args.hosts > 1:
        return _main_several(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s",
                        stream=sys.stdout)
    logging.getLogger("azure").setLevel(logging.WARNING)
    load_local_settings()
    host = FunctionHost(queue_overrides=json.loads(args.queue_overrides) if args.queue_overrides else None,
                        lease_seconds=args.lease)
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


def _main_several(args) -> int:
    import tempfile

    load_local_settings()
    env = dict(os.environ)
    env.setdefault("LOCAL_FUNCTION_KEY", secrets.token_urlsafe(24))
    env.setdefault("LOCAL_MASTER_KEY", secrets.token_urlsafe(24))
    child = [f"--lease={args.lease:g}"] + ([f"--clock={args.clock}"] if args.clock else []) \
        + (["--no-timers"] if args.no_timers else []) \
        + (["--no-triggers"] if args.no_triggers else []) \
        + ([f"--queue-overrides={args.queue_overrides}"] if args.queue_overrides else [])
    log_dir = tempfile.mkdtemp(prefix="localhost-")
    port, balancer, hosts = start_hosts(args.hosts, env, log_dir, child, port=args.port)
    print(f"{len(hosts)} local Functions hosts behind http://127.0.0.1:{port}; logs in {log_dir}", flush=True)
    print(f"function key: {env['LOCAL_FUNCTION_KEY']}", flush=True)
    print(f"master key:   {env['LOCAL_MASTER_KEY']}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        balancer.stop()
        for host in hosts:
            host.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
