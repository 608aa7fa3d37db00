"""Optimizers by name. Each entry builds a torch.optim.Optimizer from params and a learning rate.

Defaults follow the papers in ../shared/seeds: an entry's `defaults` are merged under the
sweep YAML's `params`, so the YAML only states what it changes.
"""
from __future__ import annotations

from typing import Iterable

import torch

from gan_tasks.methods.catalog import OPTIMIZERS, OptimizerSpec  # noqa: F401 - re-exported: registered in catalog.py


def make_optimizer(name: str, params: Iterable, lr: float | None, extra: dict) -> torch.optim.Optimizer:
    spec = OPTIMIZERS.get(name)
    return spec.build(params, lr=spec.lr if lr is None else lr, **{**spec.defaults, **extra})


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
