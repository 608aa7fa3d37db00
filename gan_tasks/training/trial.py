"""One trial: train a program (the GAN by default), checkpoint, log metrics to Parquet, resume from the latest checkpoint.

Plain PyTorch: no Prefect, no Ray. `run_trial` is what a Ray actor calls; it can also be called
from a notebook. Metrics are buffered in memory and flushed to storage with each checkpoint,
so storage writes never sit on the per-step hot path.
"""
from __future__ import annotations

import io
import json
import logging
import math
import time
from typing import Callable

import numpy as np
import pyarrow as pa
import torch

from gan_tasks.config import TrialConfig
from gan_tasks.data import schema
from gan_tasks.data.storage import BackgroundWriter, Storage
from gan_tasks.methods.programs import PROGRAMS
from gan_tasks.training import preempt
from gan_tasks.training.program import Program
from gan_tasks.training.rows import history, now, started_on, trial_row, write_trial_row

log = logging.getLogger("gansweep.train")


class Paused(RuntimeError):
    """Raised by the evaluation hook at a rung of `early_stop: {decide: cohort}`: the trial checkpoints and
    waits (status `paused`) until the flow has decided its cohort's rung (flows/run/rungs.py)."""


class EarlyStopped(RuntimeError):
    """Raised by the evaluation hook at a rung where the trial is not among the best (early_stop)."""


class Diverged(RuntimeError):
    def __init__(self, step: int, what: str):
        super().__init__(f"non-finite {what} at step {step}")
        self.step = step


class Trial:
    """One trial on one device: its program (gan_tasks/training/program.py), the step counter, the
    random streams, metric buffering and checkpoints. Program-agnostic: the program's attributes
    (trial.G, trial.D, trial.opt_g, ...) read through as the trial's own."""

    def __init__(self, cfg: TrialConfig, storage: Storage, sweep_id: str, device: str = "cpu"):
        self.cfg, self.storage, self.sweep_id, self.device = cfg, storage, sweep_id, torch.device(device)
        self.tid = cfg.trial_id
        torch.manual_seed(cfg.seed)  # model init and dropout draw from the global RNG
        # Batches and z come from a generator of our own, so their stream is checkpointed exactly.
        self.gen = torch.Generator(self.device).manual_seed(cfg.seed)
        self.program: Program = PROGRAMS.get(cfg.program).build(cfg, storage, self.device, self.gen)
        self.step = 0
        self.rows: list[dict] = []
        self.writer = BackgroundWriter()  # checkpoint and metric uploads run beside training

    def __getattr__(self, name: str):
        if name == "program":  # not built yet (a failed __init__): no recursion
            raise AttributeError(name)
        return getattr(self.program, name)

    # --- checkpoints ---------------------------------------------------------------------------
    def _ckpt_dir(self) -> tuple[str, ...]:
        return ("sweeps", self.sweep_id, "checkpoints", self.tid)

    def state(self) -> dict:
        s = {"step": self.step, **self.program.state_dict(), "rng_torch": torch.get_rng_state(),
             "rng_gen": self.gen.get_state()}
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
        for name in reversed(checkpoint_names(self.storage, self.sweep_id, self.tid)):
            try:
                s = read_checkpoint(self.storage, self.sweep_id, self.tid, name, self.device)
            except Exception as e:  # noqa: BLE001 - any unreadable file means: try the previous one
                log.warning("checkpoint %s of trial %s is unreadable (%s); falling back", name, self.tid, e)
                continue
            self.program.load_state_dict(s)
            torch.set_rng_state(s["rng_torch"].cpu())
            self.gen.set_state(s["rng_gen"].cpu())
            if "rng_cuda" in s and self.device.type == "cuda":
                torch.cuda.set_rng_state(s["rng_cuda"].cpu(), self.device)
            self.step = int(s["step"])
            return True
        return False

    # --- metrics -------------------------------------------------------------------------------
    def _metrics_dir(self) -> tuple[str, ...]:
        return ("sweeps", self.sweep_id, "metrics")

    def drop_metrics_after(self, step: int) -> None:
        drop_metrics_after(self.storage, self.sweep_id, self.tid, step)

    def flush_metrics(self) -> None:
        rows, self.rows = self.rows, []
        self._write_rows(rows)

    def _write_rows(self, rows: list[dict]) -> None:
        if rows:
            table = pa.Table.from_pylist(rows, schema=schema.METRICS)
            self.storage.write_parquet(table, *self._metrics_dir(), f"{self.tid}-{rows[0]['step']:09d}.parquet")

    # --- training ------------------------------------------------------------------------------
    def train_step(self, log_now: bool) -> dict | None:
        vals = self.program.train_step(self.step, log_now)
        self.step += 1
        if vals is None:
            return None
        nan = torch.full((), math.nan, device=self.device)
        cols = [c for c in schema.METRICS.names if c not in ("sweep_id", "trial_id", "step")]
        # One .tolist() for the whole row: one host-device sync per logged step, not one per number.
        nums = torch.stack([torch.as_tensor(vals.get(c, nan), device=self.device).detach().float().reshape(())
                            for c in cols]).tolist()
        row = {"sweep_id": self.sweep_id, "trial_id": self.tid, "step": self.step, **dict(zip(cols, nums))}
        for k in ("loss_d", "loss_g", "grad_norm_d", "grad_norm_g"):
            if not math.isfinite(row[k]):
                raise Diverged(self.step, k)
        return row

    def check_weights(self) -> None:
        # One sync for every network (not one per parameter); the names only when something is wrong.
        mods = self.program.modules()
        finite = torch.stack([torch.isfinite(p).all() for m in mods.values() for p in m.parameters()])
        if not bool(finite.all()):
            for name, m in mods.items():
                if not all(torch.isfinite(p).all() for p in m.parameters()):
                    raise Diverged(self.step, f"{_WHAT.get(name, name)} weights")

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
            if preempt.requested() and self.step < t.steps:  # the node's SIGTERM: checkpoint here and leave
                raise preempt.Preempted(self.step)
        self.writer.drain()  # the last checkpoint is in storage before the trial counts as completed

    @property
    def G_eval(self) -> torch.nn.Module:
        """The network evaluation samples through (the program's; the weight average when train.g_ema is on)."""
        return self.program.G_eval

    def sample(self, n: int, seed: int = 12345) -> np.ndarray:
        """n samples from the evaluated generator, with a fixed z seed so evaluations are comparable."""
        return self.program.sample(n, seed)


