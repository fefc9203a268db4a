"""One local world for the whole session: Azurite, the Graph and RAPID simulators over real HTTP,
and the local Functions host serving function_app in this process (see devtools/stack.py). The fixtures
live here; the steps tests take in that world (new_event, post, settle…) are in tests/scenario.py."""

from __future__ import annotations

import pytest

from devtools.stack import Stack


@pytest.fixture(scope="session")
def stack():
    world = Stack(multi_lookup_sites=("query", "column"), agenda_sites=("lookup", "link")).start_backends()
    # retries after a failure come back after 1 s instead of host.json's 10 s, to keep the suite quick
    world.start_host_in_process(timers=False, queue_overrides={"visibilityTimeout": "00:00:01"})
    yield world
    world.stop()


@pytest.fixture(params=["ignore", "412", "409"])
def if_match(stack, request):
    """Conflict scenarios run under Graph's default (If-Match on PATCH /events ignored) and both variants that
    refuse a stale one: correctness must not depend on it (docs/platform-facts.md, "If-Match on PATCH /events
    is not documented")."""
    stack.graph.if_match = request.param
    yield request.param
    stack.graph.if_match = "ignore"


@pytest.fixture
def site(stack):
    return stack.sites["acme/sales"]

