"""Datasets by name. A dataset is written to storage once and every trial reads it from there.

Synthetic mixtures are generated deterministically from their parameters; their storage path
carries a hash of those parameters, so a changed sigma never reads a stale file. Trials cache
what they read on the node by content hash (one download per node, not per trial).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from gan_tasks.methods.params import Num, Spec, check_params
from gan_tasks.methods.registry import Registry

if TYPE_CHECKING:  # storage (fsspec, pyarrow) is imported where data moves, not when a config is validated
    from gan_tasks.data.storage import Storage


@dataclass(frozen=True)
class TwoDomain:
    """An unpaired two-domain image dataset (CycleGAN): arrays train_a, train_b, test_a, test_b and their
    *_labels. The domains' training sets are disjoint draws, so no pairing is learnable from them."""
    classifiers: tuple[str, str]  # the in-domain classifier (gansweep evaluator train) judging domain A / B
    # test_b[i] is the known translation of test_a[i] (held back from training): error against ground truth.
    paired_test: bool
    shared_labels: bool  # A's and B's labels name the same classes: a translation should keep its label


@dataclass(frozen=True)
class DatasetSpec:
    kind: str  # "points" (2D mixtures) or "images"
    shape: tuple[int, ...] = ()  # one sample's shape (channels, height, width for images)
    defaults: dict[str, Any] = field(default_factory=dict)
    generate: Callable[..., np.ndarray] | None = None  # synthetic data: params -> float32 array
    modes: Callable[..., np.ndarray] | None = None  # mixture means, for mode coverage
    # Class labels (train_labels.npy beside train.npy): how many, from the params; None: unlabelled.
    classes: Callable[..., int] | None = None
    labels: Callable[..., np.ndarray] | None = None  # synthetic data: params -> each sample's label
    two_domain: TwoDomain | None = None  # two unpaired domains (CycleGAN) instead of one training set

    @property
    def sharded(self) -> bool:
        """One-domain images (data upload's built-ins, data add's): shards under datasets/NAME/<id>/, memory-mapped."""
        return self.kind == "images" and self.two_domain is None

    @property
    def first_split(self) -> str:
        """The array whose presence says the dataset is in storage."""
        return "train_a" if self.two_domain else "train"

    @property
    def schema(self) -> dict[str, Spec]:
        """Type and range of each of its parameters, from PARAMS."""
        return {k: PARAMS[k] for k in self.defaults}


DATASETS: Registry[DatasetSpec] = Registry("dataset")

# Type and range of every dataset parameter (gan_tasks/methods/params.py).
PARAMS: dict[str, Spec] = {
    "n_modes": Num(int, 1, 10_000), "side": Num(int, 1, 100),  # mixture components: up to 10,000
    # Geometry: positive and finite; 1e6 keeps squared distances in float32's range.
    "radius": Num(float, 0, 1e6, lo_open=True), "spacing": Num(float, 0, 1e6, lo_open=True),
    "std": Num(float, 0, 1e6, lo_open=True),
    "n_samples": Num(int, 1, limit="samples"),  # points written to storage (8 bytes each)
    "seed": Num(int, 0, 2**32 - 1),  # numpy's default_rng seed, 32-bit as the grid's seeds
}


def _ring_modes(n_modes: int, radius: float, **_: Any) -> np.ndarray:
    angles = 2 * np.pi * np.arange(n_modes) / n_modes
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1).astype(np.float32)


def _grid_modes(side: int, spacing: float, **_: Any) -> np.ndarray:
    axis = spacing * (np.arange(side) - (side - 1) / 2)
    return np.stack(np.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2).astype(np.float32)


