"""Benchmarks that print ratios against a bare PyTorch loop, measured side by side in one run.

P1 overhead: the full flow (Prefect + Ray actors + storage) on a grid of >= 8 trials, against the
  same trials run by a bare loop in one process: sweep wall / (sum of bare times / parallel slots).
P2 step rate: steps/s of a trial inside a Ray actor / steps/s of the bare loop, same config.
P3 data: bytes read from S3 (botocore GetObject hook) / dataset size, for one node's trials.
P4 seed-packing: N seeds sequential / the same N packed (gan_tasks/training/packing.py), same process.
P5 many trials, start-up, fan-in, no-op re-run: `gansweep run` timed from outside (flows/bench_trials.py).
Memory: peak resident memory of a trial actor.
Each figure is printed on its own line and saved to <storage>/bench/<run_id>.parquet.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Callable

import pyarrow as pa
import torch
import torch.nn.functional as F

from gan_tasks.config import TrialConfig, expand_grid, parse_config
from gan_tasks.data.datasets import dataset_path, ensure_dataset, load_array
from gan_tasks.data.storage import Storage


def bench_config(steps: int, n_seeds: int) -> dict:
    return {"name": "bench", "dataset": "ring-8", "model": "mlp",
            "grid": {"loss": ["non-saturating", "lsgan-011"], "optimizer": ["adam"], "seed": list(range(n_seeds))},
            # g_ema off: the bare loop has no weight average, and P1/P2 measure the framework, not a feature
            "train": {"steps": steps, "batch_size": 256, "log_every": 10, "checkpoint_every": max(steps // 2, 1),
                      "g_ema": 0.0},
            "evaluation": {"n_samples": 500}}


def bare_loop(cfg: TrialConfig, data: torch.Tensor) -> float:
    """The same GAN, written as plainly as possible: no logging, no checkpoints, no storage. Seconds.

    One D step per G step and Adam, as the benchmark grids use (non-saturating / lsgan / dcgan)."""
    from gan_tasks.methods.losses import LOSSES
    from gan_tasks.methods.models import build_models

    torch.manual_seed(cfg.seed)
    g, d = build_models(cfg.model.name, data.shape[1:], cfg.train.z_dim, cfg.model.params)
    o = cfg.optimizer
    og = torch.optim.Adam(g.parameters(), o.lr_g, betas=tuple(o.params["betas"]))
    od = torch.optim.Adam(d.parameters(), o.lr_d, betas=tuple(o.params["betas"]))
    loss, p, bs = LOSSES.get(cfg.loss.name), cfg.loss.params, cfg.train.batch_size
    t0 = time.perf_counter()
    for _ in range(cfg.train.steps):
        real = data[torch.randint(len(data), (bs,))]
        fake = g(torch.randn(bs, cfg.train.z_dim)).detach()
        od.zero_grad()
        loss.d_loss(d(real), d(fake), p).backward()
        od.step()
        og.zero_grad()
        loss.g_loss(None, d(g(torch.randn(bs, cfg.train.z_dim))), p).backward()
        og.step()
    return time.perf_counter() - t0


def load_data(storage: Storage, cfg: TrialConfig) -> torch.Tensor:
    from gan_tasks.training.programs.gan import to_model_range

    ensure_dataset(storage, cfg.dataset.name, cfg.dataset.params)
    return to_model_range(torch.from_numpy(load_array(storage, dataset_path(cfg.dataset.name, cfg.dataset.params))))


class S3ReadCounter:
    """Bytes of every S3 GetObject body this process's s3fs client receives (botocore event hook)."""

    def __init__(self, storage: Storage):
        from fsspec.asyn import sync

        self.bytes = 0
        fs = storage.fs
        client = sync(fs.loop, fs.set_session)
        client.meta.events.register("after-call.s3.GetObject", self._count)

    def _count(self, parsed: dict, **_) -> None:
        self.bytes += int(parsed.get("ContentLength", 0))


def bench_data(storage: Storage, trials: list[TrialConfig]) -> list[tuple[str, float]]:
    """P3: bytes read from object storage when every trial of a sweep loads its data on one node,
    on a fresh node cache (first night) and again with that cache (next night)."""
    import tempfile

    path = ensure_dataset(storage, trials[0].dataset.name, trials[0].dataset.params)
    if not storage.is_s3:
        return [("P3 data ratio", float("nan"))]  # local storage: no object store to count
    counter = S3ReadCounter(storage)
    size = storage.fs.size(storage.uri(*path))
    out = []
    with tempfile.TemporaryDirectory() as cache:
        for night in ("", " next night"):
            counter.bytes = 0
            for _ in trials:  # each trial reads its data as train.Trial does
                load_array(storage, path, cache)
            out.append((f"P3 data ratio{night}", counter.bytes / size))
    return out


