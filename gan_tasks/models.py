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


class _Reshape(nn.Module):
    def __init__(self, *shape: int):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.view(x.shape[0], *self.shape)


def _dcgan28(data_shape: tuple[int, ...], z_dim: int, dropout: float, slope: float) -> tuple[nn.Module, nn.Module]:
    """Seed 004 Appendix I (TensorFlow DCGAN tutorial): 5x5 kernels, 'same' padding, no biases in G."""
    c = data_shape[0]
    g = nn.Sequential(
        nn.Linear(z_dim, 7 * 7 * 256, bias=False), nn.BatchNorm1d(7 * 7 * 256), nn.LeakyReLU(slope),
        _Reshape(256, 7, 7),
        nn.ConvTranspose2d(256, 128, 5, 1, 2, bias=False), nn.BatchNorm2d(128), nn.LeakyReLU(slope),
        nn.ConvTranspose2d(128, 64, 5, 2, 2, output_padding=1, bias=False), nn.BatchNorm2d(64), nn.LeakyReLU(slope),
        nn.ConvTranspose2d(64, c, 5, 2, 2, output_padding=1, bias=False), nn.Tanh())
    d = nn.Sequential(
        nn.Conv2d(c, 64, 5, 2, 2), nn.LeakyReLU(slope), nn.Dropout(dropout),
        nn.Conv2d(64, 128, 5, 2, 2), nn.LeakyReLU(slope), nn.Dropout(dropout),
        nn.Flatten(), nn.Linear(128 * 7 * 7, 1))
    return g, d


# dropout 0.3 and LeakyReLU slope 0.3: the Keras defaults of the tutorial seed 004 reproduces.
MODELS.add("dcgan-28", ModelSpec(_dcgan28, {"dropout": 0.3, "slope": 0.3}, ("images",)),
           "DCGAN for 28x28 images as in seed 004's appendix (2.33M G / 213k D parameters)")


def build_models(name: str, data_shape: tuple[int, ...], z_dim: int, params: dict) -> tuple[nn.Module, nn.Module]:
    spec = MODELS.get(name)
    return spec.build(tuple(data_shape), z_dim, **{**spec.defaults, **params})
