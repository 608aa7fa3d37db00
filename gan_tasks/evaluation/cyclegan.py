"""CycleGAN metrics, per direction (a2b: G on domain A's test images, b2a: F on domain B's).

Every value is a mean over the test images of the source domain, pixels on a [0, 1] scale:
  <dir>_gt_l1          mean |translation - ground truth| per pixel, where the dataset holds test pairs
  <dir>_label_acc      share of translations the target domain's in-domain classifier labels as the
                       source image's label (datasets whose two domains share their classes)
  <dir>_cycle_l1       mean |reconstruction - input| per pixel (F(G(a)) against a; G(F(b)) against b)
  <dir>_fid, _kid      translations against a seeded random subset (evaluation.reference_seed) of the
                       target domain's training images, its classifier's features; with their provenance
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
from gan_tasks.evaluation.provenance import reference_indices
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


def provenance(name: str, storage, dataset: str, d: Domain, weights_hash: str, reference_seed: int,
               g_ema: bool) -> dict[str, dict]:
    """{<name>_fid / _kid: provenance} of one direction: the translations of d.x against d.target_real,
    a seeded random subset of the target domain's training images."""
    import torch_fidelity

    from gan_tasks.data.datasets import dataset_sha
    from gan_tasks.evaluation.fidelity import feature_layers, input_chain

    dst = name[-1]  # a2b: domain b's images are the reference
    shape = tuple(d.target_real.shape[1:])
    base = {"extractor": "classifier", "weights_hash": weights_hash, "torch_fidelity": torch_fidelity.__version__,
            "resize": " | ".join([f"stored {'x'.join(map(str, shape))} uint8"] + input_chain("classifier", shape)),
            "n_real": len(d.target_real), "n_fake": len(d.x), "reference_split": f"train_{dst}",
            "reference_seed": reference_seed, "dataset_id": dataset_sha(storage, dataset, f"train_{dst}"),
            "g_ema": g_ema}
    layers = feature_layers("classifier")
    return {f"{name}_{m}": {**base, "feature_layer": layers[m]} for m in ("fid", "kid")}


def evaluate(G: nn.Module, F: nn.Module, G0: nn.Module, F0: nn.Module, storage, dataset: str, n: int,
             classifier_hash: str | None = None, fid: bool = True, device: str = "cpu", reference_seed: int = 0,
             g_ema: bool = False) -> tuple[dict, tuple, dict]:
    """Both directions' metrics on the first n test images of each domain, G0 / F0 the untrained
    baselines; FID/KID against a seeded random subset (reference_seed) of n training images of the
    target domain. Returns (metrics, (extractor name, classifier hash of domain B), {metric: provenance})."""
    from gan_tasks.data.datasets import DATASETS, dataset_path, load_array
    from gan_tasks.evaluation.classifier import fetch, load as load_clf
    from gan_tasks.evaluation.fidelity import calculate

    spec = DATASETS.get(dataset).two_domain
    read = lambda key: load_array(storage, dataset_path(dataset, {}, key))  # noqa: E731
    arr = lambda key: torch.from_numpy(read(key)[:n]).to(device)  # noqa: E731
    x = {d: arr(f"test_{d}") for d in "ab"}
    y = {d: arr(f"test_{d}_labels").long() for d in "ab"}
    train = {d: read(f"train_{d}") for d in "ab"}  # the target domain as it looks: a seeded subset of its images
    real = {d: torch.from_numpy(t[reference_indices(len(t), n, reference_seed)]).to(device) for d, t in train.items()}
    # One pinned hash can only name one classifier: it applies where both domains share theirs.
    pin = classifier_hash if spec.classifiers[0] == spec.classifiers[1] else None
    fetched = {d: fetch(storage, c, pin) for d, c in zip("ab", spec.classifiers)}
    clf = {d: load_clf(path).to(device) if spec.shared_labels else None for d, (path, _, _) in fetched.items()}
    out, prov = {}, {}
    for name, fwd, back, untrained, src, dst in (("a2b", G, F, G0, "a", "b"), ("b2a", F, G, F0, "b", "a")):
        truth = x[dst] if spec.paired_test else None  # test pairs: test_b[i] translates test_a[i]
        d = Domain(x[src], y[src], truth, real[dst], clf[dst], fetched[dst][0])
        out.update(direction(name, fwd, back, d, untrained, calculate if fid else None))
        prov.update({k: p for k, p in provenance(name, storage, dataset, d, fetched[dst][1], reference_seed,
                                                 g_ema).items() if k in out})
    return out, ("classifier", fetched["b"][1]), prov


def measure(trial, storage, ev, n: int) -> tuple[dict, str | None, str | None, dict]:
    """The cyclegan program's metrics (evaluate.PROGRAM_METRICS): both directions on the first n test
    images of each domain (n: evaluation.fidelity_samples at the end), FID/KID where
    evaluation.image_metrics asks for them, with their provenance."""
    p = trial.program
    g = p.evaluated
    fid = bool({"fid", "kid"} & set(ev.image_metrics))
    values, (extractor, h), prov = evaluate(g["G"], g["F"], p.untrained["G"], p.untrained["F"], storage,
                                            trial.cfg.dataset.name, n, ev.classifier_hash, fid, str(trial.device),
                                            ev.reference_seed, bool(trial.cfg.train.g_ema))
    return values, extractor, h, prov
