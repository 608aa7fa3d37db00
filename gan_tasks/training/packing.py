"""Seed-packing: N seeds of one (loss, optimizer) cell trained in one process as one stacked model.

The N generators (and discriminators) are stacked with torch.func.stack_module_state: every
parameter gets a leading seed axis, forwards run through torch.func.vmap(functional_call), and a
single optimiser steps the stacked tensors. The seeds stay independent: each one's loss depends
only on its own slice, so the gradient of the summed loss is each seed's own gradient, and the
element-wise optimisers (Adam, RMSProp, SGD, optimistic Adam/OMD) update each slice as the
unpacked optimiser would.

Per seed, the RNG layout is train.Trial's: torch.manual_seed(seed) before build_models, then a
torch.Generator(seed) drawing (batch indices, z) for every D step and the G step's z. So a packed
seed starts from the same weights and sees the same batches as its unpacked trial; what differs
is only the float rounding of batched matmuls (bmm) against plain ones, ~1e-7 per step, which
training amplifies slowly: tests compare to 1e-4 after tens of steps.

Each seed writes its own metrics rows, trial row and checkpoints in train.Trial's format (its
slice of the weights and optimiser state), so evaluation, reports and resume see ordinary trials; a group
resumes from its seeds' newest common checkpoint and checkpoints at the next step boundary after a
preemption notice (pack_run.py).
"""
from __future__ import annotations

import copy
import io
import math
import time
from typing import TYPE_CHECKING, Callable

import pyarrow as pa
import torch
from torch.func import functional_call, stack_module_state, vmap

from gan_tasks.data import schema
from gan_tasks.methods.losses import LOSSES
from gan_tasks.methods.tricks import pack
from gan_tasks.training import preempt

if TYPE_CHECKING:
    from gan_tasks.config import TrialConfig
    from gan_tasks.data.storage import Storage


class _Stack:
    """N copies of one architecture as stacked parameters, called through vmap."""

    def __init__(self, modules: list[torch.nn.Module]):
        if any(True for m in modules for _ in m.buffers()):
            raise ValueError("pack_seeds > 1 needs models without batch-norm buffers (e.g. model: mlp)")
        self.params, _ = stack_module_state(modules)
        self.base = copy.deepcopy(modules[0]).to("meta")
        self.names = list(self.params)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        f = lambda p, xi: functional_call(self.base, p, (xi,))  # noqa: E731
        return vmap(f)(self.params, x)

    def seed_state(self, i: int) -> dict:
        return {k: v[i].detach().clone() for k, v in self.params.items()}

    def grad_norms(self) -> torch.Tensor:
        g = [p.grad.flatten(1) for p in self.params.values() if p.grad is not None]
        return torch.cat(g, 1).norm(dim=1)


def _slice_opt_state(opt: torch.optim.Optimizer, names: list[str], i: int) -> dict:
    """Seed i's optimiser state_dict, as a plain per-seed optimiser would have it."""
    sd = opt.state_dict()
    params = list(opt.param_groups[0]["params"])
    state = {}
    for idx, st in sd["state"].items():
        full = params[idx].dim()
        state[idx] = {k: (v[i].clone() if torch.is_tensor(v) and v.dim() == full else v) for k, v in st.items()}
    return {"state": state, "param_groups": sd["param_groups"]}


def _stack_opt_state(opt: torch.optim.Optimizer, per_seed: list[dict]) -> dict:
    """The stacked optimiser's state_dict from its seeds' (_slice_opt_state's inverse)."""
    params = list(opt.param_groups[0]["params"])
    state = {}
    for idx, st in per_seed[0]["state"].items():
        seed_shape = params[idx].shape[1:]
        state[idx] = {k: (torch.stack([sd["state"][idx][k] for sd in per_seed]).to(params[idx].device)
                          if torch.is_tensor(v) and k != "step" and v.shape == seed_shape else v)
                      for k, v in st.items()}
    return {"state": state, "param_groups": per_seed[0]["param_groups"]}


