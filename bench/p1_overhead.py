"""P1 overhead: 8 trials of fixed work (2 losses x 4 seeds, MLP on ring-8) run by the full flow (Prefect
task runs, Ray actors, storage, evaluation, report), against the same trials run by the bare loop in this
process: sweep wall / (sum of bare trial seconds / parallel slots).

Acceptance: none asserted (a measurement); goals (bench/results.md): <= 1.25 at 5 s trials, <= 1.05 at 30 s.
Theoretical minimum: 1.0 when the machine runs `slots` bare loops at once as fast as one alone; on a
machine whose slots share caches or hyperthreads, the contention figure (contention.py) is its floor.
Also: where the extra time goes (start-up, fan-in, trial time in actors vs bare), read from the trials'
own start/finish times. Keys end in the variant: `_2s`, `_2s_warm` (short), `_5s`, `_30s` (full).
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

import ray

from bench.harness import Figure, bare_loop, bench_config, load_data, trials_of
from flows.actors.pool import slots
from flows.run.flow import sweep_flow
from gan_tasks.data.storage import Storage


def bench_overhead(storage: Storage, steps: int, run_id: str, variant: str, label: str,
                   warm=None) -> list[Figure]:
    """warm (flows/actors/warm.py WarmActors): the flow trains in the context's actors; those of an earlier
    sweep if it had one, else started here, inside the timing."""
    raw = bench_config(steps, 4)
    trials = trials_of(raw)
    data = load_data(storage, trials[0])
    # Half the bare trials before the flow, half after (every other one: both losses on each side): a
    # machine whose speed drifts biases neither side.
    bare = [bare_loop(t, data) for t in trials[::2]]
    n_slots = slots(0, 1, len(trials))
    sid = f"bench-p1-{variant.replace('_', '')}-{run_id}"
    flow_start = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    actors = warm.for_sweep(raw) if warm is not None else None
    sweep_flow(raw, storage.url, sid, None, storage.endpoint_url, actors=actors)
    sweep_s = time.perf_counter() - t0
    bare += [bare_loop(t, data) for t in trials[1::2]]
    ideal = sum(bare) / n_slots
    rows = storage.read_table("sweeps", sid, "trials").to_pandas()
    first, last = rows.started_at.min(), rows.finished_at.max()
    startup = (first - flow_start).total_seconds()
    fan_in = sweep_s - (last - flow_start).total_seconds()
    return [Figure(f"p1_overhead_{variant}", sweep_s / ideal, f"P1 overhead ratio ({label})"),
            Figure(f"p1_bare_trial_s_{variant}", sum(bare) / len(bare), f"P1 trial seconds bare ({label})"),
            Figure(f"p1_overhead_s_{variant}", sweep_s - ideal, f"P1 overhead seconds ({label})"),
            Figure(f"p1_startup_s_{variant}", startup,
                   f"P1 start-up seconds: flow start to first trial training ({label})"),
            Figure(f"p1_fan_in_s_{variant}", fan_in,
                   f"P1 fan-in seconds: last trial done to flow end, evaluation + report ({label})"),
            Figure(f"p1_actor_vs_bare_{variant}", rows.wall_seconds.sum() / sum(bare),
                   f"P1 trial time in actors / bare ({label})"),
            Figure(f"p1_slots_{variant}", float(n_slots), f"P1 parallel slots ({label})"),
            Figure(f"p1_cluster_cpus_{variant}", float(ray.cluster_resources().get("CPU", 0)),
                   f"P1 cluster CPUs ({label})")]
