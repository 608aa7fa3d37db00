"""Generator / discriminator pairs by name. Discriminators return raw scores (no sigmoid)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from gan_tasks.registry import Registry


@dataclass(frozen=True)
class ModelSpec:
    build: Callable[..., tuple[nn.Module, nn.Module]]  # (data_shape, z_dim, **params) -> (G, D)
    defaults: dict[str, Any] = field(default_factory=dict)
    data_kinds: tuple[str, ...] = ("points",)


MODELS: Registry[ModelSpec] = Registry("model")


def _mlp(data_shape: tuple[int, ...], z_dim: int, hidden: int) -> tuple[nn.Module, nn.Module]:
    (dim,) = data_shape
    g = nn.Sequential(nn.Linear(z_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                      nn.Linear(hidden, dim))
    d = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                      nn.Linear(hidden, 1))
    return g, d


# hidden=128: the 3-layer MLPs of the VEEGAN / Unrolled-GAN mixture experiments.
MODELS.add("mlp", ModelSpec(_mlp, {"hidden": 128}, ("points",)),
           "3-layer MLP generator and discriminator for 2D data")


def build_models(name: str, data_shape: tuple[int, ...], z_dim: int, params: dict) -> tuple[nn.Module, nn.Module]:
    spec = MODELS.get(name)
    return spec.build(tuple(data_shape), z_dim, **{**spec.defaults, **params})
