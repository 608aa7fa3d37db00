"""Image datasets enter storage once with `gansweep data upload NAME PATH`: canonical files in,
md5 checked against the published sums, uint8 arrays out under <storage>/datasets/NAME/."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
from dataclasses import dataclass

import numpy as np

from gan_tasks.storage import Storage


@dataclass(frozen=True)
class IdxSource:
    """The four IDX .gz files of MNIST-format datasets, with the md5 sums torchvision checks."""
    md5: dict[str, str]

    def read(self, folder: str) -> dict[str, np.ndarray]:
        raw = {name: _checked(os.path.join(folder, name), md5) for name, md5 in self.md5.items()}
        return {"train": _idx(raw["train-images-idx3-ubyte.gz"])[:, None],
                "train_labels": _idx(raw["train-labels-idx1-ubyte.gz"]),
                "test": _idx(raw["t10k-images-idx3-ubyte.gz"])[:, None],
                "test_labels": _idx(raw["t10k-labels-idx1-ubyte.gz"])}


def _checked(path: str, md5: str) -> bytes:
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is missing; the folder must hold the four canonical .gz files")
    data = open(path, "rb").read()
    got = hashlib.md5(data).hexdigest()
    if got != md5:
        raise ValueError(f"{path}: md5 {got} does not match the published {md5}; refusing a damaged or "
                         "different file")
    return data


def _idx(gz: bytes) -> np.ndarray:
    """Parse an IDX file: magic (0, 0, dtype 0x08 = uint8, ndim), big-endian dims, then the data."""
    data = gzip.decompress(gz)
    if data[:3] != b"\x00\x00\x08":
        raise ValueError("not a uint8 IDX file")
    ndim = data[3]
    dims = np.frombuffer(data, ">u4", ndim, 4).astype(int)
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


SOURCES = {
    "mnist": IdxSource({"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
                        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
                        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}),
    "fashion-mnist": IdxSource({"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                                "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
                                "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
                                "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"}),
}


def upload(storage: Storage, name: str, folder: str) -> dict:
    """Read, check and write one dataset; returns its manifest (array shapes and content hashes)."""
    if name not in SOURCES:
        raise ValueError(f"cannot upload {name!r}; uploadable datasets: {', '.join(sorted(SOURCES))}")
    arrays = SOURCES[name].read(folder)
    manifest = {"name": name, "files": {}}
    for key, arr in arrays.items():
        buf = io.BytesIO()
        np.save(buf, arr)
        blob = buf.getvalue()
        storage.write_bytes(blob, "datasets", name, f"{key}.npy")
        manifest["files"][key] = {"shape": list(arr.shape), "sha256": hashlib.sha256(blob).hexdigest()}
    # The manifest goes last: a dataset is visible only once all of its arrays are.
    storage.write_bytes(json.dumps(manifest, indent=1).encode(), "datasets", name, "manifest.json")
    return manifest
