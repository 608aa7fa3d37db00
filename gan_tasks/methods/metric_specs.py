"""Metrics by name (`gansweep list metrics`; a sweep's `evaluation.metrics`), torch-free.

The built-in ones are measured on every trial of the datasets they belong to (gan_tasks/evaluation/
evaluate.py picks them by dataset: `automatic`). Others, a plugin's, are named in a sweep's
`evaluation.metrics` and measured beside them at every evaluation: `compute(fake, real, **params)`
gets n generated and n training samples as numpy arrays of the dataset's shape and returns
{output name: float}; `outputs` says which way each output is better, for rankings and compare.
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
