"""gansweep's public plugin API, version API_VERSION: what a plugin distribution builds its entries with.

A plugin registers entries through Python entry points, one group per kind (GROUPS): the entry
point's name is the name a sweep file uses, its value "module:attr" names a spec object below.

    [project.entry-points."gansweep.losses"]
    soft-hinge = "my_gan_lib.specs:SOFT_HINGE"

A spec is torch-free: its code is named by Ref("module:function") and imported only when a trial
trains, so `gansweep validate` and `gansweep list` never import torch. Its parameters are typed
(Num, Choice, Seq) with defaults inside their ranges, and optionally the range a hyper-parameter search
samples (Space, docs/search.md); a sweep's values for them get exactly the built-ins' validation, `--set`
overrides, `gansweep list` lines and error messages, because the built-ins are the same spec classes added through the same `Registry.add` (`register` below).
What each kind's code receives and returns: docs/plugins.md.

Compatibility: names exported here keep their meaning within one API_VERSION; a change that breaks a
plugin increments it. A plugin may check `gan_tasks.plugin_api.API_VERSION` at import.
"""
from __future__ import annotations

from typing import Any

from gan_tasks.methods.catalog import LOSSES, MODELS, OPTIMIZERS, Loss, ModelSpec, OptimizerSpec
from gan_tasks.methods.metric_specs import EXTRACTORS, METRICS, ExtractorSpec, MetricSpec
from gan_tasks.methods.params import Choice, Num, Seq, Space
from gan_tasks.methods.plugins import GROUPS, PluginError, Provider
from gan_tasks.methods.programs import PROGRAMS, ProgramSpec
from gan_tasks.methods.registry import Ref, Registry

API_VERSION = 1

# The spec classes under the names a plugin uses.
Model, Optimizer, Program, Metric, FeatureExtractor = ModelSpec, OptimizerSpec, ProgramSpec, MetricSpec, ExtractorSpec

# Registry by kind, and by the plural `gansweep list` takes.
REGISTRIES: dict[str, Registry] = {"loss": LOSSES, "model": MODELS, "optimizer": OPTIMIZERS, "program": PROGRAMS,
                                   "metric": METRICS, "feature extractor": EXTRACTORS}
PLURALS = {"losses": "loss", "models": "model", "optimizers": "optimizer", "programs": "program", "metrics": "metric",
           "feature-extractors": "feature extractor"}


def register(kind: str, name: str, spec: Any, doc: str = "") -> None:
    """Add an entry in-process (tests, notebooks): the way built-ins and entry-point plugins are added."""
    if kind not in REGISTRIES:
        raise ValueError(f"unknown kind {kind!r}; valid: {', '.join(REGISTRIES)}")
    REGISTRIES[kind].add(name, spec, doc)


__all__ = ["API_VERSION", "GROUPS", "REGISTRIES", "PLURALS", "Loss", "Model", "Optimizer", "Program", "Metric",
           "FeatureExtractor",
           "Num", "Choice", "Seq", "Space", "Ref", "PluginError", "Provider", "register"]
