"""The shortest outage scenario of `make chaos` (devtools/outages): Graph down for an hour of app time while
both sides are edited, on a clock shared by the app, its host and the simulators; every count is 0 and
both sides agree after recovery, with no manual step."""

import subprocess
import sys

from devtools.azurite import ROOT
from devtools.outages.counts import COLUMNS


def test_a_graph_outage_of_an_hour_heals_by_itself_on_both_sides():
    run = subprocess.run([sys.executable, "-m", "devtools.outages", "--only", "Graph down 1 h"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    lines = [line for line in run.stdout.splitlines() if line.startswith("| Graph down 1 h ")]
    assert lines, run.stdout + run.stderr[-3000:]
    cells = dict(zip(COLUMNS, (c.strip() for c in lines[0].strip("|").split("|"))))
    counts = {name: cells[name] for name in COLUMNS[1:8]}
    assert counts == dict.fromkeys(COLUMNS[1:8], "0"), run.stdout
    assert cells["recovery → agreed (app)"] != "never", run.stdout
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
