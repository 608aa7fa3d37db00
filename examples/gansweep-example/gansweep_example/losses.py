"""The rpgan-r1 loss (specs.RPGAN_R1). Scores are D's raw outputs; p holds the resolved parameters."""
import torch
import torch.nn.functional as F
from torch import Tensor, nn


def rp_d(sr: Tensor, sf: Tensor, p: dict) -> Tensor:
    # L_D = E softplus(-(D(x) - D(G(z)))): each real sample should score above its paired fake
    return F.softplus(-(sr - sf)).mean()


def rp_g(sr: Tensor, sf: Tensor, p: dict) -> Tensor:
    # L_G = E softplus(-(D(G(z)) - D(x))), the real scores held fixed
    return F.softplus(-(sf - sr)).mean()


def r1_penalty(d: nn.Module, real: Tensor, fake: Tensor, p: dict, gen: torch.Generator) -> Tensor:
    # gamma/2 E ||grad_x D(x)||^2 at the real samples (zero-centred: D flat on the data)
    x = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x).sum(), x, create_graph=True)
    return 0.5 * p["gamma"] * grad.flatten(1).pow(2).sum(1).mean()
