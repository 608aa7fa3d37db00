"""Sharded image datasets (gansweep data add, gan_tasks/data/ingest.py; the built-ins of gansweep data
upload, gan_tasks/data/images.py): finding them by name or name@id, listing them, and reading them in a trial.

A trial reads a dataset's shards through the node's cache (<GANSWEEP_CACHE>/datasets/<sha256>.npy: one
download per node, each checked against the manifest's sha256) and memory-maps them, so trials on one
node share the page cache instead of each holding a copy. Batch indices are a function of (dataset id,
seed, step) alone: a resumed trial draws exactly the batches it would have drawn.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gan_tasks.data.datasets import DATASETS
from gan_tasks.errors import BadInput

if TYPE_CHECKING:
    from gan_tasks.data.storage import Storage

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ID = re.compile(r"[0-9a-f]{12}")


def check_name(name: str, adding: bool = True) -> None:
    """A name `data add` may write (adding), or one to read: a built-in upload's too."""
    if not _NAME.fullmatch(name) or ".." in name:
        raise BadInput(f"dataset name {name!r}: letters, digits, '-', '_', '.', at most 64, no '..'")
    if adding and name in DATASETS:
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


def dataset_id(manifest: dict) -> str:
    """A hash of the canonical manifest (everything but name, id and where the files came from)."""
    canon = {k: v for k, v in manifest.items() if k not in ("name", "id", "source")}
    return hashlib.sha256(json.dumps(canon, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:12]


def read_manifest(storage: Storage, name: str, did: str | None = None) -> dict:
    """NAME's manifest at id `did` (None: the current one); a missing one is a ValueError saying what exists."""
    check_name(name, adding=False)
    did = did or current_id(storage, name)
    if did is None:
        names = [n for n in storage.ls("datasets") if current_id(storage, n)] if storage.exists("datasets") else []
        how = f"upload it with gansweep data upload {name} PATH" if name in DATASETS else \
            f"add it with gansweep data add {name} SRC"
        raise BadInput(f"no dataset {name!r} in {storage.url}; {how} --storage {storage.url} (datasets there: "
                       f"{', '.join(names) or 'none'})")
    check_id(did)
    try:
        return json.loads(storage.read_bytes(*manifest_path(name, did)))
    except FileNotFoundError:
        raise BadInput(f"dataset {name!r} has no id {did!r} in {storage.url}; ids: "
                         f"{', '.join(ids(storage, name)) or 'none'}") from None


INDEX = "index.json"  # datasets/NAME/<id>/index.json: what trials read of the manifest (index_of)
_READ: dict[tuple, tuple[dict, bool]] = {}  # (storage, name, id) -> (index, whether `check`ed): this process


def index_of(manifest: dict) -> dict:
    """What trials, evaluations and the report read of a manifest: all of it but the per-file lists (every
    source file's path and sha256, the skipped ones: 2.8 MB for 20,000 images) and where the files came from,
    so a function of (name, id): a few hundred bytes a shard."""
    splits = {s: {k: v for k, v in sp.items() if k != "files"} for s, sp in manifest["splits"].items()}
    return {**{k: v for k, v in manifest.items() if k not in ("splits", "skipped", "source")}, "splits": splits}


def index_blob(index: dict) -> bytes:
    """index.json's bytes: the index and the sha256 of its canonical form, which a reader checks."""
    canon = json.dumps(index, sort_keys=True, separators=(",", ":"))
    return json.dumps({"index": index, "sha256": hashlib.sha256(canon.encode()).hexdigest()}).encode()


def _parse_index(blob: bytes, name: str, did: str) -> dict | None:
    """index.json's index if it is whole and names NAME@did; None if not (read the manifest instead)."""
    try:
        d = json.loads(blob)
        ok = index_blob(d["index"]) == blob and d["index"]["id"] == did and d["index"]["name"] == name
    except (ValueError, KeyError, TypeError):
        ok = False
    return d["index"] if ok else None


def read_index(storage: Storage, name: str, did: str | None = None, check: bool = False,
               cache_dir: str | None = None) -> dict:
    """NAME@did's index (index_of its manifest; did None: the current id), read once per process and once
    per node: from this process's memo, the node cache (<GANSWEEP_CACHE>/datasets/index/NAME/<id>.json:
    the id is a hash of the manifest, so a copy never goes stale), else storage's index.json (checked
    whole), else the manifest, checked against the id. `check` (the driver, once a sweep before any trial
    starts): the manifest itself is read and checked against the id, and storage's index.json made to
    match it. A missing dataset or id is read_manifest's BadInput."""
    check_name(name, adding=False)
    did = did or current_id(storage, name) or read_manifest(storage, name)["id"]  # no current one: raises
    check_id(did)
    key = (storage, name, did)
    index, checked = _READ.get(key, (None, False))
    if index is None or (check and not checked):
        from gan_tasks.data.storage import node_cache, write_local

        local = os.path.join(cache_dir or node_cache(), "datasets", "index", name, f"{did}.json")
        index, checked = (_checked(storage, name, did), True) if check else (_read(storage, name, did, local), False)
        if not os.path.exists(local):
            write_local(local, index_blob(index))
        if len(_READ) >= 64:
            _READ.clear()
        _READ[key] = index, checked
    return copy.deepcopy(index)


def _read(storage: Storage, name: str, did: str, local: str) -> dict:
    """The node's copy of the index, else storage's index.json, else the manifest's (checked against the id)."""
    try:
        index = _parse_index(Path(local).read_bytes(), name, did)
        if index is not None:
            return index
        os.remove(local)  # damaged: read again
    except FileNotFoundError:
        pass
    try:
        index = _parse_index(storage.read_bytes("datasets", name, did, INDEX), name, did)
    except FileNotFoundError:
        index = None
    return index if index is not None else _checked(storage, name, did, write=False)  # from before index.json


def _checked(storage: Storage, name: str, did: str, write: bool = True) -> dict:
    """The index of NAME@did's manifest, whose hash must be the id; `write`: storage's index.json made to match."""
    m = read_manifest(storage, name, did)
    if dataset_id(m) != did or m.get("id") != did or m.get("name") != name:
        raise BadInput(f"dataset {name}@{did}: {storage.uri(*manifest_path(name, did))} is corrupt: its hash is "
                       f"{dataset_id(m)}, not its id (add the images again with gansweep data add)")
    index = index_of(m)
    if write:
        try:
            same = storage.read_bytes("datasets", name, did, INDEX) == index_blob(index)
        except FileNotFoundError:
            same = False
        if not same:  # from before index.json (or damaged): written once, for the nodes
            storage.write_bytes(index_blob(index), "datasets", name, did, INDEX)
    return index


def upload_id(storage: Storage, name: str) -> str | None:
    """The id of a built-in image dataset uploaded with `gansweep data upload`: a sharded one's current id
    (its manifest's hash, as for data add); a two-domain one's sha256[:12] of its manifest, which holds every
    array's sha256. The same files, the same id; None if not uploaded."""
    if DATASETS.get(name).sharded:
        return current_id(storage, name)
    try:
        return hashlib.sha256(storage.read_bytes("datasets", name, "manifest.json")).hexdigest()[:12]
    except FileNotFoundError:
        return None


def trained_id(storage: Storage, name: str, params: dict, did: str | None = None) -> str | None:
    """Which data a trial trained on, for its row: an added dataset's id (did); a built-in upload's id
    (upload_id); a 2-D mixture's parameters hash, the folder its points are in (datasets/NAME/<hash>/)."""
    from gan_tasks.data.datasets import params_hash

    if did or name not in DATASETS:
        return did
    return params_hash(params) if DATASETS.get(name).generate is not None else upload_id(storage, name)


def _two_domain(storage: Storage, name: str) -> dict | None:
    """data ls's row of an uploaded two-domain dataset (whole arrays, one version: a new upload replaces it)."""
    did = upload_id(storage, name)
    if did is None:
        return None
    files = json.loads(storage.read_bytes("datasets", name, "manifest.json"))["files"]
    images = {k: f["shape"] for k, f in files.items() if not k.endswith("labels")}
    return {"name": name, "id": did, "current": True, "count": {s: v[0] for s, v in images.items()},
            "shape": list(DATASETS.get(name).shape), "classes": [], "skipped": 0,
            "bytes": sum(int(np.prod(v)) for v in images.values()), "kind": "upload"}


def list_datasets(storage: Storage) -> list[dict]:
    """One row per (name, id): count, shape, classes, bytes of shards, whether it is current, and how it
    came (kind "add"; "upload" for the built-ins of `data upload`, two-domain ones with their one version)."""
    if not storage.exists("datasets"):
        return []
    rows = []
    for name in storage.ls("datasets"):
        if name in DATASETS and not DATASETS.get(name).sharded:  # 2-D points are not listed
            row = _two_domain(storage, name) if DATASETS.get(name).two_domain else None
            rows += [row] if row else []
            continue
        cur = current_id(storage, name)
        for did in ids(storage, name):
            m = json.loads(storage.read_bytes(*manifest_path(name, did)))
            splits = m["splits"]
            rows.append({"name": name, "id": did, "current": did == cur,
                         "count": {s: v["count"] for s, v in splits.items()}, "shape": m["shape"],
                         "classes": m["classes"], "skipped": len(m["skipped"]),
                         "bytes": sum(v["count"] for v in splits.values()) * int(np.prod(m["shape"])),
                         "kind": "upload" if name in DATASETS else "add"})
    return rows


class ShardedImages:
    """A split's images as memory-mapped shards: len(), .shape, take(idx) -> (len(idx), C, H, W) uint8."""

    def __init__(self, shards: list[np.ndarray]):
        self.shards = shards
        self.starts = np.cumsum([0] + [len(s) for s in shards])
        self.shape = (int(self.starts[-1]), *shards[0].shape[1:])

    def __len__(self) -> int:
        return self.shape[0]

    def array(self) -> np.ndarray:
        """Every image, read into memory."""
        return np.concatenate(self.shards)

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
    from gan_tasks.data.storage import write_local

    local = os.path.join(cache_dir, "datasets", f"{entry['sha256']}.npy")
    if not os.path.exists(local):
        data = storage.read_bytes(*folder, entry["file"])
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise BadInput(f"dataset shard {storage.uri(*folder, entry['file'])} is corrupt: its sha256 "
                             "differs from manifest.json")
        write_local(local, data)
    return local


def open_split(storage: Storage, name: str, did: str | None, split: str = "train",
               cache_dir: str | None = None) -> tuple[ShardedImages, np.ndarray]:
    """(images, labels) of one split of NAME@did (None: its current id; a built-in upload has one only),
    shards memory-mapped from the node cache; labels -1: unlabelled."""
    from gan_tasks.data.storage import node_cache

    cache_dir = cache_dir or node_cache()
    m = read_index(storage, name, did, cache_dir=cache_dir)
    did = m["id"]
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
