"""Image datasets enter storage once with `gansweep data upload NAME PATH`: canonical files in, md5
checked against the published sums, uint8 out. One-domain sets (mnist, fashion-mnist, stacked-mnist,
cifar10) become ordinary datasets of `gansweep data add`'s layout (gan_tasks/data/ingest.py): shards and
a manifest under <storage>/datasets/NAME/<id>/, id = the manifest's hash, read memory-mapped. The
two-domain pairs of CycleGAN stay whole arrays under <storage>/datasets/NAME/."""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import tarfile
from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from gan_tasks.data.datasets import DATASETS, write_arrays
from gan_tasks.data.storage import Storage
from gan_tasks.errors import BadInput, NotFound


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
        raise NotFound(f"{path} is missing; the folder must hold the four canonical .gz files")
    data = open(path, "rb").read()
    got = hashlib.md5(data).hexdigest()
    if got != md5:
        raise BadInput(f"{path}: md5 {got} does not match the published {md5}; refusing a damaged or "
                         "different file")
    return data


def _idx(gz: bytes) -> np.ndarray:
    """Parse an IDX file: magic (0, 0, dtype 0x08 = uint8, ndim), big-endian dims, then the data."""
    data = gzip.decompress(gz)
    if data[:3] != b"\x00\x00\x08":
        raise BadInput("not a uint8 IDX file")
    ndim = data[3]
    dims = np.frombuffer(data, ">u4", ndim, 4).astype(int)
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


@dataclass(frozen=True)
class StackedSource:
    """Stacked MNIST (Metz et al. 2016, PacGAN): three MNIST digits as the R, G, B channels, so
    10^3 = 1,000 modes, labelled 100 d_R + 10 d_G + d_B. Channel c of sample i is digit perm_c[i]
    of three fixed permutations (seed 0): every digit is used once per channel, 60,000 train images."""
    mnist: IdxSource
    seed: int = 0

    def read(self, folder: str) -> dict[str, np.ndarray]:
        digits = self.mnist.read(folder)
        rng = np.random.default_rng(self.seed)
        out = {}
        for split in ("train", "test"):
            x, y = digits[split][:, 0], digits[f"{split}_labels"].astype(np.int64)
            perm = np.stack([rng.permutation(len(x)) for _ in range(3)])  # (3, N)
            out[split] = np.ascontiguousarray(x[perm].transpose(1, 0, 2, 3))  # (N, 3, 28, 28)
            out[f"{split}_labels"] = (100 * y[perm[0]] + 10 * y[perm[1]] + y[perm[2]]).astype(np.int16)
        return out


@dataclass(frozen=True)
class CifarSource:
    """The CIFAR-10 python tarball (PATH: the .tar.gz or its folder); md5 checked before unpickling."""
    filename: str
    md5: str

    def read(self, path: str) -> dict[str, np.ndarray]:
        path = os.path.join(path, self.filename) if os.path.isdir(path) else path
        return parse_cifar_tarball(_checked(path, self.md5))


def parse_cifar_tarball(blob: bytes) -> dict[str, np.ndarray]:
    """data_batch_1..5 and test_batch: pickled {b'data': (10000, 3072) uint8 CHW rows, b'labels'}."""
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        def batch(name: str) -> tuple[np.ndarray, np.ndarray]:
            d = pickle.load(tar.extractfile(f"cifar-10-batches-py/{name}"), encoding="bytes")  # md5-checked above
            return np.asarray(d[b"data"], np.uint8).reshape(-1, 3, 32, 32), np.asarray(d[b"labels"], np.uint8)

        train = [batch(f"data_batch_{i}") for i in range(1, 6)]
        test = batch("test_batch")
    return {"train": np.concatenate([x for x, _ in train]), "train_labels": np.concatenate([y for _, y in train]),
            "test": test[0], "test_labels": test[1]}


