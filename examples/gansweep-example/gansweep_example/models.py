"""The deep-mlp networks (specs.DEEP_MLP): build(data_shape, z_dim, **params) -> (G, D), D giving one raw score."""
from torch import nn


def _stack(n_in: int, hidden: int, depth: int, n_out: int) -> nn.Sequential:
    layers, width = [], n_in
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
        width = hidden
    return nn.Sequential(*layers, nn.Linear(width, n_out))


def deep_mlp(data_shape: tuple[int, ...], z_dim: int, hidden: int, depth: int) -> tuple[nn.Module, nn.Module]:
    (dim,) = data_shape
    return _stack(z_dim, hidden, depth, dim), _stack(dim, hidden, depth, 1)
