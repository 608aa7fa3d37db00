"""The P5 trials run by Ray Tune, as its own process (bench/p5_tune.py times it from start to exit):

    python -m bench.tune_trials CONFIG.yaml STORAGE_URL ENDPOINT_OR_EMPTY RESULTS_DIR
"""
from __future__ import annotations

import sys
import time

t0 = time.perf_counter()  # imports included, as `gansweep run`'s wall includes its own

import torch  # noqa: E402
import yaml  # noqa: E402
from ray import tune  # noqa: E402

from bench.harness import bare_loop, load_data, trials_of  # noqa: E402
from flows.actors.session import start_local_ray  # noqa: E402
from gan_tasks.data.storage import Storage  # noqa: E402


def main(config: str, url: str, endpoint: str, results: str) -> None:
    trials = trials_of(yaml.safe_load(open(config)))

    def trainable(cfg):
        torch.set_num_threads(1)  # one CPU per trial, as ours
        storage = Storage.parse(url, endpoint or None)
        t = trials[cfg["i"]]
        tune.report({"seconds": bare_loop(t, load_data(storage, t))})

    start_local_ray(log_to_driver=False)
    res = tune.Tuner(tune.with_resources(trainable, {"cpu": 1}),
                     param_space={"i": tune.grid_search(list(range(len(trials))))},
                     run_config=tune.RunConfig(storage_path=results, verbose=0)).fit()
    assert not res.errors and len(res) == len(trials), res.errors
    print("wall", time.perf_counter() - t0)


if __name__ == "__main__":
    main(*sys.argv[1:5])