def thicken(x: np.ndarray) -> np.ndarray:
    """Grey-level dilation with a 3x3 square: each pixel becomes the brightest of its 3x3 neighbourhood,
    so every stroke grows by about a pixel on each side. Deterministic: the known map A -> B."""
    h, w = x.shape[-2:]
    p = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(1, 1), (1, 1)])
    return np.max([p[..., i:i + h, j:j + w] for i in range(3) for j in range(3)], axis=0)


@dataclass(frozen=True)
class RestyledSource:
    """MNIST (domain A) against a deterministic restyling of MNIST digits (domain B), unpaired for
    training: the 60,000 training digits are shuffled (seed) and split into two disjoint halves, A
    keeps the first as it is and B is the second restyled, so no digit appears in both domains. The
    10,000 test digits are held-back pairs: test_b[i] = restyle(test_a[i]), the ground truth of A -> B."""
    mnist: IdxSource
    restyle: Callable[[np.ndarray], np.ndarray]
    seed: int = 0

    def read(self, folder: str) -> dict[str, np.ndarray]:
        d = self.mnist.read(folder)
        perm = np.random.default_rng(self.seed).permutation(len(d["train"]))
        ia, ib = np.sort(perm[: len(perm) // 2]), np.sort(perm[len(perm) // 2:])
        return {"train_a": d["train"][ia], "train_a_labels": d["train_labels"][ia],
                "train_b": self.restyle(d["train"][ib]), "train_b_labels": d["train_labels"][ib],
                "test_a": d["test"], "test_a_labels": d["test_labels"],
                "test_b": self.restyle(d["test"]), "test_b_labels": d["test_labels"]}


@dataclass(frozen=True)
class CrossSource:
    """Two MNIST-format datasets as domains A and B (PATH: the folder holding both sub-folders); their
    images have nothing to do with each other, so there is no ground-truth pairing."""
    a: tuple[str, IdxSource]
    b: tuple[str, IdxSource]

    def read(self, folder: str) -> dict[str, np.ndarray]:
        out = {}
        for dom, (sub, src) in (("a", self.a), ("b", self.b)):
            d = src.read(os.path.join(folder, sub))
            out.update({f"{split}_{dom}{suffix}": d[f"{split}{suffix}"]
                        for split in ("train", "test") for suffix in ("", "_labels")})
        return out


_MNIST = IdxSource({"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
                    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
                    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"})
_FASHION = IdxSource({"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                      "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
                      "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
                      "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"})

# md5 sums: the ones torchvision checks (torchvision/datasets/mnist.py, cifar.py).
SOURCES = {
    "mnist": _MNIST,
    "fashion-mnist": _FASHION,
    "stacked-mnist": StackedSource(_MNIST),
    "mnist-thick": RestyledSource(_MNIST, thicken),
    "mnist-fashion": CrossSource(("mnist", _MNIST), ("fashion-mnist", _FASHION)),
    "cifar10": CifarSource("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),
}


def upload(storage: Storage, name: str, folder: str) -> dict:
    """Read, check and write one dataset; returns its manifest (shapes and content hashes; the id of a
    one-domain set)."""
    if name not in SOURCES:
        raise BadInput(f"cannot upload {name!r}; uploadable datasets: {', '.join(sorted(SOURCES))}")
    spec, src = DATASETS.get(name), SOURCES[name]
    if spec.two_domain is not None:  # CycleGAN's pairs: whole arrays, as before
        return write_arrays(storage, ("datasets", name), src.read(folder), name)
    from gan_tasks.data.ingest import publish_arrays

    # The id hashes what was checked (the canonical files' md5, how they were combined) and every shard.
    manifest = publish_arrays(storage, name, src.read(folder), {"upload": name, **asdict(src)}, folder,
                              [str(c) for c in range(spec.classes())])
    for old in [n for n in storage.ls("datasets", name) if n.endswith(".npy") or n == "manifest.json"]:
        storage.rm("datasets", name, old)  # the whole arrays an upload wrote before it was sharded
    return manifest
