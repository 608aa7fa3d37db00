"""G's weight average (train.g_ema, Yazici et al. 2019) and the batch-norm statistics it is evaluated with.

The average is taken over parameters only. Batch-norm running statistics are not parameters: an
average of weights is a network of its own, whose layers see other activations than the live G's, so
the live G's running statistics do not describe it. Before each evaluation or sample the average's
statistics are recomputed from its own outputs (`recompute_batchnorm`): BN_BATCHES batches of z,
from a fixed seed, forwarded in train mode with a cumulative average (momentum None).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

BN_BATCHES = 8  # batches of z per recompute: a cumulative mean over 8 x (a training step's batch) samples
BN_SEED = 5489  # the recompute's z stream: fixed, and apart from evaluation's (12345) and training's


@torch.no_grad()
def ema_update(avg: nn.Module, model: nn.Module, decay: float) -> None:
    """avg <- decay avg + (1 - decay) model, parameter by parameter; buffers (batch-norm statistics)
    copied, so a checkpoint holds the live G's until recompute_batchnorm replaces them for evaluation."""
    torch._foreach_lerp_(list(avg.parameters()), list(model.parameters()), 1.0 - decay)
    for b_avg, b in zip(avg.buffers(), model.buffers()):
        b_avg.copy_(b)


def batchnorms(net: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The batch-norm layers of net that keep running statistics (virtual batch norm keeps none)."""
    return [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recompute_batchnorm(net: nn.Module, forward: Callable[[torch.Tensor], torch.Tensor], z_dim: int, batch: int,
                        device: torch.device, batches: int = BN_BATCHES, seed: int = BN_SEED) -> bool:
    """Replace net's batch-norm running statistics by the cumulative average over `batches` batches of
    `batch` z ~ N(0, I) (a generator of its own, seeded: the same weights give the same statistics)
    passed through forward(z) in train mode; net is left in eval mode. False (nothing done) without
    batch norm."""
    bns = batchnorms(net)
    if not bns:
        return False
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch weighs the same
    g = torch.Generator(device).manual_seed(seed)
    net.train()
    for _ in range(batches):
        forward(torch.randn(batch, z_dim, generator=g, device=device))
    for m, mom in zip(bns, momenta):
        m.momentum = mom
    net.eval()
    return True
