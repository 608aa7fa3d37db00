"""CycleGAN metrics, per direction (a2b: G on domain A's test images, b2a: F on domain B's).

Every value is a mean over the test images of the source domain, pixels on a [0, 1] scale:
  <dir>_gt_l1          mean |translation - ground truth| per pixel, where the dataset holds test pairs
  <dir>_label_acc      share of translations the target domain's in-domain classifier labels as the
                       source image's label (datasets whose two domains share their classes)
  <dir>_cycle_l1       mean |reconstruction - input| per pixel (F(G(a)) against a; G(F(b)) against b)
  <dir>_fid, _kid      translations against real target-domain images, target domain's classifier features
and the baselines the targets are read against, from the same test images:
  <dir>_gt_l1_untrained, <dir>_label_acc_untrained   a generator at its random initialisation
  <dir>_gt_l1_identity                                the identity map (translation = input)
  <dir>_label_acc_real                                the classifier on the ground-truth translations: its ceiling
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor, nn

from gan_tasks.evaluation.classifier import Classifier, predict, to_uint8
from gan_tasks.methods.cyclegan import grid, to_unit_range, translate  # noqa: F401 - grid: the report's


def l1_01(x: Tensor, y: Tensor) -> float:
    """Mean absolute difference per pixel of two [-1, 1] image sets, on a [0, 1] pixel scale."""
    return float((x.float() - y.float()).abs().mean() / 2)


def label_acc(clf: Classifier, x: Tensor, labels: Tensor) -> float:
    return float((predict(clf, to_uint8(x)).cpu() == labels.cpu()).float().mean())


@dataclass(frozen=True)
class Domain:
    """One direction's source test images and labels, its ground truth (or None), and the target
    domain: real images for FID/KID, its classifier (or None), the classifier's weights path for
    torch-fidelity."""
    x: Tensor  # uint8 (N, C, H, W), source domain test images
    labels: Tensor
    truth: Tensor | None  # uint8 paired translations of x, or None
    target_real: Tensor  # uint8 real images of the target domain
    clf: Classifier | None  # the target domain's classifier, when labels are shared
    weights: str | None  # its weights file, for FID/KID; None: no FID/KID


def direction(name: str, fwd: nn.Module, back: nn.Module, d: Domain, untrained: nn.Module,
              fidelity: Callable[..., dict] | None = None) -> dict[str, float]:
    """All metrics of one direction (fwd: source -> target, back: target -> source)."""
    t = translate(fwd, d.x)
    out = {f"{name}_cycle_l1": l1_01(translate(back, t), to_unit_range(d.x))}
    u = translate(untrained, d.x) if (d.truth is not None or d.clf is not None) else None
    if d.truth is not None:
        truth = to_unit_range(d.truth)
        out.update({f"{name}_gt_l1": l1_01(t, truth), f"{name}_gt_l1_untrained": l1_01(u, truth),
                    f"{name}_gt_l1_identity": l1_01(to_unit_range(d.x), truth)})
    if d.clf is not None:
        out.update({f"{name}_label_acc": label_acc(d.clf, t, d.labels),
                    f"{name}_label_acc_untrained": label_acc(d.clf, u, d.labels)})
        if d.truth is not None:  # the real translations' accuracy: what a perfect translator would score
            out[f"{name}_label_acc_real"] = label_acc(d.clf, to_unit_range(d.truth), d.labels)
    if fidelity is not None and d.weights:
        vals = fidelity(to_uint8(t), d.target_real, metrics=("fid", "kid"), extractor="classifier",
                        weights_path=d.weights)
        out.update({f"{name}_{k}": v for k, v in vals.items() if k in ("fid", "kid")})
    return out


def evaluate(G: nn.Module, F: nn.Module, G0: nn.Module, F0: nn.Module, storage, dataset: str, n: int,
             classifier_hash: str | None = None, fid: bool = True, device: str = "cpu") -> tuple[dict, tuple]:
    """Both directions' metrics on the first n test images of each domain, G0 / F0 the untrained
    baselines; returns (metrics, (extractor name, classifier hash of domain B)) for the rows."""
    from gan_tasks.data.datasets import DATASETS, dataset_path, load_array
    from gan_tasks.evaluation.classifier import fetch, load
    from gan_tasks.evaluation.fidelity import calculate

    spec = DATASETS.get(dataset).two_domain
    arr = lambda key: torch.from_numpy(load_array(storage, dataset_path(dataset, {}, key))[:n]).to(device)  # noqa
    x = {d: arr(f"test_{d}") for d in "ab"}
    y = {d: arr(f"test_{d}_labels").long() for d in "ab"}
    real = {d: arr(f"train_{d}") for d in "ab"}  # the target domain as it looks: its first n training images
    # One pinned hash can only name one classifier: it applies where both domains share theirs.
    pin = classifier_hash if spec.classifiers[0] == spec.classifiers[1] else None
    fetched = {d: fetch(storage, c, pin) for d, c in zip("ab", spec.classifiers)}
    clf = {d: load(path).to(device) if spec.shared_labels else None for d, (path, _, _) in fetched.items()}
    out = {}
    for name, fwd, back, untrained, src, dst in (("a2b", G, F, G0, "a", "b"), ("b2a", F, G, F0, "b", "a")):
        truth = x[dst] if spec.paired_test else None  # test pairs: test_b[i] translates test_a[i]
        d = Domain(x[src], y[src], truth, real[dst], clf[dst], fetched[dst][0])
        out.update(direction(name, fwd, back, d, untrained, calculate if fid else None))
    return out, ("classifier", fetched["b"][1])


def measure(trial, storage, ev, n: int) -> tuple[dict, str | None, str | None]:
    """The cyclegan program's metrics (evaluate.PROGRAM_METRICS): both directions on the first n test
    images of each domain (n: evaluation.fidelity_samples at the end), FID/KID where
    evaluation.image_metrics asks for them."""
    p = trial.program
    g = p.evaluated
    fid = bool({"fid", "kid"} & set(ev.image_metrics))
    values, (extractor, h) = evaluate(g["G"], g["F"], p.untrained["G"], p.untrained["F"], storage,
                                      trial.cfg.dataset.name, n, ev.classifier_hash, fid, str(trial.device))
    return values, extractor, h