def bench_packing(storage: Storage, n: int, steps: int, run_id: str) -> list[tuple[str, float]]:
    """P4: n MLP GANs packed in one stacked model vs the same n trained one after another."""
    from gan_tasks.training.packing import PackedTrials
    from gan_tasks.training.trial import Trial

    raw = {**bench_config(steps, n), "grid": {"loss": ["non-saturating"], "optimizer": ["adam"],
                                              "seed": list(range(n))}}
    raw["train"] = {**raw["train"], "checkpoint_every": steps}
    cfgs = expand_grid(parse_config(raw))
    t0 = time.perf_counter()
    for c in cfgs:
        Trial(c, storage, f"bench-p4-seq-{run_id}").run()
    seq = time.perf_counter() - t0
    t0 = time.perf_counter()
    PackedTrials(cfgs, storage, f"bench-p4-packed-{run_id}").run()
    packed = time.perf_counter() - t0
    dev = "cpu (no GPU on this machine)" if not torch.cuda.is_available() else "cuda"
    print(f"P4 device: {dev}")
    return [(f"P4 packing speedup N={n}", seq / packed)]


def bench_step_rate(storage: Storage, cfg: TrialConfig, label: str, run_id: str) -> list[tuple[str, float]]:
    """P2: steps/s of the training loop inside a Ray actor (checkpoints, metric rows and their
    uploads included; start-up and data loading not) / steps/s of the bare loop. Memory: the actor's
    peak RSS."""
    from flows.actors import make_actor

    import ray

    data = load_data(storage, cfg)
    bare_s = bare_loop(cfg, data)
    actor = make_actor(0, 1)
    ray.get(actor.pid.remote())  # started: time the training only
    row = ray.get(actor.train.remote(cfg, storage, f"bench-p2-{cfg.model.name}-{run_id}"))
    step, _, rate = ray.get(actor.progress.remote())
    rss = ray.get(actor.peak_rss_mb.remote())
    ray.kill(actor)
    assert row["status"] == "completed" and step == cfg.train.steps, row
    # The bare loop runs before and after the actor: a machine whose speed drifts (other load,
    # clocks) biases neither side.
    bare_rate = 2 * cfg.train.steps / (bare_s + bare_loop(cfg, data))
    return [(f"P2 step rate ratio ({label})", rate / bare_rate), (f"P2 bare steps/s ({label})", bare_rate),
            (f"memory peak RSS per trial actor MB ({label})", rss)]


