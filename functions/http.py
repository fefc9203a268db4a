"""The one place errors become HTTP answers, answers get their headers, request sizes are checked before
a body is read, and the app's services are built (once per process)."""

from __future__ import annotations

import functools
import json
import logging
import threading

import azure.functions as func

from shared.config import ConfigError, get_settings
from shared.model.errors import BadRequest, Forbidden, NotFound, PayloadTooLarge, StorageUnavailable
from shared.intake.webhooks import MAX_BODY  # what any route takes; the host refuses more first (docs/operations.md)
from shared.model.redact import redact

SITE_TOKEN_HEADER = "X-Site-Token"

log = logging.getLogger("rapid_meetings")


_building = threading.Lock()


@functools.cache
def _services():
    from shared.services import Services  # imported on first use: keeps cold start light

    return Services(get_settings())


def services():
    """The process's one Services: concurrent first calls wait for one build (functools.cache alone
    lets each of them build its own, and each then asks the token endpoint again)."""
    with _building:
        return _services()


def json_response(status: int, body: dict) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


def text_response(status: int, text: str) -> func.HttpResponse:
    return func.HttpResponse(text, status_code=status, mimetype="text/plain", charset="utf-8")


def given_site_token(req: func.HttpRequest) -> str | None:
    """A site route's token: the `X-Site-Token` header (kept out of URLs, for callers that can set headers)
    or the `site_token` query parameter (RAPID's item webhooks can send no headers of their own)."""
    return req.headers.get(SITE_TOKEN_HEADER) or req.params.get("site_token")


def _too_large(req: func.HttpRequest) -> None:
    """Refuse a body by its declared Content-Length, before it is read or parsed."""
    declared = req.headers.get("Content-Length")
    if declared is None:
        return  # chunked: parse_json counts what arrived
    if not declared.strip().isdigit():
        raise BadRequest("Content-Length is not a number of bytes")
    if int(declared) > MAX_BODY:
        raise PayloadTooLarge(f"body is {int(declared)} bytes (Content-Length); the limit is {MAX_BODY}")


def answers(handler):
    """Run an HTTP handler; typed errors become JSON answers naming the problem. Every answer says
    `X-Content-Type-Options: nosniff`: a browser never runs an echoed text as a page or script."""

    @functools.wraps(handler)
    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        response = _answer(handler, req)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    return wrapper


def _answer(handler, req: func.HttpRequest) -> func.HttpResponse:
    try:
        _too_large(req)
        return handler(req)
    except (BadRequest, Forbidden, NotFound) as e:
        log.info("%s %s refused (%d): %s", req.method, redact(req.url), e.status, e)
        return json_response(e.status, {"error": type(e).__name__, "message": str(e)})
    except StorageUnavailable as e:
        log.error("%s %s not persisted: %s", req.method, redact(req.url), e)
        return json_response(503, {"error": "StorageUnavailable", "message": "could not persist the work; retry"})
    except ConfigError as e:
        log.error("configuration error: %s", e)
        return json_response(500, {"error": "ConfigError", "message": "the app is misconfigured; see its logs"})
    except Exception as e:
        from azure.core.exceptions import AzureError  # imported only when something failed

        if not isinstance(e, AzureError):
            raise
        # storage failed while reading (e.g. a subscription lookup): the caller retries
        log.error("%s %s storage unavailable: %s", req.method, redact(req.url), type(e).__name__)
        return json_response(503, {"error": "StorageUnavailable", "message": "storage is unavailable; retry"})
