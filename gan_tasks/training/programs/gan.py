"""The unconditional GAN (program `gan`, the default): G(z) against D(x), every registered loss,
optimizer, model and trick (Goodfellow et al. 2014 and the papers of gan_tasks/methods/).

The conditional programs (conditional.py) reuse this step: it draws labels with each batch and
passes them to G and D through the `_gen` / `_score` hooks, which ignore them here.
"""
from __future__ import annotations

import copy
import math

import torch

from gan_tasks.data.datasets import dataset_path, dataset_spec, load_array
from gan_tasks.methods.losses import LOSSES
from gan_tasks.methods.models import build_models
from gan_tasks.methods.optimizers import make_optimizer
from gan_tasks.methods.tricks import (HistoricalAverage, VBNGenerator, add_minibatch_discrimination,
                                      feature_matching_loss, instance_noise, noisy_label_d_loss, pack, packed_shape)
from gan_tasks.methods.unroll import FunctionalD, unroll
from gan_tasks.training.ema import ema_update, recompute_batchnorm
from gan_tasks.training.mapped import MappedImages
from gan_tasks.training.program import Program


def to_model_range(x: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float in [-1, 1] for tanh generators; float data passes through."""
    return x.float() / 127.5 - 1.0 if x.dtype == torch.uint8 else x.float()


def grad_norm(m: torch.nn.Module) -> torch.Tensor:
    """The global L2 norm of m's gradients, as a tensor on their device (no sync here)."""
    grads = [p.grad.detach() for p in m.parameters() if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads) if grads else torch.zeros(())


class GAN(Program):
    """G, D, their optimisers, G's weight average (train.g_ema), the loss's carried state and the tricks."""

    def __init__(self, cfg, storage, device, gen):
        super().__init__(cfg, storage, device, gen)
        self.loss = LOSSES.get(cfg.loss.name)
        self.lp = cfg.loss.params
        if dataset_spec(cfg.dataset).sharded:  # data add / data upload: memory-mapped shards, gathered per batch
            self.data = MappedImages(cfg, storage, self.device)
        else:
            data = load_array(storage, dataset_path(cfg.dataset.name, cfg.dataset.params))
            self.data = to_model_range(torch.from_numpy(data)).to(self.device)
        self.step_now, self.draws = 0, 0  # the step being trained, batches drawn in it (MappedImages.indices)
        self.tricks = tr = cfg.tricks
        self.pac = tr.pac  # PacGAN: D scores groups of pac samples (tricks.pack), G is unchanged
        self.G, self.D = self.build_networks(tuple(self.data.shape[1:]))
        if tr.minibatch_discrimination:
            add_minibatch_discrimination(self.D, tr.minibatch_discrimination, tr.minibatch_kernel_dim)
        if tr.virtual_batchnorm:  # the reference batch: one minibatch of z, fixed for the whole run
            self.G = VBNGenerator(self.G, torch.randn(cfg.batch_samples, cfg.train.z_dim))
        self.G.to(self.device), self.D.to(self.device)
        # train.g_ema: an average of G's weights (Yazici et al. 2019) that evaluation and samples use,
        # its batch-norm statistics recomputed from its own outputs before it is used (training/ema.py).
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False) if cfg.train.g_ema else None
        self.ema_stats_stale = True  # G_ema's weights changed since its statistics were computed
        self.simultaneous = cfg.train.update == "simultaneous"  # checked at validation: d_steps 1, no unrolling
        o = cfg.optimizer
        self.opt_g = make_optimizer(o.name, self.G.parameters(), o.lr_g, o.params)
        self.opt_d = make_optimizer(o.name, self.D.parameters(), o.lr_d, o.params)
        self.d_steps = tr.d_steps or int(self.lp.get("d_steps", 1))
        # Loss control variables (BEGAN's k_t) live on the device: updating them never syncs.
        self.loss_state = {k: torch.tensor(v, device=self.device) for k, v in self.loss.state0.items()}
        self.hist = ([HistoricalAverage(m, tr.historical_averaging) for m in (self.G, self.D)]
                     if tr.historical_averaging else [])
        self.d_loss = self.loss.d_loss
        if tr.label_smoothing or tr.label_flip:
            self.d_loss = lambda sr, sf, p: noisy_label_d_loss(sr, sf, tr.label_smoothing, tr.label_flip, self.gen)

    def build_networks(self, shape: tuple[int, ...]) -> tuple[torch.nn.Module, torch.nn.Module]:
        c = self.cfg
        return build_models(c.model.name, shape, c.train.z_dim, c.model.params, packed_shape(shape, self.pac))

    # --- the Program interface -------------------------------------------------------------------
    def modules(self) -> dict[str, torch.nn.Module]:
        return {"G": self.G, "D": self.D}

    def state_dict(self) -> dict:
        s = {"G": self.G.state_dict(), "D": self.D.state_dict(), "opt_g": self.opt_g.state_dict(),
             "opt_d": self.opt_d.state_dict(), "loss_state": dict(self.loss_state),
             "hist": [h.state_dict() for h in self.hist]}
        if self.G_ema is not None:
            s["G_ema"] = self.G_ema.state_dict()
        return s

    def load_state_dict(self, s: dict) -> None:
        self.G.load_state_dict(s["G"]), self.D.load_state_dict(s["D"])
        if self.G_ema is not None:  # a checkpoint from before g_ema was on starts the average at G
            self.G_ema.load_state_dict(s.get("G_ema", s["G"]))
            self.ema_stats_stale = True
        self.opt_g.load_state_dict(s["opt_g"]), self.opt_d.load_state_dict(s["opt_d"])
        self.loss_state = {k: v.to(self.device) for k, v in s.get("loss_state", self.loss_state).items()}
        for h, hs in zip(self.hist, s.get("hist", [])):
            h.load_state_dict(hs)

    @property
    def G_eval(self) -> torch.nn.Module:
        """The generator that evaluations and samples use: the weight average when train.g_ema is on,
        with batch-norm statistics of its own (recomputed once after each change of its weights)."""
        if self.G_ema is None:
            return self.G
        if self.ema_stats_stale:
            recompute_batchnorm(self.G_ema, self._z_view(self.G_ema), self.cfg.train.z_dim, self.cfg.batch_samples,
                                self.device)
            self.ema_stats_stale = False
        return self.G_ema

    def _z_view(self, g: torch.nn.Module) -> torch.nn.Module:
        """g as a network of z alone (the conditional programs bind balanced labels)."""
        return g

    # --- hooks the conditional programs override ---------------------------------------------------
    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        bs = self.cfg.batch_samples  # train.batch_size samples, or groups of pac samples
        if isinstance(self.data, MappedImages) and self.data.keyed:
            idx = self.data.indices(self.step_now, self.draws, bs)
            self.draws += 1
        else:
            idx = torch.randint(len(self.data), (bs,), generator=self.gen, device=self.device)
        z = torch.randn(bs, self.cfg.train.z_dim, generator=self.gen, device=self.device)
        self.y = self._labels(idx)  # the batch's labels: G's and D's condition (None: unconditional)
        return self.data[idx], z

    def _labels(self, idx: torch.Tensor) -> torch.Tensor | None:
        return None

    def _gen(self, z: torch.Tensor) -> torch.Tensor:
        return self.G(z)

    def _score(self, d: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        return d(x)

    def _aux_d(self, d: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor | None:
        """An extra D loss term (AC-GAN's class log-likelihood); None here."""
        return None

    def _aux_g(self, d: torch.nn.Module, fake: torch.Tensor) -> torch.Tensor | None:
        return None

    # --- one step ----------------------------------------------------------------------------------
    def _d_objective(self, d: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor, p: dict) -> tuple:
        """D's loss on packed real and fake: (scores real, fake, adversarial loss, penalty, total)."""
        sr, sf = self._score(d, real), self._score(d, fake)
        loss_d = self.d_loss(sr, sf, p)
        aux = self._aux_d(d, real, fake)
        loss_d = loss_d if aux is None else loss_d + aux
        pen = self.loss.penalty(self._critic(d), real, fake.detach(), p, self.gen) if self.loss.penalty else None
        total = loss_d + pen if pen is not None else loss_d
        if self.hist and d is self.D:
            total = total + self.hist[1].penalty()
        return sr, sf, loss_d, pen, total

    def _g_objective(self, d: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor, sr: torch.Tensor, p: dict,
                     sf_g: torch.Tensor | None = None) -> tuple:
        """G's loss on packed fakes against d (feature matching: against `real`'s features); sf_g: d's
        scores of these fakes when already computed. (loss, scores or None, total with historical averaging)."""
        if self.tricks.feature_matching:
            loss_g, sf_g = feature_matching_loss(d, real, fake), None
        else:
            sf_g = self._score(d, fake) if sf_g is None else sf_g
            loss_g = self.loss.g_loss(sr.detach(), sf_g, p)
        aux = self._aux_g(d, fake)
        loss_g = loss_g if aux is None else loss_g + aux
        return loss_g, sf_g, (loss_g + self.hist[0].penalty() if self.hist else loss_g)

    def _after_d(self, d: torch.nn.Module, p: dict) -> None:
        if self.hist and d is self.D:
            self.hist[1].update()
        if self.loss.after_d_step:
            self.loss.after_d_step(d, p)

    def _d_step(self, p: dict, noise: float, log_now: bool, d: torch.nn.Module | None = None,
                opt: torch.optim.Optimizer | None = None) -> tuple:
        """One discriminator update (on a look-ahead copy when d/opt are given: unrolled GAN)."""
        d, opt = d or self.D, opt or self.opt_d
        real, z = self._batch()
        fake = self._gen(z).detach()
        real, fake = instance_noise(real, noise, self.gen), instance_noise(fake, noise, self.gen)
        # Packed apart, so each group is all real or all fake; penalties see the packed inputs too.
        real, fake = pack(real, self.pac), pack(fake, self.pac)
        sr, sf, loss_d, pen, total = self._d_objective(d, real, fake, p)
        opt.zero_grad(set_to_none=True)
        total.backward()
        gn_d = grad_norm(d) if log_now else None
        opt.step()
        self._after_d(d, p)
        return real, sr, sf, loss_d, pen, gn_d

    def _simultaneous_step(self, p: dict, noise: float, log_now: bool) -> tuple:
        """train.update simultaneous: D's and G's losses from one batch and one z, each gradient taken at
        the parameters before either update, then both optimisers step (PacGAN's code, ALI's algorithm)."""
        real, z = self._batch()
        fake = self._gen(z)  # not detached: the G loss goes through these D scores too
        real, fake = instance_noise(real, noise, self.gen), instance_noise(fake, noise, self.gen)
        real, fake = pack(real, self.pac), pack(fake, self.pac)
        sr, sf, loss_d, pen, total_d = self._d_objective(self.D, real, fake, p)
        loss_g, sf_g, total_g = self._g_objective(self.D, real, fake, sr, p, sf)
        self.opt_d.zero_grad(set_to_none=True), self.opt_g.zero_grad(set_to_none=True)
        total_d.backward(inputs=list(self.D.parameters()), retain_graph=True)  # D's gradient of D's loss only
        total_g.backward(inputs=list(self.G.parameters()))  # and G's of G's
        gn_d, gn_g = (grad_norm(self.D), grad_norm(self.G)) if log_now else (None, None)
        self.opt_d.step(), self.opt_g.step()
        self._after_d(self.D, p)
        if self.hist:
            self.hist[0].update()
        return sr, sf, loss_d, pen, gn_d, loss_g, sf_g, gn_g

    def _critic(self, d: torch.nn.Module) -> torch.nn.Module:
        """D as a function of x alone, for the gradient penalties (conditional: the batch's labels bound)."""
        return d

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

    def _g_step(self, p: dict, noise: float, log_now: bool, real: torch.Tensor, sr: torch.Tensor) -> tuple:
        """One generator update against D as the D steps left it (or the unrolled look-ahead)."""
        d_g = self._unrolled_d(p, noise) if self.tricks.unrolled_steps else self.D
        _, z = self._batch()
        fake = pack(instance_noise(self._gen(z), noise, self.gen), self.pac)
        # feature matching: `real` is the last D step's batch, packed as `fake` is
        loss_g, sf_g, total = self._g_objective(d_g, real, fake, sr, p)
        self.opt_g.zero_grad(set_to_none=True)
        total.backward()
        gn_g = grad_norm(self.G) if log_now else None
        self.opt_g.step()
        if self.hist:
            self.hist[0].update()
        return loss_g, sf_g, gn_g

    def train_step(self, step: int, log_now: bool) -> dict[str, torch.Tensor] | None:
        self.step_now, self.draws = step, 0
        p = {**self.lp, **self.loss_state} if self.loss_state else self.lp
        noise = self.tricks.instance_noise * max(0.0, 1.0 - step / self.cfg.train.steps)  # annealed to 0
        if self.simultaneous:
            sr, sf, loss_d, pen, gn_d, loss_g, sf_g, gn_g = self._simultaneous_step(p, noise, log_now)
        else:
            for _ in range(self.d_steps):
                real, sr, sf, loss_d, pen, gn_d = self._d_step(p, noise, log_now)
            loss_g, sf_g, gn_g = self._g_step(p, noise, log_now, real, sr)
        if self.G_ema is not None:
            ema_update(self.G_ema, self.G, self.cfg.train.g_ema)
            self.ema_stats_stale = True
        if self.loss.update_state:
            self.loss_state = self.loss.update_state(self.loss_state, sr, sf_g, p)
        if not log_now:
            return None
        extra = self.loss.monitor(self.loss_state, sr, sf_g, p) if self.loss.monitor else {}
        nan = torch.full((), math.nan, device=self.device)
        return {"loss_d": loss_d, "loss_g": loss_g, "penalty": nan if pen is None else pen,
                "d_real": sr.mean(), "d_fake": sf.mean(), "grad_norm_d": gn_d, "grad_norm_g": gn_g,
                "wasserstein": sr.mean() - sf.mean() if self.loss.wasserstein else nan,
                **{c: extra[c] for c in ("began_k", "convergence") if c in extra}}