def checkpoint_names(storage: Storage, sweep_id: str, tid: str) -> list[str]:
    """A trial's checkpoint files, oldest first."""
    return [n for n in storage.ls("sweeps", sweep_id, "checkpoints", tid) if n.startswith("step-") and n.endswith(".pt")]


def read_checkpoint(storage: Storage, sweep_id: str, tid: str, name: str, device: torch.device) -> dict:
    return torch.load(io.BytesIO(storage.read_bytes("sweeps", sweep_id, "checkpoints", tid, name)),
                      map_location=device, weights_only=True)


def drop_metrics_after(storage: Storage, sweep_id: str, tid: str, step: int) -> None:
    """Rows logged after the checkpoint a trial resumes from are logged again: drop them first."""
    d = ("sweeps", sweep_id, "metrics")
    storage.remove_partials(*d, prefix=f"{tid}-")  # a killed run's half-writes
    for name in storage.ls(*d, prefix=f"{tid}-"):  # this trial's, not the sweep's
        if int(name.rsplit("-", 1)[1].split(".")[0]) > step:
            storage.rm(*d, name)


# How a diverged network is named in the trial's error (others by their modules() name).
_WHAT = {"G": "generator", "D": "discriminator"}


def run_trial(cfg: TrialConfig, storage: Storage, sweep_id: str, device: str = "cpu",
              on_progress: Callable[[int, int, float], None] | None = None, node: str = "",
              on_eval: Callable[[Trial], None] | None = None, eval_every: int = 0) -> dict:
    """Train (or resume) one trial to completion; record its status row. Returns that row."""
    started, hist = now(), history(storage, sweep_id, cfg.trial_id)  # earlier starts: nodes, steps, preemptions
    base = ("sweeps", sweep_id, "checkpoints", cfg.trial_id)
    storage.write_bytes(json.dumps(cfg.model_dump(mode="json"), indent=1).encode(), *base, "config.json")
    trial = None
    try:
        trial = Trial(cfg, storage, sweep_id, device)  # reads the dataset: may fail on a corrupt file
        if trial.try_resume():
            log.info("trial %s resumes at step %d", cfg.trial_id, trial.step)
        trial.drop_metrics_after(trial.step)
        hist = started_on(hist, node, trial.step)
        write_trial_row(storage, trial_row(cfg, sweep_id, "running", trial.step, started, None, device=device,
                                           node=node, history=hist))
        trial.run(on_progress, on_eval, eval_every)
        status, err = "completed", ""
    except Diverged as e:
        status, err = "diverged", str(e)
    except Paused as e:
        status, err = "paused", str(e)
        trial.checkpoint()  # resumed from here if its cohort lets it go on
    except preempt.Preempted as e:
        status, err = "preempted", str(e)
        hist = {**hist, "preemptions": hist["preemptions"] + 1}
        trial.checkpoint()  # this step's metrics and state: the resumed trial loses no completed step
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
    if status == "preempted":
        err += f"; checkpointed {preempt.since_notice():.2f} s after the notice"
    row = trial_row(cfg, sweep_id, status, trial.step if trial else 0, started, now(), err, device, node, hist)
    write_trial_row(storage, row)
    return row
