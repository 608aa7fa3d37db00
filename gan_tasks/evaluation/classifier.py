"""In-domain feature extractors: a small CNN classifier per dataset (MNIST, Fashion-MNIST).

Trained once by `gansweep evaluator train DATASET --storage URL`, stored under a content hash:
  evaluators/<dataset>/<sha256[:16]>.pt     the state_dict (loaded with weights_only=True)
  evaluators/<dataset>/<sha256[:16]>.json   its test accuracy and how it was trained
  evaluators/<dataset>/current.json         which hash sweeps use unless the config pins one
It is registered with torch-fidelity as feature extractor "gansweep-classifier": logits for the
Inception Score (as seed 004 scores IS on MNIST), the 128-d penultimate layer for FID/KID/PR.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch_fidelity import FeatureExtractorBase

from gan_tasks.data.userdata import open_split
from gan_tasks.config.eval_options import CLASSIFIER_DATASETS, FIDELITY_NAME  # noqa: F401 - torch-free, re-exported
from gan_tasks.data.storage import Storage, node_cache, write_local
from gan_tasks.errors import BadInput, NotFound

FEATURES = ("logits", "features")
SIDE = 28  # the classifier's input side; other sides are resized to it (ClassifierExtractor)


class Classifier(nn.Module):
    """Two conv blocks (BatchNorm: 99 % on MNIST within 3 epochs on a CPU) -> 128-d features -> 10 logits."""

    def __init__(self, channels: int = 1, n_classes: int = 10, width: int = 16, dim: int = 128):
        super().__init__()
        block = lambda i, o: [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2)]  # noqa
        self.body = nn.Sequential(*block(channels, width), *block(width, 2 * width), nn.Flatten(),
                                  nn.Linear(2 * width * 7 * 7, dim), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(0.25), nn.Linear(dim, n_classes))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.body(to_unit(x))
        return self.head(feats), feats


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] (datasets, torch-fidelity inputs) or float [-1, 1] (generators) -> float [-1, 1]."""
    return x.float() / 127.5 - 1.0 if x.dtype == torch.uint8 else x.float()


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] -> uint8 images, the input format torch-fidelity expects."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


@dataclass(frozen=True)
class TrainSpec:
    # 3 epochs of Adam with a one-cycle schedule: >= 99 % on MNIST, >= 90 % on Fashion-MNIST,
    # in a few CPU minutes (2 epochs stop at 98.9 % on MNIST).
    epochs: int = 3
    batch_size: int = 64  # small batches: more steps per epoch, which is what a short budget needs
    lr: float = 3e-3  # one-cycle peak learning rate
    train_samples: int | None = None  # None: the whole training split (tests use fewer)
    seed: int = 0


