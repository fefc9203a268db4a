"""Figure 5, cold start: a fresh interpreter importing function_app and answering its first site webhook,
against one importing azure.functions alone (what any Python Functions app pays)."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

from ..azurite import ROOT
from .harness import World, progress
from .sizes import COLD_REPEATS

BASELINE = ("import time, json; t0 = time.perf_counter()\nimport azure.functions\n"
            "print(json.dumps({'total': time.perf_counter() - t0}))\n")


def first_webhook_code() -> str:
    """Import, index, then one `event_update` webhook as the site sends it (with its token, issue 13)."""
    from ..stack import site_params

    path = "acme/sales/0/services/rapid-meetings/event/update"
    return (
        "import time, json; t0 = time.perf_counter()\n"
        "import azure.functions as func\n"
        "import function_app\n"
        "fns = {f.get_function_name(): f for f in function_app.app.get_functions()}\n"
        "t1 = time.perf_counter()\n"
        f"req = func.HttpRequest('POST', 'http://localhost/{path}',\n"
        f"    params={site_params(path)!r},\n"
        "    route_params={'tenant': 'acme', 'site': 'sales'}, body=json.dumps({'id': 1, 'title': 'x'}).encode())\n"
        "resp = fns['event_update'].get_user_function()(req)\n"
        "t2 = time.perf_counter()\n"
        "assert resp.status_code == 202, resp.get_body()\n"
        "print(json.dumps({'import': t1 - t0, 'total': t2 - t0}))\n")


def run_fresh(code: str, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def figure5_cold_start(world: World) -> None:
    progress(f"figure 5: cold start, {COLD_REPEATS} fresh interpreters each way")
    world.guarded("5 cold start", lambda: measure(world))


def measure(world: World) -> None:
    env = {**os.environ, **world.stack.settings(), "WORK_QUEUE": "bench-cold"}
    app_code, apps, bases = first_webhook_code(), [], []
    for _ in range(COLD_REPEATS):  # interleaved, so drift hits both alike
        bases.append(run_fresh(BASELINE, env)["total"])
        apps.append(run_fresh(app_code, env))
    app = statistics.median(a["total"] for a in apps)
    imp = statistics.median(a["import"] for a in apps)
    base = statistics.median(bases)
    world.report.row("5 cold start: import + 1st webhook (median)", f"{app * 1000:.0f} ms",
                     f"{base * 1000:.0f} ms import azure.functions", f"{app / base:.2f}×", "< 1.5×", app / base < 1.5)
    world.report.note(f"5: import function_app + indexing alone: median {imp * 1000:.0f} ms ({imp / base:.2f}× "
                      f"azure.functions); the first request (services(): Store, WorkQueue, enqueue to Azurite) adds "
                      f"{(app - imp) * 1000:.0f} ms.")
