"""The one place errors become HTTP answers, and the app's services are built (once per process)."""

from __future__ import annotations

import functools
import json
import logging
import threading

import azure.functions as func

from shared.config import ConfigError, get_settings
from shared.model.errors import BadRequest, Forbidden, NotFound, StorageUnavailable

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


def answers(handler):
    """Run an HTTP handler; typed errors become JSON answers naming the problem."""

    @functools.wraps(handler)
    def wrapper(req: func.HttpRequest) -> func.HttpResponse:
        try:
            return handler(req)
        except (BadRequest, Forbidden, NotFound) as e:
            log.info("%s %s refused (%d): %s", req.method, req.url.split("?")[0], e.status, e)
            return json_response(e.status, {"error": type(e).__name__, "message": str(e)})
        except StorageUnavailable as e:
            log.error("%s %s not persisted: %s", req.method, req.url.split("?")[0], e)
            return json_response(503, {"error": "StorageUnavailable", "message": "could not persist the work; retry"})
        except ConfigError as e:
            log.error("configuration error: %s", e)
            return json_response(500, {"error": "ConfigError", "message": "the app is misconfigured; see its logs"})
        except Exception as e:
            from azure.core.exceptions import AzureError  # imported only when something failed

            if not isinstance(e, AzureError):
                raise
            # storage failed while reading (e.g. a subscription lookup): the caller retries
            log.error("%s %s storage unavailable: %s", req.method, req.url.split("?")[0], type(e).__name__)
            return json_response(503, {"error": "StorageUnavailable", "message": "storage is unavailable; retry"})

    return wrapper
