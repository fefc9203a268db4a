"""One accelerated clock for the whole local world: the app, the local host(s) and the simulators.

`shared/clock.py` is the app's clock; this module is how devtools sets it up. `accelerated(speed)` makes a
clock that starts at the real time now and runs `speed` times faster; `install(clock)` runs this process on
it; a child host process gets it as `python -m devtools.localhost --clock <Accelerated.text()>` or through
`DEVTOOLS_APP_CLOCK` in its environment (only devtools reads that variable, the app never does).

Two libraries the app uses keep time of their own, and in Azure that time is the app's:
- MSAL decides whether a cached token is still good by reading `time.time()`: on an accelerated clock a
  token the identity platform issued for an hour of app time would be kept for an hour of wall time, long
  after it expired. `install` gives MSAL's modules a `time` whose `time()` is app time.
- azure-core's retry policies (the Storage SDKs' too) sleep between attempts through `HttpTransport.sleep`:
  at 3600x a minute of the SDK's back-off would stall a storage call for 60 app hours. `install` makes
  those sleeps app time.
As libfaketime would for those two libraries only; every other use of `time` (network timeouts, the
queue's leases) stays real.
"""

from __future__ import annotations

import os
import time
import types
from datetime import datetime, timezone

from azure.core.pipeline.transport import HttpTransport

from shared import clock as app_clock
from shared.clock import Accelerated

CLOCK_ENV = "DEVTOOLS_APP_CLOCK"
_current: Accelerated | None = None
_wall_sleep = HttpTransport.sleep


def accelerated(speed: float, origin: datetime | None = None) -> Accelerated:
    """App time from `origin` (default: now) running `speed` times faster than the wall clock."""
    return Accelerated(origin or datetime.now(timezone.utc), time.time(), float(speed))


def app_seconds() -> float:
    """App time as seconds since the epoch (what `time.time()` would say on the app's clock)."""
    return app_clock.now().timestamp()


def _app_time_module() -> types.ModuleType:
    shim = types.ModuleType("time")
    shim.__dict__.update({k: getattr(time, k) for k in dir(time) if not k.startswith("__")})
    shim.time = app_seconds
    return shim


def install(clock: Accelerated | None) -> None:
    """Run this process on `clock` (None: the real clock), MSAL's token expiry included."""
    import msal.application
    import msal.token_cache

    global _current
    _current = clock
    app_clock.install(clock)
    for module in (msal.application, msal.token_cache):
        module.time = _app_time_module() if clock else time
    HttpTransport.sleep = _app_sleep if clock else _wall_sleep


def _app_sleep(transport, duration: float) -> None:
    time.sleep(app_clock.wall_seconds(duration))


def install_from(text: str | None) -> Accelerated | None:
    """Install the clock `Accelerated.text()` wrote (or, without text, the one CLOCK_ENV names, if any)."""
    text = text or os.environ.get(CLOCK_ENV)
    clock = Accelerated.parse(text) if text else None
    if clock is not None:
        install(clock)
    return clock


def installed() -> Accelerated | None:
    """The clock this process runs on, None when it is the real one."""
    return _current
