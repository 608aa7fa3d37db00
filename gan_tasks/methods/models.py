"""Generator / discriminator pairs by name. Discriminators return raw scores (no sigmoid).

Every discriminator is a `Discriminator(body, head)`: `features(x)` is the body's output (used by
feature matching), `head` maps features to one score (minibatch discrimination wraps it). BEGAN's
autoencoder discriminator scores a sample by its L1 reconstruction error instead.
"""
from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

from gan_tasks.methods.catalog import MODELS, ModelSpec  # noqa: F401 - re-exported: registered in catalog.py


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


def _dcgan(data_shape: tuple[int, ...], z_dim: int, width: int, slope: float,
           resolution: int = 32) -> tuple[nn.Module, nn.Module]:
    """Radford et al. 2015 at resolution 32 / 64 / 128 (= 4 x 2^n): 4x4 stride-2 (transposed) convs,
    channels width x 2^(n-1) ... width, BN and ReLU in G, LeakyReLU in D."""
    c, n = data_shape[0], (resolution // 4).bit_length() - 1
    chans = [width * 2 ** i for i in reversed(range(n))]  # e.g. 4w, 2w, w at 32x32
    up = [m for a, b in zip(chans, chans[1:])
          for m in (nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU())]
    g = nn.Sequential(
        nn.Linear(z_dim, 4 * 4 * chans[0], bias=False), nn.BatchNorm1d(4 * 4 * chans[0]), nn.ReLU(),
        _Reshape(chans[0], 4, 4), *up, nn.ConvTranspose2d(width, c, 4, 2, 1), nn.Tanh())
    # No batch norm in D: it would make a sample's score depend on its batch, which breaks the
    # per-sample gradient penalty of wgan-gp / dragan (Gulrajani et al. 2017, Sec. 4).
    down = [c, *reversed(chans)]
    body = nn.Sequential(*[m for a, b in zip(down, down[1:]) for m in (nn.Conv2d(a, b, 4, 2, 1), nn.LeakyReLU(slope))],
                         nn.Flatten())
    return g, Discriminator(body, nn.Linear(chans[0] * 4 * 4, 1))


def _dcgan32(data_shape: tuple[int, ...], z_dim: int, width: int, slope: float) -> tuple[nn.Module, nn.Module]:
    """dcgan-32: _dcgan at 32x32 (the same layers in the same order: the same initial weights)."""
    return _dcgan(data_shape, z_dim, width, slope, 32)


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


# --- the networks of the PacGAN paper (Lin et al. 2018; github.com/fjxmlzn/PacGAN) ---------------
def _normal_init(*modules: nn.Module, std: float) -> None:
    """PacGAN's init: every linear / (transposed) conv weight ~ N(0, std^2), every bias 0; batch
    norm keeps scale 1, shift 0."""
    for m in (x for mod in modules for x in mod.modules()):
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class Maxout(nn.Module):
    """Goodfellow 2013: max over `pieces` linear units, out = max_k (W_k x + b_k) (blocks' LinearMaxout)."""

    def __init__(self, n_in: int, n_out: int, pieces: int):
        super().__init__()
        self.n_out, self.pieces = n_out, pieces
        self.linear = nn.Linear(n_in, n_out * pieces)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x).view(x.shape[0], self.n_out, self.pieces).amax(-1)


def _pacgan_mlp(data_shape: tuple[int, ...], z_dim: int, hidden_g: int, hidden_d: int, pieces: int,
                init_std: float) -> tuple[nn.Module, nn.Module]:
    """PacGAN's 2-D networks (synthetic_data_experiments/*/pacgan_task.py): G 4 hidden layers, linear
    without bias + batch norm + ReLU, linear output; D 3 maxout layers, then linear."""
    (dim,) = data_shape  # D's input: 2 * pac under packing (models.build_models' d_shape)
    g_layers: list[nn.Module] = []
    for i in range(4):
        g_layers += [nn.Linear(z_dim if i == 0 else hidden_g, hidden_g, bias=False), nn.BatchNorm1d(hidden_g), nn.ReLU()]
    g = nn.Sequential(*g_layers, nn.Linear(hidden_g, dim))
    body = nn.Sequential(Maxout(dim, hidden_d, pieces), Maxout(hidden_d, hidden_d, pieces),
                         Maxout(hidden_d, hidden_d, pieces))
    d = Discriminator(body, nn.Linear(hidden_d, 1))
    _normal_init(g, d, std=init_std)
    return g, d


def _pacgan_dcgan(data_shape: tuple[int, ...], z_dim: int, width: int, slope: float,
                  init_std: float) -> tuple[nn.Module, nn.Module]:
    """The DCGAN (carpedm20/DCGAN-tensorflow) PacGAN and VEEGAN train on Stacked MNIST
    (stacked_MNIST_experiments/VEEGAN_experiment/model.py): 5x5 stride-2 'same' (transposed) convs,
    28 -> 14 -> 7 -> 4 -> 2; G fc to 2x2x8w, BN + ReLU, tanh out; D LeakyReLU(0.2), BN after all
    but the first conv (so a score depends on its batch: no gradient-penalty losses with it)."""
    c, w = data_shape[0], width
    up = lambda i, o, op: [nn.ConvTranspose2d(i, o, 5, 2, 2, output_padding=op), nn.BatchNorm2d(o), nn.ReLU()]  # noqa: E731
    g = nn.Sequential(nn.Linear(z_dim, 8 * w * 2 * 2), _Reshape(8 * w, 2, 2), nn.BatchNorm2d(8 * w), nn.ReLU(),
                      *up(8 * w, 4 * w, 1), *up(4 * w, 2 * w, 0), *up(2 * w, w, 1),
                      nn.ConvTranspose2d(w, c, 5, 2, 2, output_padding=1), nn.Tanh())
    down = lambda i, o: [nn.Conv2d(i, o, 5, 2, 2), nn.BatchNorm2d(o), nn.LeakyReLU(slope)]  # noqa: E731
    body = nn.Sequential(nn.Conv2d(c, w, 5, 2, 2), nn.LeakyReLU(slope), *down(w, 2 * w), *down(2 * w, 4 * w),
                         *down(4 * w, 8 * w), nn.Flatten())
    d = Discriminator(body, nn.Linear(8 * w * 2 * 2, 1))
    _normal_init(g, d, std=init_std)
    return g, d


def build_models(name: str, data_shape: tuple[int, ...], z_dim: int, params: dict,
                 d_shape: tuple[int, ...] | None = None) -> tuple[nn.Module, nn.Module]:
    """(G, D); D built for inputs of d_shape when given (PacGAN packing: tricks.packed_shape), G for
    data_shape. With packing, G and D come from two builds in a row (one seed, one RNG stream): the
    spare D of the first and G of the second are dropped, so an unpacked trial's init is unchanged."""
    spec = MODELS.get(name)
    kw = {**spec.defaults, **params}
    g, d = spec.build(tuple(data_shape), z_dim, **kw)
    if d_shape is not None and tuple(d_shape) != tuple(data_shape):
        _, d = spec.build(tuple(d_shape), z_dim, **kw)
    return g, d
