"""Optimistic optimizers against their formulas, the bilinear game, and state_dict round trips."""
import pytest
import torch

from gan_tasks.methods.optimizers import OMD, OPTIMIZERS, OptimisticAdam, make_optimizer


def _bilinear(name: str, lr: float, steps: int) -> tuple[float, float]:
    """min_x max_y x*y (seed 002): simultaneous updates from (1, 1)."""
    x, y = torch.tensor([1.0], requires_grad=True), torch.tensor([1.0], requires_grad=True)
    ox, oy = make_optimizer(name, [x], lr, {}), make_optimizer(name, [y], lr, {})
    for _ in range(steps):
        ox.zero_grad(), oy.zero_grad()
        x.grad, y.grad = y.detach().clone(), -x.detach().clone()  # d(xy)/dx, d(-xy)/dy
        ox.step(), oy.step()
    return x.item(), y.item()


def test_bilinear_game_plain_gd_diverges_optimistic_methods_converge():
    xs = torch.tensor([1.0], requires_grad=True)
    ys = torch.tensor([1.0], requires_grad=True)
    for _ in range(500):  # plain simultaneous gradient descent/ascent
        gx, gy = ys.detach().clone(), -xs.detach().clone()
        with torch.no_grad():
            xs -= 0.1 * gx
            ys -= 0.1 * gy
    assert (xs ** 2 + ys ** 2).sqrt().item() > 10  # spirals outwards
    x, y = _bilinear("omd", 0.1, 2000)
    assert abs(x) < 1e-3 and abs(y) < 1e-3
    # Adam-normalised steps have length ~lr, so optimistic Adam settles in an O(lr) neighbourhood
    # of (0, 0), while plain Adam keeps cycling at the starting radius.
    x, y = _bilinear("optimistic-adam", 0.01, 3000)
    assert (x * x + y * y) ** 0.5 < 0.15
    x, y = _bilinear("adam", 0.01, 3000)
    assert (x * x + y * y) ** 0.5 > 0.5


def test_omd_step_equals_the_formula_by_hand():
    w = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    opt = OMD([w], lr=0.1)
    g1, g2 = torch.tensor([1.0, 2.0, -1.0]), torch.tensor([0.5, -0.5, 3.0])
    w0 = w.detach().clone()
    w.grad = g1.clone(); opt.step()
    assert torch.allclose(w.detach(), w0 - 0.1 * (2 * g1 - 0))
    w1 = w.detach().clone()
    w.grad = g2.clone(); opt.step()
    assert torch.allclose(w.detach(), w1 - 0.1 * (2 * g2 - g1))


def test_optimistic_adam_step_equals_the_formula_by_hand():
    lr, b1, b2, eps = 0.01, 0.5, 0.9, 1e-8
    w = torch.tensor([0.3, -0.7], requires_grad=True)
    opt = OptimisticAdam([w], lr=lr, betas=(b1, b2), eps=eps)
    grads = [torch.tensor([1.0, -2.0]), torch.tensor([0.5, 0.25]), torch.tensor([-1.0, 1.0])]
    theta, m, v, prev = w.detach().clone(), torch.zeros(2), torch.zeros(2), torch.zeros(2)
    for t, g in enumerate(grads, start=1):
        w.grad = g.clone(); opt.step()
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        upd = (m / (1 - b1 ** t)) / ((v / (1 - b2 ** t)).sqrt() + eps)
        theta = theta - 2 * lr * upd + lr * prev
        prev = upd
        assert torch.allclose(w.detach(), theta, atol=1e-7), t


@pytest.mark.parametrize("name", ["optimistic-adam", "omd", "adam", "sgd", "rmsprop"])
def test_state_dict_round_trip_continues_exactly(name):
    torch.manual_seed(0)
    grads = [torch.randn(4) for _ in range(6)]

    def run(split: bool) -> torch.Tensor:
        w = torch.ones(4, requires_grad=True)
        opt = make_optimizer(name, [w], 0.05, {})
        for i, g in enumerate(grads):
            if split and i == 3:  # checkpoint and restore into a fresh optimizer
                state = opt.state_dict()
                w = w.detach().clone().requires_grad_(True)
                opt = make_optimizer(name, [w], 0.05, {})
                opt.load_state_dict(state)
            w.grad = g.clone()
            opt.step()
        return w.detach()

    assert torch.equal(run(False), run(True))


def test_unknown_optimizer_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid: adam, omd, optimistic-adam, rmsprop, sgd"):
        OPTIMIZERS.get("adamw")
