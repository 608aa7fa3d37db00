"""The grid's tricks axis and explicit cells; the true (second-order) unrolled GAN gradient."""
import json

import pandas as pd
import pytest
import torch
import yaml

from gan_tasks.config import ConfigError, dump_config, expand_grid, load_config, parse_config
from gan_tasks.evaluation.rankings import rank_cells
from gan_tasks.methods.unroll import FunctionalD, unroll
from tests.conftest import tiny_config


def _sweep(grid: dict, **over) -> dict:
    cfg = tiny_config(**over)
    cfg["grid"] = grid  # replaced, not merged: cells and loss/optimizer are exclusive
    return cfg


TRICKS_AXIS = [{}, {"label_smoothing": 0.1}, {"unrolled_steps": 5}]


# --- grid.tricks ------------------------------------------------------------------------------------
def test_tricks_axis_expands_merges_over_sweep_tricks_and_ids_differ():
    cfg = parse_config(_sweep({"loss": ["non-saturating", "minimax"], "optimizer": ["adam"], "seed": [0, 1],
                               "tricks": TRICKS_AXIS}, tricks={"instance_noise": 0.1}))
    trials = expand_grid(cfg)
    assert len(trials) == 2 * 3 * 2 and len({t.trial_id for t in trials}) == 12
    assert cfg.grid.describe() == "2 losses x 1 optimizer x 3 trick settings x 2 seeds"
    # Each entry is merged over the sweep-level `tricks:`; the resolved set is in the TrialConfig.
    assert [t.tricks.short for t in trials[:6:2]] == ["instance_noise=0.1", "instance_noise=0.1,label_smoothing=0.1",
                                                      "instance_noise=0.1,unrolled_steps=5"]
    assert trials[2].label == "non-saturating/adam/instance_noise=0.1,label_smoothing=0.1/seed0"
    assert json.loads(trials[4].model_dump_json())["tricks"]["unrolled_steps"] == 5
    # The dumped (resolved) sweep config reads back to the same trials.
    again = expand_grid(parse_config(yaml.safe_load(dump_config(cfg))))
    assert [t.trial_id for t in again] == [t.trial_id for t in trials]


def test_an_empty_tricks_entry_is_the_plain_trial_with_its_old_id():
    plain = expand_grid(parse_config(_sweep({"loss": ["minimax"], "optimizer": ["adam"], "seed": [0]})))
    axis = expand_grid(parse_config(_sweep({"loss": ["minimax"], "optimizer": ["adam"], "seed": [0],
                                            "tricks": [{}, {"d_steps": 2}]})))
    assert axis[0].trial_id == plain[0].trial_id and axis[0].label == "minimax/adam/seed0"
    assert axis[1].trial_id != plain[0].trial_id


@pytest.mark.parametrize("grid, field, words", [
    ({"loss": ["minimax"], "tricks": [{}, {"label_smoothing": 0.7}]}, "grid.tricks.1.label_smoothing:",
     "less than 0.5"),
    ({"loss": ["minimax"], "tricks": [{}, {"label_smothing": 0.1}]}, "grid.tricks.1.label_smothing:", "unknown key"),
    ({"loss": ["minimax"], "tricks": [{"unrolled_steps": -1}]}, "grid.tricks.0.unrolled_steps:", "greater than"),
    ({"loss": ["minimax", "wgan"], "tricks": [{}, {"label_smoothing": 0.1}]}, "grid.tricks.1.label_smoothing",
     "wgan has no real/fake labels"),
    ({"loss": ["minimax"], "tricks": [{"unrolled_first_order": True}]}, "grid.tricks.0.unrolled_first_order",
     "needs grid.tricks.0.unrolled_steps > 0"),
    ({"loss": ["minimax"], "tricks": []}, "grid.tricks:", "at least 1"),
    ({"loss": ["minimax"], "tricks": {"label_smoothing": 0.1}}, "grid.tricks:", "valid tuple"),
])
def test_bad_tricks_entries_are_config_errors_naming_the_field(grid, field, words):
    with pytest.raises(ConfigError) as e:
        parse_config(_sweep({"optimizer": ["adam"], "seed": [0], **grid}))
    assert field in str(e.value) and words in str(e.value)


