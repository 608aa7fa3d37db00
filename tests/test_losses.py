"""Every loss against its formula: optimal discriminators, penalties, clipping, and short training runs."""
import math

import pytest
import torch
from torch import nn

from gan_tasks.config import expand_grid, parse_config
from gan_tasks.data.datasets import ensure_dataset
from gan_tasks.methods.losses import LOSSES, _wgan_gp_penalty
from gan_tasks.methods.optimizers import OPTIMIZERS
from gan_tasks.training.trial import Trial
from tests.conftest import tiny_config

@pytest.fixture(autouse=True)
def one_thread():
    """Like a Ray actor (OMP_NUM_THREADS = its 1 CPU): tiny models run fastest on one thread, and
    CI's shared cores are not oversubscribed."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# A discrete p_data and p_g on 5 points, as counts out of 20: batch means are exact expectations.
P_DATA = torch.tensor([8, 6, 3, 2, 1]) / 20
P_G = torch.tensor([1, 3, 4, 5, 7]) / 20


def _optimal_table(loss_name: str, params: dict) -> torch.Tensor:
    """Minimise the D loss over a free table of scores, one per point."""
    loss = LOSSES.get(loss_name)
    p = {**loss.defaults, **params}
    table = torch.zeros(5, requires_grad=True)
    real_idx = torch.repeat_interleave(torch.arange(5), (P_DATA * 20).long())
    fake_idx = torch.repeat_interleave(torch.arange(5), (P_G * 20).long())
    opt = torch.optim.Adam([table], lr=0.05)
    for _ in range(3000):
        opt.zero_grad()
        loss.d_loss(table[real_idx], table[fake_idx], p).backward()
        opt.step()
    return table.detach()


@pytest.mark.parametrize("name", ["minimax", "non-saturating", "max-likelihood", "dragan"])
def test_optimal_discriminator_is_pd_over_pd_plus_pg(name):
    # Seed 001: D*(x) = p_data(x) / (p_data(x) + p_g(x)) for the cross-entropy D loss.
    d = torch.sigmoid(_optimal_table(name, {}))
    assert torch.allclose(d, P_DATA / (P_DATA + P_G), atol=2e-3)


@pytest.mark.parametrize("name, a, b", [("lsgan-011", 0.0, 1.0), ("lsgan-m110", -1.0, 1.0), ("lsgan", -2.0, 3.0)])
def test_lsgan_optimal_discriminator(name, a, b):
    # Seed 003: D*(x) = (b p_d + a p_g) / (p_d + p_g).
    params = {"a": a, "b": b} if name == "lsgan" else {}
    d = _optimal_table(name, params)
    assert torch.allclose(d, (b * P_DATA + a * P_G) / (P_DATA + P_G), atol=2e-3)


def test_generator_costs_match_their_formulas():
    sf = torch.tensor([-2.0, 0.0, 1.5])
    d = torch.sigmoid(sf)
    sr = torch.zeros(3)
    assert torch.allclose(LOSSES.get("minimax").g_loss(sr, sf, {}), torch.log(1 - d).mean())
    assert torch.allclose(LOSSES.get("non-saturating").g_loss(sr, sf, {}), -torch.log(d).mean())
    ml = LOSSES.get("max-likelihood")
    assert torch.allclose(ml.g_loss(sr, sf, ml.defaults), -torch.exp(torch.logit(d)).mean(), atol=1e-5)
    assert torch.allclose(LOSSES.get("wgan").g_loss(sr, sf, {}), -sf.mean())
    assert torch.allclose(LOSSES.get("hinge").d_loss(sr, sf, {}),
                          torch.relu(1 - sr).mean() + torch.relu(1 + sf).mean())


def test_wgan_gp_penalty_on_a_linear_critic():
    # A linear critic has gradient w everywhere: the penalty is exactly lambda (||w|| - 1)^2.
    critic = nn.Linear(2, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[3.0, 4.0]]))
    real, fake = torch.randn(16, 2), torch.randn(16, 2)
    gen = torch.Generator().manual_seed(0)
    pen = _wgan_gp_penalty(critic, real, fake, {"gp_lambda": 10.0}, gen)
    assert math.isclose(pen.item(), 10.0 * (5.0 - 1.0) ** 2, rel_tol=1e-6)


def _trial(loss, opt, storage, **train):
    model = "mlp-ae" if LOSSES.get(loss).autoencoder else "mlp"  # began needs an autoencoder D
    cfg = parse_config(tiny_config(grid={"loss": [loss], "optimizer": [opt], "seed": [0]},
                                   model={"name": model, "params": {"hidden": 32}},
                                   train={"steps": 50, "batch_size": 32, "log_every": 10, **train}))
    ensure_dataset(storage, cfg.dataset.name, cfg.dataset.params)
    return Trial(expand_grid(cfg)[0], storage, "t")


def test_wgan_critic_weights_stay_clipped_after_every_step(local_storage):
    t = _trial("wgan", "rmsprop", local_storage)
    c = t.lp["clip"]
    for _ in range(5):
        t.train_step(log_now=False)
        assert all(p.abs().max() <= c for p in t.D.parameters())


def test_lsgan_rejects_equal_labels():
    with pytest.raises(ValueError, match="must differ"):
        parse_config(tiny_config(grid={"loss": [{"name": "lsgan", "params": {"a": 0.5, "b": 0.5}}],
                                       "optimizer": ["adam"], "seed": [0]}))


@pytest.mark.parametrize("loss", LOSSES.names())
def test_every_loss_trains_with_every_optimizer(loss, local_storage):
    for opt in OPTIMIZERS.names():
        t = _trial(loss, opt, local_storage)
        rows = []
        while t.step < 50:
            row = t.train_step(log_now=(t.step + 1) % 10 == 0)
            rows += [row] if row else []
        assert len(rows) == 5 and all(math.isfinite(r["loss_d"]) for r in rows), (loss, opt)


def test_began_losses_and_k_update_match_the_formulas():
    # Scores are reconstruction errors L(v). L_D = L(x) - k L(G(z)), L_G = L(G(z)),
    # k' = clip(k + lambda_k (gamma L(x) - L(G(z))), 0, 1), M = L(x) + |gamma L(x) - L(G(z))|.
    b = LOSSES.get("began")
    sr, sf = torch.tensor([[0.2], [0.4]]), torch.tensor([[0.5], [0.3]])
    p = {**b.defaults, "k": torch.tensor(0.25), "lambda_k": 0.1}
    assert torch.allclose(b.d_loss(sr, sf, p), torch.tensor(0.3 - 0.25 * 0.4))
    assert torch.allclose(b.g_loss(sr, sf, p), torch.tensor(0.4))
    k = b.update_state({"k": p["k"]}, sr, sf, p)["k"]
    assert torch.allclose(k, torch.tensor(0.25 + 0.1 * (0.5 * 0.3 - 0.4)))
    m = b.monitor({"k": k}, sr, sf, p)
    assert torch.allclose(m["convergence"], torch.tensor(0.3 + abs(0.5 * 0.3 - 0.4)))
    assert b.update_state({"k": torch.tensor(0.0)}, sr, sf, p)["k"] == 0  # clipped at 0
    assert b.update_state({"k": torch.tensor(1.0)}, sr, 0 * sf, p)["k"] == 1  # clipped at 1


def test_began_rejects_a_plain_discriminator():
    with pytest.raises(ValueError, match="autoencoder discriminator"):
        parse_config(tiny_config(grid={"loss": ["began"], "optimizer": ["adam"], "seed": [0]}))


@pytest.mark.parametrize("loss", ["non-saturating", "wgan-gp", "dragan", "began"])
def test_same_seed_gives_identical_losses(loss, local_storage):
    def run():
        t = _trial(loss, "adam", local_storage)
        return [t.train_step(log_now=True)["loss_d"] for _ in range(20)]

    assert run() == run()
