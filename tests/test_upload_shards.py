"""The built-in uploads (`gansweep data upload`: mnist, fashion-mnist, stacked-mnist, cifar10) are ordinary
sharded datasets: shards + manifest under datasets/NAME/<id>/, id = the manifest's hash, read memory-mapped
like `data add`'s. Their trials keep their ids and train bit-identically to the whole-array path before."""
import json

import numpy as np
import pytest
import torch

from gan_tasks.config import expand_grid, parse_config
from gan_tasks.data.images import SOURCES, upload
from gan_tasks.data.storage import Storage
from gan_tasks.data.userdata import list_datasets, open_split, upload_id
from gan_tasks.training.mapped import MappedImages
from gan_tasks.training.programs.gan import to_model_range
from gan_tasks.training.trial import Trial
from tests.conftest import DATA, tiny_config

# The trial ids of _config("gan") and _config("acgan") on main before the uploads were sharded (c0203e0).
IDS = {"gan": "7f24b8d847a4", "acgan": "d7c2b8039ded"}


@pytest.fixture(scope="module")
def mnist(tmp_path_factory) -> Storage:
    st = Storage.parse(str(tmp_path_factory.mktemp("mnist")))
    upload(st, "mnist", str(DATA / "mnist"))
    return st


def _config(program: str):
    return expand_grid(parse_config(tiny_config(
        dataset="mnist", model="dcgan-28", program=program,
        train={"steps": 4, "batch_size": 8, "z_dim": 100, "log_every": 1},
        grid={"loss": ["non-saturating"], "optimizer": ["adam"], "seed": [3]})))[0]


def test_an_upload_is_a_sharded_dataset_whose_id_is_stable(mnist, tmp_path):
    did = upload_id(mnist, "mnist")
    m = json.loads(mnist.read_bytes("datasets", "mnist", did, "manifest.json"))
    assert m["id"] == did and len(did) == 12 and m["params"]["upload"] == "mnist"
    assert [s["count"] for s in m["splits"].values()] == [60000, 10000] and m["classes"] == list("0123456789")
    assert len(m["splits"]["train"]["shards"]) == 15  # 4,096 images a shard
    assert not mnist.exists("datasets", "mnist", "train.npy")  # no whole array beside the shards
    (row,) = [r for r in list_datasets(mnist) if r["name"] == "mnist"]
    assert (row["id"], row["kind"], row["current"]) == (did, "upload", True)
    # the same files: the same id, uploaded again here or into another storage
    assert upload(mnist, "mnist", str(DATA / "mnist"))["id"] == did
    assert upload(Storage.parse(str(tmp_path / "other")), "mnist", str(DATA / "mnist"))["id"] == did
    images, labels = open_split(mnist, "mnist", None, "test", cache_dir=str(tmp_path / "cache"))
    whole = SOURCES["mnist"].read(str(DATA / "mnist"))
    assert isinstance(images.shards[0], np.memmap)
    assert np.array_equal(images.array(), whole["test"]) and np.array_equal(labels, whole["test_labels"])


def test_training_is_bit_identical_to_the_whole_array_and_ids_unchanged(mnist):
    """acgan: the GAN step (gan.py's _batch) with the labels too; a few steps of dcgan-28 at batch 8."""
    assert {p: _config(p).trial_id for p in IDS} == IDS
    cfg = _config("acgan")
    new = Trial(cfg, mnist, "new")
    assert isinstance(new.data, MappedImages) and not new.data.keyed
    rows = [new.train_step(log_now=True) for _ in range(cfg.train.steps)]  # before `old` reseeds torch
    old = Trial(cfg, mnist, "old")
    # the path before: the whole training array in memory, converted once, indexed by the trial's generator
    whole = SOURCES["mnist"].read(str(DATA / "mnist"))
    old.program.data = to_model_range(torch.from_numpy(whole["train"].copy()))
    old.program.labels = torch.from_numpy(whole["train_labels"].astype(np.int64))
    assert torch.equal(new.program.labels, old.program.labels)
    idx = torch.tensor([0, 5, 4095, 4096, 59999])  # across shard boundaries
    assert torch.equal(new.data[idx], old.program.data[idx])
    for a in rows:
        b = old.train_step(log_now=True)
        np.testing.assert_equal({**a, "sweep_id": ""}, {**b, "sweep_id": ""})  # every logged number, NaN = NaN
    for net in ("G", "D"):
        sa, sb = getattr(new, net).state_dict(), getattr(old, net).state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa), f"{net} differs"
    assert torch.equal(new.gen.get_state(), old.gen.get_state())


def test_every_trial_row_names_its_data(mnist):
    """dataset_id in the trials table: a built-in upload's id (from storage: its config carries none), a 2-D
    mixture's parameters hash (the folder of its points)."""
    import pyarrow.parquet as pq

    from gan_tasks.data.datasets import params_hash
    from gan_tasks.training.rows import now, trial_row, write_trial_row

    ring = expand_grid(parse_config(tiny_config()))[0]
    for cfg, want in ((_config("gan"), upload_id(mnist, "mnist")), (ring, params_hash(ring.dataset.params))):
        write_trial_row(mnist, trial_row(cfg, "rows", "completed", 1, now(), now()))
        row = pq.read_table(mnist.uri("sweeps", "rows", "trials", f"{cfg.trial_id}.parquet")).to_pylist()[0]
        assert row["dataset_id"] == want and len(want) == 12


def test_intra_class_fid_below_128_samples_a_class_is_refused():
    """acgan on mnist: intra-class FID is each class's FID from fidelity_samples // 10 samples a side."""
    def cfg(**ev):
        return tiny_config(dataset="mnist", model="dcgan-28", program="acgan", evaluation=ev)

    with pytest.raises(ValueError, match=r"fidelity_samples\n?.*1000: intra-class FID would get 100 samples a class "
                                         r"of mnist's 10; it needs at least 128 .* raise it to 1280, or use KID"):
        parse_config(cfg(fidelity_samples=1000))
    with pytest.raises(ValueError, match="eval_every_samples"):
        parse_config(cfg(fidelity_samples=1280, eval_every=5))  # eval_every_samples 1000: 100 a class
    parse_config(cfg(fidelity_samples=1280, eval_every=5, eval_every_samples=1280))
    parse_config(cfg(fidelity_samples=1000, image_metrics=["isc", "kid", "prc"]))  # intra-class KID only: fine


def test_an_upload_from_before_sharding_is_refused_with_the_command_that_redoes_it(local_storage):
    """Whole arrays under datasets/mnist/ (the layout before) and no current.json: preflight names the
    upload command; the same upload then replaces the arrays with shards."""
    from flows.guard.preflight import PreflightError, check_storage
    from gan_tasks.data.datasets import write_arrays

    write_arrays(local_storage, ("datasets", "mnist"), {"train": np.zeros((2, 1, 28, 28), np.uint8)}, "mnist")
    sweep = parse_config(tiny_config(dataset="mnist", model="dcgan-28"))
    with pytest.raises(PreflightError, match=r"datasets/mnist/current.json; upload it first: gansweep data upload "
                                             r"mnist PATH .* is redone by the same command"):
        check_storage(local_storage, sweep)
