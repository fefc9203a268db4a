"""How big each figure's run is: the sample behind every number the table prints.

One place, so the README's "Performance" section can say what each figure's sample size is, and a
smaller run (`BENCH_QUICK=1`, for working on the bench) shrinks them all at once.
"""

from __future__ import annotations

import os

LATENCY = 0.100                 # simulator latency per API request: Graph for 3, 4 and 7, RAPID for 4
CLIENTS = 8                     # figure 1: concurrent clients
INTAKE_SECONDS = 3.0            # figure 1: per intake window (thousands of POSTs; 4 s until issue 19)
COLD_REPEATS = 5                # figure 5: fresh interpreters each way
ORGANISERS, CHANGES = 50, 500   # figure 4: site creates over 50 organisers, per host count (1,000 until issue 19)
HOST_COUNTS = (1, 2, 3)         # figure 4: host processes on the same queue
BUSY_CHANGES = 200              # figure 4: changes for one organiser (one busy mailbox), with 3 hosts
PROP_EACH, PROP_RATE = 100, 4.0         # figure 6: changes each way (200 until issue 19), Poisson arrivals/s
PROP_BASELINE_EACH = 50                 # figure 6 baseline: fewer (default polling is slow)
IDLE_PROBES, IDLE_GAP = 5, (3.0, 5.0)   # figure 6: isolated changes after this much idle
BULK_SUBS, BULK_MAILBOXES, RENEW_SAMPLE = 10_000, 10, 200  # figure 3
CATCH_UP_ITEMS, CATCH_UP_CHANGED = 10_000, 100            # figure 7
DEFAULT_QUEUE_SETTINGS = {"maxPollingInterval": "00:01:00", "visibilityTimeout": "00:00:00", "batchSize": 16,
                          "newBatchThreshold": 8, "maxDequeueCount": 5}

if os.environ.get("BENCH_QUICK"):  # a smaller run, for working on the bench
    CHANGES, PROP_EACH, PROP_BASELINE_EACH, IDLE_PROBES, BUSY_CHANGES = 200, 40, 10, 2, 60
    BULK_SUBS, RENEW_SAMPLE, INTAKE_SECONDS, COLD_REPEATS = 1000, 50, 1.5, 2
