"""A small chaos run (the full one is `make chaos`): two host processes on one queue, one killed mid-work,
faults everywhere; nothing lost, duplicated or different."""

import subprocess
import sys

from devtools.azurite import ROOT


def test_a_workload_under_faults_outages_and_a_killed_host_ends_with_both_sides_in_agreement():
    run = subprocess.run([sys.executable, "-m", "devtools.chaos", "--site-changes", "40", "--outlook-changes", "25",
                          "--seed", "11", "--hosts", "2"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    table = run.stdout
    assert run.returncode == 0, table + run.stderr[-3000:]
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in table.splitlines() if line.startswith("|")}
    assert rows["duplicate Outlook events"] == rows["mismatched fields"] == rows["lost changes"] == "0"
    assert rows["poisoned"] == "0"
    assert int(rows["jobs rescheduled (429/503/transient)"]) > 0  # the faults did bite
    assert rows["host processes"] == "2" and rows["host crashes (SIGKILL mid-work)"] == "1"
    assert int(rows["messages redelivered after a crash"]) <= int(rows["messages the killed host held"])
    assert "Azurite is back" in run.stderr and "the site API is back" in run.stderr
    assert "started again" in run.stderr
