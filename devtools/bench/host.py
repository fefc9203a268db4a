"""One local Functions host as a child process of the bench, both ends of it.

The hosts run in their own processes so the simulators in the bench's process do not share a GIL with
the app, and so their CPU (utime + stime in /proc) is theirs alone. The child side (`serve_child`) runs
`devtools.localhost.FunctionHost` with the renewer's timer off and, on request, a wall-time sampler;
the bench side (`Host`) starts, stops and reads it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter

from ..azurite import ROOT, stop_process, wait_for_port

# frames the sampler looks through: the HTTP plumbing around the app's own calls
SAMPLER_SKIPS = {("remote.py", None), ("graph.py", "_call"), ("rapid.py", "_call"), ("http.py", "wrapper")}


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


# -- the child ------------------------------------------------------------------------------------

def serve_child(args) -> int:
    """`python -m devtools.bench --child-host --port P [--no-triggers] [--overrides JSON] [--sample PATH]`."""
    from ..localhost import FunctionHost, load_local_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s",
                        stream=sys.stdout)
    logging.getLogger("azure").setLevel(logging.WARNING)
    load_local_settings()
    host = FunctionHost(queue_overrides=json.loads(args.overrides) if args.overrides else None)
    host.serve(args.port)
    if not args.no_triggers:
        host.start_triggers(timers=False)  # the renewer runs on demand only (admin endpoint)
    if args.sample:
        threading.Thread(target=sample_wall_time, args=(args.sample,), name="bench-sampler", daemon=True).start()
    print(f"bench host on {args.port}: triggers {'off' if args.no_triggers else 'on'}, "
          f"polling ≤ {host.max_polling}s, {host.batch_size}+{host.new_batch_threshold} in flight", flush=True)
    threading.Event().wait()
    return 0


def app_frames(frame, app_root: str) -> list[str]:
    """A thread's innermost app frame and its caller (`module.function`), plumbing skipped."""
    chain = []
    while frame is not None and len(chain) < 2:
        fn = frame.f_code.co_filename
        if fn.startswith(app_root + "shared") or fn.startswith(app_root + "functions"):
            base, func = os.path.basename(fn), frame.f_code.co_name
            private_store = base == "store.py" and func.startswith("_")
            if not ((base, None) in SAMPLER_SKIPS or (base, func) in SAMPLER_SKIPS or private_store):
                chain.append(f"{base[:-3]}.{func}")
        frame = frame.f_back
    return chain


def sample_wall_time(path: str, interval: float = 0.02) -> None:
    """Where the app's threads spend wall time: every 20 ms, each thread's innermost app frame (with its
    caller; queue workers without one count as idle). Cumulative counts go to `path` every second.
    It samples only while `path`.on exists (Host.sampling): walking every thread's frames costs the host
    CPU, which figure 4 measures."""
    app_root = str(ROOT) + os.sep
    counts: Counter = Counter()
    last_dump = time.monotonic()
    while True:
        time.sleep(interval)
        if not os.path.exists(path + ".on"):
            time.sleep(0.25)
            continue
        names = {t.ident: t.name for t in threading.enumerate()}
        counts["__ticks__"] += 1
        for ident, frame in sys._current_frames().items():
            name = names.get(ident, "")
            if name in ("bench-sampler", "MainThread") or name.startswith("queue:"):
                continue
            chain = app_frames(frame, app_root)
            if chain:
                counts[" ← ".join(chain)] += 1
            elif name.startswith("queue_"):
                counts["idle (no job)"] += 1
        if time.monotonic() - last_dump >= 1.0:
            last_dump = time.monotonic()
            with open(path + ".tmp", "w") as out:
                json.dump(counts, out)
            os.replace(path + ".tmp", path)


# -- the bench's side -------------------------------------------------------------------------------

class Host:
    """One local Functions host child process."""

    def __init__(self, settings: dict, name: str, port: int, triggers: bool = True,
                 queue_overrides: dict | None = None, env: dict | None = None, sample: bool = False):
        self.settings, self.name, self.port, self.triggers = settings, name, port, triggers
        self.queue_overrides, self.env = queue_overrides, env or {}
        self.sample_path = os.path.join(tempfile.mkdtemp(prefix="bench-sample-"), "sample.json") if sample else None
        self.process: subprocess.Popen | None = None
        self.log_path = os.path.join(tempfile.mkdtemp(prefix=f"bench-{name}-"), "host.log")
        self.started = self.stopped = None
        self._log = None

    def command(self) -> list[str]:
        args = [sys.executable, "-m", "devtools.bench", "--child-host", "--port", str(self.port)]
        if not self.triggers:
            args.append("--no-triggers")
        if self.queue_overrides:
            args += ["--overrides", json.dumps(self.queue_overrides)]
        if self.sample_path:
            args += ["--sample", self.sample_path]
        return args

    def start(self) -> "Host":
        self._log = open(self.log_path, "w")
        self.started = time.time()
        self.process = subprocess.Popen(self.command(), cwd=ROOT, env={**os.environ, **self.settings, **self.env},
                                        stdout=self._log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, deadline_s=30, process=self.process)
        return self

    def stop(self) -> None:
        stop_process(self.process)
        self.stopped = time.time()
        if self._log:
            self._log.close()

    def cpu(self) -> float:
        return cpu_seconds(self.process.pid) if self.process else float("nan")

    def sampling(self, on: bool) -> None:
        if self.sample_path and on:
            open(self.sample_path + ".on", "w").close()
        elif self.sample_path and os.path.exists(self.sample_path + ".on"):
            os.remove(self.sample_path + ".on")

    def samples(self) -> Counter:
        try:
            with open(self.sample_path) as f:
                return Counter(json.load(f))
        except (OSError, ValueError, TypeError):
            return Counter()
