"""The conditional programs' own metrics (declared in gan_tasks/methods/programs.py), beside the
dataset's unconditional ones, which see the balanced-label samples of the program's G_eval.

- class_accuracy (images with an in-domain classifier): the share of G(z, y) that the classifier
  assigns to y, over n samples with balanced labels. Stacked MNIST: y is the 1,000-class label
  100 d_R + 10 d_G + d_B, and a sample counts when all three channels' digits are right.
- class_mode_accuracy (2-D mixtures): for each label c, the share of G(z, c) within
  evaluation.std_threshold (3) standard deviations of mode c; the mean over labels, and its minimum
  over labels as class_mode_accuracy_min.
- intra_fid / intra_kid (mnist, fashion-mnist): FID / KID of each class's samples against the real
  images of that class (a seeded random subset: evaluation.reference_seed), with the in-domain
  classifier's features, averaged over classes (n / K samples per class); with their provenance. Not for stacked-mnist (1,000 classes) or cifar10 (no in-domain classifier).
"""
from __future__ import annotations

import numpy as np
import torch
import torch_fidelity

from gan_tasks.data.datasets import DATASETS, dataset_spec
from gan_tasks.data.userdata import open_split, upload_id
from gan_tasks.evaluation.classifier import CLASSIFIER_DATASETS, fetch, load, predict
from gan_tasks.evaluation.fidelity import calculate, feature_layers
from gan_tasks.evaluation.provenance import reference_indices

CHUNK = 1000  # samples generated and classified at a time


def _balanced(n: int, k: int) -> np.ndarray:
    return np.arange(n) % k


def _generated(program, y: np.ndarray) -> np.ndarray:
    return np.concatenate([program.sample_given(y[i:i + CHUNK], seed=12345 + i) for i in range(0, len(y), CHUNK)])


def per_class_mode_accuracy(x: np.ndarray, y: np.ndarray, modes: np.ndarray, radius: float) -> np.ndarray:
    """For each label c: the share of the samples x with y == c within `radius` of modes[c]."""
    near = np.linalg.norm(x - modes[y], axis=1) <= radius
    return np.array([near[y == c].mean() for c in range(len(modes))])


def class_mode_accuracy(program, ev, n: int) -> dict[str, float]:
    p = program.cfg.dataset.params
    modes = DATASETS.get(program.cfg.dataset.name).modes(**p)
    y = _balanced(max(n, program.k), program.k)
    per_class = per_class_mode_accuracy(_generated(program, y), y, modes, ev.std_threshold * p["std"])
    return {"class_mode_accuracy": float(per_class.mean()), "class_mode_accuracy_min": float(per_class.min())}


def class_accuracy(program, storage, ev, n: int) -> tuple[dict[str, float], str]:
    name = program.cfg.dataset.name
    stacked = name == "stacked-mnist"
    path, h, _ = fetch(storage, "mnist" if stacked else name, ev.classifier_hash)
    net = load(path).to(program.device)
    y = _balanced(n, program.k)
    right = []
    for i in range(0, n, CHUNK):
        x = torch.from_numpy(program.sample_given(y[i:i + CHUNK], seed=12345 + i)).to(program.device)
        if stacked:  # each channel's digit, joined into the 1,000-class label
            d = [predict(net, x[:, c:c + 1]).cpu().numpy() for c in range(3)]
            pred = 100 * d[0] + 10 * d[1] + d[2]
        else:
            pred = predict(net, x).cpu().numpy()
        right.append(pred == y[i:i + CHUNK])
    return {"class_accuracy": float(np.concatenate(right).mean())}, h


def intra_class_fidelity(program, storage, ev, n: int, weights: str, h: str) -> tuple[dict[str, float], dict]:
    """(intra_fid / intra_kid, their provenance): each class's generated samples against a seeded random
    subset (evaluation.reference_seed) of that class's real training images; those of image_metrics' fid
    and kid only (validation refuses intra-class FID below INTRA_FID_MIN samples a class)."""
    name, k = program.cfg.dataset.name, program.k
    asked = tuple(m for m in ("fid", "kid") if m in ev.image_metrics)
    if not asked:
        return {}, {}
    real, labels = open_split(storage, name, None)  # mnist, fashion-mnist: their upload's shards
    per = max(n // k, 2)
    values, sizes = {m: [] for m in asked}, []
    for c in range(k):
        fake = program.sample_given(np.full(per, c), seed=23456 + c)
        idx = np.flatnonzero(labels == c)
        real_c = real.take(idx[reference_indices(len(idx), per, ev.reference_seed)])
        m = min(per, len(real_c))
        v = calculate(fake[:m], real_c[:m], metrics=asked, extractor="classifier", weights_path=weights,
                      device=str(program.device))
        sizes.append(m)
        for metric in asked:
            values[metric].append(v[metric])
    prov = {"extractor": "classifier", "weights_hash": h, "torch_fidelity": torch_fidelity.__version__,
            "resize": f"stored {'x'.join(map(str, real.shape[1:]))} uint8", "n_real": min(sizes), "n_fake": min(sizes),
            "reference_split": "train (per class)", "reference_seed": ev.reference_seed,
            "dataset_id": upload_id(storage, name), "g_ema": bool(program.cfg.train.g_ema)}
    layers = feature_layers("classifier")
    return ({f"intra_{m}": float(np.mean(v)) for m, v in values.items()},
            {f"intra_{m}": {**prov, "feature_layer": layers[m]} for m in asked})


def measure(trial, storage, ev, n: int) -> tuple[dict[str, float], str, str, dict]:
    """(values, extractor, extractor hash, {metric: provenance}) of a conditional trial's own metrics."""
    program = trial.program
    kind = dataset_spec(program.cfg.dataset).kind
    if kind == "points":
        return class_mode_accuracy(program, ev, n), "", "", {}
    name = program.cfg.dataset.name
    if name not in CLASSIFIER_DATASETS and name != "stacked-mnist":
        return {}, "", "", {}  # cifar10: no in-domain classifier to tell the classes
    values, h = class_accuracy(program, storage, ev, n)
    prov = {}
    if name in CLASSIFIER_DATASETS:
        path, _, _ = fetch(storage, name, ev.classifier_hash)
        intra, prov = intra_class_fidelity(program, storage, ev, n, path, h)
        values |= intra
    return values, "classifier", h, prov