class PackedTrials:
    """Seeds of one cell (same everything but the seed) trained together."""

    def __init__(self, cfgs: list["TrialConfig"], storage: "Storage", sweep_id: str, device: str = "cpu"):
        from gan_tasks.data.datasets import dataset_path, dataset_spec, load_array
        from gan_tasks.data.userdata import open_split
        from gan_tasks.methods.models import build_models
        from gan_tasks.methods.optimizers import make_optimizer
        from gan_tasks.training.programs.gan import to_model_range
        from gan_tasks.methods.tricks import packed_shape

        cell = {c.model_dump_json(exclude={"seed"}) for c in cfgs}
        if len(cell) != 1:
            raise ValueError("PackedTrials takes the seeds of one (loss, optimizer) cell only")
        c0 = cfgs[0]
        self.cfgs, self.storage, self.sweep_id, self.device = cfgs, storage, sweep_id, torch.device(device)
        self.loss, self.lp = LOSSES.get(c0.loss.name), c0.loss.params
        if dataset_spec(c0.dataset).sharded:  # a built-in upload (data add is not packable): read whole
            data = open_split(storage, c0.dataset.name, None)[0].array()
        else:
            data = load_array(storage, dataset_path(c0.dataset.name, c0.dataset.params))
        self.data = to_model_range(torch.from_numpy(data)).to(self.device)
        gs, ds = [], []
        self.pac = c0.tricks.pac  # PacGAN packing (tricks.pack) inside each seed's batch
        shape = tuple(self.data.shape[1:])
        for c in cfgs:
            torch.manual_seed(c.seed)  # train.Trial's init stream
            g, d = build_models(c.model.name, shape, c.train.z_dim, c.model.params, packed_shape(shape, self.pac))
            gs.append(g.to(self.device)), ds.append(d.to(self.device))
        self.G, self.D = _Stack(gs), _Stack(ds)
        # train.g_ema: the stacked average of each seed's G weights, as train.Trial keeps one per trial
        self.ema = c0.train.g_ema
        self.G_ema = {k: v.detach().clone() for k, v in self.G.params.items()} if self.ema else None
        o = c0.optimizer
        self.opt_g = make_optimizer(o.name, self.G.params.values(), o.lr_g, o.params)
        self.opt_d = make_optimizer(o.name, self.D.params.values(), o.lr_d, o.params)
        self.gens = [torch.Generator(self.device).manual_seed(c.seed) for c in cfgs]
        self.step = 0
        self.diverged: dict[int, str] = {}  # seed index -> error; it trains on in the stack, unlogged
        self.rows: list[dict] = []

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        t = self.cfgs[0].train
        real, zs = [], []
        bs = self.cfgs[0].batch_samples  # train.batch_size samples, or groups of pac samples
        for g in self.gens:  # per seed, the same draws in the same order as train.Trial._batch
            idx = torch.randint(len(self.data), (bs,), generator=g, device=self.device)
            zs.append(torch.randn(bs, t.z_dim, generator=g, device=self.device))
            real.append(self.data[idx])
        return torch.stack(real), torch.stack(zs)

    def train_step(self, log_now: bool) -> None:
        per_seed = lambda fn: vmap(lambda a, b: fn(a, b, self.lp))  # noqa: E731
        if self.cfgs[0].train.update == "simultaneous":
            return self._simultaneous_step(log_now, per_seed)
        for _ in range(int(self.lp.get("d_steps", 1))):
            real, z = self._batch()
            fake = self.G(z).detach()
            sr, sf = self.D(pack(real, self.pac, lead=1)), self.D(pack(fake, self.pac, lead=1))
            loss_d = per_seed(self.loss.d_loss)(sr, sf)  # [N]: seed i's loss depends on slice i only
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.sum().backward()
            gn_d = self.D.grad_norms() if log_now else None
            self.opt_d.step()
        _, z = self._batch()
        sf_g = self.D(pack(self.G(z), self.pac, lead=1))
        loss_g = per_seed(self.loss.g_loss)(sr.detach(), sf_g)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.sum().backward()
        gn_g = self.G.grad_norms() if log_now else None
        self.opt_g.step()
        self._end_step(log_now, loss_d, loss_g, sr, sf, gn_d, gn_g)

    def _simultaneous_step(self, log_now: bool, per_seed: Callable) -> None:
        """train.update simultaneous, as the GAN program's: one batch, both gradients at the same parameters."""
        real, z = self._batch()
        fake = self.G(z)
        sr, sf = self.D(pack(real, self.pac, lead=1)), self.D(pack(fake, self.pac, lead=1))
        loss_d, loss_g = per_seed(self.loss.d_loss)(sr, sf), per_seed(self.loss.g_loss)(sr.detach(), sf)
        self.opt_d.zero_grad(set_to_none=True), self.opt_g.zero_grad(set_to_none=True)
        loss_d.sum().backward(inputs=list(self.D.params.values()), retain_graph=True)
        loss_g.sum().backward(inputs=list(self.G.params.values()))
        gn_d, gn_g = (self.D.grad_norms(), self.G.grad_norms()) if log_now else (None, None)
        self.opt_d.step(), self.opt_g.step()
        self._end_step(log_now, loss_d, loss_g, sr, sf, gn_d, gn_g)

    def _end_step(self, log_now: bool, *logged) -> None:
        if self.G_ema is not None:
            with torch.no_grad():
                torch._foreach_lerp_(list(self.G_ema.values()), list(self.G.params.values()), 1.0 - self.ema)
        self.step += 1
        if log_now:
            self._log(*logged)

    def _log(self, loss_d, loss_g, sr, sf, gn_d, gn_g) -> None:
        vals = torch.stack([loss_d, loss_g, sr.flatten(1).mean(1), sf.flatten(1).mean(1), gn_d, gn_g]).T.tolist()
        for i, (ld, lg, dr, df, nd, ng) in enumerate(vals):  # one .tolist(): one device sync per log step
            if i in self.diverged:
                continue
            row = {"sweep_id": self.sweep_id, "trial_id": self.cfgs[i].trial_id, "step": self.step,
                   "loss_d": ld, "loss_g": lg, "penalty": math.nan, "d_real": dr, "d_fake": df,
                   "grad_norm_d": nd, "grad_norm_g": ng,
                   "wasserstein": dr - df if self.loss.wasserstein else math.nan}
            bad = [k for k in ("loss_d", "loss_g", "grad_norm_d", "grad_norm_g") if not math.isfinite(row[k])]
            if bad:
                self.diverged[i] = f"non-finite {bad[0]} at step {self.step}"
            self.rows.append(row)

    def seed_state(self, i: int) -> dict:
        """Seed i's checkpoint in train.Trial's format."""
        s = {"step": self.step, "G": self.G.seed_state(i), "D": self.D.seed_state(i),
             "opt_g": _slice_opt_state(self.opt_g, self.G.names, i),
             "opt_d": _slice_opt_state(self.opt_d, self.D.names, i),
             "rng_torch": torch.get_rng_state(), "rng_gen": self.gens[i].get_state()}
        if self.G_ema is not None:
            s["G_ema"] = {k: v[i].clone() for k, v in self.G_ema.items()}
        return s

    def load_seed_states(self, states: list[dict]) -> None:
        """seed_state's inverse: the group at the step of these checkpoints, one per seed (train.Trial's
        format: an unpacked trial's checkpoint loads too)."""
        with torch.no_grad():
            for net, key in ((self.G, "G"), (self.D, "D")):
                for k, v in net.params.items():
                    v.copy_(torch.stack([s[key][k] for s in states]))
            if self.G_ema is not None:  # a checkpoint from before g_ema was on starts the average at G
                self.G_ema = {k: torch.stack([s.get("G_ema", s["G"])[k] for s in states]).to(self.device)
                              for k in self.G_ema}
        self.opt_g.load_state_dict(_stack_opt_state(self.opt_g, [s["opt_g"] for s in states]))
        self.opt_d.load_state_dict(_stack_opt_state(self.opt_d, [s["opt_d"] for s in states]))
        torch.set_rng_state(states[0]["rng_torch"].cpu())
        for g, s in zip(self.gens, states):
            g.set_state(s["rng_gen"].cpu())
        self.step = int(states[0]["step"])

    def checkpoint(self) -> None:
        """Every live seed's checkpoint of this step, then the old ones pruned: a kill between two seeds'
        writes leaves the previous step complete for all of them (pack_run resumes the newest common one)."""
        dirs = [("sweeps", self.sweep_id, "checkpoints", c.trial_id) for c in self.cfgs]
        live = [i for i in range(len(self.cfgs)) if i not in self.diverged]
        for i in live:
            buf = io.BytesIO()
            torch.save(self.seed_state(i), buf)
            self.storage.write_bytes(buf.getvalue(), *dirs[i], f"step-{self.step:09d}.pt")
        for i in live:
            old = [n for n in self.storage.ls(*dirs[i]) if n.startswith("step-") and n.endswith(".pt")]
            for name in old[: -self.cfgs[i].train.keep_checkpoints]:
                self.storage.rm(*dirs[i], name)

    def flush_metrics(self) -> None:
        for c in self.cfgs:
            rows = [r for r in self.rows if r["trial_id"] == c.trial_id]
            if rows:
                self.storage.write_parquet(pa.Table.from_pylist(rows, schema=schema.METRICS), "sweeps",
                                           self.sweep_id, "metrics", f"{c.trial_id}-{rows[0]['step']:09d}.parquet")
        self.rows = []

    def run(self, on_progress: Callable[[int, int, float], None] | None = None,
            on_diverged: Callable[[int], None] | None = None) -> None:
        """From self.step to train.steps. on_diverged(i) once seed i has diverged, its metric rows
        written; a preemption notice: Preempted at the next step boundary (the caller checkpoints)."""
        t = self.cfgs[0].train
        t0, s0 = time.perf_counter(), self.step
        while self.step < t.steps and len(self.diverged) < len(self.cfgs):
            log_now = (self.step + 1) % t.log_every == 0 or self.step + 1 == t.steps
            known = set(self.diverged)
            self.train_step(log_now)
            if log_now and on_progress:
                on_progress(self.step, t.steps, (self.step - s0) / (time.perf_counter() - t0))
            if on_diverged and set(self.diverged) - known:
                self.flush_metrics()  # its rows up to the divergence: no later resume logs them again
                for i in sorted(set(self.diverged) - known):
                    on_diverged(i)
            if self.step % t.checkpoint_every == 0 or self.step == t.steps:
                self.flush_metrics()
                self.checkpoint()
            if preempt.requested() and self.step < t.steps and len(self.diverged) < len(self.cfgs):
                raise preempt.Preempted(self.step)
