"""How an image metric was made, recorded beside every value, so that numbers made differently are never
compared as if they were one measurement.

A provenance is a flat dict (FIELDS): the feature extractor and the sha256 of its weights, the feature
layer, torch-fidelity's version, the resize chain from the stored images to the extractor's input,
n_real and n_fake, the reference split and the seed that drew the reference sample, the dataset id
(an added dataset's id, a built-in's training-file sha256) and whether G-EMA was scored. Evaluation
rows carry it as JSON (`provenance`) and its short hash (`provenance_key`); the real-data statistics
are cached under the hash of its REFERENCE fields (what they depend on). The Inception Score compares
with no real images: its provenance leaves the reference fields out.
"""
from __future__ import annotations

import hashlib
import json
from typing import Iterable

import numpy as np

FIELDS = ("extractor", "weights_hash", "feature_layer", "torch_fidelity", "resize", "n_real", "n_fake",
          "reference_split", "reference_seed", "dataset_id", "g_ema")
# What the real images' features depend on: the key of the cached reference statistics.
REFERENCE = ("extractor", "weights_hash", "feature_layer", "torch_fidelity", "resize", "n_real", "reference_split",
             "reference_seed", "dataset_id")
_NO_REFERENCE = ("n_real", "reference_split", "reference_seed")  # IS: generated images only
# Our metric names -> torch-fidelity's metric whose feature layer produced them, and how a message names them.
LAYER_OF = {"inception_score": "isc", "inception_score_std": "isc", "fid": "fid", "kid": "kid", "kid_std": "kid",
            "precision": "prc", "recall": "prc", "f_score": "prc"}
SHOWN = {"inception_score": "IS", "inception_score_std": "IS s.d.", "fid": "FID", "kid": "KID", "kid_std": "KID s.d.",
         "precision": "precision", "recall": "recall", "f_score": "F-score"}


def key(fields: dict) -> str:
    """sha256[:16] of the canonical JSON: equal keys, equal provenance."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def reference_key(p: dict) -> str:
    return key({f: p[f] for f in REFERENCE})


def for_metric(p: dict, metric: str, layers: dict[str, str]) -> dict:
    """The provenance of one metric's value: its feature layer; no reference fields for the IS."""
    out = {**p, "feature_layer": layers[LAYER_OF[metric]]}
    if LAYER_OF[metric] == "isc":
        out.update({f: None for f in _NO_REFERENCE})
    return out


def reference_indices(n_total: int, n: int, seed: int) -> np.ndarray:
    """A seeded random subset of n of n_total reference images, without repetition, in ascending order
    (the same subset on every node and every night; another seed, another subset)."""
    if n >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng([seed, n_total, n]).choice(n_total, size=n, replace=False))


def _shown(v) -> str:
    return "-" if v is None else str(v).lower() if isinstance(v, bool) else str(v)


def difference(metric: str, provenances: Iterable[str | None]) -> str | None:
    """Why values of `metric` with these provenance JSONs cannot be compared (None: they can), e.g.
    "FID not comparable: n_real 500 vs 1000". A value without one (a metric that has none, or a row
    written before provenance existed) is comparable only with others without one."""
    seen = list(dict.fromkeys(p or "" for p in provenances))  # in the order given: A vs B
    if len(seen) < 2:
        return None
    name = SHOWN.get(metric, metric)
    if "" in seen:
        return f"{name} not comparable: some values have no provenance (written before it was recorded)"
    dicts = [json.loads(p) for p in seen]
    fields = [f for f in sorted({k for d in dicts for k in d}, key=lambda f: (FIELDS + (f,)).index(f))
              if len({json.dumps(d.get(f), sort_keys=True) for d in dicts}) > 1]
    return f"{name} not comparable: " + "; ".join(
        f"{f} " + " vs ".join(dict.fromkeys(_shown(d.get(f)) for d in dicts)) for f in fields)
