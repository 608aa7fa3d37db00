"""P1 overhead: 8 trials of fixed work (2 losses x 4 seeds, MLP on ring-8) run by the full flow (Prefect
task runs, Ray actors, storage, evaluation, report), against the same trials run as bare loops at the
flow's concurrency (`slots` processes at once, bench/harness.py: bare_concurrent), half right before and
half right after the flow in the same run: sweep wall / bare wall. The machine's own cost of running
`slots` loops at once is on both sides, so the ratio is the framework's cost.

Also the old ratio, `p1_overhead_vs_serial_*`: sweep wall / (sum of the bare trials timed one at a time in
this process / slots), which counts the machine's contention as overhead.
Acceptance: none asserted (a measurement); goals (bench/results.md): <= 1.25 at 5 s trials, <= 1.05 at 30 s.
Theoretical minimum: 1.0 (`p1_overhead`); `contention` (contention.py) for `p1_overhead_vs_serial`.
Also: where the extra time goes (start-up, fan-in, trial time in actors vs bare), read from the trials'
own start/finish times. Keys end in the variant: `_2s`, `_2s_warm` (short), `_5s`, `_30s` (full).
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

import ray

from bench.harness import Figure, bare_concurrent, bare_loop, bench_config, load_data, trials_of
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
    n_slots = slots(0, 1, len(trials))
    # Half the bare trials before the flow, half after (every other one: both losses on each side), one at a
    # time then at the flow's concurrency: a machine whose speed drifts biases neither side.
    serial = [bare_loop(t, data) for t in trials[::2]]
    conc_wall, conc = bare_concurrent(trials[::2], data, n_slots)
    sid = f"bench-p1-{variant.replace('_', '')}-{run_id}"
    flow_start = datetime.now(timezone.utc)
    t0 = time.perf_counter()
    actors = warm.for_sweep(raw) if warm is not None else None
    sweep_flow(raw, storage.url, sid, None, storage.endpoint_url, actors=actors)
    sweep_s = time.perf_counter() - t0
    wall_after, conc_after = bare_concurrent(trials[1::2], data, n_slots)
    serial += [bare_loop(t, data) for t in trials[1::2]]
    ideal, ideal_serial = conc_wall + wall_after, sum(serial) / n_slots
    conc += conc_after
    rows = storage.read_table("sweeps", sid, "trials").to_pandas()
    first, last = rows.started_at.min(), rows.finished_at.max()
    return [Figure(f"p1_overhead_{variant}", sweep_s / ideal,
                   f"P1 overhead ratio, ideal: bare loops {n_slots} at once ({label})"),
            Figure(f"p1_overhead_vs_serial_{variant}", sweep_s / ideal_serial,
                   f"P1 overhead ratio, ideal: bare loops one at a time / slots ({label})"),
            Figure(f"p1_ideal_s_{variant}", ideal, f"P1 ideal seconds: bare loops {n_slots} at once ({label})"),
            Figure(f"p1_bare_trial_s_{variant}", sum(serial) / len(serial), f"P1 trial seconds bare ({label})"),
            Figure(f"p1_bare_conc_trial_s_{variant}", sum(conc) / len(conc),
                   f"P1 trial seconds bare, {n_slots} at once ({label})"),
            Figure(f"p1_overhead_s_{variant}", sweep_s - ideal, f"P1 overhead seconds ({label})"),
            Figure(f"p1_startup_s_{variant}", (first - flow_start).total_seconds(),
                   f"P1 start-up seconds: flow start to first trial training ({label})"),
            Figure(f"p1_fan_in_s_{variant}", sweep_s - (last - flow_start).total_seconds(),
                   f"P1 fan-in seconds: last trial done to flow end, evaluation + report ({label})"),
            Figure(f"p1_actor_vs_bare_{variant}", rows.wall_seconds.sum() / sum(conc),
                   f"P1 trial time in actors / bare at the same concurrency ({label})"),
            Figure(f"p1_slots_{variant}", float(n_slots), f"P1 parallel slots ({label})"),
            Figure(f"p1_cluster_cpus_{variant}", float(ray.cluster_resources().get("CPU", 0)),
                   f"P1 cluster CPUs ({label})")]


if __name__ == "__main__":  # P1 alone, cold then warm actors: python -m bench.p1_overhead STORAGE [SECONDS ...]
    import sys

    import torch

    from bench.harness import steps_for
    from flows.actors.session import ray_session
    from flows.actors.warm import WarmActors
    from flows.server.temporary import start_temporary_api
    from gan_tasks.config import utc_stamp

    torch.set_num_threads(1)  # one CPU per trial, as the actors get
    st, rid = Storage.parse(sys.argv[1]), utc_stamp()
    with ray_session(log_to_driver=False):
        api = start_temporary_api(lambda _: None)
        if api is not None:
            api.wait()
        for secs in [float(s) for s in sys.argv[2:]] or [5.0]:
            with WarmActors() as warm:
                v = f"{secs:g}s"
                steps = steps_for(st, secs)
                for fig in (bench_overhead(st, steps, rid, v, f"{secs:g} s trials", warm)
                            + bench_overhead(st, steps, rid, f"{v}_warm", f"{secs:g} s trials, warm actors", warm)):
                    print(f"{fig.key} = {fig.value:.3f}  ({fig.label})", flush=True)
