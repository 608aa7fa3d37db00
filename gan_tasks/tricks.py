"""Training tricks (Salimans et al. 2016 "Improved techniques", seed 001's list; Metz et al. 2016).

Each is off by default and switched on in the sweep YAML's `tricks:` section (Tricks below), or
compared in one sweep through the `grid.tricks` axis (merge_tricks); train.py applies them. Every random draw takes the trial's checkpointed generator, so a resumed
trial replays the same noise.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from gan_tasks.losses import LOSSES
from gan_tasks.models import MODELS, Discriminator
from gan_tasks.params import Strict


class Tricks(Strict):
    """The training tricks of one trial, each off by default; part of its id when any is on.

    Upper bounds (le): far past any paper's setting, short of a value that only burns compute."""

    # Every default is "off"; the descriptions are what `gansweep list tricks` prints.
    d_steps: int | None = Field(None, gt=0, le=100, description="D steps per G step; default: the loss's own (1, wgan* 5)")
    label_smoothing: float = Field(0.0, ge=0, lt=0.5,
                                   description="one-sided label smoothing: real target 1 - s (Salimans 2016: 0.1)")
    label_flip: float = Field(0.0, ge=0, lt=0.5, description="probability of swapping a sample's real/fake label")
    instance_noise: float = Field(0.0, ge=0, le=100, description="std of Gaussian noise on D inputs, annealed linearly to 0")
    feature_matching: bool = Field(False, description="G matches the mean of D's last hidden features (Salimans 2016)")
    minibatch_discrimination: int = Field(0, ge=0, le=1024, description="minibatch discrimination kernels B; 0: off "
                                                               "(Salimans 2016 CIFAR code: 100)")
    minibatch_kernel_dim: int = Field(5, gt=0, le=1024, description="minibatch discrimination kernel size C (Salimans: 5)")
    historical_averaging: float = Field(0.0, ge=0, le=1e4, description="weight of ||theta - mean of past theta||^2")
    virtual_batchnorm: bool = Field(False, description="G's batch norm uses a fixed reference batch (Salimans 2016)")
    unrolled_steps: int = Field(0, ge=0, le=100, description="G steps against D unrolled k steps ahead, G's gradient taken "
                                                     "back through the k D updates of D's own optimiser (sgd, adam, "
                                                     "rmsprop; others: plain gradient steps) (Metz 2016: 5-10)")
    # Off: the true unrolled objective. On: G sees the unrolled D's weights as constants (cheaper, no 2nd order).
    unrolled_first_order: bool = Field(False, description="unrolled_steps without backprop through the D updates "
                                                          "(first-order approximation)")

    @property
    def short(self) -> str:
        """The tricks that are on, e.g. 'label_smoothing=0.1,unrolled_steps=5'; '' when none is."""
        return tricks_label(self.model_dump(mode="json"))


def tricks_label(tricks: dict) -> str:
    """'k=v,...' of the non-default entries of a (json-dumped) Tricks; for labels and report cells."""
    off = Tricks().model_dump(mode="json")
    return ",".join(f"{k}={v}" for k, v in sorted(tricks.items()) if k not in off or off[k] != v)


def check_tricks(tricks: Tricks, loss_names: list[str], model_name: str, where: str = "tricks") -> None:
    """Refuse trick/loss/model combinations that cannot work, naming the field (before any compute)."""
    model = MODELS.get(model_name)
    no_labels = sorted({n for n in loss_names if not LOSSES.get(n).labels})
    if (tricks.label_smoothing or tricks.label_flip) and no_labels:
        valid = [n for n in LOSSES.names() if LOSSES.get(n).labels]
        raise ValueError(f"{where}.label_smoothing / {where}.label_flip need a cross-entropy loss "
                         f"({', '.join(valid)}); {', '.join(no_labels)} has no real/fake labels")
    needs_body = {"feature_matching": tricks.feature_matching,
                  "minibatch_discrimination": tricks.minibatch_discrimination}
    for field, on in needs_body.items():
        if on and model.autoencoder:
            raise ValueError(f"{where}.{field} needs a discriminator with a feature layer; "
                             f"model {model_name!r} has an autoencoder discriminator")
    if tricks.virtual_batchnorm and not model.batchnorm_g:
        valid = [n for n in MODELS.names() if MODELS.get(n).batchnorm_g]
        raise ValueError(f"{where}.virtual_batchnorm needs a generator with batch norm ({', '.join(valid)}); "
                         f"model {model_name!r} has none")
    if tricks.unrolled_first_order and not tricks.unrolled_steps:
        raise ValueError(f"{where}.unrolled_first_order needs {where}.unrolled_steps > 0")


