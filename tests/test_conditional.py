"""Conditional GAN programs: what they cannot combine with is refused naming the field, the projection,
AC-GAN and concatenation heads compute their papers' formulas, labels reach the batches, every loss
trains with every conditional program, and the per-class mode accuracy counts what it says."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gan_tasks.config import ConfigError, expand_grid, parse_config
from gan_tasks.data.datasets import DATASETS, dataset_path, ensure_dataset, load_array
from gan_tasks.evaluation.conditional import per_class_mode_accuracy
from gan_tasks.methods.catalog import LOSSES, MODELS
from gan_tasks.training.programs.conditional import ACD, ConcatD, ProjectionD
from gan_tasks.training.trial import Trial
from tests.conftest import tiny_config

CONDITIONAL = ("cgan-concat", "cgan-projection", "acgan")


def test_default_program_keeps_trial_ids():
    # The ids of tiny_config's trials before programs existed (commit a283bfb): unchanged.
    old = ["444711722814", "c1bdb7bb57e1"]
    assert [t.trial_id for t in expand_grid(parse_config(tiny_config()))] == old
    assert [t.trial_id for t in expand_grid(parse_config(tiny_config(program="gan")))] == old
    other = expand_grid(parse_config(tiny_config(program="cgan-concat")))
    assert not {t.trial_id for t in other} & set(old)
    assert other[0].cell == "cgan-concat/non-saturating/adam" and expand_grid(parse_config(tiny_config()))[0].cell \
        == "non-saturating/adam"


@pytest.mark.parametrize("over, field", [
    ({"program": "cyclegan-typo"}, "program"),
    ({"program": "acgan", "pack_seeds": 2}, "pack_seeds"),
    ({"program": "cgan-projection", "tricks": {"pac": 2}}, "tricks.pac"),
    ({"program": "acgan", "grid": {"loss": ["lsgan"], "optimizer": ["adam"], "seed": [0],
                                   "tricks": [{}, {"feature_matching": True}]}}, "grid.tricks.1.feature_matching"),
    ({"program": "cgan-concat", "model": "mlp-ae", "grid": {"loss": ["began"], "optimizer": ["adam"], "seed": [0]}},
     "model"),
])
def test_program_combinations_that_cannot_run_name_the_field(over, field):
    with pytest.raises(ConfigError) as e:
        parse_config(tiny_config(**over))
    assert f"  {field}:" in str(e.value), str(e.value)


def test_list_programs():
    r = subprocess.run([sys.executable, "-m", "flows.cli", "list", "programs"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for name in ("gan", *CONDITIONAL):
        assert name in r.stdout
    assert "class_accuracy" in r.stdout


# --- formula-level ------------------------------------------------------------------------------------
def _mlp_d(dim: int = 2):
    torch.manual_seed(0)
    _, d = MODELS.get("mlp").build((dim,), 4, hidden=8, activation="leaky_relu")
    return d


def test_projection_head_is_psi_plus_embedding_dot_features():
    d = ProjectionD(_mlp_d(), 3, (2,))
    x, y = torch.randn(5, 2), torch.tensor([0, 1, 2, 1, 0])
    phi = d.base.body(x)
    want = d.base.head(phi).squeeze(1) + (d.embed.weight[y] * phi).sum(1)
    assert torch.allclose(d(x, y).squeeze(1), want, atol=1e-6)
    # the label only enters through the projection: two labels differ by (e_a - e_b).phi(x)
    diff = d(x, torch.zeros(5, dtype=torch.long)) - d(x, torch.ones(5, dtype=torch.long))
    assert torch.allclose(diff.squeeze(1), phi @ (d.embed.weight[0] - d.embed.weight[1]), atol=1e-6)


def test_acgan_head_ignores_the_label_and_its_classifier_reads_the_features():
    d = ACD(_mlp_d(), 3, (2,))
    x = torch.randn(5, 2)
    assert torch.equal(d(x, torch.zeros(5, dtype=torch.long)), d(x, torch.full((5,), 2)))
    assert torch.allclose(d.logits(x), d.cls(d.base.body(x)), atol=1e-6)


def test_concat_head_appends_the_one_hot_label():
    base = _mlp_d(2 + 3)
    d = ConcatD(base, 3)
    x, y = torch.randn(4, 2), torch.tensor([2, 0, 1, 2])
    assert torch.equal(d(x, y), base(torch.cat([x, F.one_hot(y, 3).float()], 1)))
    img = ConcatD(torch.nn.Flatten(), 3)(torch.zeros(2, 1, 2, 2), torch.tensor([1, 2]))
    assert img.view(2, 4, 4)[:, 1:].sum(-1).tolist() == [[0, 4, 0], [0, 0, 4]]  # K constant channels


def test_acgan_losses_are_the_class_log_likelihood(local_storage):
    t = _trial(local_storage, "acgan", "lsgan")
    p = t.program
    real, z = p._batch()
    fake = p._gen(z)
    want_d = F.cross_entropy(p.D.logits(real), p.y) + F.cross_entropy(p.D.logits(fake), p.y)
    assert torch.allclose(p._aux_d(p.D, real, fake), want_d)
    assert torch.allclose(p._aux_g(p.D, fake), F.cross_entropy(p.D.logits(fake), p.y))


def test_per_class_mode_accuracy():
    modes = np.array([[1.0, 0.0], [-1.0, 0.0]])
    y = np.array([0, 0, 1, 1])
    x = np.array([[1.0, 0.0], [1.02, 0.0], [-1.0, 0.0], [1.0, 0.0]])  # the last: label 1 on mode 0
    acc = per_class_mode_accuracy(x, y, modes, 0.05)
    assert acc.tolist() == [1.0, 0.5]


# --- label plumbing ------------------------------------------------------------------------------------
def test_mixture_labels_are_each_points_component(local_storage):
    ds = parse_config(tiny_config()).dataset
    ensure_dataset(local_storage, ds.name, ds.params)
    x = load_array(local_storage, dataset_path(ds.name, ds.params))
    y = load_array(local_storage, dataset_path(ds.name, ds.params, "train_labels"))
    modes = DATASETS.get(ds.name).modes(**ds.params)
    nearest = np.linalg.norm(x[:, None] - modes[None], axis=2).argmin(1)
    assert len(y) == len(x) and np.array_equal(nearest, y)  # sigma 0.01 on radius 1: the nearest mode is its own


def _trial(storage, program: str, loss: str, **train) -> Trial:
    cfg = parse_config(tiny_config(program=program, grid={"loss": [loss], "optimizer": ["adam"], "seed": [0]},
                                   train={"steps": 3, "batch_size": 32, "log_every": 1, "checkpoint_every": 3,
                                          **train}))
    ensure_dataset(storage, cfg.dataset.name, cfg.dataset.params)
    return Trial(expand_grid(cfg)[0], storage, "p")


def test_a_batch_carries_the_labels_of_its_points(local_storage):
    t = _trial(local_storage, "cgan-projection", "non-saturating")
    real, _ = t.program._batch()
    modes = DATASETS.get("ring-8").modes(**t.cfg.dataset.params)
    nearest = torch.cdist(real, torch.from_numpy(modes)).argmin(1)
    assert torch.equal(nearest, t.program.y)


@pytest.mark.parametrize("program", CONDITIONAL)
def test_every_loss_trains_every_conditional_program(local_storage, program):
    for loss in LOSSES.names():
        if LOSSES.get(loss).autoencoder:  # began: refused (no autoencoder D with a label), checked above
            continue
        t = _trial(local_storage, program, loss)
        rows = [t.train_step(True) for _ in range(3)]  # a non-finite loss would raise Diverged
        assert [r["step"] for r in rows] == [1, 2, 3] and all(np.isfinite(r["loss_d"]) for r in rows)
        x = t.program.sample_given(np.arange(8))
        assert x.shape == (8, 2) and np.isfinite(x).all()
