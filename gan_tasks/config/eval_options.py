"""What a config's `evaluation:` section may name, torch-free: feature extractors, the datasets with an
in-domain classifier, torch-fidelity's metric flags, and their config-time checks. The torch code
reading them lives in gan_tasks/evaluation/ (fidelity.py, classifier.py)."""
from __future__ import annotations

import os
from typing import Sequence

from gan_tasks.methods.metric_specs import EXTRACTORS, FIDELITY_NAME, ExtractorSpec  # noqa: F401 - re-exported
from gan_tasks.methods.registry import Registry


METRIC_FLAGS = ("isc", "fid", "kid", "prc")  # Inception Score, FID, KID, precision/recall


# In-domain classifiers (gansweep evaluator train) and the test accuracy each must reach.
CLASSIFIER_DATASETS: Registry[float] = Registry("classifier dataset")
CLASSIFIER_DATASETS.add("mnist", 0.99, "MNIST digits: >= 99 % test accuracy")
CLASSIFIER_DATASETS.add("fashion-mnist", 0.90, "Fashion-MNIST: >= 90 % test accuracy")


def check_eval(extractor: str | None, weights_path: str | None, metrics: Sequence[str]) -> None:
    """Config-time checks of the evaluation section (before any compute)."""
    bad = sorted(set(metrics) - set(METRIC_FLAGS))
    if bad or not metrics:
        raise ValueError(f"evaluation.image_metrics {list(metrics)}: valid are {', '.join(METRIC_FLAGS)}")
    if extractor is None:
        return
    spec = EXTRACTORS.get(extractor)
    if spec.build is None and spec.fidelity_name != FIDELITY_NAME and not weights_path:  # a plugin's: optional
        raise ValueError(f"evaluation.feature_extractor {extractor!r} needs its weights: {spec.weights_hint}")
    if weights_path and not os.path.exists(weights_path):
        raise ValueError(f"evaluation.feature_extractor_weights_path {weights_path!r} does not exist")


def check_dataset_extractor(dataset: str, extractor: str | None) -> None:
    if extractor == "classifier" and dataset not in CLASSIFIER_DATASETS:
        raise ValueError(f"evaluation.feature_extractor 'classifier' has no classifier for dataset {dataset!r} "
                         f"(valid: {', '.join(CLASSIFIER_DATASETS)}); use inception-v3 with "
                         "evaluation.feature_extractor_weights_path")
