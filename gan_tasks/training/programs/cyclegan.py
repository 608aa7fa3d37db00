"""The CycleGAN program (`program: cyclegan`): two generators G: A -> B, F: B -> A and two
discriminators D_A, D_B on an unpaired two-domain dataset (gan_tasks/methods/cyclegan.py holds the
networks, the cycle / identity losses, the pool of past fakes and one step; gan_tasks/evaluation/
cyclegan.py the per-direction metrics and the report's grid). The model `cyclegan-resnet` carries the
networks' sizes and the objective's settings (cycle, identity, pool).
"""
from __future__ import annotations

import copy
import itertools

import numpy as np
import torch
from torch import Tensor

from gan_tasks.data.datasets import dataset_path, load_array
from gan_tasks.methods.cyclegan import CycleParams, CycleStep, build_cyclegan, grid
from gan_tasks.methods.losses import LOSSES
from gan_tasks.methods.optimizers import make_optimizer
from gan_tasks.training.program import Program
from gan_tasks.training.ema import ema_update
from gan_tasks.training.programs.gan import grad_norm, to_model_range

NETS = ("width", "blocks", "d_width")  # the model params that size the networks; the rest are CycleParams


class CycleGAN(Program):
    """The four networks, two optimisers (G and F together, D_A and D_B together, as the authors'
    code), the two pools, the generators' weight averages (train.g_ema) and the untrained generators
    (the evaluation's baseline: the trial's own initialisation)."""

    def __init__(self, cfg, storage, device, gen):
        super().__init__(cfg, storage, device, gen)
        ds = cfg.dataset.name
        self.a, self.b = (to_model_range(torch.from_numpy(load_array(storage, dataset_path(ds, {}, f"train_{d}"))))
                          .to(self.device) for d in "ab")
        mp = cfg.model.params
        self.nets = {k: m.to(self.device) for k, m in
                     build_cyclegan(tuple(self.a.shape[1:]), **{k: mp[k] for k in NETS}).items()}
        self.untrained = {k: copy.deepcopy(self.nets[k]).requires_grad_(False) for k in ("G", "F")}
        o = cfg.optimizer
        chain = lambda *ks: itertools.chain(*(self.nets[k].parameters() for k in ks))  # noqa: E731
        self.opt_g = make_optimizer(o.name, chain("G", "F"), o.lr_g, o.params)
        self.opt_d = make_optimizer(o.name, chain("D_A", "D_B"), o.lr_d, o.params)
        d_steps = cfg.tricks.d_steps or int(cfg.loss.params.get("d_steps", 1))
        cp = CycleParams(**{k: v for k, v in mp.items() if k not in NETS})
        self.step_fn = CycleStep(self.nets, self.opt_g, self.opt_d, LOSSES.get(cfg.loss.name), cfg.loss.params, cp,
                                 d_steps, gen)
        # train.g_ema: weight averages of both generators, which evaluation and the report's grid use.
        self.ema = {k: copy.deepcopy(self.nets[k]).requires_grad_(False) for k in ("G", "F")} if cfg.train.g_ema else {}

    def batch(self) -> tuple[Tensor, Tensor]:
        """Independent draws from the two domains: nothing pairs a[i] with b[i]."""
        bs = self.cfg.train.batch_size
        ia = torch.randint(len(self.a), (bs,), generator=self.gen, device=self.device)
        ib = torch.randint(len(self.b), (bs,), generator=self.gen, device=self.device)
        return self.a[ia], self.b[ib]

    def modules(self) -> dict[str, torch.nn.Module]:
        return self.nets

    def state_dict(self) -> dict:
        return {**{k: m.state_dict() for k, m in self.nets.items()},
                **{f"{k}_ema": m.state_dict() for k, m in self.ema.items()},
                "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "pools": self.step_fn.state_dict()}

    def load_state_dict(self, s: dict) -> None:
        for k, m in self.nets.items():
            m.load_state_dict(s[k])
        for k, m in self.ema.items():  # a checkpoint from before g_ema was on starts the average at the net
            m.load_state_dict(s.get(f"{k}_ema", s[k]))
        self.opt_g.load_state_dict(s["opt_g"]), self.opt_d.load_state_dict(s["opt_d"])
        self.step_fn.load_state_dict(s["pools"])

    def train_step(self, step: int, log_now: bool) -> dict[str, Tensor] | None:
        out = self.step_fn(*self.batch(), self.batch)
        for k, avg in self.ema.items():
            ema_update(avg, self.nets[k], self.cfg.train.g_ema)
        if not log_now:
            return None
        n = self.nets  # gradients of this step's updates, both networks of a side together
        norm = lambda *ks: torch.linalg.vector_norm(torch.stack([grad_norm(n[k]).to(self.device) for k in ks]))  # noqa
        return {**{k: out[k] for k in ("loss_d", "loss_g", "penalty", "d_real", "d_fake", "cycle", "identity")},
                "grad_norm_d": norm("D_A", "D_B"), "grad_norm_g": norm("G", "F")}

    @property
    def evaluated(self) -> dict[str, torch.nn.Module]:
        """The generators that evaluations and samples use: the averages when train.g_ema is on."""
        return {k: self.ema.get(k, self.nets[k]) for k in ("G", "F")}

    @property
    def G_eval(self) -> torch.nn.Module:
        """The A -> B generator (it maps images, not z: evaluation goes through PROGRAM_METRICS)."""
        return self.evaluated["G"]

    def report_samples(self) -> np.ndarray:
        """Rows a, G(a), F(G(a)), b, F(b), G(F(b)) of the first 8 test images of each domain, flattened
        to 48 images (sample_columns 8)."""
        ds, g = self.cfg.dataset.name, self.evaluated
        a, b = (torch.from_numpy(load_array(self.storage, dataset_path(ds, {}, f"test_{d}"))[:8]).to(self.device)
                for d in "ab")
        pic = grid(g["G"], g["F"], a, b)
        return pic.reshape(-1, *pic.shape[2:])
