"""GAN losses as small pure functions of discriminator outputs (StudioGAN losses.py style).

Discriminators return raw scores (logits) with no sigmoid; D(x) = sigmoid(score) for the
probabilistic losses, raw scores for LSGAN / WGAN / hinge, and for BEGAN the autoencoder's
reconstruction error L(x) = |x - AE(x)| (models.AutoencoderD). Each loss carries its paper
defaults (critic steps, clip, penalty weight) that a sweep YAML may override.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gan_tasks.params import Num, Spec
from gan_tasks.registry import Registry, for_kind

LossFn = Callable[[Tensor, Tensor, dict], Tensor]


@dataclass(frozen=True)
class Loss:
    d_loss: LossFn  # (score_real, score_fake, params) -> scalar to minimise over D
    g_loss: LossFn  # (score_real, score_fake, params) -> scalar to minimise over G
    defaults: dict[str, Any] = field(default_factory=dict)
    # Regulariser added to the D loss: (D, real, fake, params, generator) -> scalar.
    penalty: Callable[..., Tensor] | None = None
    # Called after every D optimiser step (WGAN weight clipping).
    after_d_step: Callable[[nn.Module, dict], None] | None = None
    # Logged as "wasserstein" when the critic estimates W(P_r, P_g).
    wasserstein: bool = False
    # Raises ValueError on parameters that make the loss meaningless (e.g. LSGAN a == b).
    check: Callable[[dict], None] | None = None
    # The D loss is binary cross-entropy on logits (real = 1, fake = 0): label tricks apply.
    labels: bool = False
    # Needs an autoencoder discriminator whose score is a reconstruction error (BEGAN).
    autoencoder: bool = False
    # Control variables carried across steps (BEGAN's k_t): their start values, and the update
    # (state, score_real, score_fake_of_G_step, params) -> state after each G step. The Trial
    # checkpoints the state; d_loss/g_loss see it merged into params.
    state0: dict[str, float] = field(default_factory=dict)
    update_state: Callable[[dict, Tensor, Tensor, dict], dict] | None = None
    # Extra metric columns from (state, score_real, score_fake, params): {column: 0-dim tensor}.
    monitor: Callable[[dict, Tensor, Tensor, dict], dict] | None = None
    # Defaults that depend on the kind of data ("points" / "images"), overlaid on `defaults`.
    by_kind: dict[str, dict[str, Any]] = field(default_factory=dict)

    def defaults_for(self, kind: str) -> dict[str, Any]:
        return for_kind(self.defaults, self.by_kind, kind)

    @property
    def schema(self) -> dict[str, Spec]:
        """Type and range of each of its parameters (both kinds' keys), from PARAMS."""
        return {k: PARAMS[k] for k in {**self.defaults, **self.by_kind.get("points", {}),
                                       **self.by_kind.get("images", {})}}


LOSSES: Registry[Loss] = Registry("loss")

# Type and range of every loss parameter (gan_tasks/params.py); an entry's schema is its keys' rows.
PARAMS: dict[str, Spec] = {
    "d_steps": Num(int, 1, 100),  # D steps per G step: WGAN's 5; at 100 G barely trains
    "max_score": Num(float, 0, 80, lo_open=True),  # exp(score) overflows float32 above ~88
    # LSGAN targets: any finite labels; within +-1000 the squared errors stay far from float32's range.
    "a": Num(float, -1e3, 1e3), "b": Num(float, -1e3, 1e3), "c": Num(float, -1e3, 1e3),
    "clip": Num(float, 0, 10, lo_open=True),  # WGAN clips weights to [-0.01, 0.01]; at 10 nothing is clipped
    "gp_lambda": Num(float, 0, 1e4),  # penalty weight: 0 turns it off, 10 is the paper's, 1e4 drowns the loss
    "perturb": Num(float, 0, 10, lo_open=True),  # DRAGAN noise in std of the data: 0.5 the paper's
    "gamma": Num(float, 0, 1, lo_open=True),  # BEGAN diversity ratio E L(G(z)) / E L(x), in (0, 1]
    "lambda_k": Num(float, 0, 1, lo_open=True),  # BEGAN's k_t learning rate: 0.001; k_t itself lives in [0, 1]
}

# d_steps=1: Goodfellow 2014 Algorithm 1 used k=1, "the least expensive option" (seed 001).
_ONE_STEP = {"d_steps": 1}


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


def _lsgan_check(p: dict) -> None:
    if p["a"] == p["b"]:
        raise ValueError(f"lsgan labels a and b must differ (a = b = {p['a']}): D could not tell real from fake")


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


LOSSES.add("minimax", Loss(_minimax_d, _minimax_g, dict(_ONE_STEP), labels=True),
           "saturating generator cost log(1 - D(G(z))) of the original minimax game")
LOSSES.add("non-saturating", Loss(_minimax_d, _nonsat_g, dict(_ONE_STEP), labels=True),
           "generator minimises -log D(G(z)) (DCGAN default)")
LOSSES.add("max-likelihood", Loss(_minimax_d, _maxlik_g, {**_ONE_STEP, "max_score": 20.0}, labels=True),
           "generator cost -E exp(sigma^-1(D(G(z)))) (maximum-likelihood cost, seed 001)")
LOSSES.add("lsgan", Loss(_lsgan_d, _lsgan_g, {**_ONE_STEP, "a": 0.0, "b": 1.0, "c": 1.0}, check=_lsgan_check),
           "least squares GAN with free labels a (fake), b (real), c (G target)")
# Eq. 9 of the LSGAN paper (seed 003): the 0-1 coding the authors train with.
LOSSES.add("lsgan-011", Loss(_lsgan_d, _lsgan_g, {**_ONE_STEP, "a": 0.0, "b": 1.0, "c": 1.0}, check=_lsgan_check),
           "LSGAN preset a=0, b=1, c=1 (Eq. 9)")
# Eq. 8: b - c = 1 and b - a = 2 make the objective the Pearson chi^2 divergence.
LOSSES.add("lsgan-m110", Loss(_lsgan_d, _lsgan_g, {**_ONE_STEP, "a": -1.0, "b": 1.0, "c": 0.0}, check=_lsgan_check),
           "LSGAN preset a=-1, b=1, c=0 (Eq. 8, Pearson chi^2)")
# c = 0.01 and 5 critic steps: WGAN paper defaults (seed 002 Algorithm, seed 004 Table 1).
LOSSES.add("wgan", Loss(_wgan_d, _wgan_g, {"d_steps": 5, "clip": 0.01}, after_d_step=_clip_weights,
                        wasserstein=True),
           "Wasserstein GAN with weight clipping to [-clip, clip]")
# lambda = 10 and 5 critic steps: Gulrajani et al. 2017 (seed 004 Table 1). On 2-D mixtures lambda
# 0.1, as the authors' own toy code (gan_toy.py: "smaller lambda seems to help for toy tasks");
# measured here: 8/8 ring modes at 50 % high quality against 21-35 % with lambda 10 (3,000 steps).
LOSSES.add("wgan-gp", Loss(_wgan_d, _wgan_g, {"d_steps": 5, "gp_lambda": 10.0}, penalty=_wgan_gp_penalty,
                           wasserstein=True, by_kind={"points": {"gp_lambda": 0.1}}),
           "Wasserstein GAN with gradient penalty on random interpolates (lambda 10 images, Gulrajani 2017; "
           "0.1 points, their gan_toy.py)")
# lambda = 10, perturbation scale 0.5 std: Kodali et al. 2017 defaults. On 2-D mixtures lambda 1,
# measured: with 10 the penalty flattens D across the whole ring (0-2 of 8 modes in 3,000 steps).
LOSSES.add("dragan", Loss(_minimax_d, _nonsat_g, {**_ONE_STEP, "gp_lambda": 10.0, "perturb": 0.5},
                          penalty=_dragan_penalty, labels=True, by_kind={"points": {"gp_lambda": 1.0}}),
           "non-saturating GAN with a gradient penalty around perturbed real data (lambda 10 images, "
           "Kodali 2017; 1 points, measured)")
LOSSES.add("hinge", Loss(_hinge_d, _wgan_g, dict(_ONE_STEP)),
           "hinge loss for D, -D(G(z)) for G (SAGAN / BigGAN)")
# gamma 0.5 and lambda_k 0.001, k_0 = 0: Berthelot et al. 2017 (the BEGAN of seed 002), Sec. 3.3-4.
LOSSES.add("began", Loss(_began_d, _began_g, {**_ONE_STEP, "gamma": 0.5, "lambda_k": 0.001}, autoencoder=True,
                         state0={"k": 0.0}, update_state=_began_update, monitor=_began_monitor),
           "BEGAN: autoencoder D, L_D = L(x) - k_t L(G(z)), k_t equilibrium control with gamma")
