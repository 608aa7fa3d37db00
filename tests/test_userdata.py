"""A sweep on a dataset added with `gansweep data add`: resolved from storage to its id at validation,
the id in every trial's identity and row, shards memory-mapped in the trial, batches a function of
(dataset id, seed, step), refusals naming both shapes; and one sweep through the real flow."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from flows.cli import app
from gan_tasks.config import ConfigError, expand_grid, load_config, parse_config
from gan_tasks.data.ingest import IngestOptions, add
from gan_tasks.data.userdata import batch_indices
from gan_tasks.training.mapped import MappedImages
from gan_tasks.training.trial import Trial
from tests.conftest import tiny_config
from tests.test_ingest import mnist_arrays, write_pngs  # noqa: F401 - the fixture

GREY28 = IngestOptions(size=28, mode="L", labels="subfolders")


@pytest.fixture
def added(tmp_path, local_storage, mnist_arrays):  # noqa: F811
    """digits (labelled, 28x28 grey) and plain (unlabelled) in local_storage; returns their manifests."""
    x, y = mnist_arrays
    write_pngs(tmp_path / "png", x[:120], y[:120])
    write_pngs(tmp_path / "flat", x[:60])
    return (add(local_storage, "digits", str(tmp_path / "png"), GREY28),
            add(local_storage, "plain", str(tmp_path / "flat"), IngestOptions(size=28, mode="L")))


def sweep_file(tmp_path, **over) -> str:
    cfg = tiny_config(dataset="digits", model="dcgan-28", grid={"loss": ["non-saturating"], "optimizer": ["adam"],
                                                                 "seed": [0, 1]},
                      train={"steps": 6, "batch_size": 16, "log_every": 2, "checkpoint_every": 3},
                      evaluation={"n_samples": 64})
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({**cfg, **over}))
    return str(path)


def validate(path, *args):
    r = CliRunner().invoke(app, ["validate", path, *map(str, args)])
    return r.exit_code, " ".join(r.output.split())


def test_name_resolves_to_the_current_id(tmp_path, local_storage, added):
    digits, _ = added
    sweep = load_config(sweep_file(tmp_path), storage=local_storage)
    assert (sweep.dataset.id, sweep.dataset.shape, sweep.dataset.classes) == (digits["id"], (1, 28, 28), 10)
    code, out = validate(sweep_file(tmp_path), "--storage", local_storage.url)
    assert code == 0 and f"dataset digits (images): id {digits['id']}, 1x28x28, 10 classes" in out
    # the resolved config re-validates without storage (the actors' copy), the same trials
    again = parse_config(sweep.model_dump(mode="json"))
    assert [t.trial_id for t in expand_grid(again)] == [t.trial_id for t in expand_grid(sweep)]


def test_without_storage_a_named_dataset_is_refused(tmp_path, added):
    code, out = validate(sweep_file(tmp_path))
    assert code == 2 and "dataset: unknown dataset 'digits'" in out and "give --storage URL" in out


def test_the_id_is_part_of_the_trial_identity(tmp_path, local_storage, added, mnist_arrays):  # noqa: F811
    old = load_config(sweep_file(tmp_path), storage=local_storage)
    x, y = mnist_arrays
    write_pngs(tmp_path / "png2", x[:121], y[:121])  # one image more: a new id, now current
    new_id = add(local_storage, "digits", str(tmp_path / "png2"), GREY28)["id"]
    new = load_config(sweep_file(tmp_path), storage=local_storage)
    assert new.dataset.id == new_id != old.dataset.id
    assert not {t.trial_id for t in expand_grid(old)} & {t.trial_id for t in expand_grid(new)}
    pinned = load_config(sweep_file(tmp_path, dataset=f"digits@{old.dataset.id}"), storage=local_storage)
    assert [t.trial_id for t in expand_grid(pinned)] == [t.trial_id for t in expand_grid(old)]


def test_unknown_id_lists_the_ids(tmp_path, local_storage, added):
    code, out = validate(sweep_file(tmp_path, dataset="digits@0123456789ab"), "--storage", local_storage.url)
    assert code == 2 and f"dataset 'digits' has no id '0123456789ab'" in out and added[0]["id"] in out


def test_shape_mismatch_names_both_shapes(tmp_path, local_storage, added):
    code, out = validate(sweep_file(tmp_path, model="dcgan-32"), "--storage", local_storage.url)
    assert code == 2 and "model 'dcgan-32' takes 32-pixel images, dataset 'digits' is 1x28x28" in out


def test_conditional_program_on_unlabelled_data_is_refused(tmp_path, local_storage, added):
    code, out = validate(sweep_file(tmp_path, dataset="plain", program="cgan-concat"), "--storage", local_storage.url)
    assert code == 2 and "dataset: program 'cgan-concat' trains on class labels; dataset 'plain' has none " \
                         "(added without --labels subfolders)" in out
    assert validate(sweep_file(tmp_path, program="cgan-concat"), "--storage", local_storage.url)[0] == 0


def test_added_datasets_take_no_params(tmp_path, local_storage, added):
    code, out = validate(sweep_file(tmp_path, dataset={"name": "digits", "params": {"n_samples": 5}}),
                         "--storage", local_storage.url)
    assert code == 2 and "dataset.params: dataset 'digits' (added with gansweep data add) takes no params" in out


def test_builtin_datasets_take_no_id():
    with pytest.raises(ConfigError, match="built in: it takes params, not an id"):
        parse_config(tiny_config(dataset="ring-8@0123456789ab"))


def _trial(tmp_path, local_storage, **over) -> Trial:
    sweep = load_config(sweep_file(tmp_path, **over), storage=local_storage)
    return Trial(expand_grid(sweep)[0], local_storage, "s")


def test_trial_memory_maps_and_draws_batches_by_id_seed_step(tmp_path, local_storage, added):
    t = _trial(tmp_path, local_storage)
    data = t.program.data
    assert isinstance(data, MappedImages) and isinstance(data.images.shards[0], np.memmap)
    assert tuple(data.shape) == (120, 1, 28, 28)
    batch = data[data.indices(5, 0, 16)]
    want = data.images.take(batch_indices(added[0]["id"], 0, 5, 0, 120, 16))
    assert torch.equal(batch, torch.from_numpy(want).float() / 127.5 - 1)
    t.program.step_now, t.program.draws = 5, 0  # the program's first batch of step 5 is that one
    assert torch.equal(t.program._batch()[0], batch)
    rows = [t.train_step(log_now=True) for _ in range(3)]
    assert all(np.isfinite(r["loss_d"]) for r in rows)


def test_resume_is_bit_identical(tmp_path, local_storage, added):
    ref = _trial(tmp_path, local_storage)
    for _ in range(4):
        ref.train_step(log_now=False)
    cut = _trial(tmp_path, local_storage)
    for _ in range(2):
        cut.train_step(log_now=False)
    cut.save_checkpoint()
    resumed = _trial(tmp_path, local_storage)
    assert resumed.try_resume() and resumed.step == 2
    for _ in range(2):
        resumed.train_step(log_now=False)
    for a, b in zip(ref.program.G.state_dict().values(), resumed.program.G.state_dict().values()):
        assert torch.equal(a, b)


def test_conditional_program_trains_on_class_folders(tmp_path, local_storage, added):
    t = _trial(tmp_path, local_storage, program="cgan-concat")
    assert t.program.k == 10 and t.program.labels.tolist() == t.program.data.labels.tolist()
    assert set(t.program.labels.tolist()) == set(range(10))
    assert np.isfinite(t.train_step(log_now=True)["loss_d"])


@pytest.mark.slow
def test_sweep_on_an_added_dataset_through_the_flow(ray_session, prefect_harness, tmp_path, local_storage, added):
    from flows.run.flow import sweep_flow

    sweep = load_config(sweep_file(tmp_path), storage=local_storage)
    out = sweep_flow(sweep.model_dump(mode="json"), local_storage.url, "mine")
    assert out["not_completed"] == 0 and out["counts"] == {"completed": 2}
    trials = pd.read_parquet(local_storage.uri("sweeps", "mine", "trials"))
    assert sorted(trials.seed) == [0, 1]
    assert (trials.dataset == "digits").all() and (trials.dataset_id == added[0]["id"]).all()
    assert set(trials.trial_id) == {t.trial_id for t in expand_grid(sweep)}


def test_fid_on_fewer_images_than_the_feature_dimension_is_refused(tmp_path, local_storage, added):
    """digits has 120 training images: FID against the MNIST classifier's 128 features is refused at
    validation (its reference covariance would be singular); KID alone is fine."""
    ev = {"n_samples": 64, "classifier_dataset": "mnist", "fidelity_samples": 200}
    code, out = validate(sweep_file(tmp_path, evaluation=ev), "--storage", local_storage.url)
    assert code == 2 and "dataset: digits@" in out and "has 120 training images, fewer than the 128 features of " \
                                                       "classifier" in out and "use KID" in out, out
    kid = {**ev, "image_metrics": ["isc", "kid", "prc"]}
    assert validate(sweep_file(tmp_path, evaluation=kid), "--storage", local_storage.url)[0] == 0
