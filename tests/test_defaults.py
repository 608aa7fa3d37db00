"""Defaults per kind of data, the resolved values a user sees and stores, --set overrides, g_ema."""
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_tasks.config import ConfigError, apply_overrides, expand_grid, load_config, parse_config
from gan_tasks.methods.losses import LOSSES
from gan_tasks.methods.optimizers import OPTIMIZERS
from tests.conftest import tiny_config

ROOT = Path(__file__).resolve().parents[1]
GANSWEEP = str(Path(sys.executable).with_name("gansweep"))


def _trials(**over):
    return {t.loss.name + "/" + t.optimizer.name: t for t in expand_grid(parse_config(tiny_config(**over)))}


def test_points_and_images_resolve_to_their_own_defaults():
    grid = {"loss": ["wgan-gp", "dragan", "non-saturating"], "optimizer": ["adam", "rmsprop"], "seed": [0]}
    ring = _trials(grid=grid, train={"steps": 10})
    mnist = _trials(grid=grid, dataset="mnist", model="dcgan-28", train={"steps": 10})
    assert ring["wgan-gp/adam"].loss.params == {"d_steps": 5, "gp_lambda": 0.1}
    assert mnist["wgan-gp/adam"].loss.params == {"d_steps": 5, "gp_lambda": 10.0}
    assert ring["dragan/adam"].loss.params["gp_lambda"] == 1.0 and mnist["dragan/adam"].loss.params["gp_lambda"] == 10.0
    assert (ring["non-saturating/adam"].optimizer.lr_g, mnist["non-saturating/adam"].optimizer.lr_g) == (1e-3, 2e-4)
    assert (ring["non-saturating/rmsprop"].optimizer.lr_d, mnist["non-saturating/rmsprop"].optimizer.lr_d) == (5e-4, 5e-5)
    assert ring["non-saturating/adam"].optimizer.params == {"betas": (0.5, 0.999)}
    r, m = ring["non-saturating/adam"].train, mnist["non-saturating/adam"].train
    assert (r.batch_size, r.z_dim, r.g_ema) == (64, 16, 0.99)  # tiny_config sets batch 64
    assert (m.batch_size, m.z_dim, m.g_ema) == (64, 100, 0.0)
    assert ring["non-saturating/adam"].model.params["activation"] == "leaky_relu"


def test_every_registered_entry_resolves_for_both_kinds_with_the_same_keys():
    for reg in (LOSSES, OPTIMIZERS):
        for name in reg.names():
            spec = reg.get(name)
            assert set(spec.defaults_for("points")) == set(spec.defaults_for("images")), name
            with pytest.raises(ValueError, match="valid: points, images"):
                spec.defaults_for("voxels")


def test_a_value_in_the_config_always_wins():
    t = _trials(grid={"loss": [{"name": "wgan-gp", "params": {"gp_lambda": 10.0}}],
                      "optimizer": [{"name": "adam", "lr_g": 2e-4, "params": {"betas": [0.0, 0.9]}}], "seed": [0]},
                train={"steps": 10, "batch_size": 32, "z_dim": 2, "g_ema": 0.0})["wgan-gp/adam"]
    assert t.loss.params["gp_lambda"] == 10.0 and t.optimizer.lr_g == 2e-4 and t.optimizer.lr_d == 1e-3
    assert list(t.optimizer.params["betas"]) == [0.0, 0.9]
    assert (t.train.batch_size, t.train.z_dim, t.train.g_ema) == (32, 2, 0.0)
    # the cell label names what differs from the kind's defaults, and nothing else
    assert t.cell == "wgan-gp(gp_lambda 10.0)/adam(lr_g 0.0002, betas 0.0,0.9)"
    assert _trials(grid={"loss": ["wgan-gp"], "optimizer": ["adam"], "seed": [0]})["wgan-gp/adam"].cell == "wgan-gp/adam"


def test_resolved_values_are_stored_with_each_trial_and_round_trip():
    t = _trials(grid={"loss": ["wgan-gp"], "optimizer": ["adam"], "seed": [0]})["wgan-gp/adam"]
    dumped = t.model_dump(mode="json")  # what config.json and the trials row's config_json hold
    assert dumped["loss"]["params"]["gp_lambda"] == 0.1 and dumped["optimizer"]["lr_g"] == 1e-3
    assert dumped["train"]["g_ema"] == 0.99 and dumped["train"]["z_dim"] == 16
    again = type(t).model_validate(json.loads(json.dumps(dumped)))
    assert again.trial_id == t.trial_id
    # a stored sweep config (resolved) parses to the same trials whatever the defaults become
    sweep = parse_config(tiny_config())
    assert [x.trial_id for x in expand_grid(parse_config(sweep.model_dump(mode="json")))] == \
        [x.trial_id for x in expand_grid(sweep)]


def test_overrides_apply_like_the_file():
    data = tiny_config()
    out = apply_overrides(data, ["train.steps=200", "grid.seed=[0, 1, 2]", "model.params.hidden=64",
                                 "grid.loss.1=wgan-gp", "evaluation.std_threshold=2.5"])
    assert data["train"]["steps"] == 60, "the loaded mapping is not modified"
    sweep = parse_config(out)
    assert sweep.train.steps == 200 and sweep.grid.seed == (0, 1, 2) and sweep.model.params["hidden"] == 64
    assert [loss.name for loss in sweep.grid.loss] == ["non-saturating", "wgan-gp"]
    assert sweep.evaluation.std_threshold == 2.5
    with pytest.raises(ConfigError, match="--set grid.loss.5: '5' is not an index of a list of 2"):
        apply_overrides(data, ["grid.loss.5=hinge"])
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides(data, ["train.steps"])
    with pytest.raises(ConfigError, match="--set train.steps: the value '\\[1' is not valid YAML"):
        apply_overrides(data, ["train.steps=[1"])
    with pytest.raises(ConfigError, match="train.stepz: unknown key"):
        parse_config(apply_overrides(data, ["train.stepz=5"]))
    with pytest.raises(ConfigError, match="grid.optimizer.0: Value error, unknown optimizer 'adamw'|unknown optimizer"):
        parse_config(apply_overrides(data, ["grid.optimizer=[adamw]"]))


