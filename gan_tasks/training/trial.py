"""One trial: train a GAN, checkpoint, log metrics to Parquet, resume from the latest checkpoint.

Plain PyTorch: no Prefect, no Ray. `run_trial` is what a Ray actor calls; it can also be called
from a notebook. Metrics are buffered in memory and flushed to storage with each checkpoint,
so storage writes never sit on the per-step hot path.
"""
from __future__ import annotations

import copy
import io
import json
import logging
import math
import time
from datetime import datetime, timezone
from typing import Callable

import numpy as np
import pyarrow as pa
import torch

from gan_tasks.config import TrialConfig
from gan_tasks.data.datasets import dataset_path, load_array
from gan_tasks.methods.losses import LOSSES
from gan_tasks.methods.models import build_models
from gan_tasks.methods.optimizers import make_optimizer
from gan_tasks.data.storage import BackgroundWriter, Storage
from gan_tasks.data import schema
from gan_tasks.methods.tricks import (HistoricalAverage, VBNGenerator, add_minibatch_discrimination, feature_matching_loss,
                              instance_noise, noisy_label_d_loss, pack, packed_shape)
from gan_tasks.methods.unroll import FunctionalD, unroll

log = logging.getLogger("gansweep.train")


class EarlyStopped(RuntimeError):
    """Raised by the evaluation hook at a rung where the trial is not among the best (early_stop)."""


