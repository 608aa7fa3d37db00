"""Metrics by name (`gansweep list metrics`; a sweep's `evaluation.metrics`), torch-free.

The built-in ones are measured on every trial of the datasets they belong to (gan_tasks/evaluation/
evaluate.py picks them by dataset: `automatic`). Others, a plugin's, are named in a sweep's
`evaluation.metrics` and measured beside them at every evaluation: `compute(fake, real, **params)`
gets n generated and n training samples as numpy arrays of the dataset's shape and returns
{output name: float}; `outputs` says which way each output is better, for rankings and compare.

Feature extractors (`evaluation.feature_extractor`; `gansweep list feature-extractors`) are the networks
whose features IS / FID / KID / precision-recall compare (gan_tasks/evaluation/fidelity.py). A plugin's
names a torch-fidelity FeatureExtractorBase subclass by Ref (`build`) and its feature dimension (`dim`);
gan_tasks/evaluation/extractors.py registers it with torch-fidelity under its name when first used.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from gan_tasks.methods.params import Spec, check_spec_params
from gan_tasks.methods.registry import KINDS, Ref, Registry

_OUTPUT = re.compile(r"[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class MetricSpec:
    compute: Callable  # (fake: np.ndarray, real: np.ndarray, **params) -> {output: float}
    outputs: dict[str, bool]  # each output's name -> higher is better
    bounds: dict[str, tuple] = field(default_factory=dict)  # output -> (low, high) its values lie in; None: open
    defaults: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Spec] = field(default_factory=dict)  # type and range of each parameter
    data_kinds: tuple[str, ...] = KINDS  # the kinds of data it can measure
    automatic: bool = False  # measured on its datasets without being named (the built-ins)
    doc: str = ""  # one line for `gansweep list` (a plugin's; built-ins give it to METRICS.add)

    @property
    def schema(self) -> dict[str, Spec]:
        return dict(self.params)

    def check_spec(self) -> None:
        bad = [o for o in self.outputs if not isinstance(o, str) or not _OUTPUT.fullmatch(o)]
        if not self.outputs or bad:
            raise ValueError(f"outputs {list(self.outputs)!r}: expected one or more names of lowercase letters, "
                             "digits and '_'")
        for o, b in self.bounds.items():
            ok = o in self.outputs and len(b) == 2 and all(x is None or isinstance(x, (int, float)) for x in b)
            if not ok or (None not in b and b[0] > b[1]):
                raise ValueError(f"bounds[{o!r}] {b!r}: expected (low, high) of one of its outputs, None for open")
        if not self.data_kinds or set(self.data_kinds) - set(KINDS):
            raise ValueError(f"data_kinds {self.data_kinds!r}: expected one or more of {', '.join(KINDS)}")
        check_spec_params(self.defaults, self.schema)


METRICS: Registry[MetricSpec] = Registry("metric", MetricSpec, plugins=True)

_E = "gan_tasks.evaluation.metrics"
METRICS.add("mode-coverage", MetricSpec(Ref(f"{_E}:mode_coverage"), {"modes_covered": True, "high_quality": True,
                                                                     "reverse_kl": False, "reverse_kl_hq": False},
                                        data_kinds=("points",), automatic=True),
            "PacGAN/VEEGAN modes covered, high-quality fraction, reverse KL")
METRICS.add("stacked-mnist-coverage", MetricSpec(Ref(f"{_E}:stacked_mnist_coverage"),
                                                 {"modes_covered": True, "reverse_kl": False},
                                                 data_kinds=("images",), automatic=True),
            "Stacked MNIST: modes (of 1,000) covered and reverse KL, channels classified by the MNIST classifier")
METRICS.add("image-fidelity", MetricSpec(Ref("gan_tasks.evaluation.fidelity:calculate"),
                                         {"inception_score": True, "fid": False, "kid": False, "precision": True,
                                          "recall": True, "f_score": True}, data_kinds=("images",), automatic=True),
            "IS, FID, KID, precision/recall through torch-fidelity (in-domain classifier or Inception-v3)")


FIDELITY_NAME = "gansweep-classifier"  # the name torch-fidelity knows our classifier by


@dataclass(frozen=True)
class ExtractorSpec:
    fidelity_name: str = ""  # the name torch-fidelity knows it by ('' for a plugin's: its registered name)
    rgb: bool = False  # takes 3-channel images: grey ones are repeated to RGB
    weights_hint: str = ""  # how to provide the weights when they are missing (a built-in's)
    # A plugin's: a torch-fidelity FeatureExtractorBase subclass, built as cls(name, features_list,
    # feature_extractor_weights_path=...) with the features FID/KID/PR and IS ask for, and the FID features' size.
    build: Ref | None = None
    dim: int = 0  # the FID features' size: FID needs at least as many samples a side (0: not checked)
    doc: str = ""  # one line for `gansweep list` (a plugin's; built-ins give it to EXTRACTORS.add)

    @property
    def summary(self) -> str:
        """What `gansweep list feature-extractors` shows beside the description."""
        return (f"{self.dim}-d features ({self.build.target})" if self.build else f"torch-fidelity {self.fidelity_name}") \
            + ("; RGB input" if self.rgb else "")

    def check_spec(self) -> None:
        if self.build is None and not self.fidelity_name:
            raise ValueError("expected build=Ref('module:FeatureExtractorClass') (a plugin's) or a fidelity_name")
        if self.build is not None and (not isinstance(self.dim, int) or self.dim <= 0):
            raise ValueError(f"dim {self.dim!r}: expected the feature dimension, a positive integer")


EXTRACTORS: Registry[ExtractorSpec] = Registry("feature extractor", ExtractorSpec, plugins=True)
EXTRACTORS.add("classifier", ExtractorSpec(FIDELITY_NAME, False, "gansweep evaluator train DATASET --storage URL", dim=128),
               "in-domain CNN classifier (MNIST, Fashion-MNIST): logits for IS, 128-d features for FID/KID/PR")
EXTRACTORS.add("inception-v3", ExtractorSpec(
    "inception-v3-compat", True,
    "set evaluation.feature_extractor_weights_path to a local copy of "
    "pt_inception-2015-12-05-6726825d.pth (torch-fidelity's FID Inception weights)", dim=2048),
    "Inception-v3 (FID / IS reference network), from a local weights file")
