"""Every figure, measured side by side in one run, printed as measured and saved to
<storage>/bench/<run_id>.parquet (columns run_id, figure (its key), label, value, short)."""
from __future__ import annotations

import time
from typing import Callable

import pyarrow as pa
import torch

from bench.contention import bench_contention
from bench.harness import Figure, bench_config, steps_for, trials_of
from bench.p1_overhead import bench_overhead
from bench.p2_step_rate import bench_step_rate, dcgan_config
from bench.p3_data import bench_data
from bench.p3_mapped_memory import bench_mapped_memory
from bench.p4_packing import bench_packing
from bench.p5_many_trials import bench_many
from bench.p5_tune import bench_tune
from bench.p8_search import bench_search
from flows.actors.pool import slots
from flows.actors.session import ray_session
from flows.actors.warm import WarmActors
from flows.server.temporary import start_temporary_api
from gan_tasks.config import utc_stamp
from gan_tasks.data.storage import Storage

# P1 variants: (key suffix, label, seconds of bare loop per trial); short: a CI smoke run
P1_SHORT = [("2s", "2 s trials", 2.0)]
P1_FULL = [("5s", "5 s trials", 5.0), ("30s", "30 s trials", 30.0)]


def run_bench(storage: Storage, short: bool, mnist: str | None = None,
              emit: Callable[[Figure], None] | None = None) -> list[Figure]:
    """emit(figure) as each is measured (a run cut short still shows what it measured). mnist: folder of
    the MNIST IDX files for the dcgan-28 P2 figure (uploaded to storage if not there yet); None skips it."""
    run_id = utc_stamp()
    torch.set_num_threads(1)  # one CPU per trial, as the actors get
    figures: list[Figure] = []

    def add(new: list[Figure]) -> None:
        figures.extend(new)
        for f in new if emit else []:
            emit(f)

    t0 = time.perf_counter()
    with ray_session(log_to_driver=False) as started:
        if started:
            add([Figure("ray_start_s", time.perf_counter() - t0, "Ray start seconds (once per sweep; not in P1)")])
        # P5 first, Ray Tune's run of the same trials last: the longest, and the one not ours.
        p5, p5_config, p5_ideal = bench_many(storage, short, run_id, slots(0, 1, 1 << 16))
        add(p5)
        add(bench_search(storage, short, run_id, slots(0, 1, 1 << 16)))  # P8: the same, as a search: block
        add(_prefect_api_start())
        # Each P1 variant twice, as a notebook runs sweeps one after another (WarmActors): first on actors
        # that start inside the timing, then on the same actors, warm.
        for variant, label, secs in P1_SHORT if short else P1_FULL:
            steps = steps_for(storage, secs)
            with WarmActors() as warm:
                add(bench_overhead(storage, steps, run_id, variant, label, warm))
                add(bench_overhead(storage, steps, run_id, f"{variant}_warm", f"{label}, warm actors", warm))
        add(bench_contention(storage, steps_for(storage, 2.0 if short else 10.0), slots(0, 1, 1 << 16)))
        add(bench_data(storage, trials_of(bench_config(300, 4))))
        add(bench_mapped_memory(40 if short else 200))
        add(bench_packing(storage, 4 if short else 16, 50 if short else 1000, run_id))
        add(bench_step_rate(storage, trials_of(bench_config(300 if short else 3000, 1))[0], "mlp", "mlp ring-8",
                            run_id))
        if mnist:
            from gan_tasks.data.images import upload

            if not storage.exists("datasets", "mnist", "current.json"):
                upload(storage, "mnist", mnist)
            dc = trials_of(dcgan_config(10 if short else 200))[0]
            add(bench_step_rate(storage, dc, "dcgan", "dcgan-28 mnist", run_id))
        if not short:  # Ray Tune's own start-up is most of a short run: the full run only
            add(bench_tune(storage, p5_config, p5_ideal))
    table = pa.table({"run_id": [run_id] * len(figures), "figure": [f.key for f in figures],
                      "label": [f.label for f in figures], "value": [float(f.value) for f in figures],
                      "short": [short] * len(figures)})
    storage.write_parquet(table, "bench", f"{run_id}.parquet")
    return figures


def _prefect_api_start() -> list[Figure]:
    """P1 runs its flows in this process. Like Ray's, the temporary Prefect API's start is paid once per
    process (`gansweep run`: inside P5's start-up), not per sweep: started here, reported on its own."""
    t0 = time.perf_counter()
    api = start_temporary_api(lambda _: None)
    if api is None:
        return []
    api.wait()
    return [Figure("prefect_api_start_s", time.perf_counter() - t0,
                   "Prefect temporary API start seconds (once per process; not in P1)")]