class Diverged(RuntimeError):
    def __init__(self, step: int, what: str):
        super().__init__(f"non-finite {what} at step {step}")
        self.step = step


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Trial:
    """The state of one trial on one device: models, optimisers, RNGs, step counter."""

    def __init__(self, cfg: TrialConfig, storage: Storage, sweep_id: str, device: str = "cpu"):
        self.cfg, self.storage, self.sweep_id, self.device = cfg, storage, sweep_id, torch.device(device)
        self.tid = cfg.trial_id
        self.loss = LOSSES.get(cfg.loss.name)
        self.lp = cfg.loss.params
        data = load_array(storage, dataset_path(cfg.dataset.name, cfg.dataset.params))
        self.data = to_model_range(torch.from_numpy(data)).to(self.device)
        self.tricks = tr = cfg.tricks
        self.pac = tr.pac  # PacGAN: D scores groups of pac samples (tricks.pack), G is unchanged
        torch.manual_seed(cfg.seed)  # model init and dropout draw from the global RNG
        shape = tuple(self.data.shape[1:])
        self.G, self.D = build_models(cfg.model.name, shape, cfg.train.z_dim, cfg.model.params,
                                      packed_shape(shape, self.pac))
        if tr.minibatch_discrimination:
            add_minibatch_discrimination(self.D, tr.minibatch_discrimination, tr.minibatch_kernel_dim)
        if tr.virtual_batchnorm:  # the reference batch: one minibatch of z, fixed for the whole run
            self.G = VBNGenerator(self.G, torch.randn(cfg.train.batch_size, cfg.train.z_dim))
        self.G.to(self.device), self.D.to(self.device)
        # train.g_ema: an average of G's weights (Yazici et al. 2019) that evaluation and samples use.
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False) if cfg.train.g_ema else None
        o = cfg.optimizer
        self.opt_g = make_optimizer(o.name, self.G.parameters(), o.lr_g, o.params)
        self.opt_d = make_optimizer(o.name, self.D.parameters(), o.lr_d, o.params)
        # Batches and z come from a generator of our own, so their stream is checkpointed exactly.
        self.gen = torch.Generator(self.device).manual_seed(cfg.seed)
        self.step = 0
        self.rows: list[dict] = []
        self.writer = BackgroundWriter()  # checkpoint and metric uploads run beside training
        self.d_steps = tr.d_steps or int(self.lp.get("d_steps", 1))
        # Loss control variables (BEGAN's k_t) live on the device: updating them never syncs.
        self.loss_state = {k: torch.tensor(v, device=self.device) for k, v in self.loss.state0.items()}
        self.hist = ([HistoricalAverage(m, tr.historical_averaging) for m in (self.G, self.D)]
                     if tr.historical_averaging else [])
        self.d_loss = self.loss.d_loss
        if tr.label_smoothing or tr.label_flip:
            self.d_loss = lambda sr, sf, p: noisy_label_d_loss(sr, sf, tr.label_smoothing, tr.label_flip, self.gen)

    # --- checkpoints ---------------------------------------------------------------------------
    def _ckpt_dir(self) -> tuple[str, ...]:
        return ("sweeps", self.sweep_id, "checkpoints", self.tid)

    def state(self) -> dict:
        s = {"step": self.step, "G": self.G.state_dict(), "D": self.D.state_dict(),
             "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
             "rng_torch": torch.get_rng_state(), "rng_gen": self.gen.get_state(),
             "loss_state": dict(self.loss_state), "hist": [h.state_dict() for h in self.hist]}
        if self.G_ema is not None:
            s["G_ema"] = self.G_ema.state_dict()
        if self.device.type == "cuda":
            s["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        return s

    def save_checkpoint(self) -> None:
        buf = io.BytesIO()
        torch.save(self.state(), buf)
        self._write_checkpoint(buf.getvalue(), self.step)

    def _write_checkpoint(self, blob: bytes, step: int) -> None:
        d = self._ckpt_dir()
        self.storage.write_bytes(blob, *d, f"step-{step:09d}.pt")
        old = [n for n in self.storage.ls(*d) if n.startswith("step-") and n.endswith(".pt")]
        for name in old[: -self.cfg.train.keep_checkpoints]:
            self.storage.rm(*d, name)

    def try_resume(self) -> bool:
        """Load the newest readable checkpoint; a truncated one falls back to the one before."""
        d = self._ckpt_dir()
        names = [n for n in self.storage.ls(*d) if n.startswith("step-") and n.endswith(".pt")]
        for name in reversed(names):
            try:
                s = torch.load(io.BytesIO(self.storage.read_bytes(*d, name)), map_location=self.device,
                               weights_only=True)
            except Exception as e:  # noqa: BLE001 - any unreadable file means: try the previous one
                log.warning("checkpoint %s of trial %s is unreadable (%s); falling back", name, self.tid, e)
                continue
            self.G.load_state_dict(s["G"]), self.D.load_state_dict(s["D"])
            if self.G_ema is not None:  # a checkpoint from before g_ema was on starts the average at G
                self.G_ema.load_state_dict(s.get("G_ema", s["G"]))
            self.opt_g.load_state_dict(s["opt_g"]), self.opt_d.load_state_dict(s["opt_d"])
            torch.set_rng_state(s["rng_torch"].cpu())
            self.gen.set_state(s["rng_gen"].cpu())
            self.loss_state = {k: v.to(self.device) for k, v in s.get("loss_state", self.loss_state).items()}
            for h, hs in zip(self.hist, s.get("hist", [])):
                h.load_state_dict(hs)
            if "rng_cuda" in s and self.device.type == "cuda":
                torch.cuda.set_rng_state(s["rng_cuda"].cpu(), self.device)
            self.step = int(s["step"])
            return True
        return False

    # --- metrics -------------------------------------------------------------------------------
    def _metrics_dir(self) -> tuple[str, ...]:
        return ("sweeps", self.sweep_id, "metrics")

    def drop_metrics_after(self, step: int) -> None:
        """Rows logged after the checkpoint we resume from are logged again: drop them first."""
        for name in self.storage.ls(*self._metrics_dir()):
            if name.startswith(f"{self.tid}-") and int(name.rsplit("-", 1)[1].split(".")[0]) > step:
                self.storage.rm(*self._metrics_dir(), name)

    def flush_metrics(self) -> None:
        rows, self.rows = self.rows, []
        self._write_rows(rows)

    def _write_rows(self, rows: list[dict]) -> None:
        if rows:
            table = pa.Table.from_pylist(rows, schema=schema.METRICS)
            self.storage.write_parquet(table, *self._metrics_dir(), f"{self.tid}-{rows[0]['step']:09d}.parquet")

    # --- training ------------------------------------------------------------------------------
    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        bs = self.cfg.train.batch_size
        idx = torch.randint(len(self.data), (bs,), generator=self.gen, device=self.device)
        z = torch.randn(bs, self.cfg.train.z_dim, generator=self.gen, device=self.device)
        return self.data[idx], z

    def _d_step(self, p: dict, noise: float, log_now: bool, d: torch.nn.Module | None = None,
                opt: torch.optim.Optimizer | None = None) -> tuple:
        """One discriminator update (on a look-ahead copy when d/opt are given: unrolled GAN)."""
        d, opt = d or self.D, opt or self.opt_d
        real, z = self._batch()
        fake = self.G(z).detach()
        real, fake = instance_noise(real, noise, self.gen), instance_noise(fake, noise, self.gen)
        # Packed apart, so each group is all real or all fake; penalties see the packed inputs too.
        real, fake = pack(real, self.pac), pack(fake, self.pac)
        sr, sf = d(real), d(fake)
        loss_d = self.d_loss(sr, sf, p)
        pen = self.loss.penalty(d, real, fake, p, self.gen) if self.loss.penalty else None
        total = loss_d + pen if pen is not None else loss_d
        hist = self.hist and d is self.D
        if hist:
            total = total + self.hist[1].penalty()
        opt.zero_grad(set_to_none=True)
        total.backward()
        gn_d = _grad_norm(d) if log_now else None
        opt.step()
        if hist:
            self.hist[1].update()
        if self.loss.after_d_step:
            self.loss.after_d_step(d, p)
        return real, sr, sf, loss_d, pen, gn_d

    def _unrolled_d(self, p: dict, noise: float):
        """Metz et al. 2016: D after k more D steps, for the G update only (gan_tasks/methods/unroll.py).
        Second order by default: G's gradient flows back through the k updates. unrolled_first_order:
        a copy of D takes k real optimiser steps and G sees its weights as constants (cheaper)."""
        o, k = self.cfg.optimizer, self.tricks.unrolled_steps
        if self.tricks.unrolled_first_order:
            d = copy.deepcopy(self.D)
            opt = make_optimizer(o.name, d.parameters(), o.lr_d, o.params)
            opt.load_state_dict(copy.deepcopy(self.opt_d.state_dict()))
            for _ in range(k):
                self._d_step(p, noise, False, d, opt)
            return d
        buffers = {n: b.clone() for n, b in self.D.named_buffers()}  # batch-norm statistics: the look-ahead's own

        def d_loss(params: dict) -> torch.Tensor:  # the draws of _d_step, in its order
            d = FunctionalD(self.D, params, buffers)
            real, z = self._batch()
            fake = self.G(z)  # not detached: how D^k depends on G is the point of unrolling
            real, fake = instance_noise(real, noise, self.gen), instance_noise(fake, noise, self.gen)
            real, fake = pack(real, self.pac), pack(fake, self.pac)
            loss = self.d_loss(d(real), d(fake), p)
            return loss + self.loss.penalty(d, real, fake, p, self.gen) if self.loss.penalty else loss

        # WGAN's after-step weight clipping, as a (differentiable) clamp of the unrolled weights
        clip = p["clip"] if self.loss.after_d_step and "clip" in p else None
        return FunctionalD(self.D, unroll(self.D, self.opt_d, o.name, k, d_loss, clip), buffers)

    def train_step(self, log_now: bool) -> dict | None:
        tr = self.tricks
        p = {**self.lp, **self.loss_state} if self.loss_state else self.lp
        noise = tr.instance_noise * max(0.0, 1.0 - self.step / self.cfg.train.steps)  # annealed to 0
        for _ in range(self.d_steps):
            real, sr, sf, loss_d, pen, gn_d = self._d_step(p, noise, log_now)
        d_g = self._unrolled_d(p, noise) if tr.unrolled_steps else self.D
        _, z = self._batch()
        fake = pack(instance_noise(self.G(z), noise, self.gen), self.pac)
        sf_g = None
        if tr.feature_matching:  # `real` is the last D step's batch, packed as `fake` is
            loss_g = feature_matching_loss(d_g, real, fake)
        else:
            sf_g = d_g(fake)
            loss_g = self.loss.g_loss(sr.detach(), sf_g, p)
        self.opt_g.zero_grad(set_to_none=True)
        (loss_g + self.hist[0].penalty() if self.hist else loss_g).backward()
        gn_g = _grad_norm(self.G) if log_now else None
        self.opt_g.step()
        if self.hist:
            self.hist[0].update()
        if self.G_ema is not None:
            ema_update(self.G_ema, self.G, self.cfg.train.g_ema)
        if self.loss.update_state:
            self.loss_state = self.loss.update_state(self.loss_state, sr, sf_g, p)
        self.step += 1
        if not log_now:
            return None
        extra = self.loss.monitor(self.loss_state, sr, sf_g, p) if self.loss.monitor else {}
        nan = torch.full((), math.nan, device=self.device)
        vals = {"loss_d": loss_d, "loss_g": loss_g, "penalty": nan if pen is None else pen,
                "d_real": sr.mean(), "d_fake": sf.mean(), "grad_norm_d": gn_d, "grad_norm_g": gn_g,
                "wasserstein": sr.mean() - sf.mean() if self.loss.wasserstein else nan,
                **{c: extra.get(c, nan) for c in ("began_k", "convergence")}}
        # One .tolist() for the whole row: one host-device sync per logged step, not one per number.
        nums = torch.stack([torch.as_tensor(v, device=self.device).detach().float().reshape(())
                            for v in vals.values()]).tolist()
        row = {"sweep_id": self.sweep_id, "trial_id": self.tid, "step": self.step, **dict(zip(vals, nums))}
        for k in ("loss_d", "loss_g", "grad_norm_d", "grad_norm_g"):
            if not math.isfinite(row[k]):
                raise Diverged(self.step, k)
        return row

    def check_weights(self) -> None:
        # One sync for both models (not one per parameter); the names only when something is wrong.
        finite = torch.stack([torch.isfinite(p).all() for m in (self.G, self.D) for p in m.parameters()])
        if not bool(finite.all()):
            for name, m in (("generator weights", self.G), ("discriminator weights", self.D)):
                if not all(torch.isfinite(p).all() for p in m.parameters()):
                    raise Diverged(self.step, name)

    def checkpoint(self) -> None:
        """Metrics and checkpoint of this step, serialised now and uploaded in the background."""
        self.check_weights()
        rows, self.rows = self.rows, []
        buf = io.BytesIO()
        torch.save(self.state(), buf)  # a copy of this step's state: later steps cannot change it
        self.writer.submit(self._publish, rows, buf.getvalue(), self.step)

    def _publish(self, rows: list[dict], blob: bytes, step: int) -> None:
        self._write_rows(rows)  # metrics before the checkpoint: a resume re-logs, never loses
        self._write_checkpoint(blob, step)

    def run(self, on_progress: Callable[[int, int, float], None] | None = None,
            on_eval: Callable[["Trial"], None] | None = None, eval_every: int = 0) -> None:
        """on_eval(trial) every eval_every steps (evaluation.eval_every): off the per-step path, and it
        samples with its own z generator, so training draws the same numbers with or without it."""
        t = self.cfg.train
        t0, s0 = time.perf_counter(), self.step
        while self.step < t.steps:
            log_now = (self.step + 1) % t.log_every == 0 or self.step + 1 == t.steps
            row = self.train_step(log_now)
            if row is not None:
                self.rows.append(row)
                if on_progress:  # cheap: the actor only records the numbers
                    on_progress(self.step, t.steps, (self.step - s0) / (time.perf_counter() - t0))
            if self.step % t.checkpoint_every == 0 or self.step == t.steps:
                self.checkpoint()
            if on_eval and eval_every and self.step % eval_every == 0 and self.step < t.steps:
                on_eval(self)  # the final step is the final evaluation's
        self.writer.drain()  # the last checkpoint is in storage before the trial counts as completed

    @property
    def G_eval(self) -> torch.nn.Module:
        """The generator that evaluations and samples use: the weight average when train.g_ema is on."""
        return self.G if self.G_ema is None else self.G_ema

    @torch.no_grad()
    def sample(self, n: int, seed: int = 12345) -> np.ndarray:
        """n samples from the evaluated generator, with a fixed z seed so evaluations are comparable."""
        g_eval = self.G_eval
        g_eval.eval()
        g = torch.Generator(self.device).manual_seed(seed)
        z = torch.randn(n, self.cfg.train.z_dim, generator=g, device=self.device)
        out = g_eval(z).float().cpu().numpy()
        self.G.train()
        return out


@torch.no_grad()
def ema_update(avg: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """avg <- decay avg + (1 - decay) model, parameter by parameter; buffers (batch-norm statistics) copied."""
    torch._foreach_lerp_(list(avg.parameters()), list(model.parameters()), 1.0 - decay)
    for b_avg, b in zip(avg.buffers(), model.buffers()):
        b_avg.copy_(b)


def to_model_range(x: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float in [-1, 1] for tanh generators; float data passes through."""
    return x.float() / 127.5 - 1.0 if x.dtype == torch.uint8 else x.float()


def _grad_norm(m: torch.nn.Module) -> torch.Tensor:
    """The global L2 norm of m's gradients, as a tensor on their device (no sync here)."""
    grads = [p.grad.detach() for p in m.parameters() if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())


def trial_row(cfg: TrialConfig, sweep_id: str, status: str, steps: int, started: datetime,
              finished: datetime | None, error: str = "", device: str = "", node: str = "") -> dict:
    return {"sweep_id": sweep_id, "trial_id": cfg.trial_id, "loss": cfg.loss.name, "optimizer": cfg.optimizer.name,
            "seed": cfg.seed, "dataset": cfg.dataset.name, "model": cfg.model.name, "status": status,
            "steps": steps, "wall_seconds": ((finished or _now()) - started).total_seconds(),
            "started_at": started, "finished_at": finished, "error": error, "device": device, "node": node,
            "config_json": json.dumps(cfg.model_dump(mode="json"), sort_keys=True), "cell": cfg.cell}


def write_trial_row(storage: Storage, row: dict) -> None:
    table = pa.Table.from_pylist([row], schema=schema.TRIALS)
    storage.write_parquet(table, "sweeps", row["sweep_id"], "trials", f"{row['trial_id']}.parquet")


def run_trial(cfg: TrialConfig, storage: Storage, sweep_id: str, device: str = "cpu",
              on_progress: Callable[[int, int, float], None] | None = None, node: str = "",
              on_eval: Callable[[Trial], None] | None = None, eval_every: int = 0) -> dict:
    """Train (or resume) one trial to completion; record its status row. Returns that row."""
    started = _now()
    base = ("sweeps", sweep_id, "checkpoints", cfg.trial_id)
    storage.write_bytes(json.dumps(cfg.model_dump(mode="json"), indent=1).encode(), *base, "config.json")
    trial = None
    try:
        trial = Trial(cfg, storage, sweep_id, device)  # reads the dataset: may fail on a corrupt file
        if trial.try_resume():
            log.info("trial %s resumes at step %d", cfg.trial_id, trial.step)
        trial.drop_metrics_after(trial.step)
        write_trial_row(storage, trial_row(cfg, sweep_id, "running", trial.step, started, None, device=device,
                                           node=node))
        trial.run(on_progress, on_eval, eval_every)
        status, err = "completed", ""
    except Diverged as e:
        status, err = "diverged", str(e)
    except EarlyStopped as e:
        status, err = "stopped", str(e)
        trial.checkpoint()  # its state at the rung is kept, like its rows: a look at it needs no re-run
    except Exception as e:  # noqa: BLE001 - a trial's failure is recorded, the sweep goes on
        status, err = "failed", f"{type(e).__name__}: {e}"
    if trial is not None and status != "completed":
        try:
            trial.writer.drain()  # the uploads in flight land first, in order
        except Exception as e:  # noqa: BLE001 - the trial has failed already; say why storage did too
            err += f"; and a background write failed: {type(e).__name__}: {e}"
        trial.flush_metrics()  # keep the curve up to the failure: it is what explains it
    row = trial_row(cfg, sweep_id, status, trial.step if trial else 0, started, _now(), err, device, node)
    write_trial_row(storage, row)
    return row
