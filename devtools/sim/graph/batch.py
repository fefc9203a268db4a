"""JSON batching: concepts/json-batching.md (20 requests at most, dependsOn; each inner request is
authorised and served like a request of its own).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qsl, unquote, urlsplit


from ..base import HttpError, LogEntry, Request, Response, make_headers
from .model import MAILBOX_CONCURRENCY


class Batching:
    """$batch: up to 20 requests, run as Outlook runs them."""

    def _batch(self, req: Request) -> Response:
        self._auth(req)
        data = req.json()
        requests_ = data.get("requests") if isinstance(data, dict) else None
        if not isinstance(requests_, list) or not requests_:
            raise HttpError(400, "BadRequest", "Invalid batch payload format.")
        if len(requests_) > 20:
            raise HttpError(400, "BadRequest", "Number of batch requests exceeds the limit of 20.")
        ids = [str(r.get("id")) for r in requests_]
        if len(set(ids)) != len(ids) or any(not r.get("method") or not r.get("url") for r in requests_):
            raise HttpError(400, "BadRequest", "Batch requests need a unique id, a method and a url.")
        if any(r.get("dependsOn") for r in requests_):
            results: dict[str, dict] = {}
            for r in requests_:
                failed = [d for d in r.get("dependsOn") or [] if results.get(str(d), {}).get("status", 424) >= 400]
                results[str(r["id"])] = (self._inner(req, r) if not failed else
                                         {"id": str(r["id"]), "status": 424, "headers": {},
                                          "body": self.error_body("FailedDependency", "A dependency failed.")})
            responses = list(results.values())
        else:
            with ThreadPoolExecutor(max_workers=MAILBOX_CONCURRENCY) as pool:
                responses = list(pool.map(lambda r: self._inner(req, r), requests_))
        return Response(200, {"responses": responses})

    def _inner(self, outer: Request, spec: dict) -> dict:
        url = spec["url"] if spec["url"].startswith("/") else "/" + spec["url"]
        parts = urlsplit(url)
        headers = {"Authorization": outer.header("Authorization") or "", **(spec.get("headers") or {})}
        body = spec.get("body")
        if body is not None and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
        raw = b"" if body is None else body.encode() if isinstance(body, str) else json.dumps(body).encode()
        inner = Request(spec["method"].upper(), "/v1.0" + unquote(parts.path),
                        dict(parse_qsl(parts.query, keep_blank_values=True)), make_headers(headers), raw,
                        url=url, inner=True)
        try:
            resp = self.process(inner)
        except Exception as e:
            resp = self.error(500, "InternalServerError", f"Simulator error: {e!r}")
        try:
            logged_body = inner.body()
        except HttpError:
            logged_body = raw.decode("utf-8", "replace")
        with self.lock:
            self.batch_inner_requests.append(LogEntry(time.time(), inner.method, inner.path, dict(inner.query),
                                                      dict(inner.headers.items()), logged_body, resp.status,
                                                      inner.mailbox))
        out_headers = dict(resp.headers)
        if resp.body is not None:
            out_headers["Content-Type"] = resp.content_type or "application/json"
        return {"id": str(spec["id"]), "status": resp.status, "headers": out_headers, "body": resp.body}
