"""Figure 6, propagation latency: from the site webhook's or Graph notification's 202 to the other side having
the change, on the tuned host (host.json's queue polling) against one with the Functions defaults
(maxPollingInterval 1 min): steady Poisson arrivals both ways at once, then isolated changes after idle.
The simulators answer without latency here (as this figure has always been measured: figure 4 before it
turns its latency off), so the figure is the app's own queueing and polling delay.

The changes edit figure 4's synced events, so figure 6 runs after figure 4.
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict

from ..azurite import eventually
from .harness import World, pct, progress
from .sizes import DEFAULT_QUEUE_SETTINGS, HOST_COUNTS, IDLE_GAP, IDLE_PROBES, PROP_BASELINE_EACH, PROP_EACH, \
    PROP_RATE

SIM_CLOCK_NOTE = "sim timestamps are time.time(); durations measured here use time.perf_counter()"
DIRECTIONS = (("s2o", "site→Outlook"), ("o2s", "Outlook→site"))


def figure6_propagation(world: World) -> None:
    progress("figure 6: propagation latency")
    world.guarded("6 propagation", lambda: propagation(world))


def propagation(world: World) -> None:
    pairs = linked_pairs(world)
    need = 2 * PROP_EACH + 2 * PROP_BASELINE_EACH + 2 * IDLE_PROBES
    if len(pairs) < need:
        raise RuntimeError(f"only {len(pairs)} linked events from figure 4; need {need}")
    a, b = 2 * PROP_EACH, 2 * PROP_EACH + IDLE_PROBES
    c = b + 2 * PROP_BASELINE_EACH
    world.settle()
    progress(f"  tuned host: {PROP_EACH} changes each way, Poisson {PROP_RATE:g}/s each way, no simulator latency")
    tuned = steady(world, pairs[:a], PROP_EACH, "p6", 120)
    world.settle(120)
    tuned_idle = idle_probes(world, pairs[a:b], "p6", 30)

    progress("  restarting the worker host with the Functions defaults (maxPollingInterval 1 min)")
    world.settle()
    world.restart_main_host("worker-default-polling", queue_overrides=DEFAULT_QUEUE_SETTINGS)
    time.sleep(1.0)
    progress(f"  default host: {PROP_BASELINE_EACH} changes each way, same arrivals")
    base = steady(world, pairs[b:c], PROP_BASELINE_EACH, "p6b", 180)
    world.settle(180)
    base_idle = idle_probes(world, pairs[c:c + IDLE_PROBES], "p6b", 90)
    world.settle(120)
    world.restart_main_host("worker")
    report(world, tuned, base, tuned_idle, base_idle)


def linked_pairs(world: World) -> list[tuple[str, str, str]]:
    """Linked (item id, event id, mailbox) from figure 4's events, in a fixed shuffled order."""
    sim = world.stack.sites["acme/sales"].sim
    organiser_of = {mid: email for email, mid in world.organiser_meetings.items()}
    pairs = [(str(i["id"]), i["sys_external_id"], organiser_of[i["meeting_id"]])
             for i in sim.items("Meeting Events")
             if str(i.get("title", "")).startswith(tuple(f"tp{n}-" for n in HOST_COUNTS)) and i.get("sys_external_id")]
    random.Random(6).shuffle(pairs)
    return pairs


def make_change(world: World, kind: str, pair, tag: str) -> dict:
    item_id, event_id, mailbox = pair
    if kind == "s2o":
        world.stack.sites["acme/sales"].sim.update_item("Meeting Events", item_id, title=tag)
    else:
        world.stack.graph.outlook_update(mailbox, event_id, subject=tag)
    return {"kind": kind, "item": item_id, "event": event_id, "tag": tag, "at": time.time()}


def latency(world: World, change: dict, d_index: int, n_index: int) -> float | None:
    """Seconds from the 202 that started it to the other side having the change; None if not there."""
    observed = world.observed
    if change["kind"] == "s2o":
        site = world.stack.sites["acme/sales"].sim
        start = next((d.time for d in site.deliveries[d_index:] if d.status == 202 and d.trigger == "Item Updated"
                      and isinstance(d.body, dict) and str(d.body.get("id")) == change["item"]
                      and d.body.get("title") == change["tag"]), None)
        end = next((t for e, s, t in observed.graph_updates if e == change["event"] and s == change["tag"]), None)
    else:
        start = next((d.time for d in world.stack.graph.notifications_sent[n_index:]
                      if d.status == 202 and d.time >= change["at"]
                      and any((v.get("resourceData") or {}).get("id") == change["event"] for v in d.body["value"])),
                     None)
        end = next((t for i, title, via, t in observed.site_updates
                    if i == change["item"] and title == change["tag"] and via == "api"), None)
    return None if start is None or end is None else end - start


def landed(world: World, change: dict) -> bool:
    if change["kind"] == "s2o":
        return any(e == change["event"] and s == change["tag"] for e, s, _ in world.observed.graph_updates[-2000:])
    return any(i == change["item"] and title == change["tag"] and via == "api"
               for i, title, via, _ in world.observed.site_updates[-2000:])


