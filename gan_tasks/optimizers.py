"""Optimizers by name. Each entry builds a torch.optim.Optimizer from params and a learning rate.

Defaults follow the papers in ../shared/seeds: an entry's `defaults` are merged under the
sweep YAML's `params`, so the YAML only states what it changes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch

from gan_tasks.params import Num, Seq, Spec
from gan_tasks.registry import Registry, for_kind


@dataclass(frozen=True)
class OptimizerSpec:
    build: Callable[..., torch.optim.Optimizer]  # (params, lr=..., **defaults) -> Optimizer
    lr: float  # the images default; by_kind may give another per kind of data
    defaults: dict[str, Any] = field(default_factory=dict)
    by_kind: dict[str, dict[str, Any]] = field(default_factory=dict)  # {"points": {"lr": ..., "betas": ...}}

    def lr_for(self, kind: str) -> float:
        return self.by_kind.get(kind, {}).get("lr", self.lr)

    def defaults_for(self, kind: str) -> dict[str, Any]:
        return {k: v for k, v in for_kind(self.defaults, self.by_kind, kind).items() if k != "lr"}

    @property
    def schema(self) -> dict[str, Spec]:
        """Type and range of each of its parameters (both kinds' keys), from PARAMS; lr is lr_g / lr_d."""
        return {k: PARAMS[k] for k in self.defaults_for("points") | self.defaults_for("images")}


OPTIMIZERS: Registry[OptimizerSpec] = Registry("optimizer")

# Type and range of every optimizer parameter (gan_tasks/params.py); an entry's schema is its keys' rows.
PARAMS: dict[str, Spec] = {
    "momentum": Num(float, 0, 1, hi_open=True),  # a decay: at 1 the velocity never forgets
    "betas": Seq(Num(float, 0, 1, hi_open=True), 2),  # Adam's decays (beta1, beta2), each in [0, 1)
    "eps": Num(float, 0, 1, lo_open=True),  # the denominator's floor: 1e-8; above 1 it is the step size
}


def make_optimizer(name: str, params: Iterable, lr: float | None, extra: dict) -> torch.optim.Optimizer:
    spec = OPTIMIZERS.get(name)
    return spec.build(params, lr=spec.lr if lr is None else lr, **{**spec.defaults, **extra})


# Momentum 0.5 as in Goodfellow et al. 2014's released code ("we used momentum", seed 001);
# lr 0.01 is that code's starting rate. Points: the same; measured, neither 0.01 nor 0.05 forms the
# ring within 3,000 steps (non-saturating: 0-7 modes at < 1 % high quality); adaptive steps do.
OPTIMIZERS.add("sgd", OptimizerSpec(torch.optim.SGD, 0.01, {"momentum": 0.5}),
               "SGD with momentum (original GAN paper)")
# lr 2e-4, beta1 0.5: DCGAN (Radford 2015), seed 004 Table 1. On 2-D mixtures lr 1e-3, measured:
# at 2e-4 no loss covers 6 of 8 ring modes at 30 % high quality within 3,000 steps (configs/defaults.md).
OPTIMIZERS.add("adam", OptimizerSpec(torch.optim.Adam, 2e-4, {"betas": (0.5, 0.999)}, {"points": {"lr": 1e-3}}),
               "Adam, beta1 0.5; lr 2e-4 images (DCGAN, Radford 2015), 1e-3 points (measured)")
# lr 5e-5: WGAN (Arjovsky 2017), seed 004 Table 1; momentum-free because WGAN found momentum unstable.
# Points lr 5e-4, measured (non-saturating, 3,000 steps): 8/8 ring modes at 20-22 % HQ; 1e-4: 4-5 %.
OPTIMIZERS.add("rmsprop", OptimizerSpec(torch.optim.RMSprop, 5e-5, {}, {"points": {"lr": 5e-4}}),
               "RMSProp; lr 5e-5 images (WGAN, Arjovsky 2017), 5e-4 points (measured)")


class OptimisticAdam(torch.optim.Optimizer):
    """Optimistic Adam (Daskalakis et al. 2017, seed 002 Algorithm 1).

    m_t = b1 m_{t-1} + (1-b1) g_t,  v_t = b2 v_{t-1} + (1-b2) g_t^2,  m^_t, v^_t bias-corrected;
    theta_t = theta_{t-1} - 2 lr m^_t/(sqrt(v^_t)+eps) + lr m^_{t-1}/(sqrt(v^_{t-1})+eps)
    The second term is zero at t = 1 (m_0 = 0). State: step, exp_avg, exp_avg_sq, prev_update.
    """

    def __init__(self, params, lr: float = 2e-4, betas=(0.5, 0.9), eps: float = 1e-8):
        if lr <= 0 or not all(0 <= b < 1 for b in betas) or eps <= 0:
            raise ValueError(f"optimistic-adam: need lr > 0, 0 <= betas < 1, eps > 0; got {lr}, {betas}, {eps}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        loss = torch.enable_grad()(closure)() if closure is not None else None
        for group in self.param_groups:
            lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["step"] = torch.zeros((), dtype=torch.float64)
                    st["exp_avg"] = torch.zeros_like(p)
                    st["exp_avg_sq"] = torch.zeros_like(p)
                    st["prev_update"] = torch.zeros_like(p)
                st["step"] += 1
                t = st["step"].item()
                st["exp_avg"].mul_(b1).add_(p.grad, alpha=1 - b1)
                st["exp_avg_sq"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                update = (st["exp_avg"] / (1 - b1 ** t)) / ((st["exp_avg_sq"] / (1 - b2 ** t)).sqrt() + eps)
                p.add_(-2 * lr * update + lr * st["prev_update"])
                st["prev_update"].copy_(update)
        return loss


class OMD(torch.optim.Optimizer):
    """Optimistic mirror descent with the Euclidean mirror map (seed 002, Daskalakis et al. 2017):

    w_{t+1} = w_t - lr (2 grad_t - grad_{t-1}),  with grad_0 = 0.  State: prev_grad.
    """

    def __init__(self, params, lr: float = 0.01):
        if lr <= 0:
            raise ValueError(f"omd: need lr > 0, got {lr}")
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        loss = torch.enable_grad()(closure)() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["prev_grad"] = torch.zeros_like(p)
                p.add_(2 * p.grad - st["prev_grad"], alpha=-group["lr"])
                st["prev_grad"].copy_(p.grad)
        return loss


# lr 2e-4 and betas (0.5, 0.9): the WGAN/CIFAR-10 settings of Daskalakis et al. 2017. Points lr 5e-4,
# measured (non-saturating, 3,000 steps): 8/8 ring modes at 18-24 % HQ; 1e-3 oscillates (8-9 %).
OPTIMIZERS.add("optimistic-adam", OptimizerSpec(OptimisticAdam, 2e-4, {"betas": (0.5, 0.9), "eps": 1e-8},
                                                {"points": {"lr": 5e-4}}),
               "Optimistic Adam (Daskalakis 2017): lr 2e-4 images (their CIFAR-10), 5e-4 points (measured)")
# lr 0.01: a plain-SGD-sized step; the optimistic correction keeps bilinear games from cycling.
# Points: the same; measured, 0.01 and 0.05 both fail to form the ring in 3,000 steps, as sgd does.
OPTIMIZERS.add("omd", OptimizerSpec(OMD, 0.01, {}),
               "optimistic gradient descent w <- w - lr (2 g_t - g_{t-1})")
