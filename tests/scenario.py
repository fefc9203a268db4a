"""The steps tests take in the local world that conftest.py starts: make site items, post to the host,
wait for the sync to settle, and read what the app did (its queue, its Services, its writes to the site).
Plain functions, imported by the test files; the fixtures stay in conftest.py."""

from __future__ import annotations

import requests

from devtools.azurite import eventually
from devtools.stack import ORGANISER


def queue_depth(stack, name: str | None = None) -> int:
    from azure.storage.queue import QueueClient

    client = QueueClient.from_connection_string(stack.azurite.connection_string, name or stack.queue_name)
    try:
        return client.get_queue_properties().approximate_message_count
    except Exception:
        return 0


def settle(stack, timeout: float = 30.0):
    """Wait until webhooks are delivered, the work queue is empty and the worker is idle."""
    def idle():
        for world in stack.sites.values():
            world.sim.wait_idle(timeout)
        return queue_depth(stack) == 0 and stack.host.busy == 0 and queue_depth(stack) == 0
    eventually(idle, timeout, what="the sync to settle")


def new_meeting(site, organiser: str = ORGANISER, title: str = "Weekly sync") -> dict:
    return site.sim.create_item("Meetings", title=title, organiser_id=site.principals[organiser])


def new_event(site, meeting: dict, **fields) -> dict:
    values = {"title": "Planning", "meeting_id": meeting["id"], "start_date": "2026-12-01T09:00:00Z",
              "end_date": "2026-12-01T10:00:00Z", "all_day": False, "location": "Room 1",
              "description": "<p>Agenda</p>", "invitees": [site.principals["bob@contoso.test"]],
              "guests": [site.contacts["guest@partner.test"]] if site.contacts else [], **fields}
    return site.sim.create_item("Meeting Events", **values)


def post(stack, path: str, body, key: str | None = "default", raw: bytes | None = None, headers=None):
    from devtools.stack import FUNCTION_KEY, site_params

    params = {**({} if key is None else {"code": FUNCTION_KEY if key == "default" else key}), **site_params(path)}
    data = raw if raw is not None else __import__("json").dumps(body).encode()
    return requests.post(f"{stack.host_url}/{path}", params=params, data=data, headers=headers or {}, timeout=30)


def site_with(site, monkeypatch, columns: dict[str, str] | None = None, **settings):
    """acme/sales, for one test, with Meeting Events columns its designer added ({name: type}) and the
    given SITES keys; the site's config as the app now reads it."""
    import dataclasses

    from functions.http import services

    for name, kind in (columns or {}).items():
        monkeypatch.setitem(site.sim.schemas["Meeting Events"].columns, name, kind)
    sites = services().settings.sites
    monkeypatch.setitem(sites, "acme/sales", dataclasses.replace(sites["acme/sales"], **settings))
    return sites["acme/sales"]


def svc():
    """The Services of the in-process host (the one the worker and the HTTP functions use)."""
    from functions.http import services

    return services()


def column_writes(stack, item_id, column: str) -> list[str]:
    """The values the app wrote to one column of a site item, in order."""
    return [e.body[column] for e in stack.rapid.log
            if e.method == "PUT" and e.path.endswith(f"/items/{item_id}") and isinstance(e.body, dict)
            and column in e.body]
