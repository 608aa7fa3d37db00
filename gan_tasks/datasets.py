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
from typing import Any, Callable

import numpy as np

from gan_tasks.registry import Registry
from gan_tasks.storage import Storage


@dataclass(frozen=True)
class DatasetSpec:
    kind: str  # "points" (2D mixtures) or "images"
    defaults: dict[str, Any] = field(default_factory=dict)
    generate: Callable[..., np.ndarray] | None = None  # synthetic data: params -> float32 array
    modes: Callable[..., np.ndarray] | None = None  # mixture means, for mode coverage


DATASETS: Registry[DatasetSpec] = Registry("dataset")


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


def _ring(n_modes: int, radius: float, std: float, n_samples: int, seed: int) -> np.ndarray:
    return _mixture(_ring_modes(n_modes, radius), std, n_samples, seed)


def _grid(side: int, spacing: float, std: float, n_samples: int, seed: int) -> np.ndarray:
    return _mixture(_grid_modes(side, spacing), std, n_samples, seed)


# PacGAN's 2D ring: 8 modes on a circle of radius 1, sigma 0.01; 100k points is plenty for
# minibatches of a few hundred and costs 800 kB in storage.
DATASETS.add("ring-8", DatasetSpec("points", {"n_modes": 8, "radius": 1.0, "std": 0.01, "n_samples": 100_000,
                                               "seed": 0}, _ring, _ring_modes),
             "PacGAN ring: 8 Gaussians on a circle of radius 1, sigma 0.01")
# PacGAN's grid: 25 modes at {-4,-2,0,2,4}^2, sigma 0.05.
# Image datasets: uploaded once from their canonical files (gan_tasks/images.py), stored as uint8.
DATASETS.add("mnist", DatasetSpec("images"), "MNIST digits, 60k 28x28 grey (upload with gansweep data upload)")
DATASETS.add("fashion-mnist", DatasetSpec("images"), "Fashion-MNIST, 60k 28x28 grey (upload with gansweep data upload)")
DATASETS.add("grid-25", DatasetSpec("points", {"side": 5, "spacing": 2.0, "std": 0.05, "n_samples": 100_000,
                                                "seed": 0}, _grid, _grid_modes),
             "PacGAN grid: 25 Gaussians at {-4,-2,0,2,4}^2, sigma 0.05")


def resolve_params(name: str, params: dict) -> dict:
    from gan_tasks.registry import check_params

    return check_params("dataset", name, params, DATASETS.get(name).defaults)


def params_hash(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]


def dataset_path(name: str, params: dict, split: str = "train") -> tuple[str, ...]:
    if DATASETS.get(name).generate is None:  # uploaded: one copy per name (gansweep data upload)
        return ("datasets", name, f"{split}.npy")
    return ("datasets", name, params_hash(params), f"{split}.npy")


def ensure_dataset(storage: Storage, name: str, params: dict) -> tuple[str, ...]:
    """Write a synthetic dataset to storage if it is not there; return its path parts."""
    spec = DATASETS.get(name)
    path = dataset_path(name, params)
    if spec.generate is None:
        if not storage.exists(*path):
            raise FileNotFoundError(f"dataset {name!r} is not in storage at {storage.uri(*path)}; "
                                    f"upload it first: gansweep data upload {name} PATH --storage {storage.url}")
        return path
    if not storage.exists(*path):
        buf = io.BytesIO()
        np.save(buf, spec.generate(**params))
        storage.write_bytes(buf.getvalue(), *path)
    return path


def load_array(storage: Storage, path: tuple[str, ...], cache_dir: str | None = None) -> np.ndarray:
    """Read an .npy from storage through a node-local cache keyed by the object's content."""
    cache_dir = cache_dir or os.environ.get("GANSWEEP_CACHE", os.path.expanduser("~/.cache/gansweep"))
    key = hashlib.sha256(storage.uri(*path).encode()).hexdigest()[:16]
    local = os.path.join(cache_dir, "datasets", f"{key}.npy")
    if not os.path.exists(local):
        data = storage.read_bytes(*path)
        os.makedirs(os.path.dirname(local), exist_ok=True)
        tmp = f"{local}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, local)
    try:
        return np.load(local)
    except (ValueError, OSError, EOFError) as e:
        os.remove(local)
        raise ValueError(f"dataset file {storage.uri(*path)} is corrupt: {e}") from e