def dcgan_config(steps: int) -> dict:
    """dcgan-28 on MNIST as seed 004 trains it (batch 50, z 100), logging and checkpointing as a sweep would."""
    return {"name": "bench-dcgan", "dataset": "mnist", "model": "dcgan-28",
            "grid": {"loss": ["non-saturating"], "optimizer": ["adam"], "seed": [0]},
            "train": {"steps": steps, "batch_size": 50, "z_dim": 100, "log_every": 10,
                      "checkpoint_every": max(steps // 2, 1)}}


def bench_overhead(storage: Storage, steps: int, run_id: str, label: str, warm=None) -> list[tuple[str, float]]:
    """P1: 8 trials of fixed work by the full flow vs the bare loop; where the extra time goes,
    read from the trials' own start/finish times. warm (flows/warm.py WarmActors): the flow trains in
    the context's actors; those of an earlier sweep if it had one, else started here, inside the timing."""
    import re

    import ray

    from flows.actors import slots
    from flows.sweep import sweep_flow

    raw = bench_config(steps, 4)
    trials = expand_grid(parse_config(raw))
    data = load_data(storage, trials[0])
    # Half the bare trials before the flow, half after (every other one: both losses on each side): a
    # machine whose speed drifts (this one's host varies by 20 % within minutes) biases neither side.
    bare = [bare_loop(t, data) for t in trials[::2]]
    n_slots = slots(0, 1, len(trials))
    sid = f"bench-p1-{re.sub('[^A-Za-z0-9]', '', label)}-{run_id}"
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
    return [(f"P1 overhead ratio ({label})", sweep_s / ideal),
            (f"P1 trial seconds bare ({label})", sum(bare) / len(bare)),
            (f"P1 overhead seconds ({label})", sweep_s - ideal),
            (f"P1 start-up seconds: flow start to first trial training ({label})", startup),
            (f"P1 fan-in seconds: last trial done to flow end, evaluation + report ({label})", fan_in),
            (f"P1 trial time in actors / bare ({label})", rows.wall_seconds.sum() / sum(bare)),
            (f"P1 parallel slots ({label})", float(n_slots)),
            (f"P1 cluster CPUs ({label})", float(ray.cluster_resources().get("CPU", 0)))]


def bench_contention(storage: Storage, steps: int, n_slots: int) -> list[tuple[str, float]]:
    """The machine's own limit: the bare loop on every slot at once (one process a slot, as the
    actors run), against the same loops one at a time. Above 1, the slots share something (memory
    bandwidth, caches, a host's hyperthreads) that no scheduler removes; P1 and P5 divide by the
    loop timed alone, so this much of their ratio is the machine's, not the sweep's."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    cfgs = expand_grid(parse_config(bench_config(steps, n_slots)))[:n_slots]  # one trial a slot
    data = load_data(storage, cfgs[0])
    with ProcessPoolExecutor(n_slots, mp_context=get_context("spawn"), initializer=torch.set_num_threads,
                             initargs=(1,)) as ex:
        alone = [ex.submit(bare_loop, c, data).result() for c in cfgs]  # one after another
        busy = list(ex.map(bare_loop, cfgs, [data] * n_slots))  # all at once
        alone += [ex.submit(bare_loop, c, data).result() for c in cfgs]  # again: drift biases neither side
    return [(f"bare loop with all {n_slots} slots busy / alone", (sum(busy) / len(busy)) / (sum(alone) / len(alone)))]


def _steps_for(storage: Storage, seconds: float) -> int:
    """Generator steps that make one bench trial take about `seconds` in the bare loop here."""
    cfg = expand_grid(parse_config(bench_config(200, 1)))[0]
    return max(100, int(seconds * 200 / bare_loop(cfg, load_data(storage, cfg))))


def run_bench(storage: Storage, short: bool, mnist: str | None = None,
              emit: Callable[[str, float], None] | None = None) -> list[tuple[str, float]]:
    """Every figure, measured side by side in this run; emit(name, value) as each is measured (a run
    cut short still shows what it measured). mnist: folder of the MNIST IDX files for the dcgan-28
    P2 figure (uploaded to storage if not there yet); None skips that figure."""
    import ray

    from flows.actors import slots, start_local_ray
    from flows.bench_trials import bench_many, bench_tune

    run_id = f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
    torch.set_num_threads(1)  # one CPU per trial, as the actors get
    figures: list[tuple[str, float]] = []

    def add(new: list[tuple[str, float]]) -> None:
        figures.extend(new)
        for name, value in new if emit else []:
            emit(name, value)

    started_ray = not ray.is_initialized()
    if started_ray:
        t0 = time.perf_counter()
        start_local_ray(log_to_driver=False)
        add([("Ray start seconds (once per sweep; not in P1)", time.perf_counter() - t0)])
    try:
        # P5 first, Ray Tune's run of the same trials last: the longest, and the one not ours.
        p5, p5_config, p5_ideal = bench_many(storage, short, run_id, slots(0, 1, 1 << 16))
        add(p5)
        # P1 runs its flows in this process. Like Ray's, the temporary Prefect API's start is paid once per
        # process (`gansweep run`: P5's start-up above), not per sweep: started here, reported on its own.
        from flows.warm import start_temporary_api

        t0 = time.perf_counter()
        api = start_temporary_api(lambda _: None)
        if api is not None:
            api.wait()
            add([("Prefect temporary API start seconds (once per process; not in P1)", time.perf_counter() - t0)])
        # Short: ~2 s trials (CI smoke run); full: trials of ~5 s and of ~30 s (the target's). Each twice,
        # as a notebook runs sweeps one after another (WarmActors): first on actors that start inside the
        # timing (each imports torch and torch._dynamo, ~5 s of CPU here), then on the same actors, warm.
        from flows.warm import WarmActors

        for label, secs in ([("2 s trials", 2.0)] if short else [("5 s trials", 5.0), ("30 s trials", 30.0)]):
            steps = _steps_for(storage, secs)
            with WarmActors() as warm:
                add(bench_overhead(storage, steps, run_id, label, warm))
                add(bench_overhead(storage, steps, run_id, f"{label}, warm actors", warm))
        mlp = expand_grid(parse_config(bench_config(300 if short else 3000, 1)))[0]
        add(bench_contention(storage, _steps_for(storage, 2.0 if short else 10.0), slots(0, 1, 1 << 16)))
        add(bench_data(storage, expand_grid(parse_config(bench_config(300, 4)))))
        add(bench_packing(storage, 4 if short else 16, 50 if short else 1000, run_id))
        add(bench_step_rate(storage, mlp, "mlp ring-8", run_id))
        if mnist:
            from gan_tasks.data.images import upload

            if not storage.exists("datasets", "mnist", "manifest.json"):
                upload(storage, "mnist", mnist)
            dc = expand_grid(parse_config(dcgan_config(10 if short else 200)))[0]
            add(bench_step_rate(storage, dc, "dcgan-28 mnist", run_id))
        add(bench_tune(storage, p5_config, p5_ideal))
    finally:
        if started_ray:
            ray.shutdown()
    table = pa.table({"run_id": [run_id] * len(figures), "figure": [f for f, _ in figures],
                      "value": [float(v) for _, v in figures], "short": [short] * len(figures)})
    storage.write_parquet(table, "bench", f"{run_id}.parquet")
    return figures
