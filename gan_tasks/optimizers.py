"""Optimizers by name. Each entry builds a torch.optim.Optimizer from params and a learning rate.

Defaults follow the papers in ../shared/seeds: an entry's `defaults` are merged under the
sweep YAML's `params`, so the YAML only states what it changes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch

from gan_tasks.registry import Registry


@dataclass(frozen=True)
class OptimizerSpec:
    build: Callable[..., torch.optim.Optimizer]  # (params, lr=..., **defaults) -> Optimizer
    lr: float
    defaults: dict[str, Any] = field(default_factory=dict)


OPTIMIZERS: Registry[OptimizerSpec] = Registry("optimizer")


def make_optimizer(name: str, params: Iterable, lr: float | None, extra: dict) -> torch.optim.Optimizer:
    spec = OPTIMIZERS.get(name)
    return spec.build(params, lr=spec.lr if lr is None else lr, **{**spec.defaults, **extra})


# Momentum 0.5 as in Goodfellow et al. 2014's released code ("we used momentum", seed 001);
# lr 0.01 is that code's starting rate.
OPTIMIZERS.add("sgd", OptimizerSpec(torch.optim.SGD, 0.01, {"momentum": 0.5}),
               "SGD with momentum (original GAN paper)")
# lr 2e-4, beta1 0.5: DCGAN (Radford 2015), seed 004 Table 1.
OPTIMIZERS.add("adam", OptimizerSpec(torch.optim.Adam, 2e-4, {"betas": (0.5, 0.999)}),
               "Adam with the DCGAN defaults lr=2e-4, beta1=0.5")
# lr 5e-5: WGAN (Arjovsky 2017), seed 004 Table 1; momentum-free because WGAN found momentum unstable.
OPTIMIZERS.add("rmsprop", OptimizerSpec(torch.optim.RMSprop, 5e-5, {}),
               "RMSProp with the WGAN default lr=5e-5")