def merge_tricks(base: Tricks, entries: tuple[Tricks, ...], loss_names: list[str],
                 model_name: str) -> tuple[Tricks, ...]:
    """grid.tricks: each entry's keys (only those it sets) over the sweep's `tricks:`, then checked.

    The result is fully resolved (every key set), so a dumped and re-read config resolves the same."""
    out = []
    for i, entry in enumerate(entries):
        merged = Tricks.model_validate({**base.model_dump(), **entry.model_dump(include=entry.model_fields_set)})
        check_tricks(merged, loss_names, model_name, where=f"grid.tricks.{i}")
        out.append(merged)
    return tuple(out)


# --- labels and input noise ----------------------------------------------------------------------
def noisy_label_d_loss(sr: Tensor, sf: Tensor, smoothing: float, flip: float, gen: torch.Generator) -> Tensor:
    """Cross-entropy D loss with one-sided label smoothing and label flipping.

    Real target 1 - smoothing (fake target stays 0: one-sided, Salimans 2016 Sec. 3.4); with
    probability `flip` a sample's label is swapped (fake -> 1 - smoothing, real -> 0).
    L_D = -E [y log D(x) + (1 - y) log(1 - D(x))]; with smoothing = flip = 0 it is the minimax D loss.
    """
    y_real = torch.full_like(sr, 1.0 - smoothing)
    y_fake = torch.zeros_like(sf)
    if flip > 0:
        fr = torch.rand(sr.shape, generator=gen, device=gen.device) < flip
        ff = torch.rand(sf.shape, generator=gen, device=gen.device) < flip
        y_real = torch.where(fr, 0.0, y_real)
        y_fake = torch.where(ff, 1.0 - smoothing, y_fake)
    return (F.binary_cross_entropy_with_logits(sr, y_real) + F.binary_cross_entropy_with_logits(sf, y_fake))


def instance_noise(x: Tensor, std: float, gen: torch.Generator) -> Tensor:
    """x + N(0, std^2): real and fake supports overlap, so D cannot separate them perfectly (Sonderby 2016)."""
    return x + std * torch.randn(x.shape, generator=gen, device=gen.device) if std > 0 else x


# --- feature matching and minibatch discrimination -----------------------------------------------
def feature_matching_loss(d: Discriminator, real: Tensor, fake: Tensor) -> Tensor:
    # L_G = || E f(x) - E f(G(z)) ||_2^2, f = D's last hidden layer (Salimans 2016 Sec. 3.1)
    return (d.features(real).detach().mean(0) - d.features(fake).mean(0)).pow(2).sum()


class MinibatchDiscrimination(nn.Module):
    """Salimans 2016 Sec. 3.2: M_i = f(x_i) T in R^{B x C}; o(x_i)_b = sum_{j != i} exp(-||M_ib - M_jb||_1);
    the head then sees [f(x_i), o(x_i)], so D can tell a batch of near-identical samples."""

    def __init__(self, in_features: int, kernels: int, kernel_dim: int):
        super().__init__()
        self.kernels, self.kernel_dim = kernels, kernel_dim
        self.T = nn.Parameter(0.1 * torch.randn(in_features, kernels * kernel_dim))

    def forward(self, f: Tensor) -> Tensor:
        m = (f @ self.T).view(-1, self.kernels, self.kernel_dim)
        dist = (m.unsqueeze(0) - m.unsqueeze(1)).abs().sum(3)  # (N, N, B) L1 distances
        o = torch.exp(-dist).sum(1) - 1.0  # minus exp(0) = 1: the sample itself
        return torch.cat([f, o], 1)


