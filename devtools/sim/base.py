"""A small threaded HTTP(S) server shared by the simulators: router, request log, latency, faults."""

from __future__ import annotations

import html
import json
import random
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, unquote, urlsplit

import jwt

from shared import clock

DEFAULT_TOKEN_KEY = "rapid-meetings-simulator-token-key-not-a-secret"

_STATUS_CODES = {
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


def utcnow() -> datetime:
    """The world's time: the app's clock (shared/clock.py), accelerated when devtools installed one, so
    expiries, lifetimes and modified dates in the simulators run on the same time line as the app."""
    return clock.now()


def epoch_seconds() -> int:
    """The world's time as whole seconds since the epoch (a token's `iat`, `nbf`, `exp`)."""
    return int(clock.now().timestamp())


def iso_ms(when: datetime) -> str:
    """UTC ISO 8601 with milliseconds and Z."""
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def mint_token(key: str, aud: str, tid: str, appid: str, lifetime: int = 3599, roles=()) -> str:
    """An HS256 access token shaped like an Azure AD app-only token (`roles`: the app roles granted)."""
    now = epoch_seconds()
    claims = {"aud": aud, "iss": f"https://sts.windows.net/{tid}/", "iat": now, "nbf": now,
              "exp": now + lifetime, "tid": tid, "appid": appid, "oid": appid, "sub": appid,
              "idtyp": "app", "ver": "1.0", **({"roles": list(roles)} if roles else {})}
    return jwt.encode(claims, key, algorithm="HS256")


def read_token(key: str, authorization: str | None) -> dict | None:
    """Claims of a valid `Bearer` token signed with key, else None."""
    if not authorization or not authorization.lower().startswith("bearer "):
        return None
    try:
        claims = jwt.decode(authorization[7:].strip(), key, algorithms=["HS256"],
                            options={"verify_aud": False, "verify_exp": False, "verify_nbf": False,
                                     "verify_iat": False, "require": ["exp", "aud", "tid"]})
    except jwt.PyJWTError:
        return None
    # what PyJWT checks, on the world's clock: expired when exp <= now, not yet valid when nbf or iat > now
    now = epoch_seconds()
    if any(not isinstance(claims.get(k, now), (int, float)) for k in ("exp", "nbf", "iat")):
        return None
    if claims["exp"] <= now or claims.get("nbf", now) > now or claims.get("iat", now) > now:
        return None
    return claims


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Message
    raw: bytes
    url: str = ""
    params: dict[str, str] = field(default_factory=dict)
    mailbox: str | None = None
    inner: bool = False

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    def body(self) -> Any:
        """Parsed body: JSON, form fields, text, or None when empty."""
        if not self.raw:
            return None
        ctype = (self.header("Content-Type") or "").lower()
        text = self.raw.decode("utf-8", "replace")
        if "x-www-form-urlencoded" in ctype:
            return dict(parse_qsl(text, keep_blank_values=True))
        if "json" in ctype or text.lstrip()[:1] in ("{", "["):
            try:
                return json.loads(text)
            except ValueError:
                if "json" in ctype:
                    raise HttpError(400, "BadRequest", "Unable to read JSON request payload.") from None
        return text

    def json(self) -> Any:
        value = self.body()
        if not isinstance(value, (dict, list)):
            raise HttpError(400, "BadRequest", "Unable to read JSON request payload.")
        return value


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    drop: bool = False

    def encode(self, json_type: str) -> tuple[bytes, str]:
        if self.body is None:
            return b"", self.content_type or ""
        if isinstance(self.body, bytes):
            return self.body, self.content_type or "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), self.content_type or "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), self.content_type or json_type


@dataclass
class LogEntry:
    time: float
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    status: int
    mailbox: str | None = None


@dataclass
class _Failure:
    count: int
    status: int
    retry_after: int | None
    path_contains: str | None
    method: str | None


_LOST_ANSWER = object()


@dataclass
class _Faults:
    rate_429: float = 0.0
    rate_503: float = 0.0
    rate_slow: float = 0.0
    slow_seconds: float = 0.0
    rate_drop: float = 0.0
    retry_after: int = 1
    include_token: bool = False
    path_contains: str | None = None
    rate_lost: float = 0.0  # the request is carried out, then the connection drops: the answer is lost


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 512
    allow_reuse_address = True
    ssl_context: ssl.SSLContext | None = None

    def get_request(self):
        sock, addr = super().get_request()
        if self.ssl_context:
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        pass


