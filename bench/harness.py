"""What every benchmark shares: the bench sweep's config, the bare PyTorch loop every ratio divides by (one
at a time, or the same trials at the flow's concurrency), its data, the steps that make a trial take N
seconds here, and Figure (a stable key, a value, a label)."""
from __future__ import annotations

import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

import torch

from gan_tasks.config import TrialConfig, expand_grid, parse_config
from gan_tasks.data.datasets import dataset_path, dataset_spec, ensure_dataset, load_array
from gan_tasks.data.storage import Storage


@dataclass(frozen=True)
class Figure:
    """One measured figure: `key` is stable (tests and result tables use it), `label` says what it is."""

    key: str
    value: float
    label: str


def bench_config(steps: int, n_seeds: int) -> dict:
    return {"name": "bench", "dataset": "ring-8", "model": "mlp",
            "grid": {"loss": ["non-saturating", "lsgan-011"], "optimizer": ["adam"], "seed": list(range(n_seeds))},
            # g_ema off: the bare loop has no weight average, and P1/P2 measure the framework, not a feature
            "train": {"steps": steps, "batch_size": 256, "log_every": 10, "checkpoint_every": max(steps // 2, 1),
                      "g_ema": 0.0},
            "evaluation": {"n_samples": 500}}


def trials_of(raw: dict) -> list[TrialConfig]:
    return expand_grid(parse_config(raw))


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


def bare_concurrent(trials: list[TrialConfig], data: torch.Tensor, n_slots: int) -> tuple[float, list[float]]:
    """The trials as bare loops in `n_slots` processes at once (one thread each, as the actors run), each
    process taking the next trial when done, as the flow's slots do: (wall seconds from the first trial's
    start to the last one's end, each trial's seconds). The processes start, import torch and run a few steps of
    the first trial off the clock, as the flow's actors are warm after their first trial."""
    ctx = get_context("spawn")
    warm = trials[0].model_copy(update={"train": trials[0].train.model_copy(update={"steps": 5})})
    with ProcessPoolExecutor(n_slots, mp_context=ctx, initializer=_start_worker,
                             initargs=(data, ctx.Barrier(n_slots), warm)) as ex:
        list(ex.map(time.sleep, [0.0] * n_slots))  # one call per process: every process started and ready
        t0 = time.perf_counter()
        secs = list(ex.map(_bare_in_worker, trials))
        return time.perf_counter() - t0, secs


_worker_data: torch.Tensor | None = None


def _start_worker(data: torch.Tensor, ready, warm: TrialConfig) -> None:
    global _worker_data
    torch.set_num_threads(1)
    _worker_data = data
    bare_loop(warm, data)  # first-call costs (imports, torch._dynamo, allocator): seconds, off the clock
    ready.wait()  # no process runs a trial before all are up


def _bare_in_worker(cfg: TrialConfig) -> float:
    return bare_loop(cfg, _worker_data)


def load_data(storage: Storage, cfg: TrialConfig) -> torch.Tensor:
    from gan_tasks.training.programs.gan import to_model_range

    ensure_dataset(storage, cfg.dataset.name, cfg.dataset.params)
    if dataset_spec(cfg.dataset).sharded:  # an image upload (mnist): its shards, read whole as before
        from gan_tasks.data.userdata import open_split

        return to_model_range(torch.from_numpy(open_split(storage, cfg.dataset.name, cfg.dataset.id)[0].array()))
    return to_model_range(torch.from_numpy(load_array(storage, dataset_path(cfg.dataset.name, cfg.dataset.params))))


def steps_for(storage: Storage, seconds: float) -> int:
    """Generator steps that make one bench trial take about `seconds` in the bare loop here."""
    cfg = trials_of(bench_config(200, 1))[0]
    return max(100, int(seconds * 200 / bare_loop(cfg, load_data(storage, cfg))))
