"""Class-conditional GANs (programs `cgan-concat`, `cgan-projection`, `acgan`): G(z, y) and D(x, y)
trained with any registered adversarial loss on labelled data (the dataset's class labels, or the
mixture component of a 2-D point).

G is conditioned the same way in all three: the one-hot label concatenated to z (Mirza & Osindero
2014). D differs:
- concatenation (Mirza & Osindero 2014): D sees x with the one-hot label appended (points: K more
  inputs; images: K constant channels);
- projection (Miyato & Koyama 2018, Eq. 3): D(x, y) = psi(phi(x)) + <embed(y), phi(x)>, phi the body of
  the model's discriminator, psi its head;
- auxiliary classifier (AC-GAN, Odena et al. 2017): D(x) = psi(phi(x)) does not see y; a linear
  classifier c(phi(x)) is trained on both real and generated samples, and G is trained to make its
  samples classified as their y: L_D += CE(c(x), y) + CE(c(G(z, y)), y), L_G += CE(c(G(z, y)), y)
  (the paper's L_C added to both players' objectives, weight 1).

A D step draws a real batch with its labels and generates the fakes with the same labels, so the
gradient penalties (wgan-gp, dragan) interpolate and perturb under one label; the G step's labels are
those of a fresh real batch (the data's class frequencies). No extra random draws: the labels come
with the batch indices.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_tasks.data.datasets import dataset_path, dataset_spec, load_array
from gan_tasks.methods.models import build_models
from gan_tasks.training.mapped import MappedImages
from gan_tasks.training.programs.gan import GAN


def one_hot(y: Tensor, k: int, like: Tensor) -> Tensor:
    return F.one_hot(y.long(), k).to(like.dtype)


class ConditionalG(nn.Module):
    """G(z, y) = G_base([z, onehot(y)])."""

    def __init__(self, base: nn.Module, k: int):
        super().__init__()
        self.base, self.k = base, k

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        return self.base(torch.cat([z, one_hot(y, self.k, z)], 1))


class Labelled(nn.Module):
    """z -> G(z, y) with y = 0, 1, ..., K-1, 0, 1, ... along the batch: the unconditional view of a
    conditional G (balanced classes) that torch-fidelity and the dataset's metrics sample through."""

    def __init__(self, g: nn.Module, k: int):
        super().__init__()
        self.g, self.k = g, k

    def forward(self, z: Tensor) -> Tensor:
        return self.g(z, torch.arange(len(z), device=z.device) % self.k)


class Bound(nn.Module):
    """D(., y) for one batch's labels: what the gradient penalties call as a function of x alone."""

    def __init__(self, d: nn.Module, y: Tensor):
        super().__init__()
        self.d, self.y = d, y

    def forward(self, x: Tensor) -> Tensor:
        return self.d(x, self.y)


class ConcatD(nn.Module):
    """D(x, y) = D_base([x, onehot(y)]): K more inputs (points) or K constant channels (images)."""

    def __init__(self, base: nn.Module, k: int):
        super().__init__()
        self.base, self.k = base, k

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        oh = one_hot(y, self.k, x)
        if x.dim() > 2:
            oh = oh[:, :, None, None].expand(-1, -1, *x.shape[2:])
        return self.base(torch.cat([x, oh], 1))


def _feature_dim(d: nn.Module, shape: tuple[int, ...]) -> int:
    was = d.training
    d.eval()
    with torch.no_grad():
        n = d.body(torch.zeros(2, *shape)).flatten(1).shape[1]
    d.train(was)
    return n


class ProjectionD(nn.Module):
    """Miyato & Koyama 2018: D(x, y) = psi(phi(x)) + embed(y) . phi(x)."""

    def __init__(self, base: nn.Module, k: int, shape: tuple[int, ...]):
        super().__init__()
        self.base = base
        self.embed = nn.Embedding(k, _feature_dim(base, shape))
        nn.init.normal_(self.embed.weight, std=0.02)  # small: D starts near its unconditional self

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        phi = self.base.body(x)
        return self.base.head(phi) + (self.embed(y.long()) * phi.flatten(1)).sum(1, keepdim=True)


