"""Datasets of your own images (gansweep data add, gan_tasks/data/ingest.py): finding them by name or
name@id, listing them, and reading them in a trial.

A trial reads a dataset's shards through the node's cache (<GANSWEEP_CACHE>/datasets/<sha256>.npy: one
download per node, each checked against the manifest's sha256) and memory-maps them, so trials on one
node share the page cache instead of each holding a copy. Batch indices are a function of (dataset id,
seed, step) alone: a resumed trial draws exactly the batches it would have drawn.
"""
from __future__ import annotations

import json
import os
import re
from typing import TYPE_CHECKING

import numpy as np

from gan_tasks.data.datasets import DATASETS
from gan_tasks.errors import BadInput

if TYPE_CHECKING:
    from gan_tasks.data.storage import Storage

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ID = re.compile(r"[0-9a-f]{12}")


def check_name(name: str) -> None:
    if not _NAME.fullmatch(name) or ".." in name:
        raise BadInput(f"dataset name {name!r}: letters, digits, '-', '_', '.', at most 64, no '..'")
    if name in DATASETS:
        raise BadInput(f"dataset name {name!r} is a built-in dataset; choose another name")


def check_id(did: str) -> None:
    if not _ID.fullmatch(did):
        raise BadInput(f"dataset id {did!r}: 12 hex digits (gansweep data ls shows them)")


def manifest_path(name: str, did: str) -> tuple[str, ...]:
    return ("datasets", name, did, "manifest.json")


def set_current(storage: Storage, name: str, did: str) -> None:
    storage.write_bytes(json.dumps({"id": did}).encode(), "datasets", name, "current.json")


def current_id(storage: Storage, name: str) -> str | None:
    try:
        return json.loads(storage.read_bytes("datasets", name, "current.json"))["id"]
    except FileNotFoundError:
        return None


def ids(storage: Storage, name: str) -> list[str]:
    """The published ids of NAME (those with a manifest.json)."""
    return [d for d in storage.ls("datasets", name) if _ID.fullmatch(d) and storage.exists(*manifest_path(name, d))]


def read_manifest(storage: Storage, name: str, did: str | None = None) -> dict:
    """NAME's manifest at id `did` (None: the current one); a missing one is a ValueError saying what exists."""
    check_name(name)
    did = did or current_id(storage, name)
    if did is None:
        names = [n for n in storage.ls("datasets") if current_id(storage, n)] if storage.exists("datasets") else []
        raise BadInput(f"no dataset {name!r} in {storage.url}; add it with gansweep data add {name} SRC "
                         f"--storage {storage.url} (datasets there: {', '.join(names) or 'none'})")
    check_id(did)
    try:
        return json.loads(storage.read_bytes(*manifest_path(name, did)))
    except FileNotFoundError:
        raise BadInput(f"dataset {name!r} has no id {did!r} in {storage.url}; ids: "
                         f"{', '.join(ids(storage, name)) or 'none'}") from None


def upload_id(storage: Storage, name: str) -> str | None:
    """The id of a built-in image dataset uploaded with `gansweep data upload` (sha256[:12] of its
    manifest, which holds every file's sha256): the same files, the same id; None if not uploaded."""
    import hashlib

    try:
        return hashlib.sha256(storage.read_bytes("datasets", name, "manifest.json")).hexdigest()[:12]
    except FileNotFoundError:
        return None


def _uploaded(storage: Storage, name: str) -> dict | None:
    """data ls's row of an uploaded built-in image dataset (one version: a new upload replaces it)."""
    spec, did = DATASETS.get(name), upload_id(storage, name)
    if spec.kind != "images" or did is None:
        return None
    files = json.loads(storage.read_bytes("datasets", name, "manifest.json"))["files"]
    images = {k: f["shape"] for k, f in files.items() if not k.endswith("labels")}
    k = spec.classes() if spec.classes else 0
    return {"name": name, "id": did, "current": True, "count": {s: v[0] for s, v in images.items()},
            "shape": list(spec.shape) or images.get("train", [0])[1:], "classes": [str(i) for i in range(k)],
            "skipped": 0, "bytes": sum(int(np.prod(v)) for v in images.values()), "kind": "upload"}


def list_datasets(storage: Storage) -> list[dict]:
    """One row per (name, id): count, shape, classes, bytes of shards, whether it is current; uploaded
    built-ins (`data upload`) too, kind "upload", their one version current."""
    if not storage.exists("datasets"):
        return []
    names = storage.ls("datasets")
    rows = [r for r in (_uploaded(storage, n) for n in names if n in DATASETS) if r]
    for name in [n for n in names if n not in DATASETS]:
        cur = current_id(storage, name)
        for did in ids(storage, name):
            m = json.loads(storage.read_bytes(*manifest_path(name, did)))
            splits = m["splits"]
            rows.append({"name": name, "id": did, "current": did == cur,
                         "count": {s: v["count"] for s, v in splits.items()}, "shape": m["shape"],
                         "classes": m["classes"], "skipped": len(m["skipped"]),
                         "bytes": sum(v["count"] for v in splits.values()) * int(np.prod(m["shape"])), "kind": "add"})
    return rows


class ShardedImages:
    """A split's images as memory-mapped shards: len(), .shape, take(idx) -> (len(idx), C, H, W) uint8."""

    def __init__(self, shards: list[np.ndarray]):
        self.shards = shards
        self.starts = np.cumsum([0] + [len(s) for s in shards])
        self.shape = (int(self.starts[-1]), *shards[0].shape[1:])

    def __len__(self) -> int:
        return self.shape[0]

    def take(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx)
        shard = np.searchsorted(self.starts, idx, side="right") - 1
        out = np.empty((len(idx), *self.shape[1:]), np.uint8)
        for s in np.unique(shard):
            at = shard == s
            out[at] = self.shards[s][idx[at] - self.starts[s]]
        return out


def _cached(storage: Storage, folder: tuple[str, ...], entry: dict, cache_dir: str) -> str:
    """A shard's local path in the node cache, downloaded once and checked against its sha256."""
    import hashlib

    from gan_tasks.data.storage import write_local

    local = os.path.join(cache_dir, "datasets", f"{entry['sha256']}.npy")
    if not os.path.exists(local):
        data = storage.read_bytes(*folder, entry["file"])
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise BadInput(f"dataset shard {storage.uri(*folder, entry['file'])} is corrupt: its sha256 "
                             "differs from manifest.json")
        write_local(local, data)
    return local


def open_split(storage: Storage, name: str, did: str, split: str = "train",
               cache_dir: str | None = None) -> tuple[ShardedImages, np.ndarray]:
    """(images, labels) of one split, shards memory-mapped from the node cache; labels -1: unlabelled."""
    from gan_tasks.data.storage import node_cache

    cache_dir = cache_dir or node_cache()
    m = read_manifest(storage, name, did)
    if split not in m["splits"]:
        raise BadInput(f"dataset {name}@{did} has no {split} split (add it with --test-fraction or --test-from)")
    s, folder = m["splits"][split], ("datasets", name, did)
    shards = [np.load(_cached(storage, folder, e, cache_dir), mmap_mode="r") for e in s["shards"]]
    labels = np.load(_cached(storage, folder, s["labels"], cache_dir))
    return ShardedImages(shards), labels


def batch_indices(did: str, seed: int, step: int, draw: int, n: int, size: int) -> np.ndarray:
    """The indices of the draw-th batch of step `step` (a step may draw several: d_steps): a function of
    (dataset id, seed, step, draw) only."""
    return np.random.default_rng([int(did, 16), seed, step, draw]).integers(n, size=size)