def _mixture(modes: np.ndarray, std: float, n_samples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    idx = rng.integers(len(modes), size=n_samples)
    return (modes[idx] + std * rng.standard_normal((n_samples, 2))).astype(np.float32)


def _mixture_labels(n_modes: int, n_samples: int, seed: int) -> np.ndarray:
    """The mixture component of each point of _mixture: the same first draw of the same generator."""
    return np.random.default_rng(seed).integers(n_modes, size=n_samples).astype(np.int16)


def _ring_labels(n_modes: int, n_samples: int, seed: int, **_: Any) -> np.ndarray:
    return _mixture_labels(n_modes, n_samples, seed)


def _grid_labels(side: int, n_samples: int, seed: int, **_: Any) -> np.ndarray:
    return _mixture_labels(side * side, n_samples, seed)


def _ring(n_modes: int, radius: float, std: float, n_samples: int, seed: int) -> np.ndarray:
    return _mixture(_ring_modes(n_modes, radius), std, n_samples, seed)


def _grid(side: int, spacing: float, std: float, n_samples: int, seed: int) -> np.ndarray:
    return _mixture(_grid_modes(side, spacing), std, n_samples, seed)


# PacGAN's 2D ring: 8 modes on a circle of radius 1, sigma 0.01; 100k points is plenty for
# minibatches of a few hundred and costs 800 kB in storage.
DATASETS.add("ring-8", DatasetSpec("points", (2,), {"n_modes": 8, "radius": 1.0, "std": 0.01, "n_samples": 100_000,
                                               "seed": 0}, _ring, _ring_modes,
                                    lambda n_modes, **_: n_modes, _ring_labels),
             "PacGAN ring: 8 Gaussians on a circle of radius 1, sigma 0.01")
# PacGAN's grid: 25 modes at {-4,-2,0,2,4}^2, sigma 0.05.
# Image datasets: uploaded once from their canonical files (gan_tasks/data/images.py) as uint8 shards of
# data add's layout. Labels: the digit / class; Stacked MNIST's is 100 d_R + 10 d_G + d_B.
_TEN = lambda **_: 10  # noqa: E731
DATASETS.add("mnist", DatasetSpec("images", (1, 28, 28), classes=_TEN),
             "MNIST digits, 60k 28x28 grey (upload with gansweep data upload)")
DATASETS.add("fashion-mnist", DatasetSpec("images", (1, 28, 28), classes=_TEN),
             "Fashion-MNIST, 60k 28x28 grey (upload with gansweep data upload)")
DATASETS.add("stacked-mnist", DatasetSpec("images", (3, 28, 28), classes=lambda **_: 1000),
             "three MNIST digits as RGB channels, 1,000 modes (upload from the MNIST files)")
DATASETS.add("cifar10", DatasetSpec("images", (3, 32, 32), classes=_TEN),
             "CIFAR-10, 50k 32x32 colour (upload the python tarball)")
DATASETS.add("grid-25", DatasetSpec("points", (2,), {"side": 5, "spacing": 2.0, "std": 0.05, "n_samples": 100_000,
                                                "seed": 0}, _grid, _grid_modes,
                                    lambda side, **_: side * side, _grid_labels),
             "PacGAN grid: 25 Gaussians at {-4,-2,0,2,4}^2, sigma 0.05")
# Two unpaired domains for CycleGAN (data/images.py builds them from the IDX files). A thickened
# digit is still a digit to the MNIST classifier, which therefore judges both domains' labels.
DATASETS.add("mnist-thick", DatasetSpec("images", (1, 28, 28), two_domain=TwoDomain(("mnist", "mnist"), True, True)),
             "two domains: MNIST (A) and the same digits thickened by a 3x3 dilation (B); training halves "
             "disjoint, test pairs held back as ground truth (upload from the MNIST files)")
DATASETS.add("mnist-fashion", DatasetSpec("images", (1, 28, 28),
                                          two_domain=TwoDomain(("mnist", "fashion-mnist"), False, False)),
             "two domains: MNIST digits (A) and Fashion-MNIST clothes (B), no ground-truth pairing "
             "(upload from the folder holding mnist/ and fashion-mnist/)")


def dataset_spec(entry: Any) -> DatasetSpec:
    """The spec of a config's dataset entry (a DatasetEntry or its JSON dict): a built-in's from DATASETS;
    a dataset added with `gansweep data add` (it has an id) from the shape and classes resolved into it."""
    get = entry.get if isinstance(entry, dict) else lambda k: getattr(entry, k, None)
    if not get("id"):
        return DATASETS.get(get("name"))
    k = get("classes") or 0
    return DatasetSpec("images", tuple(get("shape")), classes=(lambda **_: k) if k else None)


def resolve_params(name: str, params: dict) -> dict:
    spec = DATASETS.get(name)
    return check_params("dataset", name, params, spec.defaults, spec.schema)


def params_hash(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]


def dataset_path(name: str, params: dict, split: str | None = None) -> tuple[str, ...]:
    """An array of a synthetic or two-domain dataset (the sharded ones: gan_tasks/data/userdata.py)."""
    split = split or DATASETS.get(name).first_split
    if DATASETS.get(name).generate is None:  # uploaded: one copy per name (gansweep data upload)
        return ("datasets", name, f"{split}.npy")
    return ("datasets", name, params_hash(params), f"{split}.npy")


# An upload from before the built-ins were sharded has arrays but no current.json: the same command redoes it.
RESHARD_HINT = " (an upload from before datasets were sharded is redone by the same command)"


def stored_path(name: str, params: dict) -> tuple[str, ...]:
    """The object whose presence says a built-in dataset is in storage: a sharded upload's current.json,
    else its first array."""
    return ("datasets", name, "current.json") if DATASETS.get(name).sharded else dataset_path(name, params)


def ensure_dataset(storage: Storage, name: str, params: dict) -> tuple[str, ...]:
    """Write a synthetic dataset to storage if it is not there; return its path parts (an upload's: the
    object saying it is there, stored_path)."""
    spec = DATASETS.get(name)
    path = stored_path(name, params)
    if spec.generate is None:
        if not storage.exists(*path):
            raise FileNotFoundError(f"dataset {name!r} is not in storage at {storage.uri(*path)}; "
                                    f"upload it first: gansweep data upload {name} PATH --storage {storage.url}"
                                    + RESHARD_HINT * spec.sharded)
        return path
    if _manifest_sha(storage, dataset_path(name, params, "train_labels")) is None:  # absent, or from before labels
        write_arrays(storage, path[:-1], {"train": spec.generate(**params), "train_labels": spec.labels(**params)}, name)
    return path


def write_arrays(storage: Storage, folder: tuple[str, ...], arrays: dict[str, np.ndarray], name: str) -> dict:
    """Write <key>.npy files and then manifest.json (shape and sha256 of each file) under folder."""
    manifest: dict = {"name": name, "files": {}}
    for key, arr in arrays.items():
        buf = io.BytesIO()
        np.save(buf, arr)
        blob = buf.getvalue()
        storage.write_bytes(blob, *folder, f"{key}.npy")
        manifest["files"][key] = {"shape": list(arr.shape), "sha256": hashlib.sha256(blob).hexdigest()}
    # The manifest goes last: a dataset is visible only once all of its arrays are.
    storage.write_bytes(json.dumps(manifest, indent=1).encode(), *folder, "manifest.json")
    return manifest


def dataset_sha(storage: Storage, name: str, split: str | None = None) -> str:
    """A two-domain dataset's identity in provenance records: its training file's (or `split`'s) sha256[:16]
    (a sharded one's is its id)."""
    return (_manifest_sha(storage, dataset_path(name, {}, split)) or "")[:16]


def _manifest_sha(storage: Storage, path: tuple[str, ...]) -> str | None:
    try:
        manifest = json.loads(storage.read_bytes(*path[:-1], "manifest.json"))
    except FileNotFoundError:
        return None
    return manifest.get("files", {}).get(path[-1].removesuffix(".npy"), {}).get("sha256")


def load_array(storage: Storage, path: tuple[str, ...], cache_dir: str | None = None) -> np.ndarray:
    """Read an .npy from storage through a node-local cache keyed by the content's sha256.

    The sha256 comes from the dataset's manifest.json (written at upload), so a node downloads a
    dataset once however many trials read it, and a file replaced in storage is a new key. What is
    downloaded is checked against that hash. Without a manifest the bytes are read and hashed.
    """
    from gan_tasks.data.storage import node_cache, write_local

    cache_dir = cache_dir or node_cache()
    sha = _manifest_sha(storage, path)
    data = None if sha else storage.read_bytes(*path)
    sha = sha or hashlib.sha256(data).hexdigest()
    local = os.path.join(cache_dir, "datasets", f"{sha}.npy")
    if not os.path.exists(local):
        data = data if data is not None else storage.read_bytes(*path)
        if hashlib.sha256(data).hexdigest() != sha:
            raise ValueError(f"dataset file {storage.uri(*path)} is corrupt: its sha256 differs from manifest.json")
        write_local(local, data)
    try:
        return np.load(local)
    except (ValueError, OSError, EOFError) as e:
        os.remove(local)
        raise ValueError(f"dataset file {storage.uri(*path)} is corrupt: {e}") from e