def test_tricks_axis_entries_that_resolve_alike_are_duplicates():
    with pytest.raises(ConfigError, match=r"grid\.tricks: entries 0 and 1 are the same trick setting"):
        expand_grid(parse_config(_sweep({"loss": ["minimax"], "optimizer": ["adam"], "seed": [0],
                                         "tricks": [{"d_steps": 2}, {"d_steps": 2}]})))


def test_tricks_axis_refused_with_seed_packing():
    with pytest.raises(ConfigError, match="pack_seeds > 1 cannot be combined with tricks"):
        parse_config(_sweep({"loss": ["minimax"], "optimizer": ["adam"], "seed": [0, 1],
                             "tricks": [{}, {"label_smoothing": 0.1}]}, pack_seeds=2))


def test_cells_differing_only_by_tricks_stay_separate_in_rankings():
    trials = expand_grid(parse_config(_sweep({"loss": ["non-saturating"], "optimizer": ["adam"], "seed": [0, 1, 2],
                                              "tricks": [{}, {"label_smoothing": 0.1}]})))
    rows = pd.DataFrame([{"trial_id": t.trial_id, "loss": t.loss.name, "optimizer": t.optimizer.name,
                          "seed": t.seed, "status": "completed", "config_json": t.model_dump_json()} for t in trials])
    ev = pd.DataFrame([{"trial_id": t.trial_id, "step": 60, "metric": "modes_covered",
                        "value": 8.0 - (i >= 3) * 4 - t.seed * 0.1} for i, t in enumerate(trials)])
    r = rank_cells(rows, ev, "s")
    assert list(r.loss) == ["non-saturating", "non-saturating + label_smoothing=0.1"]
    # 3 seeds each, fully separated: the exact permutation test's smallest p, 0.1 (not significant at 3 seeds)
    assert list(r.seeds) == [3, 3] and list(r["rank"]) == [1, 2] and r.p_value.iloc[1] == pytest.approx(0.1)


# --- grid.cells -------------------------------------------------------------------------------------
CELLS = [{"loss": "non-saturating", "optimizer": "adam"}, {"loss": "wgan", "optimizer": "rmsprop"},
         {"loss": "wgan-gp", "optimizer": {"name": "adam", "lr_g": 1e-4, "lr_d": 1e-4, "params": {"betas": [0.5, 0.9]}}}]


def test_cells_grid_expands_to_the_listed_pairs_only():
    cfg = parse_config(_sweep({"cells": CELLS, "seed": [0, 1, 2]}))
    trials = expand_grid(cfg)
    assert len(trials) == 9 and len({t.trial_id for t in trials}) == 9
    assert [t.label for t in trials[::3]] == ["non-saturating/adam/seed0", "wgan/rmsprop/seed0", "wgan-gp/adam/seed0"]
    gp = trials[6]
    assert gp.optimizer.lr_g == 1e-4 and tuple(gp.optimizer.params["betas"]) == (0.5, 0.9)
    assert cfg.grid.describe() == "3 cells x 3 seeds"
    # A cell is the same trial as the product grid's point with the same entries.
    product = expand_grid(parse_config(_sweep({"loss": ["wgan"], "optimizer": ["rmsprop"], "seed": [0]})))
    assert product[0].trial_id == trials[3].trial_id
    tricks = expand_grid(parse_config(_sweep({"cells": CELLS[:2], "seed": [0], "tricks": [{}, {"d_steps": 2}]})))
    assert len(tricks) == 4


