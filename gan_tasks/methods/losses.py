"""GAN losses as small pure functions of discriminator outputs (StudioGAN losses.py style).

Discriminators return raw scores (logits) with no sigmoid; D(x) = sigmoid(score) for the
probabilistic losses, raw scores for LSGAN / WGAN / hinge, and for BEGAN the autoencoder's
reconstruction error L(x) = |x - AE(x)| (models.AutoencoderD). Each loss carries its paper
defaults (critic steps, clip, penalty weight) that a sweep YAML may override: those, and each loss's registration, are in catalog.py (torch-free).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_tasks.methods.catalog import LOSSES, Loss  # noqa: F401 - re-exported: the registry lives in catalog.py

LossFn = Callable[[Tensor, Tensor, dict], Tensor]


def _minimax_d(sr: Tensor, sf: Tensor, p: dict) -> Tensor:
    # L_D = -E log D(x) - E log(1 - D(G(z)))   (seed 001, Bayes-optimal D* = p_d/(p_d+p_g))
    return F.softplus(-sr).mean() + F.softplus(sf).mean()


def _minimax_g(sr: Tensor, sf: Tensor, p: dict) -> Tensor:
    # L_G = E log(1 - D(G(z)))   saturates when D rejects samples early in training
    return -F.softplus(sf).mean()


def _nonsat_g(sr: Tensor, sf: Tensor, p: dict) -> Tensor:
    # L_G = -E log D(G(z))   the non-saturating heuristic (seed 001)
    return F.softplus(-sf).mean()


def _maxlik_g(sr: Tensor, sf: Tensor, p: dict) -> Tensor:
    # L_G = -E exp(sigma^-1(D(G(z)))) = -E exp(score)   (seed 001, Goodfellow 2014b).
    # The score is clamped so one confident D output cannot overflow exp().
    return -torch.exp(sf.clamp(max=p["max_score"])).mean()


def _lsgan_d(sr: Tensor, sf: Tensor, p: dict) -> Tensor:
    # L_D = 1/2 E (D(x) - b)^2 + 1/2 E (D(G(z)) - a)^2   (seed 000/003 Eq. 2)
    return 0.5 * ((sr - p["b"]) ** 2).mean() + 0.5 * ((sf - p["a"]) ** 2).mean()


def _lsgan_g(sr: Tensor, sf: Tensor, p: dict) -> Tensor:
    # L_G = 1/2 E (D(G(z)) - c)^2
    return 0.5 * ((sf - p["c"]) ** 2).mean()


def _wgan_d(sr: Tensor, sf: Tensor, p: dict) -> Tensor:
    # L_D = E D(G(z)) - E D(x)   (negated critic objective, seed 004 Table 1)
    return sf.mean() - sr.mean()


def _wgan_g(sr: Tensor, sf: Tensor, p: dict) -> Tensor:
    # L_G = -E D(G(z))
    return -sf.mean()


def _hinge_d(sr: Tensor, sf: Tensor, p: dict) -> Tensor:
    # L_D = E max(0, 1 - D(x)) + E max(0, 1 + D(G(z)))   (Lim & Ye 2017; SAGAN/BigGAN)
    return F.relu(1 - sr).mean() + F.relu(1 + sf).mean()


def _began_d(sr: Tensor, sf: Tensor, p: dict) -> Tensor:
    # L_D = L(x) - k_t L(G(z)), scores are reconstruction errors L(v) = |v - D(v)|  (Berthelot 2017, seed 002)
    return sr.mean() - p["k"] * sf.mean()


def _began_g(sr: Tensor, sf: Tensor, p: dict) -> Tensor:
    # L_G = L(G(z))
    return sf.mean()


def _began_update(state: dict, sr: Tensor, sf: Tensor, p: dict) -> dict:
    # k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1): proportional control that keeps
    # E L(G(z)) = gamma E L(x), the boundary equilibrium. Tensor ops only: no host sync per step.
    k = state["k"] + p["lambda_k"] * (p["gamma"] * sr.detach().mean() - sf.detach().mean())
    return {"k": k.clamp(0.0, 1.0)}


def _began_monitor(state: dict, sr: Tensor, sf: Tensor, p: dict) -> dict:
    # M_global = L(x) + |gamma L(x) - L(G(z))|: falls as training converges (Berthelot 2017 Eq. 5)
    lr, lf = sr.detach().mean(), sf.detach().mean()
    return {"began_k": state["k"], "convergence": lr + (p["gamma"] * lr - lf).abs()}


def _clip_weights(d: nn.Module, p: dict) -> None:
    # WGAN: theta_d <- clip(theta_d, -c, c) after each critic update (seed 002/004)
    with torch.no_grad():
        for w in d.parameters():
            w.clamp_(-p["clip"], p["clip"])


def grad_penalty(d: nn.Module, points: Tensor, target: float = 1.0) -> Tensor:
    """E (||grad_x D(x)||_2 - target)^2 at the given points."""
    points = points.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(points).sum(), points, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - target) ** 2).mean()


def _wgan_gp_penalty(d: nn.Module, real: Tensor, fake: Tensor, p: dict, gen: torch.Generator) -> Tensor:
    # lambda * E (||grad D(x_hat)||_2 - 1)^2, x_hat = eps x + (1 - eps) G(z), eps ~ U[0,1]  (seed 004 Eq. 6)
    eps = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), generator=gen, device=gen.device)
    return p["gp_lambda"] * grad_penalty(d, eps * real + (1 - eps) * fake.detach())


def _dragan_penalty(d: nn.Module, real: Tensor, fake: Tensor, p: dict, gen: torch.Generator) -> Tensor:
    # lambda * E (||grad D(x_p)||_2 - 1)^2 with x_p = x + alpha * c * std(x) * u, u ~ U[0,1]
    # (Kodali et al. 2017, DRAGAN: penalise sharp gradients around the real data only).
    shape = real.shape
    u = torch.rand(shape, generator=gen, device=gen.device)
    alpha = torch.rand((shape[0],) + (1,) * (real.dim() - 1), generator=gen, device=gen.device)
    perturbed = real + alpha * p["perturb"] * real.std() * u
    return p["gp_lambda"] * grad_penalty(d, perturbed)
