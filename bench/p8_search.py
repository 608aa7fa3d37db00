"""P8 search: a `search:` block of 256 short trials (~1 s of bare loop each; short: 16), timed as P5 times a
grid: `gansweep run` in a subprocess, command start to exit, against an ideal of the same trials as bare loops
at the flow's concurrency (bench/harness.py: bare_concurrent), half right before and half right after. The
search: the bench grid's 2 losses x 128 Sobol settings of lr and beta1 (d_steps stays 1, so every trial costs
what the bare loop does), 1 seed each, no confirm stage. Also the samplers' own cost: milliseconds per setting
to draw a cell's 128 settings (random, sobol) and to ask them in tpe's rounds (8 start-up, rounds of 4, each
told the earlier settings' scores: the flow's work between rounds, less the training).

Acceptance: none asserted; goals (issue 26): `p8_search` <= 1.5 (as P5's many-trials ratio), each
`p8_sampler_ms_*` < 20. Theoretical minimum of the ratio: 1.0.
"""
from __future__ import annotations

import sys
import time

from bench.harness import Figure, bare_concurrent, bench_config, load_data, steps_for, trials_of
from bench.p5_many_trials import gansweep_run
from gan_tasks.data.storage import Storage


def search_config(steps: int, budget: int, sampler: str = "sobol") -> dict:
    raw = bench_config(steps, 1)
    raw["search"] = {"budget": budget, "sampler": sampler, "metric": "reverse_kl", "confirm_seeds": 0,
                     "use_declared": False, "space": {"lr": {"log_uniform": [1e-4, 1e-2]},
                                                      "betas.0": {"uniform": [0.0, 0.9]}}}
    return raw


def sampler_ms(sampler: str, budget: int) -> float:
    """Milliseconds per setting to draw one cell's `budget` settings (tpe: round by round, as the flow asks)."""
    from gan_tasks.config import parse_config
    from gan_tasks.config.tpe import rounds
    from gan_tasks.config.trial import search_settings, setting_trial

    raw = search_config(100, budget, sampler)
    raw["grid"]["loss"] = raw["grid"]["loss"][:1]
    sweep = parse_config(raw)
    search_settings(sweep)  # imports (optuna, scipy) off the clock
    t0 = time.perf_counter()
    if sampler != "tpe":
        search_settings(sweep)
    else:  # each round told made-up scores of the earlier settings, as the stored results would be
        results: dict = {}
        for upto in range(len(rounds(sweep.search)) + 1):
            for st in search_settings(sweep, results=results, upto=upto):
                if st["round"] == upto:  # the round just asked, trained
                    results[setting_trial(sweep, st, 0).trial_id] = {
                        "reverse_kl": abs(st["values"]["lr"] - 2e-3) + st["values"]["betas.0"]}
    return (time.perf_counter() - t0) * 1000 / budget


def bench_search(storage: Storage, short: bool, run_id: str, n_slots: int) -> list[Figure]:
    n = 16 if short else 256
    tag = f" [short: {n} trials]" if short else ""
    raw = search_config(steps_for(storage, 1.0), n // 2)
    trials = trials_of(raw)
    assert len(trials) == n
    data = load_data(storage, trials[0])
    before, _ = bare_concurrent(trials[::2], data, n_slots)
    sid = f"bench-p8-{run_id}"
    wall, _ = gansweep_run(raw, storage, sid)
    after, _ = bare_concurrent(trials[1::2], data, n_slots)
    rows = storage.read_table("sweeps", sid, "trials").to_pandas()
    assert (rows.status == "completed").sum() == n, rows.status.value_counts()
    ideal = before + after
    figures = [Figure("p8_search", wall / ideal, f"P8 search ratio, ideal: bare loops {n_slots} at once ({n} "
                      "trials: 2 losses x sobol settings, full flow with settings table and budget curves)"),
               Figure("p8_sweep_s", wall, f"P8 search sweep seconds{tag}"),
               Figure("p8_ideal_s", ideal, f"P8 ideal seconds: bare loops {n_slots} at once{tag}")]
    budget = 32 if short else 128
    for sampler in ("random", "sobol", "tpe"):
        figures.append(Figure(f"p8_sampler_ms_{sampler}", sampler_ms(sampler, budget),
                              f"P8 {sampler} sampler ms per setting ({budget} settings of a cell)"))
    return figures


if __name__ == "__main__":  # python -m bench.p8_search STORAGE [--short]
    import torch

    from flows.actors.session import start_local_ray
    from gan_tasks.config import utc_stamp

    torch.set_num_threads(1)
    start_local_ray(log_to_driver=False)
    import ray

    slots_ = int(ray.cluster_resources().get("CPU", 1))
    for fig in bench_search(Storage.parse(sys.argv[1]), "--short" in sys.argv, utc_stamp(), slots_):
        print(f"{fig.key} = {fig.value:.3f}  ({fig.label})")
