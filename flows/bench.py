"""Benchmarks that print ratios against a bare PyTorch loop, measured side by side in one run.

P1 overhead: the full flow (Prefect + Ray actors + storage) on a grid of >= 8 trials, against the
  same trials run by a bare loop in one process: sweep wall / (sum of bare times / parallel slots).
P2 step rate: steps/s of a trial inside a Ray actor / steps/s of the bare loop, same config.
P3 data: bytes read from S3 (botocore GetObject hook) / dataset size, for one node's trials.
P4 seed-packing: N seeds sequential / the same N packed (gan_tasks/packing.py), same process.
Memory: peak resident memory of a trial actor.
Each figure is printed on its own line and saved to <storage>/bench/<run_id>.parquet.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pyarrow as pa
import torch
import torch.nn.functional as F

from gan_tasks.config import TrialConfig, expand_grid, parse_config
from gan_tasks.datasets import dataset_path, ensure_dataset, load_array
from gan_tasks.storage import Storage


def bench_config(steps: int, n_seeds: int) -> dict:
    return {"name": "bench", "dataset": "ring-8", "model": "mlp",
            "grid": {"loss": ["non-saturating", "lsgan-011"], "optimizer": ["adam"], "seed": list(range(n_seeds))},
            "train": {"steps": steps, "batch_size": 256, "log_every": 10, "checkpoint_every": max(steps // 2, 1)},
            "evaluation": {"n_samples": 500}}


def bare_loop(cfg: TrialConfig, data: torch.Tensor) -> float:
    """The same GAN, written as plainly as possible: no logging, no checkpoints, no storage. Seconds."""
    from gan_tasks.losses import LOSSES
    from gan_tasks.models import build_models

    torch.manual_seed(cfg.seed)
    g, d = build_models(cfg.model.name, data.shape[1:], cfg.train.z_dim, cfg.model.params)
    og = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    od = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
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

    if not storage.is_s3:
        return [("P3 data ratio", float("nan"))]  # local storage: no object store to count
    counter = S3ReadCounter(storage)
    path = dataset_path(trials[0].dataset.name, trials[0].dataset.params)
    size = storage.fs.size(storage.uri(*path))
    out = []
    with tempfile.TemporaryDirectory() as cache:
        for night in ("", " next night"):
            counter.bytes = 0
            for _ in trials:  # each trial reads its data as train.Trial does
                load_array(storage, path, cache)
            out.append((f"P3 data ratio{night}", counter.bytes / size))
    return out


def bench_packing(storage: Storage, n: int, steps: int) -> list[tuple[str, float]]:
    """P4: n MLP GANs packed in one stacked model vs the same n trained one after another."""
    from gan_tasks.packing import PackedTrials
    from gan_tasks.train import Trial

    raw = {**bench_config(steps, n), "grid": {"loss": ["non-saturating"], "optimizer": ["adam"],
                                              "seed": list(range(n))}}
    raw["train"] = {**raw["train"], "checkpoint_every": steps}
    cfgs = expand_grid(parse_config(raw))
    t0 = time.perf_counter()
    for c in cfgs:
        Trial(c, storage, "bench-p4-seq").run()
    seq = time.perf_counter() - t0
    t0 = time.perf_counter()
    PackedTrials(cfgs, storage, "bench-p4-packed").run()
    packed = time.perf_counter() - t0
    dev = "cpu (no GPU on this machine)" if not torch.cuda.is_available() else "cuda"
    print(f"P4 device: {dev}")
    return [(f"P4 packing speedup N={n}", seq / packed)]


def run_bench(storage: Storage, short: bool) -> list[tuple[str, float]]:
    import ray

    from flows.actors import make_actor, slots, start_local_ray
    from flows.sweep import sweep_flow

    # Short: CI smoke run (figures printed, not meaningful); full: >= 30 s trials as the target says.
    steps = 300 if short else 3000
    raw = bench_config(steps, 4)
    trials = expand_grid(parse_config(raw))
    ensure_dataset(storage, trials[0].dataset.name, trials[0].dataset.params)
    data = torch.from_numpy(load_array(storage, dataset_path(trials[0].dataset.name, trials[0].dataset.params)))
    torch.set_num_threads(1)  # one CPU per trial, as the actors get
    bare = [bare_loop(t, data) for t in trials]
    figures: list[tuple[str, float]] = bench_data(storage, trials)
    figures += bench_packing(storage, 4 if short else 16, 50 if short else 1000)

    started_ray = not ray.is_initialized()
    if started_ray:
        start_local_ray(log_to_driver=False)
    try:
        n_slots = slots(0, 1, len(trials))
        actor = make_actor(0, 1)
        ray.get(actor.pid.remote())  # started: time the training only
        t0 = time.perf_counter()
        ray.get(actor.train.remote(trials[0], storage, "bench-p2"))
        actor_s = time.perf_counter() - t0
        rss = ray.get(actor.peak_rss_mb.remote())
        ray.kill(actor)
        figures.append(("P2 step rate ratio (mlp ring-8)", bare[0] / actor_s))
        figures.append(("memory peak RSS per trial actor MB", rss))

        sid = f"bench-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
        t0 = time.perf_counter()
        sweep_flow(raw, storage.url, sid, None, storage.endpoint_url)
        sweep_s = time.perf_counter() - t0
        figures.append(("P1 overhead ratio", sweep_s / (sum(bare) / n_slots)))
        figures.append(("P1 overhead seconds", sweep_s - sum(bare) / n_slots))
        figures.append(("P1 trial seconds (bare)", sum(bare) / len(bare)))
        figures.append(("P1 parallel slots", float(n_slots)))
    finally:
        if started_ray:
            ray.shutdown()
    run_id = f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
    table = pa.table({"run_id": [run_id] * len(figures), "figure": [f for f, _ in figures],
                      "value": [float(v) for _, v in figures], "short": [short] * len(figures),
                      "cpus": [float(ray.cluster_resources().get("CPU", 0)) if ray.is_initialized() else 0.0]
                      * len(figures)})
    storage.write_parquet(table, "bench", f"{run_id}.parquet")
    return figures
