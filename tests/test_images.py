"""MNIST through the real upload path, and the dcgan-28 model of seed 004 training on it."""
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from flows.cli import app
from gan_tasks.config import expand_grid, parse_config
from gan_tasks.data.userdata import open_split, upload_id
from gan_tasks.methods.models import build_models
from gan_tasks.training.trial import Trial
from tests.conftest import DATA, tiny_config


@pytest.fixture(scope="module")
def mnist_storage(tmp_path_factory):
    from gan_tasks.data.storage import Storage

    st = Storage.parse(str(tmp_path_factory.mktemp("mnist")))
    r = CliRunner().invoke(app, ["data", "upload", "mnist", str(DATA / "mnist"), "--storage", st.url])
    assert r.exit_code == 0, r.output
    return st


def test_mnist_upload_round_trips(mnist_storage):
    x, y = open_split(mnist_storage, "mnist", None)  # its current id's shards (tests/test_upload_shards.py)
    assert x.shape == (60000, 1, 28, 28) and x.take([0, 59999]).dtype == np.uint8
    assert sorted(np.unique(y)) == list(range(10))
    assert open_split(mnist_storage, "mnist", None, "test")[0].shape == (10000, 1, 28, 28)
    assert mnist_storage.exists("datasets", "mnist", upload_id(mnist_storage, "mnist"), "manifest.json")


def test_wrong_md5_is_refused(tmp_path):
    bad = tmp_path / "mnist"
    shutil.copytree(DATA / "mnist", bad)
    with open(bad / "t10k-labels-idx1-ubyte.gz", "ab") as f:
        f.write(b"\0")
    r = CliRunner().invoke(app, ["data", "upload", "mnist", str(bad), "--storage", str(tmp_path / "st")])
    assert r.exit_code == 2 and "does not match the published" in r.output
    assert not (tmp_path / "st" / "datasets" / "mnist" / "current.json").exists()


def test_dcgan28_has_seed_004_parameter_counts():
    g, d = build_models("dcgan-28", (1, 28, 28), 100, {})
    # Keras's "Trainable params: 2,305,472 / Non-trainable: 25,472" (BN moving mean and variance).
    assert sum(p.numel() for p in g.parameters() if p.requires_grad) == 2_305_472
    assert sum(b.numel() for n, b in g.named_buffers() if n.endswith(("running_mean", "running_var"))) == 25_472
    assert sum(p.numel() for p in d.parameters()) == 212_865


def test_missing_dataset_names_the_upload_command(local_storage):
    from gan_tasks.data.datasets import ensure_dataset

    with pytest.raises(FileNotFoundError, match="gansweep data upload fashion-mnist"):
        ensure_dataset(local_storage, "fashion-mnist", {})


def test_dcgan28_trains_on_uploaded_mnist(mnist_storage):
    cfg = parse_config(tiny_config(dataset="mnist", model="dcgan-28",
                                   train={"steps": 3, "batch_size": 8, "z_dim": 100, "log_every": 1},
                                   grid={"loss": ["non-saturating"], "optimizer": ["adam"], "seed": [0]}))
    t = Trial(expand_grid(cfg)[0], mnist_storage, "img")
    assert t.data[:500].min() >= -1 and t.data[:500].max() <= 1
    rows = [t.train_step(log_now=True) for _ in range(3)]
    assert all(np.isfinite(r["loss_d"]) for r in rows)
    assert t.sample(4).shape == (4, 1, 28, 28)
