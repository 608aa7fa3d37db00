"""Training tricks (Salimans et al. 2016 "Improved techniques", seed 001's list; Metz et al. 2016).

Each is off by default and switched on in the sweep YAML's `tricks:` section (Tricks below), or
compared in one sweep through the `grid.tricks` axis (merge_tricks); gan_tasks/training/trial.py applies them. Every random draw takes the trial's checkpointed generator, so a resumed
trial replays the same noise.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# The settings (a pydantic model) and their checks are torch-free, in trick_settings.py; re-exported here.
from gan_tasks.methods.trick_settings import Tricks, check_tricks, merge_tricks, tricks_label  # noqa: F401
from gan_tasks.methods.models import Discriminator


# --- PacGAN packing ------------------------------------------------------------------------------
def pack(x: Tensor, m: int, lead: int = 0) -> Tensor:
    """PacGAN: m consecutive samples of the batch axis (after `lead` leading axes, e.g. packed seeds)
    concatenated along their first feature axis: (B, d) -> (B/m, m*d), (B, C, H, W) -> (B/m, m*C, H, W).
    Every group is drawn from one side (all real or all fake), since real and fake are packed apart."""
    if m == 1:
        return x
    b, rest = x.shape[lead], x.shape[lead + 1:]
    return x.reshape(*x.shape[:lead], b // m, m * rest[0], *rest[1:])


def packed_shape(data_shape: tuple[int, ...], m: int) -> tuple[int, ...]:
    """The discriminator's input shape under packing m: the first feature axis m times wider."""
    return (m * data_shape[0], *data_shape[1:])


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
