"""`make bench`: the app's performance figures, measured in one run on this machine.

    .venv/bin/python -m devtools.bench            # every figure
    BENCH_ONLY=2,8 .venv/bin/python -m devtools.bench   # only these (6 needs 4's events)

Starts its own Azurite, Graph and RAPID simulators and local Functions hosts (harness.py), measures each
figure against a baseline or limit measured in the same run, and prints one table (table.py). Progress
goes to stderr; the table to stdout. Nothing here changes the app. One module per figure:

    1 intake.py             POST graph/notifications vs one queue send_message per notification
    2 requests_per_change.py, agenda_requests.py
                            Graph / site / token requests per change, counted at the simulators; site reads
                            per created and updated event (issue 19)
    3 renewal.py            10,000 subscriptions renewed by the timer vs one PATCH per subscription
    4 throughput.py         site changes over 50 organisers with 1, 2, 3 host processes vs Graph's per-mailbox
                            ceiling; host CPU per change (issue 19); 429 MailboxConcurrency across hosts
    5 cold_start.py         import function_app + first request vs import azure.functions
    6 propagation.py        webhook/notification 202 → other side updated, tuned vs default polling
    7 catch_up.py           10,000 items, 100 changed with their webhooks lost
    8 conflict_check.py     Graph / site requests of a create or move on a site with conflicts_column,
                            against the same change on a site without (issue 15)
   10 rooms_free_times.py   Graph / site requests of a create or move with a room, working hours and free times
                            on, against the same change with them off (issue 23)
    9 update_mails.py       attendee update mails per site change (an edit, a burst of five, a status-only
                            change, an agenda change) at the app's EDIT_SETTLE_SECONDS vs 0 (issue 21)

Sample sizes are in sizes.py. Internal: `python -m devtools.bench --child-host --port P [--no-triggers]
[--overrides JSON] [--sample PATH]` is one local Functions host (the bench starts these itself, host.py).
"""
