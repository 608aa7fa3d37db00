"""PacGAN packing (tricks.pac): D scores groups of m samples, each all real or all fake, with every
loss (penalties on the packed inputs), every model with a discriminator, and with pack_seeds."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gan_tasks.config import ConfigError, expand_grid, parse_config
from gan_tasks.data.datasets import ensure_dataset
from gan_tasks.methods.losses import LOSSES
from gan_tasks.methods.models import MODELS, Maxout, build_models
from gan_tasks.training.packing import PackedTrials
from gan_tasks.training.trial import Trial
from gan_tasks.methods.tricks import pack, packed_shape
from tests.conftest import tiny_config


def _trial(local_storage, loss="non-saturating", model="mlp", pac=2, batch=64, **tricks) -> Trial:
    cfg = tiny_config(model=model, grid={"loss": [loss], "optimizer": ["adam"], "seed": [0]},
                      train={"steps": 4, "batch_size": batch, "log_every": 1, "checkpoint_every": 100},
                      tricks={"pac": pac, **tricks})
    t = expand_grid(parse_config(cfg))[0]
    ensure_dataset(local_storage, t.dataset.name, t.dataset.params)
    return Trial(t, local_storage, "pac")


def _record_d_inputs(d: torch.nn.Module) -> list[tuple[int, ...]]:
    seen: list[tuple[int, ...]] = []
    d.register_forward_pre_hook(lambda m, args: seen.append(tuple(args[0].shape)))
    return seen


def test_pack_concatenates_consecutive_samples_of_one_side():
    x = torch.arange(12.0).view(6, 2)
    p = pack(x, 3)
    assert p.shape == (2, 6) and p[0].tolist() == [0, 1, 2, 3, 4, 5] and p[1].tolist() == list(range(6, 12))
    img = torch.randn(4, 3, 5, 5)
    pi = pack(img, 2)
    assert pi.shape == (2, 6, 5, 5) and torch.equal(pi[1, 3:], img[3]) and torch.equal(pi[0, :3], img[0])
    seeds = torch.randn(3, 4, 2)  # pack_seeds' leading seed axis is left alone
    assert torch.equal(pack(seeds, 2, lead=1)[1], pack(seeds[1], 2))
    assert pack(x, 1) is x and packed_shape((1, 28, 28), 4) == (4, 28, 28)


def test_d_sees_batch_over_m_rows_of_width_m_dim(local_storage):
    t = _trial(local_storage, pac=4)
    assert t.D.body[0].in_features == 8 and t.G[-1].out_features == 2  # G still makes single 2-D samples
    seen = _record_d_inputs(t.D)
    t.train_step(log_now=True)
    assert seen and set(seen) == {(16, 8)}  # 64 samples -> 16 groups of 4 x 2-D, D and G steps alike


def test_hand_computed_packed_loss_equals_the_trainers(local_storage):
    t = _trial(local_storage, pac=2)
    state = t.gen.get_state()
    with torch.no_grad():
        real, z = t._batch()
        fake = t.G(z)
        pr = torch.cat([real[0::2], real[1::2]], 1)  # group i = (sample 2i, sample 2i+1)
        pf = torch.cat([fake[0::2], fake[1::2]], 1)
        # L_D = -E log D(x_1..x_m) - E log(1 - D(G(z_1)..G(z_m))) over the 32 packed groups
        want = (F.softplus(-t.D(pr)).mean() + F.softplus(t.D(pf)).mean()).item()
        unpacked_dim = real.shape[1]
    t.gen.set_state(state)
    row = t.train_step(log_now=True)
    assert row["loss_d"] == pytest.approx(want, rel=1e-6)
    assert unpacked_dim == 2 and pr.shape == (32, 4)


@pytest.mark.parametrize("loss", LOSSES.names())
def test_every_loss_trains_packed_and_its_penalty_sees_packed_inputs(local_storage, loss):
    model = "mlp-ae" if LOSSES.get(loss).autoencoder else "mlp"
    t = _trial(local_storage, loss=loss, model=model, pac=2)
    seen = _record_d_inputs(t.D)
    rows = [t.train_step(log_now=True) for _ in range(3)]
    assert all(r["loss_d"] == r["loss_d"] and abs(r["loss_d"]) < 1e6 for r in rows)  # finite
    assert seen and {s[1] for s in seen} == {4}  # every D call, penalty points included: width 2 x 2
    if LOSSES.get(loss).penalty:
        assert all(r["penalty"] == r["penalty"] for r in rows)  # the penalty was computed


def test_tricks_that_touch_d_work_packed(local_storage):
    t = _trial(local_storage, loss="non-saturating", pac=3, batch=60, feature_matching=True,
               minibatch_discrimination=4, label_smoothing=0.1, instance_noise=0.1)
    seen = _record_d_inputs(t.D)
    assert t.train_step(log_now=True)["loss_d"] > 0 and set(seen) == {(20, 6)}


@pytest.mark.parametrize("model, tricks", [("mlp", {"unrolled_steps": 2}),
                                           ("mlp", {"unrolled_steps": 2, "unrolled_first_order": True}),
                                           ("pacgan-mlp", {"virtual_batchnorm": True, "historical_averaging": 0.1})])
def test_unrolled_and_generator_tricks_work_packed(local_storage, model, tricks):
    t = _trial(local_storage, loss="wgan-gp" if "unrolled_first_order" in tricks else "non-saturating", model=model,
               pac=2, **tricks)
    seen = _record_d_inputs(t.D)
    row = t.train_step(log_now=True)
    assert row["loss_g"] == row["loss_g"]
    assert {s[1] for s in seen} == {4}


@pytest.mark.parametrize("name, shape", [("dcgan-28", (1, 28, 28)), ("dcgan-32", (3, 32, 32)),
                                         ("pacgan-dcgan", (3, 28, 28)), ("began", (1, 28, 28))])
def test_image_discriminators_take_packed_channels(name, shape):
    params = {"began": {"width": 8, "code": 8}, "dcgan-32": {"width": 8}, "pacgan-dcgan": {"width": 8}}.get(name, {})
    g, d = build_models(name, shape, 16, params, packed_shape(shape, 2))
    x = g(torch.randn(6, 16))
    assert x.shape == (6, *shape)
    assert d(pack(x, 2)).shape == (3, 1)


def test_pacgan_models_have_the_papers_shapes_and_init():
    torch.manual_seed(0)
    g, d = build_models("pacgan-mlp", (2,), 2, {}, packed_shape((2,), 3))
    linears = [m for m in g.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2, 400), (400, 400), (400, 400), (400, 400), (400, 2)]
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in g.modules()) == 4
    maxouts = [m for m in d.modules() if isinstance(m, Maxout)]
    assert [(m.linear.in_features, m.n_out, m.pieces) for m in maxouts] == [(6, 200, 5), (200, 200, 5), (200, 200, 5)]
    assert d(torch.randn(7, 6)).shape == (7, 1)
    w = torch.cat([m.weight.flatten() for m in d.modules() if isinstance(m, torch.nn.Linear)])
    assert abs(w.std().item() - 0.02) < 0.001 and abs(w.mean().item()) < 0.001
    biases = [m.bias for m in (*g.modules(), *d.modules()) if isinstance(m, torch.nn.Linear) and m.bias is not None]
    assert biases and all((b == 0).all() for b in biases)
    assert "PacGAN" in MODELS.describe()["pacgan-mlp"] and "PacGAN" in MODELS.describe()["pacgan-dcgan"]


def test_pac_with_seed_packing_equals_unpacked_trials(local_storage):
    cfg = tiny_config(grid={"loss": ["non-saturating"], "optimizer": ["adam"], "seed": [0, 1]},
                      train={"steps": 20, "batch_size": 64, "log_every": 10, "checkpoint_every": 10},
                      tricks={"pac": 2}, pack_seeds=2)
    cfgs = expand_grid(parse_config(cfg))
    ensure_dataset(local_storage, cfgs[0].dataset.name, cfgs[0].dataset.params)
    packed = PackedTrials(cfgs, local_storage, "p")
    seen = _record_d_inputs(packed.D.base)
    packed.run()
    for i, c in enumerate(cfgs):
        t = Trial(c, local_storage, "u")
        t.run()
        ref, got = t.G.state_dict(), packed.G.seed_state(i)
        for k in ref:
            torch.testing.assert_close(got[k], ref[k], atol=1e-4, rtol=1e-4)
        assert t.D.body[0].in_features == 4
    assert seen and {s[-1] for s in seen} == {4}


def test_pac_is_a_grid_axis_with_its_own_cells_and_ids():
    cfg = tiny_config(grid={"loss": ["non-saturating"], "optimizer": ["adam"], "seed": [0],
                            "tricks": [{}, {"pac": 2}]})
    a, b = expand_grid(parse_config(cfg))
    assert a.trial_id != b.trial_id and a.cell != b.cell and b.cell.endswith("pac=2") and "pac" not in a.cell
    assert "pac=2" in b.label
    # the seed-packing speed feature stays apart: pac with pack_seeds is fine, other tricks are not
    parse_config({**cfg, "pack_seeds": 2})
    with pytest.raises(ConfigError, match="tricks other than pac"):
        parse_config({**cfg, "pack_seeds": 2, "tricks": {"label_smoothing": 0.1}})


def test_batch_size_must_be_divisible_by_pac():
    with pytest.raises(ConfigError, match=r"train.batch_size: 64 is not divisible by tricks.pac 3"):
        parse_config(tiny_config(grid={"loss": ["minimax"], "optimizer": ["adam"], "seed": [0],
                                       "tricks": [{}, {"pac": 2}, {"pac": 3}]}))
    with pytest.raises(ConfigError, match="pac"):
        parse_config(tiny_config(tricks={"pac": 0}))