@pytest.mark.parametrize("grid, words", [
    ({"cells": CELLS, "loss": ["minimax"], "seed": [0]}, "grid.cells lists (loss, optimizer) pairs; it cannot be "
                                                         "combined with grid.loss / grid.optimizer"),
    ({"loss": ["minimax"], "seed": [0]}, "grid.optimizer missing"),
    ({"seed": [0]}, "grid.loss and grid.optimizer missing"),
    ({"cells": [{"loss": "wgan"}], "seed": [0]}, "grid.cells.0.optimizer: Field required"),
    ({"cells": [{"loss": "wgan", "optimizer": "lion"}], "seed": [0]}, "grid.cells.0.optimizer: unknown optimizer"),
    ({"cells": [{"loss": "wgan", "optimizer": "adam", "seed": 1}], "seed": [0]}, "grid.cells.0.seed: unknown key"),
    ({"cells": [], "seed": [0]}, "grid.cells: Tuple should have at least 1 item"),
    ({"cells": [{"loss": "began", "optimizer": "adam"}], "seed": [0]}, "grid.loss 'began' and model 'mlp' do not fit"),
])
def test_bad_cells_grids_are_config_errors(grid, words):
    with pytest.raises(ConfigError) as e:
        parse_config(_sweep(grid))
    assert words in str(e.value)
    assert "Tuple should have at least 1 item" not in str(e.value) or not grid.get("cells")


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_seed_004_configs_are_its_three_cells_with_its_hyper_parameters(name):
    cfg = load_config(f"configs/{name}-dcgan-wgan.yaml")
    trials = expand_grid(cfg)
    assert len(trials) == 9 and cfg.train.batch_size == 50 and cfg.train.steps == 15000
    by_loss = {t.loss.name: t for t in trials if t.seed == 0}
    dcgan, wgan, gp = by_loss["non-saturating"], by_loss["wgan"], by_loss["wgan-gp"]
    assert (dcgan.optimizer.name, dcgan.optimizer.lr_g, tuple(dcgan.optimizer.params["betas"])[0]) == ("adam", 2e-4, .5)
    assert dcgan.loss.params["d_steps"] == 1
    assert (wgan.optimizer.name, wgan.optimizer.lr_d, wgan.loss.params) == ("rmsprop", 5e-5, {"d_steps": 5, "clip": 0.01})
    assert (gp.optimizer.name, gp.optimizer.lr_g, gp.optimizer.lr_d) == ("adam", 1e-4, 1e-4)
    assert tuple(gp.optimizer.params["betas"]) == (0.5, 0.9) and gp.loss.params == {"d_steps": 5, "gp_lambda": 10.0}


# --- unrolled GAN: the second-order gradient ----------------------------------------------------------
def _unrolled_g_grad(theta0: float, w0: float, x: torch.Tensor, z: torch.Tensor, lr: float, k: int,
                     first_order: bool = False) -> float:
    """WGAN losses, D(x) = w x + b, G(z) = theta z, k plain SGD steps of D; dL_G/dtheta at the unrolled D."""
    G, D = torch.nn.Linear(1, 1, bias=False), torch.nn.Linear(1, 1)
    with torch.no_grad():
        G.weight.fill_(theta0), D.weight.fill_(w0), D.bias.fill_(0.3)
    opt = torch.optim.SGD(D.parameters(), lr=lr)

    def d_loss(params):
        d = FunctionalD(D, params, {})
        fake = G(z)
        return d(fake.detach() if first_order else fake).mean() - d(x).mean()

    dk = FunctionalD(D, unroll(D, opt, "sgd", k, d_loss), {})
    (-dk(G(z)).mean()).backward()
    return G.weight.grad.item()


def test_unrolled_generator_gradient_is_metz_second_order_and_matches_the_hand_derivation():
    x, z = torch.tensor([[1.0], [2.0], [4.5]]), torch.tensor([[0.5], [-1.0], [2.0]])
    theta, w0, lr, k = 0.8, -0.4, 0.1, 3
    xb, zb = x.mean().item(), z.mean().item()
    # dL_D/dw = theta zb - xb, so w_k = w0 - k lr (theta zb - xb) depends on theta; L_G = -(w_k theta zb + b):
    # dL_G/dtheta = -w_k zb + k lr theta zb^2   (the second term is the unrolling's)
    w_k = w0 - k * lr * (theta * zb - xb)
    assert _unrolled_g_grad(theta, w0, x, z, lr, k) == pytest.approx(-w_k * zb + k * lr * theta * zb ** 2, rel=1e-6)
    assert _unrolled_g_grad(theta, w0, x, z, lr, k, first_order=True) == pytest.approx(-w_k * zb, rel=1e-6)
    assert _unrolled_g_grad(theta, w0, x, z, lr, 0) == pytest.approx(-w0 * zb, rel=1e-6)  # plain GAN
    assert abs(k * lr * theta * zb ** 2) > 1e-3  # so the three above really differ


