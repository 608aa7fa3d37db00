"""Training tricks against their definitions, BEGAN's control loop, new models, exact resume with tricks."""
import math

import pytest
import torch
import torch.nn.functional as F

from gan_tasks.config import ConfigError, expand_grid, parse_config
from gan_tasks.data.datasets import ensure_dataset
from gan_tasks.methods.models import build_models
from gan_tasks.methods.tricks import (HistoricalAverage, MinibatchDiscrimination, VBNGenerator, feature_matching_loss,
                              instance_noise, noisy_label_d_loss)
from gan_tasks.training.trial import Trial, run_trial
from tests.conftest import tiny_config


@pytest.fixture(autouse=True)
def one_thread():
    """Like a Ray actor (OMP_NUM_THREADS = its 1 CPU): tiny models are fastest on one thread."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _cfg(tricks=None, loss="non-saturating", model="mlp", **train):
    return parse_config(tiny_config(grid={"loss": [loss], "optimizer": ["adam"], "seed": [0]},
                                    model={"name": model, "params": {"hidden": 32}}, tricks=tricks or {},
                                    train={"steps": 20, "batch_size": 32, "log_every": 5, "checkpoint_every": 10,
                                           **train}))


def _trial(storage, tricks=None, loss="non-saturating", model="mlp", **train) -> Trial:
    cfg = _cfg(tricks, loss, model, **train)
    ensure_dataset(storage, cfg.dataset.name, cfg.dataset.params)
    return Trial(expand_grid(cfg)[0], storage, "tr")


# --- labels and noise -----------------------------------------------------------------------------
def test_label_smoothing_and_flipping_match_their_formulas():
    sr, sf = torch.tensor([[1.5], [-0.5], [0.2]]), torch.tensor([[-1.0], [0.3], [2.0]])
    gen = torch.Generator().manual_seed(0)
    plain = F.softplus(-sr).mean() + F.softplus(sf).mean()  # the minimax D loss
    assert torch.allclose(noisy_label_d_loss(sr, sf, 0.0, 0.0, gen), plain)
    # One-sided smoothing s: real target 1 - s, fake target 0.
    d_r, d_f = torch.sigmoid(sr), torch.sigmoid(sf)
    smoothed = -(0.9 * d_r.log() + 0.1 * (1 - d_r).log()).mean() - (1 - d_f).log().mean()
    assert torch.allclose(noisy_label_d_loss(sr, sf, 0.1, 0.0, gen), smoothed, atol=1e-6)
    # Flipping draws its mask from the trial generator: the same draws by hand give the same loss.
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    fr, ff = torch.rand(sr.shape, generator=g2) < 0.4, torch.rand(sf.shape, generator=g2) < 0.4
    y_r, y_f = (~fr).float(), ff.float()
    by_hand = F.binary_cross_entropy_with_logits(sr, y_r) + F.binary_cross_entropy_with_logits(sf, y_f)
    assert fr.any() or ff.any()
    assert torch.allclose(noisy_label_d_loss(sr, sf, 0.0, 0.4, g1), by_hand)


def test_instance_noise_has_the_requested_std_and_anneals(local_storage):
    x = torch.zeros(20000, 2)
    assert instance_noise(x, 0.0, torch.Generator()) is x  # off: no draw, the RNG stream is untouched
    assert abs(instance_noise(x, 0.3, torch.Generator().manual_seed(0)).std().item() - 0.3) < 0.01
    t = _trial(local_storage, {"instance_noise": 0.5})
    rows = [t.train_step(True) for _ in range(20)]
    assert all(math.isfinite(r["loss_d"]) for r in rows)


def test_label_tricks_refused_for_losses_without_labels():
    with pytest.raises(ConfigError, match="tricks.label_smoothing.*wgan-gp has no real/fake labels"):
        _cfg({"label_smoothing": 0.1}, loss="wgan-gp")
    with pytest.raises(ConfigError, match="tricks.label_smoothing: Input should be less than 0.5"):
        _cfg({"label_smoothing": 0.7})
    with pytest.raises(ConfigError, match="tricks.feature_matchng: unknown key"):
        _cfg({"feature_matchng": True})


# --- feature matching, minibatch discrimination, historical averaging ----------------------------
def test_feature_matching_is_the_squared_distance_of_mean_features():
    _, d = build_models("mlp", (2,), 4, {"hidden": 8})
    real, fake = torch.randn(16, 2), torch.randn(16, 2, requires_grad=True)
    expected = (d.body(real).mean(0) - d.body(fake).mean(0)).pow(2).sum()
    loss = feature_matching_loss(d, real, fake)
    assert torch.allclose(loss, expected)
    assert feature_matching_loss(d, real, real.clone()).item() == 0
    loss.backward()
    assert fake.grad.abs().sum() > 0 and all(p.grad is None or p.grad.abs().sum() > 0 for p in d.parameters())


def test_minibatch_discrimination_counts_close_neighbours():
    torch.manual_seed(0)
    mbd = MinibatchDiscrimination(3, kernels=4, kernel_dim=2)
    same = torch.ones(5, 3)
    # Identical samples: every exp(-0) = 1, so o_b = N - 1 for each kernel b.
    assert torch.allclose(mbd(same)[:, 3:], torch.full((5, 4), 4.0))
    f = torch.randn(6, 3)  # o(x_i)_b = sum_{j != i} exp(-||M_ib - M_jb||_1), M_i = f_i T, by hand:
    m = (f @ mbd.T).view(6, 4, 2)
    o = torch.stack([sum(torch.exp(-(m[i] - m[j]).abs().sum(1)) for j in range(6) if j != i) for i in range(6)])
    assert torch.allclose(mbd(f)[:, 3:], o, atol=1e-6)
    assert torch.equal(mbd(f)[:, :3], f)  # the features pass through


def test_historical_average_is_the_mean_of_past_parameters():
    w = torch.nn.Linear(2, 1, bias=False)
    h = HistoricalAverage(w, weight=0.5)
    seen = [w.weight.detach().clone()]
    for v in ([1.0, 2.0], [3.0, -2.0], [0.5, 0.5]):
        with torch.no_grad():
            w.weight.copy_(torch.tensor([v]))
        h.update()
        seen.append(w.weight.detach().clone())
    mean = torch.stack(seen).mean(0)
    assert torch.allclose(h.avg[0], mean)
    assert torch.allclose(h.penalty(), 0.5 * (w.weight - mean).pow(2).sum())


# --- virtual batch norm ----------------------------------------------------------------------------
def test_virtual_batchnorm_makes_a_sample_independent_of_its_batch():
    torch.manual_seed(0)
    g, _ = build_models("dcgan-28", (1, 28, 28), 8, {})
    z0, z1, z2 = torch.randn(1, 8), torch.randn(3, 8), 5 * torch.randn(3, 8)
    bn_a, bn_b = g(torch.cat([z0, z1]))[0], g(torch.cat([z0, z2]))[0]
    assert not torch.allclose(bn_a, bn_b, atol=1e-4)  # plain batch norm: the batch changes the sample
    vg = VBNGenerator(g, torch.randn(16, 8))
    a, b = vg(torch.cat([z0, z1]))[0], vg(torch.cat([z0, z2]))[0]
    assert torch.allclose(a, b, atol=1e-5)
    assert "z_ref" in vg.state_dict()  # the reference batch is checkpointed with G


def test_virtual_batchnorm_refused_without_batchnorm():
    with pytest.raises(ConfigError, match="tricks.virtual_batchnorm needs a generator with batch norm"):
        _cfg({"virtual_batchnorm": True})


# --- unrolled D, d_steps ---------------------------------------------------------------------------
def test_unrolled_steps_change_g_but_not_d(local_storage):
    base, unrolled = _trial(local_storage), _trial(local_storage, {"unrolled_steps": 3})
    base.train_step(False), unrolled.train_step(False)
    # D's own update comes before the look-ahead and the look-ahead copy is discarded: D is equal.
    for p, q in zip(base.D.parameters(), unrolled.D.parameters()):
        assert torch.equal(p, q)
    assert any(not torch.equal(p, q) for p, q in zip(base.G.parameters(), unrolled.G.parameters()))


def test_d_steps_trick_overrides_the_loss_default(local_storage):
    t = _trial(local_storage, {"d_steps": 3})
    t.train_step(False)
    assert all(s["step"].item() == 3 for s in t.opt_d.state.values())
    assert all(s["step"].item() == 1 for s in t.opt_g.state.values())


# --- config: tricks enter the trial id ---------------------------------------------------------------
def test_tricks_enter_the_trial_id_and_defaults_keep_old_ids():
    plain, smooth = expand_grid(_cfg())[0], expand_grid(_cfg({"label_smoothing": 0.1}))[0]
    assert plain.trial_id != smooth.trial_id
    assert expand_grid(_cfg({"label_smoothing": 0.0}))[0].trial_id == plain.trial_id
    assert "tricks" not in plain.model_dump(mode="json", exclude={"tricks"})


# --- every trick trains, and resumes bit-identically ------------------------------------------------
ALL_TRICKS = {"label_smoothing": 0.1, "label_flip": 0.05, "instance_noise": 0.1, "feature_matching": True,
              "minibatch_discrimination": 8, "historical_averaging": 0.01, "unrolled_steps": 2, "d_steps": 2}


def _losses(t: Trial, n: int) -> list[float]:
    return [t.train_step(True)["loss_g"] for _ in range(n)]


@pytest.mark.parametrize("loss, model, tricks", [("non-saturating", "mlp", ALL_TRICKS),
                                                 ("began", "mlp-ae", {"historical_averaging": 0.01,
                                                                      "instance_noise": 0.05})])
def test_tricks_resume_bit_identically(local_storage, loss, model, tricks):
    straight = _losses(_trial(local_storage, tricks, loss, model), 10)
    assert all(math.isfinite(x) for x in straight)
    first = _trial(local_storage, tricks, loss, model)
    head = _losses(first, 5)
    first.save_checkpoint()
    again = _trial(local_storage, tricks, loss, model)
    assert again.try_resume() and again.step == 5
    for key, v in first.loss_state.items():  # BEGAN's k_t comes back from the checkpoint
        assert v.item() > 0 and torch.equal(again.loss_state[key], v)
    assert head + _losses(again, 5) == straight


# --- BEGAN end to end -------------------------------------------------------------------------------
def test_began_trains_and_logs_k_and_convergence(local_storage):
    cfg = _cfg(loss="began", model="mlp-ae", steps=60)
    trial = expand_grid(cfg)[0]
    ensure_dataset(local_storage, cfg.dataset.name, cfg.dataset.params)
    assert run_trial(trial, local_storage, "began")["status"] == "completed"
    m = local_storage.read_table("sweeps", "began", "metrics").to_pandas()
    assert len(m) == 12 and m.began_k.between(0, 1).all() and m.began_k.iloc[-1] > 0
    assert m.convergence.notna().all() and (m.convergence > 0).all()
    ns = _cfg(steps=10)
    ensure_dataset(local_storage, ns.dataset.name, ns.dataset.params)
    run_trial(expand_grid(ns)[0], local_storage, "ns")
    assert local_storage.read_table("sweeps", "ns", "metrics").to_pandas().began_k.isna().all()


# --- models -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, shape", [("dcgan-32", (3, 32, 32)), ("began", (1, 28, 28)), ("began", (3, 32, 32))])
def test_image_models_produce_images_in_range_and_one_score_each(name, shape):
    g, d = build_models(name, shape, 16, {"width": 8} if name != "began" else {"width": 8, "code": 8})
    x = g(torch.randn(4, 16))
    assert x.shape == (4, *shape) and x.abs().max() <= 1
    s = d(x)
    assert s.shape == (4, 1)
    if name == "began":  # the autoencoder's score is its mean absolute reconstruction error
        assert (s >= 0).all() and torch.allclose(s[:, 0], (x - d.decoder(d.encoder(x))).abs().flatten(1).mean(1))


def test_model_and_image_size_must_fit():
    with pytest.raises(ConfigError,
                       match="model 'dcgan-28' takes 28-pixel images, dataset 'cifar10' is 3x32x32; "
                             "valid models: began, dcgan, dcgan-32"):
        parse_config(tiny_config(dataset="cifar10", model="dcgan-28"))


def test_list_tricks_shows_every_trick_with_its_default():
    from typer.testing import CliRunner

    from flows.cli import app
    from gan_tasks.config import Tricks

    r = CliRunner().invoke(app, ["list", "tricks"], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    assert all(name in r.output for name in Tricks.model_fields) and "(default 0.0)" in r.output
