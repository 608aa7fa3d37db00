"""What a config's `evaluation:` section may name, torch-free: feature extractors, the datasets with an
in-domain classifier, torch-fidelity's metric flags, and their config-time checks. The torch code
reading them lives in gan_tasks/evaluation/ (fidelity.py, classifier.py)."""
from __future__ import annotations

import os
from typing import Sequence

from gan_tasks.methods.metric_specs import EXTRACTORS, FIDELITY_NAME, ExtractorSpec  # noqa: F401 - re-exported
from gan_tasks.methods.params import FieldError
from gan_tasks.methods.registry import Registry


METRIC_FLAGS = ("isc", "fid", "kid", "prc")  # Inception Score, FID, KID, precision/recall


# In-domain classifiers (gansweep evaluator train) and the test accuracy each must reach.
CLASSIFIER_DATASETS: Registry[float] = Registry("classifier dataset")
CLASSIFIER_DATASETS.add("mnist", 0.99, "MNIST digits: >= 99 % test accuracy")
CLASSIFIER_DATASETS.add("fashion-mnist", 0.90, "Fashion-MNIST: >= 90 % test accuracy")


def check_eval(extractor: str | None, weights_path: str | None, metrics: Sequence[str],
               samples: dict[str, int] | None = None) -> None:
    """Config-time checks of the evaluation section (before any compute). `samples`: {field: sample
    count} of the evaluations FID would be computed on."""
    bad = sorted(set(metrics) - set(METRIC_FLAGS))
    if bad or not metrics:
        raise ValueError(f"evaluation.image_metrics {list(metrics)}: valid are {', '.join(METRIC_FLAGS)}")
    if "fid" in metrics and "kid" not in metrics:
        raise FieldError("image_metrics", f"{list(metrics)}: FID is reported with KID beside it (FID's bias depends "
                                          "on the sample size and the generator; KID is unbiased): add kid")
    check_fid_samples(extractor, metrics, samples or {})
    if extractor is None:
        return
    spec = EXTRACTORS.get(extractor)
    if spec.build is None and spec.fidelity_name != FIDELITY_NAME and not weights_path:  # a plugin's: optional
        raise ValueError(f"evaluation.feature_extractor {extractor!r} needs its weights: {spec.weights_hint}")
    if weights_path and not os.path.exists(weights_path):
        raise ValueError(f"evaluation.feature_extractor_weights_path {weights_path!r} does not exist")


def check_fid_samples(extractor: str | None, metrics: Sequence[str], samples: dict[str, int]) -> None:
    """FID estimates a covariance of the extractor's `dim` features from each side's samples: with fewer
    samples than dimensions it is singular and the FID meaningless. KID is unbiased at any size."""
    if "fid" not in metrics:
        return
    spec = EXTRACTORS.get(extractor or "classifier")  # None: the in-domain classifier, or no image metrics
    for field, n in samples.items():
        if n < spec.dim:
            raise FieldError(field, f"{n}: FID needs at least the feature dimension of {extractor or 'classifier'} "
                                    f"({spec.dim}) samples a side; use KID instead (drop fid: evaluation.image_metrics: "
                                    "[isc, kid, prc]) or raise the sample count")


# Intra-class FID (conditional programs on a dataset with an in-domain classifier: gan_tasks/evaluation/
# conditional.py) is each class's FID from fidelity_samples // classes samples a side, with the classifier's
# features: at least this many a class, and at least their dimension.
INTRA_FID_MIN = 128


def check_intra_fid(dataset: str, classes: int, metrics: Sequence[str], samples: dict[str, int]) -> None:
    """A conditional program's intra-class FID on `dataset` (`classes` classes), for each evaluation's sample
    count `samples` ({field: n}); without fid in image_metrics only intra-class KID is measured. Its reference
    side is a class's training images: mnist's and fashion-mnist's smallest class has 5,421."""
    if "fid" not in metrics or dataset not in CLASSIFIER_DATASETS:
        return
    need = max(INTRA_FID_MIN, EXTRACTORS.get("classifier").dim)
    for field, n in samples.items():
        if n // classes < need:
            raise FieldError(field, f"{n}: intra-class FID would get {n // classes} samples a class of {dataset}'s "
                                    f"{classes}; it needs at least {need} a class (the classifier's feature dimension "
                                    f"is {EXTRACTORS.get('classifier').dim}): raise it to {need * classes}, or use KID "
                                    "(evaluation.image_metrics: [isc, kid, prc] measures intra_kid only)")


def check_dataset_extractor(dataset: str, extractor: str | None, classifier_dataset: str | None = None,
                            channels: int | None = None) -> None:
    """The classifier extractor needs an in-domain classifier: the dataset's own, or evaluation.classifier_dataset's
    (an added MNIST-like set scored with the MNIST classifier), on images with as many channels."""
    if classifier_dataset is not None:
        if classifier_dataset not in CLASSIFIER_DATASETS:
            raise ValueError(f"evaluation.classifier_dataset {classifier_dataset!r}: valid: "
                             f"{', '.join(CLASSIFIER_DATASETS)}")
        if extractor not in (None, "classifier"):
            raise ValueError(f"evaluation.classifier_dataset applies to feature_extractor 'classifier', not {extractor!r}")
        if channels not in (None, 1):
            raise ValueError(f"evaluation.classifier_dataset {classifier_dataset!r}: its classifier reads grey "
                             f"images, dataset {dataset!r} has {channels} channels (add it with --mode L)")
        return
    if extractor == "classifier" and dataset not in CLASSIFIER_DATASETS:
        raise ValueError(f"evaluation.feature_extractor 'classifier' has no classifier for dataset {dataset!r} "
                         f"(valid: {', '.join(CLASSIFIER_DATASETS)}); name one with evaluation.classifier_dataset, "
                         "or use inception-v3 with evaluation.feature_extractor_weights_path")