def add_minibatch_discrimination(d: Discriminator, kernels: int, kernel_dim: int) -> None:
    n = d.head.in_features
    d.head = nn.Sequential(MinibatchDiscrimination(n, kernels, kernel_dim), nn.Linear(n + kernels, 1))


# --- historical averaging -------------------------------------------------------------------------
class HistoricalAverage:
    """Salimans 2016 Sec. 3.3: cost weight * ||theta - (1/t) sum_i theta[i]||^2, running mean over steps."""

    def __init__(self, module: nn.Module, weight: float):
        self.params = list(module.parameters())
        self.avg = [p.detach().clone() for p in self.params]
        self.weight, self.t = weight, 1

    def penalty(self) -> Tensor:
        return self.weight * sum((p - a).pow(2).sum() for p, a in zip(self.params, self.avg))

    @torch.no_grad()
    def update(self) -> None:
        self.t += 1
        for p, a in zip(self.params, self.avg):
            a.add_(p - a, alpha=1.0 / self.t)

    def state_dict(self) -> dict:
        return {"t": self.t, "avg": [a.clone() for a in self.avg]}

    def load_state_dict(self, s: dict) -> None:
        self.t = int(s["t"])
        for a, b in zip(self.avg, s["avg"]):
            a.copy_(b)


# --- virtual batch normalisation ------------------------------------------------------------------
class VirtualBatchNorm(nn.Module):
    """Salimans 2016 Sec. 3.4: normalise each example with the statistics of a fixed reference batch
    plus the example itself, so one sample's output does not depend on the rest of its batch."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm):
        super().__init__()
        self.weight, self.bias, self.eps = bn.weight, bn.bias, bn.eps
        self.ref: tuple[Tensor, Tensor, int] | None = None  # set by the reference pass of each forward

    def forward(self, x: Tensor) -> Tensor:
        red = [0] + list(range(2, x.dim()))
        shape = (1, -1) + (1,) * (x.dim() - 2)
        if self.ref is None:  # the reference pass: record E x and E x^2 over the reference batch
            self.ref = (x.mean(red, keepdim=True), (x * x).mean(red, keepdim=True), x.shape[0])
            mean, sq = self.ref[0], self.ref[1]
        else:  # mean/var over the reference batch plus this example: weights R/(R+1) and 1/(R+1)
            rm, rsq, n = self.ref
            own = list(range(2, x.dim()))
            xm = x.mean(own, keepdim=True) if own else x
            xsq = (x * x).mean(own, keepdim=True) if own else x * x
            mean, sq = (n * rm + xm) / (n + 1), (n * rsq + xsq) / (n + 1)
        out = (x - mean) / (sq - mean * mean + self.eps).sqrt()
        return out * self.weight.view(shape) + self.bias.view(shape)


class VBNGenerator(nn.Module):
    """Wraps G: every forward first passes the fixed reference batch z_ref (a checkpointed buffer)."""

    def __init__(self, g: nn.Module, z_ref: Tensor):
        super().__init__()
        self.g = g
        self.register_buffer("z_ref", z_ref)
        self._swap(self.g)

    def _swap(self, m: nn.Module) -> None:
        for name, child in m.named_children():
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(m, name, VirtualBatchNorm(child))
            else:
                self._swap(child)

    def forward(self, z: Tensor) -> Tensor:
        vbns = [m for m in self.g.modules() if isinstance(m, VirtualBatchNorm)]
        for m in vbns:
            m.ref = None
        self.g(self.z_ref)
        out = self.g(z)
        for m in vbns:
            m.ref = None  # do not keep the reference graph alive between steps
        return out