class SimServer:
    """Base of both simulators. Subclasses register routes with `self.route(method, regex, handler)`."""

    api_prefixes: tuple[str, ...] = ("/",)
    json_type = "application/json; charset=utf-8"
    name = "simulator"

    def __init__(self, token_key: str = DEFAULT_TOKEN_KEY, latency: float = 0.0,
                 latency_paths: list[str] | None = None):
        self.token_key = token_key
        self.latency = latency
        self.latency_paths = latency_paths
        self.lock = threading.RLock()
        self.log: list[LogEntry] = []
        self._routes: list[tuple[str, re.Pattern, Callable[[Request], Response]]] = []
        self._failures: list[_Failure] = []
        self._faults = _Faults()
        self._rng = random.Random(0)
        self._down = False
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.scheme = "http"
        self.route("GET", r"/_sim/state", lambda req: Response(200, self.state()))
        self.route("GET", r"/_sim/?", self._state_page)

    # -- lifecycle -------------------------------------------------------------------------

    def route(self, method: str, pattern: str, handler: Callable[[Request], Response]) -> None:
        self._routes.append((method, re.compile(pattern + r"/?", re.IGNORECASE), handler))

    def ssl_context(self) -> ssl.SSLContext | None:
        return None

    def start(self, port: int = 0, host: str = "127.0.0.1"):
        sim = self

        class Handler(_Handler):
            simulator = sim

        self._server = _Server((host, port), Handler)
        self._server.ssl_context = self.ssl_context()
        self.scheme = "https" if self._server.ssl_context else "http"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"{self.name}-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    # -- log -------------------------------------------------------------------------------

    def count(self, method: str | None = None, path_contains: str | None = None) -> int:
        with self.lock:
            return sum(1 for e in self.log if _matches(e, method, path_contains))

    def reset_log(self) -> None:
        with self.lock:
            self.log.clear()

    # -- faults ----------------------------------------------------------------------------

    def fail_next(self, count: int = 1, status: int = 429, retry_after: int | None = 1,
                  path_contains: str | None = None, method: str | None = None) -> None:
        """The next `count` matching requests get `status` (API paths, or any path containing path_contains)."""
        with self.lock:
            self._failures.append(_Failure(count, status, retry_after, path_contains, method))

    def set_faults(self, rate_429: float = 0, rate_503: float = 0, rate_slow: float = 0,
                   slow_seconds: float = 0, rate_drop: float = 0, retry_after: int = 1,
                   seed: int | None = 0, include_token: bool = False, path_contains: str | None = None,
                   rate_lost: float = 0) -> None:
        """Random faults with a seeded generator; all rates 0 turns them off."""
        with self.lock:
            self._faults = _Faults(rate_429, rate_503, rate_slow, slow_seconds, rate_drop, retry_after,
                                   include_token, path_contains, rate_lost)
            self._rng = random.Random(seed)

    def clear_faults(self) -> None:
        with self.lock:
            self._failures.clear()
            self._faults = _Faults()

    def down(self, is_down: bool = True) -> None:
        """While down, every request except /_sim/ gets 503."""
        self._down = is_down

    def _is_api(self, path: str) -> bool:
        return any(path.startswith(p) for p in self.api_prefixes)

    def _fault_for(self, req: Request) -> Response | None:
        if req.path.startswith("/_sim/"):
            return None
        if self._down:
            return self.error(503, "ServiceUnavailable", "The service is down (simulated).", retry_after=1)
        with self.lock:
            for f in self._failures:
                if f.method and f.method.upper() != req.method:
                    continue
                if f.path_contains is not None and f.path_contains not in req.path:
                    continue
                if f.path_contains is None and not self._is_api(req.path):
                    continue
                f.count -= 1
                if f.count <= 0:
                    self._failures.remove(f)
                if f.status == 0:  # carried out, then the connection drops: the answer is lost
                    return _LOST_ANSWER
                return self.error(f.status, _STATUS_CODES.get(f.status, "Error"),
                                  "Simulated failure.", retry_after=f.retry_after)
            fz = self._faults
            if fz.path_contains is not None and fz.path_contains not in req.path:
                return None
            if not (self._is_api(req.path) or fz.include_token):
                return None
            roll = self._rng.random()
        if roll < fz.rate_429:
            return self.error(429, "TooManyRequests", "Too many requests (simulated).", retry_after=fz.retry_after)
        roll -= fz.rate_429
        if roll < fz.rate_503:
            return self.error(503, "ServiceUnavailable", "Service unavailable (simulated).",
                              retry_after=fz.retry_after)
        roll -= fz.rate_503
        if roll < fz.rate_drop:
            return Response(0, drop=True)
        roll -= fz.rate_drop
        if roll < fz.rate_lost:
            return _LOST_ANSWER
        roll -= fz.rate_lost
        if roll < fz.rate_slow:
            time.sleep(fz.slow_seconds)
        return None

    # -- dispatch --------------------------------------------------------------------------

    def error(self, status: int, code: str, message: str, retry_after: int | None = None) -> Response:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None and status in (429, 503) else {}
        return Response(status, self.error_body(code, message), headers)

    def error_body(self, code: str, message: str) -> Any:
        return {"error": {"code": code, "message": message}}

    def process(self, req: Request) -> Response:
        """Faults, then latency and the route. Subclasses wrap `invoke` for per-request bookkeeping."""
        fault = self._fault_for(req)
        if fault is _LOST_ANSWER:
            self.invoke(req)
            return Response(0, drop=True) if not req.inner else self.error(
                503, "ServiceUnavailable", "Service unavailable (simulated).", retry_after=1)
        if fault is not None:
            if fault.drop and req.inner:
                return self.error(503, "ServiceUnavailable", "Service unavailable (simulated).", retry_after=1)
            return fault
        return self.invoke(req)

    def invoke(self, req: Request) -> Response:
        if self.latency and self._is_api(req.path) and (
                self.latency_paths is None or any(p in req.path for p in self.latency_paths)):
            time.sleep(self.latency)
        allowed = []
        for method, pattern, handler in self._routes:
            m = pattern.fullmatch(req.path)
            if not m:
                continue
            if method != req.method:
                allowed.append(method)
                continue
            req.params = {k: v for k, v in m.groupdict().items() if v is not None}
            try:
                return handler(req)
            except HttpError as e:
                resp = self.error(e.status, e.code, e.message)
                resp.headers.update(e.headers)
                return resp
        if allowed:
            return self.error(405, "MethodNotAllowed", f"{req.method} is not allowed on {req.path}.")
        return self.error(404, "NotFound", f"Resource not found for the segment '{req.path}'.")

    def record(self, req: Request, status: int) -> LogEntry:
        try:
            body = req.body()
        except HttpError:
            body = req.raw.decode("utf-8", "replace")
        entry = LogEntry(time.time(), req.method, req.path, dict(req.query), dict(req.headers.items()),
                         body, status, req.mailbox)
        with self.lock:
            self.log.append(entry)
        return entry

    def extra_headers(self, req: Request) -> dict[str, str]:
        return {}

    # -- state -----------------------------------------------------------------------------

    def state(self) -> dict:
        return {}

    def _state_page(self, req: Request) -> Response:
        state = json.dumps(self.state(), indent=2, default=str)
        page = (f"<!doctype html><html><head><title>{self.name}</title></head><body>"
                f"<h1>{html.escape(self.name)}</h1><p>{len(self.log)} requests logged. "
                f"<a href=\"/_sim/state\">JSON</a></p><pre>{html.escape(state)}</pre></body></html>")
        return Response(200, page, content_type="text/html; charset=utf-8")


