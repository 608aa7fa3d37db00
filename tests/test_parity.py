"""Protocol parity options (issue 23): simultaneous D/G updates (train.update), batches counted in PacGAN's
packed groups (train.batch_unit) and the G-EMA's own batch-norm statistics; all with real training steps."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from gan_tasks.config import ConfigError, apply_overrides, expand_grid, parse_config
from gan_tasks.data.datasets import ensure_dataset
from gan_tasks.training.ema import BN_BATCHES, BN_SEED, batchnorms
from gan_tasks.training.packing import PackedTrials
from gan_tasks.training.trial import Trial
from tests.conftest import tiny_config

SMALL_BN = {"name": "pacgan-mlp", "params": {"hidden_g": 16, "hidden_d": 8}}  # G with batch norm
SGD = {"name": "sgd", "lr_g": 0.05, "lr_d": 0.05, "params": {"momentum": 0.0}}  # new = old - lr grad


def _cfg(train=None, tricks=None, model="mlp", optimizer="adam", loss="non-saturating", seeds=(0,), **over):
    return tiny_config(model=model, grid={"loss": [loss], "optimizer": [optimizer], "seed": list(seeds)},
                       train={"steps": 4, "batch_size": 32, "log_every": 1, "checkpoint_every": 100, **(train or {})},
                       tricks=tricks or {}, **over)


def _trial(storage, **kw) -> Trial:
    t = expand_grid(parse_config(_cfg(**kw)))[0]
    ensure_dataset(storage, t.dataset.name, t.dataset.params)
    return Trial(t, storage, "parity")


# --- train.update: simultaneous ---------------------------------------------------------------------
def test_simultaneous_step_equals_a_hand_computation_at_the_same_parameters(local_storage):
    """One batch and one z; D's gradient of D's loss and G's of G's, both at the parameters before the
    step; then both SGD steps. The alternating step gives another G (a fresh z, against the updated D)."""
    t = _trial(local_storage, train={"update": "simultaneous"}, optimizer=SGD)
    G0, D0, gen0 = copy.deepcopy(t.G), copy.deepcopy(t.D), t.gen.get_state()
    real, z = t._batch()  # the draws the step will make
    t.gen.set_state(gen0)
    t.train_step(log_now=True)

    sr, sf = D0(real), D0(G0(z))
    loss_d = F.softplus(-sr).mean() + F.softplus(sf).mean()  # non-saturating: D's cross-entropy
    loss_g = F.softplus(-sf).mean()
    gd = torch.autograd.grad(loss_d, list(D0.parameters()), retain_graph=True)
    gg = torch.autograd.grad(loss_g, list(G0.parameters()))
    for p, p0, g in zip(t.D.parameters(), D0.parameters(), gd):
        torch.testing.assert_close(p, p0 - 0.05 * g)
    for p, p0, g in zip(t.G.parameters(), G0.parameters(), gg):
        torch.testing.assert_close(p, p0 - 0.05 * g)

    alt = _trial(local_storage, optimizer=SGD)
    alt.train_step(log_now=True)
    torch.testing.assert_close(list(alt.D.parameters()), list(t.D.parameters()))  # D's step is the same
    assert not torch.allclose(next(alt.G.parameters()), next(t.G.parameters()))  # G's is not


def test_simultaneous_trains_with_tricks_batchnorm_and_pack_seeds(local_storage):
    t = _trial(local_storage, model=SMALL_BN, train={"update": "simultaneous"},
               tricks={"pac": 2, "label_smoothing": 0.1, "instance_noise": 0.1, "historical_averaging": 0.01})
    t.run()
    assert t.step == 4
    for program in ("acgan", "cgan-projection"):  # the conditional programs share the step
        c = _trial(local_storage, program=program, train={"update": "simultaneous"}, tricks={"label_smoothing": 0.1})
        before = copy.deepcopy(c.G.state_dict())
        c.run()
        assert any(not torch.equal(before[k], v) for k, v in c.G.state_dict().items())
    # pack_seeds: the same simultaneous step on batches of groups, seed by seed, as the unpacked trial's
    cfgs = expand_grid(parse_config(_cfg(train={"update": "simultaneous", "batch_unit": "groups", "batch_size": 10},
                                         tricks={"pac": 3}, seeds=(0, 1), pack_seeds=2)))
    packed = PackedTrials(cfgs, local_storage, "p")
    packed.run()
    for i, c in enumerate(cfgs):
        u = Trial(c, local_storage, "u")
        u.run()
        for k, v in u.G.state_dict().items():
            torch.testing.assert_close(packed.G.seed_state(i)[k], v, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("over, words", [
    ({"grid": {"loss": ["wgan"], "optimizer": ["rmsprop"], "seed": [0]}}, ["train.update:", "'wgan' takes 5"]),
    ({"tricks": {"d_steps": 2}}, ["train.update:", "takes 2"]),
    ({"tricks": {"unrolled_steps": 3}}, ["train.update:", "unrolled_steps"]),
    ({"program": "cyclegan", "dataset": "mnist-thick", "model": "cyclegan-resnet", "evaluation": {},
      "grid": {"loss": ["lsgan"], "optimizer": ["adam"], "seed": [0]}}, ["train.update:", "'cyclegan'", "gan"]),
])
def test_what_cannot_be_simultaneous_is_refused_naming_the_field(over, words):
    with pytest.raises(ConfigError) as e:
        parse_config(tiny_config(**{**over, "train": {"update": "simultaneous"}}))
    assert all(w in str(e.value) for w in words), str(e.value)


def test_new_options_keep_existing_trial_ids_and_set_and_print():
    plain = expand_grid(parse_config(_cfg(tricks={"pac": 2})))[0]
    explicit = expand_grid(parse_config(_cfg(tricks={"pac": 2}, train={"update": "alternating",
                                                                        "batch_unit": "samples"})))[0]
    assert explicit.trial_id == plain.trial_id
    # groups at pac 1 changes nothing, so neither does its id; elsewhere both options make new trials
    assert expand_grid(parse_config(_cfg(train={"batch_unit": "groups"})))[0].trial_id == \
        expand_grid(parse_config(_cfg()))[0].trial_id
    grouped = expand_grid(parse_config(_cfg(tricks={"pac": 2}, train={"batch_unit": "groups"})))[0]
    simult = expand_grid(parse_config(_cfg(tricks={"pac": 2}, train={"update": "simultaneous"})))[0]
    assert len({plain.trial_id, grouped.trial_id, simult.trial_id}) == 3
    sweep = parse_config(apply_overrides(_cfg(), ["train.update=simultaneous", "train.batch_unit=groups"]))
    assert (sweep.train.update, sweep.train.batch_unit) == ("simultaneous", "groups")


def test_validate_prints_the_options(tmp_path, monkeypatch):
    import yaml
    from typer.testing import CliRunner

    from flows.cli import app
    from flows.cli.common import console

    monkeypatch.setattr(console, "width", 1000)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_cfg(tricks={"pac": 3}, train={"update": "simultaneous", "batch_unit": "groups"})))
    res = CliRunner().invoke(app, ["validate", str(path)])
    assert res.exit_code == 0 and "update simultaneous" in res.output and "batch_unit groups" in res.output, res.output


# --- train.batch_unit: groups ---------------------------------------------------------------------
@pytest.mark.parametrize("update", ["alternating", "simultaneous"])
def test_a_batch_of_groups_gives_d_m_times_batch_samples(local_storage, update):
    """PacGAN3 at batch 10: a batch of samples is refused (10 % 3), a batch of groups trains: D sees 10
    groups of 3 x 2-D samples a call, G makes 30 samples a call."""
    with pytest.raises(ConfigError, match="train.batch_size: 10 is not divisible by tricks.pac 3"):
        parse_config(_cfg(tricks={"pac": 3}, train={"batch_size": 10}))
    t = _trial(local_storage, tricks={"pac": 3}, train={"batch_size": 10, "batch_unit": "groups", "update": update})
    d_in, g_out = [], []
    t.D.register_forward_pre_hook(lambda m, a: d_in.append(tuple(a[0].shape)))
    t.G.register_forward_hook(lambda m, a, out: g_out.append(tuple(out.shape)))
    t.train_step(log_now=True)
    assert set(d_in) == {(10, 6)} and set(g_out) == {(30, 2)}
    samples = _trial(local_storage, tricks={"pac": 2}, train={"batch_size": 10})
    d_in.clear()
    samples.D.register_forward_pre_hook(lambda m, a: d_in.append(tuple(a[0].shape)))
    samples.train_step(log_now=True)
    assert set(d_in) == {(5, 4)}  # counted in samples: 10 samples are 5 groups of 2


def test_groups_are_bounded_by_the_batch_size_limit():
    with pytest.raises(ConfigError, match="train.batch_size: 40,000 groups of 2 are 80,000 samples"):
        parse_config(_cfg(tricks={"pac": 2}, train={"batch_size": 40_000, "batch_unit": "groups"}))


# --- G-EMA batch-norm statistics --------------------------------------------------------------------
def _bn_inputs(g: torch.nn.Module, z_dim: int, batch: int) -> torch.Tensor:
    """The first batch-norm layer's inputs over the recompute's z stream, through g in train mode."""
    seen = []
    bn = batchnorms(g)[0]
    h = bn.register_forward_pre_hook(lambda m, a: seen.append(a[0].detach()))
    gen = torch.Generator().manual_seed(BN_SEED)
    g.train()
    with torch.no_grad():
        for _ in range(BN_BATCHES):
            g(torch.randn(batch, z_dim, generator=gen))
    h.remove()
    return torch.stack(seen)  # (batches, batch, features)


def test_ema_batchnorm_statistics_are_those_of_its_own_outputs(local_storage):
    t = _trial(local_storage, model=SMALL_BN, train={"g_ema": 0.5, "steps": 6})
    t.run()
    ema, live = t.program.G_ema, t.G
    bn_ema, bn_live = batchnorms(ema)[0], batchnorms(live)[0]
    torch.testing.assert_close(bn_ema.running_mean, bn_live.running_mean)  # before: copied from the live G
    gen_state = t.gen.get_state()
    x = _bn_inputs(copy.deepcopy(ema), t.cfg.train.z_dim, t.cfg.batch_samples)
    g_eval = t.G_eval  # recomputes
    assert g_eval is ema and not ema.training
    torch.testing.assert_close(bn_ema.running_mean, x.mean(1).mean(0))  # cumulative mean of batch means
    torch.testing.assert_close(bn_ema.running_var, x.var(1, unbiased=True).mean(0))
    assert not torch.allclose(bn_ema.running_mean, bn_live.running_mean)
    assert torch.equal(t.gen.get_state(), gen_state)  # training's random stream untouched
    # deterministic, and once per change of the weights: a resumed copy computes the same statistics
    again = _trial(local_storage, model=SMALL_BN, train={"g_ema": 0.5, "steps": 6})
    again.program.load_state_dict(t.program.state_dict())
    torch.testing.assert_close(batchnorms(again.G_eval)[0].running_mean, bn_ema.running_mean)
    t.program.G_ema.apply(lambda m: m.reset_running_stats() if m in batchnorms(ema) else None)
    assert batchnorms(t.G_eval)[0].running_mean.abs().sum() == 0  # not stale: nothing recomputed


def test_ema_without_batchnorm_is_left_alone(local_storage):
    t = _trial(local_storage, train={"g_ema": 0.5})  # mlp: no batch norm
    t.run()
    before = copy.deepcopy(t.program.G_ema.state_dict())
    assert not batchnorms(t.program.G_ema)
    after = t.G_eval.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_ema_statistics_survive_checkpoint_and_resume(local_storage):
    """An evaluation mid-run (which recomputes the EMA's statistics) changes neither training nor the
    checkpoints: a trial resumed from step 3 ends with the same G_eval, statistics included."""
    kw = dict(model=SMALL_BN, train={"g_ema": 0.5, "steps": 6, "checkpoint_every": 3})
    full = _trial(local_storage, **kw)
    full.run(on_eval=lambda t: t.sample(10), eval_every=3)
    t = expand_grid(parse_config(_cfg(**kw)))[0]
    local_storage.rm("sweeps", "parity", "checkpoints", t.trial_id, "step-000000006.pt")
    resumed = Trial(t, local_storage, "parity")
    assert resumed.try_resume() and resumed.step == 3
    resumed.run()
    a, b = full.G_eval.state_dict(), resumed.G_eval.state_dict()
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(torch.from_numpy(full.sample(50)), torch.from_numpy(resumed.sample(50)))
