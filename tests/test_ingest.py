"""`gansweep data add` / `data ls`: PNG folders written from the real MNIST files, ingested into
versioned shards (gan_tasks/data/ingest.py); determinism, bad files, labels, limits, S3."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from flows.cli import app
from gan_tasks.data.datasets import ensure_dataset, resolve_params
from gan_tasks.data.images import SOURCES
from gan_tasks.data.ingest import IngestError, IngestOptions, add
from gan_tasks.data.storage import Storage
from gan_tasks.data.userdata import batch_indices, list_datasets, open_split, read_manifest
from tests.conftest import DATA

N = 200


@pytest.fixture(scope="session")
def mnist_arrays():
    arrs = SOURCES["mnist"].read(str(DATA / "mnist"))
    return arrs["train"][:N, 0], arrs["train_labels"][:N]


def write_pngs(folder, images, labels=None) -> list[str]:
    """images[i] as <folder>/<label>/<i>.png (or <folder>/<i>.png); returns the relative paths."""
    rel = []
    for i, img in enumerate(images):
        r = f"{labels[i]}/{i:05d}.png" if labels is not None else f"{i:05d}.png"
        os.makedirs(os.path.dirname(os.path.join(folder, r)), exist_ok=True)
        Image.fromarray(img).save(os.path.join(folder, r))
        rel.append(r)
    return rel


@pytest.fixture
def digits(tmp_path, mnist_arrays):
    x, y = mnist_arrays
    write_pngs(tmp_path / "png", x, y)
    return tmp_path / "png"


GREY28 = IngestOptions(size=28, mode="L", labels="subfolders")


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_images_and_labels_round_trip(digits, local_storage, mnist_arrays):
    m = add(local_storage, "digits", str(digits), GREY28)
    x, y = mnist_arrays
    images, labels = open_split(local_storage, "digits", m["id"])
    # sorted relative paths: class folder "0" first, then by index within it
    order = sorted(range(N), key=lambda i: f"{y[i]}/{i:05d}.png")
    assert images.shape == (N, 1, 28, 28) and m["classes"] == [str(c) for c in range(10)]
    assert np.array_equal(images.take(np.arange(N)), x[order][:, None])  # 28 -> 28: pixels unchanged
    assert np.array_equal(np.array(m["classes"])[labels].astype(int), y[order])
    assert isinstance(images.shards[0], np.memmap)


def test_same_images_same_id_one_byte_new_id(digits, tmp_path, local_storage):
    a = add(local_storage, "digits", str(digits), GREY28)["id"]
    copy = tmp_path / "copy"
    shutil.copytree(digits, copy)  # another folder, same bytes: same id
    assert add(local_storage, "digits", str(copy), GREY28)["id"] == a
    victim = copy / "3" / sorted(os.listdir(copy / "3"))[0]
    img = np.array(Image.open(victim))
    img[0, 0] ^= 1
    Image.fromarray(img).save(victim)
    b = add(local_storage, "digits", str(copy), GREY28)["id"]
    assert b != a
    assert [r["id"] for r in list_datasets(local_storage) if r["current"]] == [b]
    assert read_manifest(local_storage, "digits", a)["id"] == a  # the old version stays addressable


def test_shards_are_fixed_size_and_hashed(digits, local_storage):
    m = add(local_storage, "digits", str(digits), IngestOptions(size=28, mode="L", shard_images=64))
    shards = m["splits"]["train"]["shards"]
    assert [s["shape"][0] for s in shards] == [64, 64, 64, 8]
    images, labels = open_split(local_storage, "digits", m["id"])
    idx = np.array([0, 63, 64, 199, 130])
    assert np.array_equal(images.take(idx), np.concatenate([np.asarray(s) for s in images.shards])[idx])
    assert (labels == -1).all() and m["classes"] == []
    assert [f["path"] for f in m["splits"]["train"]["files"]] == sorted(f["path"] for f in m["splits"]["train"]["files"])


def test_a_corrupt_shard_is_refused_on_read(digits, local_storage, tmp_path):
    m = add(local_storage, "digits", str(digits), GREY28)
    path = os.path.join(local_storage.url, "datasets", "digits", m["id"], "train-00000.npy")
    blob = bytearray(open(path, "rb").read())
    blob[-1] ^= 1
    open(path, "wb").write(bytes(blob))
    with pytest.raises(ValueError, match="corrupt"):
        open_split(local_storage, "digits", m["id"], cache_dir=str(tmp_path / "fresh-cache"))


def test_test_fraction_and_test_from(digits, tmp_path, local_storage, mnist_arrays):
    m = add(local_storage, "digits", str(digits), IngestOptions(size=28, mode="L", labels="subfolders",
                                                                test_fraction=0.25))
    assert (m["splits"]["train"]["count"], m["splits"]["test"]["count"]) == (150, 50)
    x, y = mnist_arrays
    write_pngs(tmp_path / "held", x[:20], y[:20])
    m = add(local_storage, "digits", str(digits), GREY28, test_from=str(tmp_path / "held"))
    assert (m["splits"]["train"]["count"], m["splits"]["test"]["count"]) == (200, 20)


def test_rgb_centre_crop_and_exif(tmp_path, local_storage):
    src = tmp_path / "photos"
    src.mkdir()
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, 10:30] = (255, 0, 0)  # the centred 20x20 square is red, the sides black
    Image.fromarray(wide).save(src / "wide.png")
    tall = np.zeros((40, 20, 3), np.uint8)
    tall[:20, :, 2], tall[20:, :, 1] = 255, 255  # top half blue, bottom half green
    tall = Image.fromarray(tall)
    exif = tall.getexif()
    exif[0x0112] = 6  # orientation: shown rotated 90 degrees clockwise, 40 wide x 20 tall
    tall.save(src / "tall.jpg", exif=exif, quality=100)
    m = add(local_storage, "photos", str(src), IngestOptions(size=8))
    images, _ = open_split(local_storage, "photos", m["id"])
    x = images.take(np.arange(2)).astype(int)
    assert x.shape == (2, 3, 8, 8)
    # tall.jpg sorts first; upright, its centre square is green on the left, blue on the right
    assert (x[0, 1, :, :3] > 200).all() and (x[0, 2, :, :3] < 50).all()
    assert (x[0, 2, :, 5:] > 200).all() and (x[0, 1, :, 5:] < 50).all()
    assert (x[1, 0] > 240).all() and (x[1, 1:] < 10).all()  # wide.png: red, the black sides cropped away


@pytest.fixture
def bad_corpus(digits):
    png = sorted((digits / "0").iterdir())[0].read_bytes()
    (digits / "0" / "truncated.png").write_bytes(png[: len(png) // 2])
    (digits / "0" / "empty.png").write_bytes(b"")
    (digits / "1" / "notes.png").write_text("not an image")
    (digits / "1" / "folder.png").mkdir()  # unreadable as a file, also for root
    os.symlink(digits / "gone.png", digits / "2" / "dangling.png")
    return digits


def test_bad_files_are_listed_and_nothing_is_written(bad_corpus, local_storage):
    r = cli("data", "add", "digits", bad_corpus, "--labels", "subfolders", "--size", "28", "--mode", "L",
            "--storage", local_storage.url)
    assert r.exit_code == 2, r.output
    line = " ".join(r.output.split())
    assert "5 file(s) cannot be read or decoded" in line
    for name in ("truncated.png", "empty.png", "notes.png", "folder.png", "dangling.png"):
        assert name in line
    assert list_datasets(local_storage) == []
    assert not [n for n in local_storage.ls("datasets", "digits")]  # the temporary prefix is gone too


def test_skip_bad_records_them(bad_corpus, local_storage):
    m = add(local_storage, "digits", str(bad_corpus), IngestOptions(size=28, mode="L", labels="subfolders",
                                                                    skip_bad=True))
    assert m["splits"]["train"]["count"] == N
    assert sorted(b["path"] for b in m["skipped"]) == ["train:0/empty.png", "train:0/truncated.png",
                                                      "train:1/folder.png", "train:1/notes.png", "train:2/dangling.png"]


def test_mixed_sizes_with_crop_none_are_refused(digits, local_storage):
    Image.new("L", (30, 30)).save(digits / "0" / "big.png")
    with pytest.raises(IngestError, match="one size; found 2 sizes: 28x28, 30x30"):
        add(local_storage, "digits", str(digits), IngestOptions(size=28, mode="L", crop="none"))
    assert add(local_storage, "digits", str(digits), IngestOptions(size=28, mode="L"))["splits"]["train"]["count"] == N + 1


def test_loose_files_with_subfolder_labels_are_refused(digits, local_storage):
    Image.new("L", (28, 28)).save(digits / "loose.png")
    with pytest.raises(IngestError, match="1 file.s. not in a class sub-folder: loose.png"):
        add(local_storage, "digits", str(digits), GREY28)


def test_over_the_size_limit_is_refused_before_writing(digits, local_storage):
    r = cli("data", "add", "digits", digits, "--size", "28", "--mode", "L", "--max-bytes", 100_000,
            "--storage", local_storage.url)
    assert r.exit_code == 2
    assert "200 images of 1x28x28 are 156,800 bytes, over the limit of 100,000" in " ".join(r.output.split())
    assert not local_storage.exists("datasets", "digits")


def test_builtin_names_and_bad_options_are_refused(digits, local_storage):
    assert "built-in" in cli("data", "add", "mnist", digits, "--storage", local_storage.url).output
    r = cli("data", "add", "digits", digits, "--mode", "CMYK", "--storage", local_storage.url)
    assert r.exit_code == 2 and "--mode 'CMYK': valid: L, RGB" in r.output


def test_data_ls(digits, local_storage):
    ensure_dataset(local_storage, "ring-8", resolve_params("ring-8", {}))  # built-ins are not listed
    a = add(local_storage, "digits", str(digits), GREY28)["id"]
    b = add(local_storage, "digits", str(digits), IngestOptions(size=32, mode="L", labels="subfolders",
                                                                test_fraction=0.1))["id"]
    r = cli("data", "ls", "--storage", local_storage.url)
    assert r.exit_code == 0
    lines = {ln.split()[1]: ln for ln in r.output.splitlines()[1:]}
    assert lines[a].split()[:2] == ["digits", a] and "train 200" in lines[a] and "1x28x28" in lines[a]
    assert f"{b} *" in lines[b] and "train 180 / test 20" in lines[b] and "1x32x32" in lines[b]
    assert " 10 " in lines[b]


def test_batch_order_depends_on_dataset_seed_step_only():
    a = batch_indices("b858458ee6f3", 0, 7, 0, 1000, 64)
    assert np.array_equal(a, batch_indices("b858458ee6f3", 0, 7, 0, 1000, 64))
    for other in (batch_indices("b858458ee6f4", 0, 7, 0, 1000, 64), batch_indices("b858458ee6f3", 1, 7, 0, 1000, 64),
                  batch_indices("b858458ee6f3", 0, 8, 0, 1000, 64), batch_indices("b858458ee6f3", 0, 7, 1, 1000, 64)):
        assert not np.array_equal(a, other)


def test_ingest_from_s3(digits, s3_storage, tmp_path, local_storage):
    """Images in a bucket of the S3 test endpoint into a dataset in another bucket; same id as local."""
    src = Storage.parse(s3_storage.url + "-images", endpoint_url=s3_storage.endpoint_url)
    for root, _, files in os.walk(digits):
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), digits)
            src.write_bytes(open(os.path.join(root, f), "rb").read(), rel)
    r = cli("data", "add", "digits", src.url, "--labels", "subfolders", "--size", "28", "--mode", "L",
            "--storage", s3_storage.url, "--s3-endpoint-url", s3_storage.endpoint_url)
    assert r.exit_code == 0, r.output
    m = read_manifest(s3_storage, "digits")
    assert m["splits"]["train"]["count"] == N and m["source"]["train"] == src.url
    assert add(local_storage, "digits", str(digits), GREY28)["id"] == m["id"]
    images, _ = open_split(s3_storage, "digits", m["id"], cache_dir=str(tmp_path / "cache"))
    assert images.shape == (N, 1, 28, 28)
    assert json.loads(s3_storage.read_bytes("datasets", "digits", "current.json"))["id"] == m["id"]


def test_uploaded_builtins_are_listed_and_pinned_by_id(local_storage, tmp_path):
    """`data upload`'s datasets appear in `data ls` with an id (their manifest's hash); `mnist@ID` checks
    that id against storage and trains the very trials `mnist` does (ids unchanged)."""
    from gan_tasks.config import expand_grid, load_config
    from gan_tasks.data.images import upload
    from tests.conftest import tiny_config

    upload(local_storage, "mnist", str(DATA / "mnist"))
    r = cli("data", "ls", "--storage", local_storage.url)
    assert r.exit_code == 0, r.output
    row = next(ln for ln in r.output.splitlines() if ln.split()[:1] == ["mnist"])
    did = row.split()[1]
    assert len(did) == 12 and "train 60,000 / test 10,000" in row and "1x28x28" in row and row.split()[-1] == "upload"
    assert " 10 " in row and "54.9 MB" in row

    def ids(dataset: str) -> list[str]:
        path = tmp_path / f"{dataset.replace('@', '-')}.yaml"
        path.write_text(json.dumps({**tiny_config(), "dataset": dataset, "model": "dcgan-28"}))
        return [t.trial_id for t in expand_grid(load_config(str(path), storage=local_storage))]

    assert ids(f"mnist@{did}") == ids("mnist")
    with pytest.raises(Exception, match=f"mnist@000000000000: storage .* holds mnist@{did}"):
        ids("mnist@000000000000")


def test_fashion_mnist_pngs_from_a_folder_and_from_s3(tmp_path, s3_storage, local_storage):
    """Fashion-MNIST written as a PNG folder (one sub-folder per class) from ../shared/data, added at 64x64
    from the folder and from a bucket of the S3 test endpoint: one id, ten classes, the pixels upscaled."""
    arrs = SOURCES["fashion-mnist"].read(str(DATA / "fashion-mnist"))
    x, y = arrs["train"][:N, 0], arrs["train_labels"][:N]
    write_pngs(tmp_path / "clothes", x, y)
    opts = IngestOptions(size=64, mode="L", labels="subfolders")
    local = add(local_storage, "clothes", str(tmp_path / "clothes"), opts)
    src = Storage.parse(s3_storage.url + "-clothes", endpoint_url=s3_storage.endpoint_url)
    for root, _, files in os.walk(tmp_path / "clothes"):
        for f in files:
            src.write_bytes(open(os.path.join(root, f), "rb").read(), os.path.relpath(os.path.join(root, f),
                                                                                     tmp_path / "clothes"))
    remote = add(s3_storage, "clothes", src.url, opts, endpoint_url=s3_storage.endpoint_url)
    assert remote["id"] == local["id"] and remote["classes"] == [str(c) for c in range(10)]
    images, labels = open_split(s3_storage, "clothes", remote["id"], cache_dir=str(tmp_path / "cache"))
    assert images.shape == (N, 1, 64, 64) and np.bincount(labels).sum() == N
    first = sorted(range(N), key=lambda i: f"{y[i]}/{i:05d}.png")[0]  # class folder "0" first
    assert abs(float(images.take(np.array([0]))[0, 0].mean()) - float(x[first].mean())) < 3  # same picture, 64 px
