"""Unrolled GAN (Metz et al. 2016): G's gradient taken through k look-ahead updates of D.

theta_D^0 = theta_D,  theta_D^{k+1} = theta_D^k + update(dL_D(theta_G, theta_D^k) / dtheta_D^k)
G minimises f_K(theta_G, theta_D) = L_G(theta_G, theta_D^K(theta_G, theta_D)), so
  df_K/dtheta_G = dL_G/dtheta_G + dL_G/dtheta_D^K . dtheta_D^K/dtheta_G          (Metz 2016, Eq. 7-8)
The second term (how D would react to G) is what stops G from chasing one mode. The updates are
built as a graph (create_graph=True) on D's parameters taken functionally (torch.func.functional_call),
so the real D and its optimiser are never touched; D then steps from its own weights as usual.

The update is the trial's own D optimiser, rewritten as a differentiable function that starts from
that optimiser's current state (step count, moments), like Metz's code which unrolled Adam:
sgd (momentum, weight decay), adam, rmsprop. Any other optimiser, or flags these rewrites do not
cover (amsgrad, nesterov, centered, momentum in RMSProp, maximize), unrolls with plain gradient steps
theta - lr_d * g: the form of Metz's Eq. 3, an approximation then documented here and in the trick's text.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn
from torch.func import functional_call

Params = dict[str, Tensor]
# (weight, gradient, that weight's optimiser state (updated in place), param group) -> new weight
Rule = Callable[[Tensor, Tensor, dict, dict], Tensor]
_TINY = 1e-30  # under the sqrt of a second moment: sqrt'(0) is infinite, and 1e-15 is far below eps


def _sgd_plain(w: Tensor, g: Tensor, st: dict, h: dict) -> Tensor:
    return w - h["lr"] * g


def _sgd(w: Tensor, g: Tensor, st: dict, h: dict) -> Tensor:
    g = g + h.get("weight_decay", 0.0) * w
    if h.get("momentum", 0.0):  # torch: the first step's buffer is the gradient itself
        buf = st.get("momentum_buffer")
        g = g if buf is None else h["momentum"] * buf + (1 - h.get("dampening", 0.0)) * g
        st["momentum_buffer"] = g
    return w - h["lr"] * g


def _adam(w: Tensor, g: Tensor, st: dict, h: dict) -> Tensor:
    (b1, b2), g = h["betas"], g + h.get("weight_decay", 0.0) * w
    t = float(st.get("step", 0)) + 1
    st["step"] = t
    st["exp_avg"] = m = b1 * st.get("exp_avg", 0.0) + (1 - b1) * g
    st["exp_avg_sq"] = v = b2 * st.get("exp_avg_sq", 0.0) + (1 - b2) * g * g
    denom = (v / (1 - b2 ** t)).clamp_min(_TINY).sqrt() + h["eps"]
    return w - h["lr"] * (m / (1 - b1 ** t)) / denom


def _rmsprop(w: Tensor, g: Tensor, st: dict, h: dict) -> Tensor:
    g = g + h.get("weight_decay", 0.0) * w
    st["square_avg"] = s = h["alpha"] * st.get("square_avg", 0.0) + (1 - h["alpha"]) * g * g
    return w - h["lr"] * g / (s.clamp_min(_TINY).sqrt() + h["eps"])


# Differentiable rewrites by optimiser name (gan_tasks/methods/optimizers.py), and the flags each cannot do.
RULES: dict[str, tuple[Rule, tuple[str, ...]]] = {
    "sgd": (_sgd, ("nesterov", "maximize")),
    "adam": (_adam, ("amsgrad", "maximize")),
    "rmsprop": (_rmsprop, ("centered", "momentum", "maximize")),
}


def rule_for(name: str, group: dict) -> Rule:
    rule, unsupported = RULES.get(name, (_sgd_plain, ()))
    return _sgd_plain if any(group.get(k) for k in unsupported) else rule


def unroll(d: nn.Module, opt: torch.optim.Optimizer, name: str, steps: int,
           d_loss: Callable[[Params], Tensor], clip: float | None = None) -> Params:
    """D's parameters after `steps` differentiable updates of optimiser `name` from opt's state.

    d_loss(params) -> D's loss at those parameters (it draws its own batch; its fake samples must
    keep their graph to G). clip: WGAN's weight clipping after every update (clamp: differentiable)."""
    named = dict(d.named_parameters())
    params = {n: w.detach().requires_grad_() for n, w in named.items()}  # a leaf of its own: D gets no grad
    group = opt.param_groups[0]
    rule = rule_for(name, group)
    state = {n: {k: v.detach().clone() if torch.is_tensor(v) else v for k, v in opt.state.get(w, {}).items()}
             for n, w in named.items()}
    for _ in range(steps):
        grads = torch.autograd.grad(d_loss(params), list(params.values()), create_graph=True, allow_unused=True)
        params = {n: w if g is None else rule(w, g, state[n], group) for (n, w), g in zip(params.items(), grads)}
        if clip is not None:
            params = {n: w.clamp(-clip, clip) for n, w in params.items()}
    return params


class _Features(nn.Module):
    def __init__(self, d: nn.Module):
        super().__init__()
        self.d = d

    def forward(self, x: Tensor) -> Tensor:
        return self.d.features(x)


class FunctionalD:
    """D evaluated at other parameters (and buffers): d(x) and d.features(x), as the train step uses D."""

    def __init__(self, d: nn.Module, params: Params, buffers: Params):
        self.d, self.tensors = d, {**params, **buffers}

    def __call__(self, x: Tensor) -> Tensor:
        return functional_call(self.d, self.tensors, (x,))

    def features(self, x: Tensor) -> Tensor:
        return functional_call(_Features(self.d), {f"d.{k}": v for k, v in self.tensors.items()}, (x,))
