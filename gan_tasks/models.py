"""Generator / discriminator pairs by name. Discriminators return raw scores (no sigmoid).

Every discriminator is a `Discriminator(body, head)`: `features(x)` is the body's output (used by
feature matching), `head` maps features to one score (minibatch discrimination wraps it). BEGAN's
autoencoder discriminator scores a sample by its L1 reconstruction error instead.
"""
from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

from gan_tasks.catalog import MODELS, ModelSpec  # noqa: F401 - re-exported: registered in catalog.py


class Discriminator(nn.Module):
    def __init__(self, body: nn.Module, head: nn.Module):
        super().__init__()
        self.body, self.head = body, head

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


class AutoencoderD(nn.Module):
    """BEGAN discriminator: score(x) = L(x) = mean |x - dec(enc(x))|, one value per sample (eta = 1)."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.decoder(self.encoder(x))).abs().flatten(1).mean(1, keepdim=True)


class _Reshape(nn.Module):
    def __init__(self, *shape: int):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.view(x.shape[0], *self.shape)


# Hidden-layer activations of the MLPs by the names of catalog.ACTIVATIONS (model param `activation`).
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(0.2), "elu": nn.ELU, "tanh": nn.Tanh}


def _act(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[name]()


def _mlp_stack(n_in: int, hidden: int, n_out: int, activation: str = "relu") -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), _act(activation), nn.Linear(hidden, hidden), _act(activation),
                         nn.Linear(hidden, n_out))


def _mlp(data_shape: tuple[int, ...], z_dim: int, hidden: int, activation: str = "relu") -> tuple[nn.Module, nn.Module]:
    (dim,) = data_shape
    body = nn.Sequential(nn.Linear(dim, hidden), _act(activation), nn.Linear(hidden, hidden), _act(activation))
    return _mlp_stack(z_dim, hidden, dim, activation), Discriminator(body, nn.Linear(hidden, 1))


def _mlp_ae(data_shape: tuple[int, ...], z_dim: int, hidden: int, code: int,
            activation: str = "relu") -> tuple[nn.Module, nn.Module]:
    (dim,) = data_shape
    return (_mlp_stack(z_dim, hidden, dim, activation),
            AutoencoderD(_mlp_stack(dim, hidden, code, activation), _mlp_stack(code, hidden, dim, activation)))


def _dcgan28(data_shape: tuple[int, ...], z_dim: int, dropout: float, slope: float) -> tuple[nn.Module, nn.Module]:
    """Seed 004 Appendix I (TensorFlow DCGAN tutorial): 5x5 kernels, 'same' padding, no biases in G."""
    c = data_shape[0]
    g = nn.Sequential(
        nn.Linear(z_dim, 7 * 7 * 256, bias=False), nn.BatchNorm1d(7 * 7 * 256), nn.LeakyReLU(slope),
        _Reshape(256, 7, 7),
        nn.ConvTranspose2d(256, 128, 5, 1, 2, bias=False), nn.BatchNorm2d(128), nn.LeakyReLU(slope),
        nn.ConvTranspose2d(128, 64, 5, 2, 2, output_padding=1, bias=False), nn.BatchNorm2d(64), nn.LeakyReLU(slope),
        nn.ConvTranspose2d(64, c, 5, 2, 2, output_padding=1, bias=False), nn.Tanh())
    body = nn.Sequential(
        nn.Conv2d(c, 64, 5, 2, 2), nn.LeakyReLU(slope), nn.Dropout(dropout),
        nn.Conv2d(64, 128, 5, 2, 2), nn.LeakyReLU(slope), nn.Dropout(dropout), nn.Flatten())
    return g, Discriminator(body, nn.Linear(128 * 7 * 7, 1))


def _dcgan32(data_shape: tuple[int, ...], z_dim: int, width: int, slope: float) -> tuple[nn.Module, nn.Module]:
    """Radford et al. 2015 scaled to 32x32: 4x4 stride-2 (transposed) convs, BN, ReLU in G, LeakyReLU in D."""
    c, w = data_shape[0], width
    g = nn.Sequential(
        nn.Linear(z_dim, 4 * 4 * 4 * w, bias=False), nn.BatchNorm1d(4 * 4 * 4 * w), nn.ReLU(), _Reshape(4 * w, 4, 4),
        nn.ConvTranspose2d(4 * w, 2 * w, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * w), nn.ReLU(),
        nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
        nn.ConvTranspose2d(w, c, 4, 2, 1), nn.Tanh())
    # No batch norm in D: it would make a sample's score depend on its batch, which breaks the
    # per-sample gradient penalty of wgan-gp / dragan (Gulrajani et al. 2017, Sec. 4).
    body = nn.Sequential(
        nn.Conv2d(c, w, 4, 2, 1), nn.LeakyReLU(slope),
        nn.Conv2d(w, 2 * w, 4, 2, 1), nn.LeakyReLU(slope),
        nn.Conv2d(2 * w, 4 * w, 4, 2, 1), nn.LeakyReLU(slope), nn.Flatten())
    return g, Discriminator(body, nn.Linear(4 * w * 4 * 4, 1))


def _began_decoder(code: int, c: int, side: int, n: int) -> nn.Sequential:
    """BEGAN decoder: fc to (n, side/4, side/4), [conv3 ELU conv3 ELU, 2x nearest upsample] x 2, conv3."""
    s0 = side // 4
    layers: list[nn.Module] = [nn.Linear(code, n * s0 * s0), _Reshape(n, s0, s0)]
    for i in range(3):
        layers += [nn.Conv2d(n, n, 3, 1, 1), nn.ELU(), nn.Conv2d(n, n, 3, 1, 1), nn.ELU()]
        layers += [nn.Upsample(scale_factor=2, mode="nearest")] if i < 2 else []
    return nn.Sequential(*layers, nn.Conv2d(n, c, 3, 1, 1))


def _began_encoder(code: int, c: int, side: int, n: int) -> nn.Sequential:
    """BEGAN encoder: conv3, then blocks of conv3 ELU conv3 ELU with stride-2 subsampling, fc to the code."""
    layers: list[nn.Module] = [nn.Conv2d(c, n, 3, 1, 1), nn.ELU()]
    for i in range(3):
        layers += [nn.Conv2d((i + 1) * n, (i + 1) * n, 3, 1, 1), nn.ELU()]
        layers += [nn.Conv2d((i + 1) * n, (i + 2) * n, 3, 2, 1), nn.ELU()] if i < 2 else []
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(3 * n * (side // 4) ** 2, code))


def _began(data_shape: tuple[int, ...], z_dim: int, width: int, code: int) -> tuple[nn.Module, nn.Module]:
    c, side = data_shape[0], data_shape[-1]
    g = nn.Sequential(_began_decoder(z_dim, c, side, width), nn.Tanh())  # data lie in [-1, 1]
    return g, AutoencoderD(_began_encoder(code, c, side, width), _began_decoder(code, c, side, width))


def build_models(name: str, data_shape: tuple[int, ...], z_dim: int, params: dict) -> tuple[nn.Module, nn.Module]:
    spec = MODELS.get(name)
    return spec.build(tuple(data_shape), z_dim, **{**spec.defaults, **params})