def _cli(*args, **env):
    return subprocess.run([GANSWEEP, *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "250", **env})


def test_validate_prints_the_resolved_parameters_of_every_cell():
    r = _cli("validate", "configs/quickstart.yaml", "--set", "grid.seed=[0,1]")
    assert r.returncode == 0, r.stderr
    sweep = load_config(str(ROOT / "configs/quickstart.yaml"), ["grid.seed=[0,1]"])
    for t in expand_grid(sweep):
        assert t.cell in r.stdout
        assert f"lr_g {t.optimizer.lr_g}" in r.stdout
        for k, v in t.loss.params.items():
            assert f"{k} {v}" in r.stdout
    assert "g_ema 0.99" in r.stdout and "activation leaky_relu" in r.stdout
    assert f"{len(expand_grid(sweep))} trials" in r.stdout


@pytest.mark.parametrize("sets, words", [
    (["train.steps=0"], "train.steps: Input should be greater than 0"),
    (["train.stpes=10"], "train.stpes: unknown key"),
    (["grid.loss=[nonsat]"], "grid.loss.0"),
    (["grid.seed=[0, 0]"], "grid.seed: entries 0 and 1 are the same seed"),
])
def test_a_bad_override_is_refused_before_any_compute(tmp_path, sets, words):
    store = tmp_path / "store"
    args = [x for s in sets for x in ("--set", s)]
    r = _cli("run", "configs/quickstart.yaml", "--storage", str(store), *args)
    assert r.returncode == 2, r.stdout + r.stderr
    assert words in r.stdout + r.stderr and "Traceback" not in r.stdout + r.stderr
    assert not store.exists(), "nothing may be written before the config is valid"


def test_g_ema_is_the_average_of_g_and_what_evaluation_samples(local_storage):
    from gan_tasks.data.datasets import ensure_dataset
    from gan_tasks.training.trial import Trial

    cfg = expand_grid(parse_config(tiny_config(train={"g_ema": 0.5})))[0]
    ensure_dataset(local_storage, cfg.dataset.name, cfg.dataset.params)
    trial = Trial(cfg, local_storage, "s")
    expect = [p.detach().clone() for p in trial.G.parameters()]
    for _ in range(3):
        trial.train_step(False)
        expect = [0.5 * e + 0.5 * p.detach() for e, p in zip(expect, trial.G.parameters())]
    for e, p in zip(expect, trial.G_ema.parameters()):
        torch.testing.assert_close(p, e)
    assert trial.G_eval is trial.G_ema
    z = torch.randn(5, cfg.train.z_dim, generator=torch.Generator().manual_seed(12345))
    np.testing.assert_allclose(trial.sample(5), trial.G_ema(z).detach().numpy(), rtol=1e-6)
    off = Trial(expand_grid(parse_config(tiny_config(train={"g_ema": 0.0})))[0], local_storage, "s")
    assert off.G_ema is None and off.G_eval is off.G
    with pytest.raises(ConfigError, match="train.g_ema"):
        parse_config(tiny_config(train={"g_ema": 1.0}))


def test_test_of_constant_seeds_answers_without_a_warning():
    from gan_tasks.evaluation.stats import two_sample_p

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert two_sample_p(np.array([8.0, 8, 8]), np.array([8.0, 8, 8])) == 1.0
        assert two_sample_p(np.array([8.0, 8, 8]), np.array([1.0, 1, 1])) == pytest.approx(0.1)  # exact, not 0
        assert two_sample_p(np.array([0.1 + 1e-17, 0.1, 0.1]), np.array([0.1, 0.1, 0.1])) == 1.0
        assert 0.3 < two_sample_p(np.array([8.0, 8, 8]), np.array([7.0, 8, 6])) <= 0.5
        assert np.isnan(two_sample_p(np.array([1.0]), np.array([2.0, 3.0])))


def test_progress_line_counts_and_estimates():
    from flows.run.text import progress_line

    rows = [{"status": "completed"}, {"status": "failed"}, {"status": "completed", "skipped": True}]
    line = progress_line(rows, 10, 2, 40.0)
    assert line == "sweep: 3/10 trials done (2 completed, 1 failed), 2 running, 40 s elapsed, ETA ~140 s"
    assert progress_line(rows, 3, 2, 40.0).endswith("0 running, 40 s elapsed")


@pytest.mark.slow
def test_defaults_table_runs_every_loss_through_the_flow_and_keeps_every_row(local_storage, ray_session,
                                                                              prefect_harness):
    from flows.run.defaults_table import REASONS, run_table

    md, wall = run_table(local_storage, steps=20, seeds=[0, 1], datasets=("ring-8",))
    rows = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| loss")]
    assert sorted(r.split(" | ")[0].strip("| ") for r in rows) == LOSSES.names(), "one row per registered loss"
    assert "Regenerate: `gansweep defaults-table --steps 20 --seeds 0,1`" in md
    assert "| wgan-gp | d_steps 5, gp_lambda 0.1 |" in md  # the resolved 2-D defaults, as the trials ran
    # 20 steps form nothing: every loss misses the target, is listed, and none is dropped
    missed = md.split("Missed the target: ")[1].split(".")[0].split(", ")
    assert sorted(missed) == LOSSES.names()
    assert REASONS["wgan"] in md and "no published reason known" in md
    assert wall > 0