class ACD(nn.Module):
    """Odena et al. 2017: the adversarial score psi(phi(x)) ignores y; logits(x) = c(phi(x)) classify."""

    def __init__(self, base: nn.Module, k: int, shape: tuple[int, ...]):
        super().__init__()
        self.base = base
        self.cls = nn.Linear(_feature_dim(base, shape), k)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.base(x)

    def logits(self, x: Tensor) -> Tensor:
        return self.cls(self.base.body(x).flatten(1))


class Conditional(GAN):
    """The GAN step with labels: subclasses say how D takes y (`head`)."""

    head = "concat"

    def __init__(self, cfg, storage, device, gen):
        spec = dataset_spec(cfg.dataset)
        self.k = spec.classes(**cfg.dataset.params)
        super().__init__(cfg, storage, device, gen)
        if isinstance(self.data, MappedImages):  # sharded: its labels (data add: the class folders' indices)
            self.labels = self.data.labels
        else:
            y = load_array(storage, dataset_path(cfg.dataset.name, cfg.dataset.params, "train_labels"))
            self.labels = torch.from_numpy(y.astype(np.int64)).to(self.device)
        if len(self.labels) != len(self.data):
            raise ValueError(f"dataset {cfg.dataset.name!r}: {len(self.labels)} labels for {len(self.data)} samples")

    def build_networks(self, shape: tuple[int, ...]) -> tuple[nn.Module, nn.Module]:
        c, k = self.cfg, self.k
        d_shape = (shape[0] + k, *shape[1:]) if self.head == "concat" else shape
        g, d = build_models(c.model.name, shape, c.train.z_dim + k, c.model.params, d_shape)
        heads = {"concat": lambda: ConcatD(d, k), "projection": lambda: ProjectionD(d, k, shape),
                 "acgan": lambda: ACD(d, k, shape)}
        return ConditionalG(g, k), heads[self.head]()

    def _labels(self, idx: Tensor) -> Tensor:
        return self.labels[idx]

    def _gen(self, z: Tensor) -> Tensor:
        return self.G(z, self.y)

    def _score(self, d: nn.Module, x: Tensor) -> Tensor:
        return d(x, self.y)

    def _critic(self, d: nn.Module) -> nn.Module:
        return Bound(d, self.y)

    @property
    def G_eval(self) -> nn.Module:
        return self._z_view(super().G_eval)

    def _z_view(self, g: nn.Module) -> nn.Module:
        return Labelled(g, self.k)

    def report_samples(self) -> np.ndarray | None:
        """Images: one row of 8 samples per class (the first 10 classes); points: the default."""
        if self.data.dim() == 2:
            return None
        return self.sample_given(np.repeat(np.arange(min(self.k, 10)), 8))

    @torch.no_grad()
    def sample_given(self, y: np.ndarray, seed: int = 12345) -> np.ndarray:
        """Samples of the evaluated G for the labels y (one each), z from a fixed-seed generator."""
        g_eval = super().G_eval
        g_eval.eval()
        g = torch.Generator(self.device).manual_seed(seed)
        z = torch.randn(len(y), self.cfg.train.z_dim, generator=g, device=self.device)
        out = g_eval(z, torch.as_tensor(y, device=self.device)).float().cpu().numpy()
        self.G.train()
        return out


class Projection(Conditional):
    head = "projection"


class ACGAN(Conditional):
    head = "acgan"

    def _aux_d(self, d: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        return F.cross_entropy(d.logits(real), self.y) + F.cross_entropy(d.logits(fake), self.y)

    def _aux_g(self, d: nn.Module, fake: Tensor) -> Tensor:
        return F.cross_entropy(d.logits(fake), self.y)