def _matches(entry: LogEntry, method: str | None, path_contains: str | None) -> bool:
    return ((method is None or entry.method == method.upper())
            and (path_contains is None or path_contains.lower() in entry.path.lower()))


def make_headers(items: dict[str, str] | None) -> Message:
    msg = Message()
    for k, v in (items or {}).items():
        msg[k] = str(v)
    return msg


class _Handler(BaseHTTPRequestHandler):
    simulator: SimServer
    protocol_version = "HTTP/1.1"
    timeout = 60
    wbufsize = 1 << 16
    disable_nagle_algorithm = True

    def log_message(self, format, *args):
        pass

    def _serve(self):
        sim = self.simulator
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        req = Request(self.command, unquote(parts.path), dict(parse_qsl(parts.query, keep_blank_values=True)),
                      self.headers, raw, url=self.path)
        try:
            resp = sim.process(req)
        except Exception as e:  # a simulator bug must still answer, visibly
            resp = sim.error(500, "InternalServerError", f"Simulator error: {e!r}")
        sim.record(req, resp.status if not resp.drop else 0)
        if resp.drop:
            self.close_connection = True
            return
        data, ctype = resp.encode(sim.json_type)
        self.send_response(resp.status)
        headers = {**sim.extra_headers(req), **resp.headers}
        if ctype:
            headers["Content-Type"] = ctype
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve
