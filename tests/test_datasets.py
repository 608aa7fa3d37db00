"""Datasets in storage: the content-hash node cache, Stacked MNIST from the real MNIST files,
the CIFAR-10 tarball format and its md5 gate, and an upload to S3 (moto) read back by a trial."""
import io
import os
import pickle
import tarfile

import numpy as np
import pytest
from typer.testing import CliRunner

from flows.cli import app
from gan_tasks.data.datasets import ensure_dataset, load_array, write_arrays
from gan_tasks.data.images import parse_cifar_tarball
from gan_tasks.data.userdata import open_split
from tests.conftest import DATA


def test_cache_is_keyed_by_content_and_read_once(local_storage, tmp_path):
    cache = str(tmp_path / "cache")
    folder = ("datasets", "toy")
    manifest = write_arrays(local_storage, folder, {"train": np.arange(12, dtype=np.uint8).reshape(3, 4)}, "toy")
    sha = manifest["files"]["train"]["sha256"]
    x = load_array(local_storage, (*folder, "train.npy"), cache)
    assert os.listdir(os.path.join(cache, "datasets")) == [f"{sha}.npy"]
    # A second read comes from the node cache: it works with the object gone from storage.
    local_storage.rm(*folder, "train.npy")
    assert np.array_equal(load_array(local_storage, (*folder, "train.npy"), cache), x)
    # New content under the same name is a new key, never the stale copy.
    write_arrays(local_storage, folder, {"train": np.ones((2, 2), np.uint8)}, "toy")
    assert load_array(local_storage, (*folder, "train.npy"), cache).shape == (2, 2)
    assert len(os.listdir(os.path.join(cache, "datasets"))) == 2


def test_node_cache_writes_are_all_or_nothing(tmp_path):
    """write_local (every node-cache write): a refused or failed write leaves the old file and no
    part file; a good one replaces the file whole."""
    from gan_tasks.data.storage import write_local

    path = str(tmp_path / "c" / "x.bin")
    write_local(path, b"old")
    assert os.listdir(tmp_path / "c") == ["x.bin"]

    def refuse(tmp):
        assert open(tmp, "rb").read() == b"new" and tmp != path  # checked aside, before it is published
        raise ValueError("not plain data")

    with pytest.raises(ValueError, match="not plain data"):
        write_local(path, b"new", check=refuse)
    with pytest.raises(TypeError):
        write_local(path, "not bytes")  # fails inside the write itself
    assert os.listdir(tmp_path / "c") == ["x.bin"] and open(path, "rb").read() == b"old"
    write_local(path, b"new", check=lambda tmp: None)
    assert os.listdir(tmp_path / "c") == ["x.bin"] and open(path, "rb").read() == b"new"


def test_download_that_differs_from_the_manifest_is_refused(local_storage, tmp_path):
    folder = ("datasets", "toy")
    write_arrays(local_storage, folder, {"train": np.zeros(5, np.float32)}, "toy")
    buf = io.BytesIO()
    np.save(buf, np.ones(5, np.float32))
    local_storage.write_bytes(buf.getvalue(), *folder, "train.npy")  # replaced behind the manifest's back
    with pytest.raises(ValueError, match="train.npy is corrupt: its sha256 differs from manifest.json"):
        load_array(local_storage, (*folder, "train.npy"), str(tmp_path / "c"))


def test_synthetic_datasets_get_a_manifest(local_storage):
    path = ensure_dataset(local_storage, "grid-25", {"side": 5, "spacing": 2.0, "std": 0.05, "n_samples": 1000,
                                                     "seed": 0})
    assert local_storage.exists(*path[:-1], "manifest.json")
    assert load_array(local_storage, path).shape == (1000, 2)


def test_stacked_mnist_from_the_real_mnist_files(local_storage):
    r = CliRunner().invoke(app, ["data", "upload", "stacked-mnist", str(DATA / "mnist"), "--storage",
                                 local_storage.url])
    assert r.exit_code == 0, r.output
    images, y = open_split(local_storage, "stacked-mnist", None)
    x = images.array()
    assert x.shape == (60000, 3, 28, 28) and x.dtype == np.uint8
    assert y.min() >= 0 and y.max() <= 999 and len(np.unique(y)) >= 990  # ~1,000 modes present
    # Each channel is a real MNIST digit whose label is that channel's decimal digit of the mode.
    from gan_tasks.data.images import SOURCES

    mnist = SOURCES["mnist"].read(str(DATA / "mnist"))
    first = {d.tobytes(): int(lab) for d, lab in zip(mnist["train"][:, 0], mnist["train_labels"])}
    for i in (0, 1, 12345):
        digits = [first[x[i, c].tobytes()] for c in range(3)]
        assert y[i] == 100 * digits[0] + 10 * digits[1] + digits[2]


def _fake_cifar_tarball(path):
    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            blob = pickle.dumps({b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
                                 b"labels": list(rng.integers(0, 10, 4))})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


def test_cifar_tarball_layout_parses_and_an_unknown_tarball_is_refused(tmp_path):
    path = tmp_path / "cifar-10-python.tar.gz"
    _fake_cifar_tarball(path)
    arrays = parse_cifar_tarball(path.read_bytes())
    assert arrays["train"].shape == (20, 3, 32, 32) and arrays["test"].shape == (4, 3, 32, 32)
    # Rows are CHW: the first 1,024 bytes are the red plane.
    with tarfile.open(path) as tar:
        first = pickle.load(tar.extractfile("cifar-10-batches-py/data_batch_1"), encoding="bytes")[b"data"][0]
    assert np.array_equal(arrays["train"][0, 0].ravel(), first[:1024])
    # Not the published tarball: refused on its md5, before anything is unpickled or written.
    r = CliRunner().invoke(app, ["data", "upload", "cifar10", str(tmp_path), "--storage", str(tmp_path / "st")])
    out = " ".join(r.output.split())  # rich wraps long lines
    assert r.exit_code == 2 and "does not match the published c58f30108f718f92721af3b95e74349a" in out
    assert not (tmp_path / "st").exists()


def test_unknown_upload_name_lists_the_uploadable_ones(tmp_path):
    r = CliRunner().invoke(app, ["data", "upload", "svhn", str(tmp_path), "--storage", str(tmp_path / "st")])
    assert r.exit_code == 2 and "cifar10, fashion-mnist, mnist, mnist-fashion, mnist-thick, stacked-mnist" in " ".join(r.output.split())


def test_fashion_mnist_upload_to_s3_reads_back_through_the_node_cache(s3_storage, tmp_path):
    r = CliRunner().invoke(app, ["data", "upload", "fashion-mnist", str(DATA / "fashion-mnist"), "--storage",
                                 s3_storage.url, "--s3-endpoint-url", s3_storage.endpoint_url])
    assert r.exit_code == 0, r.output
    x, _ = open_split(s3_storage, "fashion-mnist", None, cache_dir=str(tmp_path / "c"))
    _, y = open_split(s3_storage, "fashion-mnist", None, "test", cache_dir=str(tmp_path / "c"))
    assert x.shape == (60000, 1, 28, 28) and sorted(np.unique(y)) == list(range(10))