@pytest.mark.parametrize("name, params", [("adam", {"betas": (0.5, 0.9)}), ("rmsprop", {}),
                                          ("sgd", {"momentum": 0.5}), ("omd", {})])
def test_unrolled_gradient_equals_finite_differences_through_optimiser_updates(name, params):
    """A tiny MLP D and linear G in float64: autograd's gradient through k unrolled updates of the
    optimiser's differentiable rewrite (from its warmed-up state) equals central finite differences."""
    from gan_tasks.methods.optimizers import make_optimizer

    torch.manual_seed(0)
    G = torch.nn.Linear(2, 2).double()
    D = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1)).double()
    x, z = torch.randn(8, 2, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
    opt = make_optimizer(name, D.parameters(), 0.05, params)
    for _ in range(2):  # warm the optimiser's state: moments, step count, momentum buffer
        opt.zero_grad()
        torch.nn.functional.softplus(-D(x)).mean().backward()
        opt.step()
    g0 = {n: p.detach().clone() for n, p in G.named_parameters()}

    def objective(weight):
        gp = {"weight": weight, "bias": g0["bias"]}

        def d_loss(params):
            d = FunctionalD(D, params, {})
            return (torch.nn.functional.softplus(-d(x)) + torch.nn.functional.softplus(d(torch.func.functional_call(
                G, gp, (z,))))).mean()

        dk = FunctionalD(D, unroll(D, opt, name, 3, d_loss), {})
        return torch.nn.functional.softplus(-dk(torch.func.functional_call(G, gp, (z,)))).mean()

    assert torch.autograd.gradcheck(objective, (g0["weight"].clone().requires_grad_(),), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("name, params", [("adam", {"betas": (0.5, 0.9)}), ("rmsprop", {}), ("sgd", {"momentum": 0.5}),
                                          ("sgd", {"momentum": 0.5, "weight_decay": 0.01})])
def test_unroll_rules_take_the_same_step_as_the_torch_optimiser(name, params):
    from gan_tasks.methods.optimizers import make_optimizer
    from gan_tasks.methods.unroll import rule_for

    torch.manual_seed(1)
    w = torch.nn.Parameter(torch.randn(5))
    opt = make_optimizer(name, [w], 0.01, params)
    for _ in range(3):
        w.grad = torch.randn(5)
        opt.step()
    g = torch.randn(5)
    state = {k: v.clone() if torch.is_tensor(v) else v for k, v in opt.state[w].items()}
    mine = rule_for(name, opt.param_groups[0])(w.detach().clone(), g, state, opt.param_groups[0])
    w.grad = g
    opt.step()
    assert torch.allclose(mine, w.detach(), rtol=1e-6, atol=1e-7)


def test_trial_unrolled_second_order_differs_from_first_order_and_leaves_d_alone(local_storage):
    from gan_tasks.data.datasets import ensure_dataset
    from gan_tasks.training.trial import Trial

    def trial(first_order):
        cfg = parse_config(tiny_config(grid={"loss": ["non-saturating"], "optimizer": ["adam"], "seed": [0]},
                                       model={"name": "mlp", "params": {"hidden": 16}},
                                       tricks={"unrolled_steps": 3, "unrolled_first_order": first_order},
                                       train={"batch_size": 32}))
        ensure_dataset(local_storage, cfg.dataset.name, cfg.dataset.params)
        t = Trial(expand_grid(cfg)[0], local_storage, "unroll")
        t.train_step(False)
        return t

    second, first = trial(False), trial(True)
    assert second.tid != first.tid
    assert torch.equal(second.gen.get_state(), first.gen.get_state())  # the same batches were drawn
    for a, b in zip(second.D.parameters(), first.D.parameters()):  # D steps from its own weights only
        assert torch.equal(a, b)
    diff = sum((a.grad - b.grad).abs().sum().item() for a, b in zip(second.G.parameters(), first.G.parameters()))
    assert diff > 1e-6 and all(torch.isfinite(p.grad).all() for p in second.G.parameters())