def _split(storage: Storage, dataset: str, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = open_split(storage, dataset, None, split)  # mnist, fashion-mnist: their upload's shards
    return torch.from_numpy(x.array()), torch.from_numpy(y.astype(np.int64))


def fit(x: torch.Tensor, y: torch.Tensor, spec: TrainSpec) -> Classifier:
    """Train a classifier on uint8 images x (N, C, H, W) with labels y."""
    torch.manual_seed(spec.seed)
    if spec.train_samples:
        x, y = x[:spec.train_samples], y[:spec.train_samples]
    net = Classifier(x.shape[1], int(y.max()) + 1)
    steps = spec.epochs * ((len(x) + spec.batch_size - 1) // spec.batch_size)
    opt = torch.optim.Adam(net.parameters(), lr=spec.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, spec.lr, total_steps=steps)
    net.train()
    for _ in range(spec.epochs):
        for idx in torch.randperm(len(x)).split(spec.batch_size):
            loss = F.cross_entropy(net(x[idx])[0], y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


@torch.no_grad()
def predict(net: Classifier, x: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    net.eval()
    return torch.cat([net(x[i:i + batch])[0].argmax(1) for i in range(0, len(x), batch)])


def train_and_store(storage: Storage, dataset: str, spec: TrainSpec = TrainSpec()) -> dict:
    """Train on the dataset in storage, measure test accuracy, store weights under their hash."""
    check_dataset(dataset)
    if not storage.exists("datasets", dataset, "current.json"):
        raise NotFound(f"dataset {dataset!r} is not in {storage.url}; upload it first: "
                                f"gansweep data upload {dataset} PATH --storage {storage.url}")
    t0 = time.perf_counter()
    net = fit(*_split(storage, dataset, "train"), spec)
    xt, yt = _split(storage, dataset, "test")
    acc = float((predict(net, xt) == yt).float().mean())
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    blob = buf.getvalue()
    h = hashlib.sha256(blob).hexdigest()[:16]
    meta = {"dataset": dataset, "hash": h, "test_accuracy": acc, "test_samples": len(xt),
            "train_seconds": round(time.perf_counter() - t0, 1), "torch": torch.__version__,
            "channels": int(xt.shape[1]), **spec.__dict__}
    folder = ("evaluators", dataset)
    storage.write_bytes(blob, *folder, f"{h}.pt")
    storage.write_bytes(json.dumps(meta, indent=1).encode(), *folder, f"{h}.json")
    storage.write_bytes(json.dumps({"hash": h}).encode(), *folder, "current.json")  # last: visible when complete
    return meta


def check_dataset(dataset: str) -> None:
    if dataset not in CLASSIFIER_DATASETS:
        raise BadInput(f"no in-domain classifier for dataset {dataset!r}; valid: {', '.join(CLASSIFIER_DATASETS)}")


def fetch(storage: Storage, dataset: str, pinned: str | None = None,
          cache_dir: str | None = None) -> tuple[str, str, dict]:
    """(local weights path, hash, metadata) of the dataset's classifier; downloaded once per node."""
    check_dataset(dataset)
    folder = ("evaluators", dataset)
    if pinned is None:
        if not storage.exists(*folder, "current.json"):
            raise NotFound(f"no {dataset} classifier in {storage.url}; train one first: "
                                    f"gansweep evaluator train {dataset} --storage {storage.url}")
        pinned = json.loads(storage.read_bytes(*folder, "current.json"))["hash"]
    cache_dir = cache_dir or node_cache()
    local = os.path.join(cache_dir, "evaluators", f"{pinned}.pt")
    if not os.path.exists(local):
        blob = storage.read_bytes(*folder, f"{pinned}.pt")
        if hashlib.sha256(blob).hexdigest()[:16] != pinned:
            raise ValueError(f"classifier {storage.uri(*folder, pinned + '.pt')} does not match its content hash")
        write_local(local, blob)
    meta = json.loads(storage.read_bytes(*folder, f"{pinned}.json"))
    return local, pinned, meta


def load(path: str) -> Classifier:
    state = torch.load(path, map_location="cpu", weights_only=True)
    net = Classifier(state["body.0.weight"].shape[1], state["head.1.weight"].shape[0])
    net.load_state_dict(state)
    return net.eval()


class ClassifierExtractor(FeatureExtractorBase):
    """torch-fidelity's view of our classifier; the weights come from feature_extractor_weights_path."""

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        if not feature_extractor_weights_path:
            raise ValueError(f"{FIDELITY_NAME} needs feature_extractor_weights_path (gan_tasks.evaluation.classifier.fetch)")
        self.net = load(feature_extractor_weights_path)

    @staticmethod
    def get_provided_features_list():
        return FEATURES

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return "logits" if metric == "isc" else "features"

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 1, 28, 28, dtype=torch.uint8)

    def forward(self, x):
        if x.shape[-2:] != (SIDE, SIDE):  # a 64x64 MNIST-like set scored with the 28x28 classifier
            x = F.interpolate(to_unit(x), size=(SIDE, SIDE), mode="bilinear", antialias=True, align_corners=False)
        logits, feats = self.net(x)
        out = {"logits": logits, "features": feats}
        return tuple(out[f] for f in self.features_list)


def ensure_registered() -> None:
    """Tell torch-fidelity about our extractor (its registry is process-wide; register once)."""
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

    if FIDELITY_NAME not in FEATURE_EXTRACTORS_REGISTRY:
        register_feature_extractor(FIDELITY_NAME, ClassifierExtractor)


# Which datasets have an in-domain classifier, and the accuracy the issue asks of it.