def arrivals(pairs, each: int, label: str) -> list[tuple[float, str, tuple]]:
    """`each` changes each way at Poisson arrivals of PROP_RATE/s: (seconds from start, direction, pair)."""
    rng, plan = random.Random(len(label)), []
    for kind, offset in (("s2o", 0), ("o2s", each)):
        t = 0.0
        for k in range(each):
            t += rng.expovariate(PROP_RATE)
            plan.append((t, kind, pairs[offset + k]))
    return sorted(plan, key=lambda p: p[0])


def steady(world: World, pairs, each: int, label: str, timeout: float) -> dict:
    d_index = len(world.stack.sites["acme/sales"].sim.deliveries)
    n_index = len(world.stack.graph.notifications_sent)
    changes, start = [], time.perf_counter()
    for n, (t, kind, pair) in enumerate(arrivals(pairs, each, label)):
        delay = start + t - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        changes.append(make_change(world, kind, pair, f"{label}-{kind}-{n}"))
    sent = time.perf_counter() - start
    try:
        eventually(lambda: all(landed(world, c) for c in changes), timeout, f"{label} changes to land", 0.1)
    except TimeoutError as e:
        progress(f"  {e}")
    world.stack.graph.wait_idle(30)
    lat, lost = defaultdict(list), Counter()
    for c in changes:
        value = latency(world, c, d_index, n_index)
        if value is None:
            lost[c["kind"]] += 1
        else:
            lat[c["kind"]].append(value)
    return {"lat": lat, "lost": lost, "sent": sent}


def idle_probes(world: World, pairs, label: str, timeout: float) -> list[float]:
    """One change at a time, alternating direction, each after the work settled plus IDLE_GAP seconds."""
    progress(f"  {label}: {IDLE_PROBES} isolated changes after {IDLE_GAP[0]:g}–{IDLE_GAP[1]:g} s idle")
    rng, out = random.Random(7), []
    for n in range(IDLE_PROBES):
        world.settle()
        time.sleep(rng.uniform(*IDLE_GAP))
        d_index = len(world.stack.sites["acme/sales"].sim.deliveries)
        n_index = len(world.stack.graph.notifications_sent)
        kind = ("s2o", "o2s")[n % 2]
        change = make_change(world, kind, pairs[n], f"{label}-idle-{kind}-{n}")
        try:
            eventually(lambda: landed(world, change), timeout, "an isolated change", 0.05)
        except TimeoutError:
            continue
        world.stack.graph.wait_idle(30)
        value = latency(world, change, d_index, n_index)
        if value is not None:
            out.append(value)
    return out


def report(world: World, tuned: dict, base: dict, tuned_idle: list[float], base_idle: list[float]) -> None:
    for kind, name in DIRECTIONS:
        m, b = tuned["lat"][kind], base["lat"][kind]
        p95, b95 = pct(m, 95), pct(b, 95)
        world.report.row(f"6 {name} p50 / p95 (n={len(m)}, steady)", f"{pct(m, 50):.2f} / {p95:.2f} s",
                         f"{pct(b, 50):.2f} / {b95:.2f} s (n={len(b)})", f"{p95 / b95:.2f}×", "p95 < 2 s",
                         p95 < 2 and len(m) == PROP_EACH)
        if tuned["lost"][kind] or base["lost"][kind]:
            world.report.note(f"6: {name}: {tuned['lost'][kind]} tuned and {base['lost'][kind]} baseline "
                              f"changes not seen on the other side in time (counted as not met)")
    p95, b95 = pct(tuned_idle, 95), pct(base_idle, 95)
    world.report.row(f"6 after {IDLE_GAP[0]:g}–{IDLE_GAP[1]:g} s idle p50 / p95 (n={len(tuned_idle)})",
                     f"{pct(tuned_idle, 50):.2f} / {p95:.2f} s",
                     f"{pct(base_idle, 50):.2f} / {b95:.2f} s (n={len(base_idle)})", f"{p95 / b95:.2f}×", "p95 < 2 s",
                     p95 < 2)
    world.report.note(
        f"6: steady = changes arriving as a Poisson process ({PROP_RATE:g}/s each way, both ways at once, sent "
        f"over {tuned['sent']:.0f} s); baseline = the same arrivals ({PROP_BASELINE_EACH} each way, fewer to "
        f"keep the run short) on a host with the Functions defaults {DEFAULT_QUEUE_SETTINGS}. Idle probes: one "
        f"change at a time, alternating direction, each after the work settled plus "
        f"{IDLE_GAP[0]:g}–{IDLE_GAP[1]:g} s. "
        f"Start = the site webhook's or Graph notification's 202 ({SIM_CLOCK_NOTE}).")
    world.report.note(f"6: idle probes, seconds: tuned {[round(x, 2) for x in tuned_idle]}, "
                      f"default polling {[round(x, 2) for x in base_idle]}")
