"""Evaluation of one trial from its last checkpoint: metric rows + a sample file for the report.

What is measured depends on the dataset (EVALUATIONS below): mode coverage for 2D mixtures
(PacGAN / VEEGAN), torch-fidelity's IS / FID / KID / precision-recall for images with an
extractor, Stacked MNIST mode coverage with the MNIST classifier. `measure` is also what the
training-time hook calls every evaluation.eval_every steps, with fewer samples.
"""
from __future__ import annotations

import functools
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pyarrow as pa
import torch
import torch_fidelity

from gan_tasks.data import schema
from gan_tasks.evaluation import conditional, cyclegan
from gan_tasks.evaluation.classifier import CLASSIFIER_DATASETS, fetch, load, predict
from gan_tasks.config import EvalConfig, TrialConfig
from gan_tasks.data.datasets import DATASETS
from gan_tasks.evaluation.fidelity import calculate, feature_layers, input_chain, stats_cache_name, storage_cache
from gan_tasks.evaluation.provenance import for_metric, key, reference_indices, reference_key
from gan_tasks.evaluation.metrics import METRICS, mode_coverage, stacked_mnist_coverage
from gan_tasks.methods.registry import Registry
from gan_tasks.data.storage import Storage, evaluation_file
from gan_tasks.data.userdata import open_split, read_index, upload_id
from gan_tasks.config.early_stop import go_on, record_rung, rung_scores, show
from gan_tasks.training.trial import EarlyStopped, Paused, Trial


@dataclass(frozen=True)
class Measured:
    values: dict[str, float]
    extractor: str = ""  # which feature extractor produced the values ("" for none)
    extractor_hash: str = ""
    provenance: dict[str, str] = field(default_factory=dict)  # metric -> provenance JSON (image metrics)


def _mixture(trial: Trial, storage: Storage, ev: EvalConfig, n: int) -> Measured:
    p = trial.cfg.dataset.params
    return Measured(mode_coverage(trial.sample(n), DATASETS.get(trial.cfg.dataset.name).modes(**p), p["std"],
                                  ev.std_threshold))


def _weights(storage: Storage, ev: EvalConfig, dataset: str) -> tuple[str, str, str] | None:
    """(extractor name, local weights path, content hash), or None when the dataset has none."""
    own = ev.classifier_dataset or (dataset if dataset in CLASSIFIER_DATASETS else None)
    name = ev.feature_extractor or ("classifier" if own else None)
    if name is None:
        return None
    if name == "classifier":
        path, h, _ = fetch(storage, own, ev.classifier_hash)
        return name, path, h
    path = ev.feature_extractor_weights_path
    st = os.stat(path)
    return name, path, _file_sha(path, st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _file_sha(path: str, size: int, mtime_ns: int) -> str:
    """sha256[:16] of a weights file, read once per (path, size, mtime): Inception's is ~95 MB and
    training-time evaluations ask for it every eval_every steps."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def _reference(trial: Trial, storage: Storage, ev: EvalConfig, n: int) -> tuple[np.ndarray, str, list[str]]:
    """(a seeded random subset of n training images, the data's id, how the stored images were made)."""
    dataset, added = trial.cfg.dataset.name, trial.cfg.dataset.id
    did = added or upload_id(storage, dataset)  # a built-in upload: its current (only) id
    images, _ = open_split(storage, dataset, did)
    if added:
        p = read_index(storage, dataset, did)["params"]
        made = [f"data add: EXIF orientation, {p['crop']} crop, Pillow LANCZOS -> {p['size']}x{p['size']} {p['mode']}"]
    else:
        made = [f"stored {'x'.join(map(str, images.shape[1:]))} uint8"]
    return images.take(reference_indices(len(images), n, ev.reference_seed)), did, made


def _fidelity(trial: Trial, storage: Storage, ev: EvalConfig, n: int) -> Measured:
    w = _weights(storage, ev, trial.cfg.dataset.name)
    if w is None:
        return Measured({})
    name, path, h = w
    real, data_id, made = _reference(trial, storage, ev, n)
    layers = feature_layers(name)
    prov = {"extractor": name, "weights_hash": h, "torch_fidelity": torch_fidelity.__version__,
            "resize": " | ".join(made + input_chain(name, real.shape[1:])), "n_real": len(real), "n_fake": n,
            "reference_split": "train", "reference_seed": ev.reference_seed, "dataset_id": data_id,
            "g_ema": bool(trial.cfg.train.g_ema)}
    asked = [m for m in ev.image_metrics if m != "isc"]  # the layers whose real statistics are cached
    cache = stats_cache_name(trial.cfg.dataset.name, reference_key({**prov, "feature_layer": {m: layers[m] for m in asked}}))
    with storage_cache(storage, cache) as root:
        values = calculate(trial.G_eval, real, metrics=ev.image_metrics, extractor=name, weights_path=path,
                           n_samples=n, z_dim=trial.cfg.train.z_dim, real_cache_name=cache, cache_root=root,
                           device=str(trial.device))
    trial.G.train()  # torch-fidelity's wrapper switched it to eval mode (the average stays in eval)
    return Measured(values, name, h, {m: json.dumps(for_metric(prov, m, layers), sort_keys=True) for m in values})


def _stacked(trial: Trial, storage: Storage, ev: EvalConfig, n: int) -> Measured:
    """Each channel of n generated Stacked MNIST images classified by the MNIST classifier."""
    path, h, _ = fetch(storage, "mnist", ev.classifier_hash)
    net = load(path).to(trial.device)
    digits = []
    for i in range(0, n, 1000):
        x = torch.from_numpy(trial.sample(min(1000, n - i), seed=12345 + i)).to(trial.device)
        digits.append(torch.stack([predict(net, x[:, c:c + 1]) for c in range(3)], 1).cpu())
    return Measured(stacked_mnist_coverage(torch.cat(digits).numpy()), "classifier", h)


@dataclass(frozen=True)
class DatasetEvaluation:
    measure: Callable[[Trial, Storage, EvalConfig, int], Measured]
    n_final: Callable[[EvalConfig], int]  # samples for the final evaluation


EVALUATIONS: Registry[DatasetEvaluation] = Registry("dataset evaluation")
for _name in ("ring-8", "grid-25"):
    EVALUATIONS.add(_name, DatasetEvaluation(_mixture, lambda ev: ev.n_samples), "PacGAN/VEEGAN mode coverage")
for _name in ("mnist", "fashion-mnist", "cifar10"):
    EVALUATIONS.add(_name, DatasetEvaluation(_fidelity, lambda ev: ev.fidelity_samples),
                    "IS/FID/KID/precision-recall through torch-fidelity")
# Datasets added with gansweep data add: image metrics when evaluation.feature_extractor names one.
ADDED = DatasetEvaluation(_fidelity, lambda ev: ev.fidelity_samples)
EVALUATIONS.add("stacked-mnist", DatasetEvaluation(_stacked, lambda ev: ev.stacked_samples),
                "Stacked MNIST modes covered and reverse KL (MNIST classifier per channel)")
# Two-domain datasets have no samples of G(z) to measure: what is measured is the translation, by the
# program's own metrics (PROGRAM_METRICS["cyclegan"]) on evaluation.fidelity_samples test images per domain.
for _name in ("mnist-thick", "mnist-fashion"):
    EVALUATIONS.add(_name, DatasetEvaluation(lambda *_: Measured({}), lambda ev: ev.fidelity_samples),
                    "nothing of its own: the translation program's metrics")


def rows(cfg: TrialConfig, sweep_id: str, step: int, m: Measured) -> list[dict]:
    prov = m.provenance
    return [{"sweep_id": sweep_id, "trial_id": cfg.trial_id, "step": step, "metric": k, "value": float(v),
             "extractor": m.extractor, "extractor_hash": m.extractor_hash, "provenance": prov.get(k, ""),
             "provenance_key": key(json.loads(prov[k])) if k in prov else ""} for k, v in m.values.items()]


# A program's own metrics (declared by name in gan_tasks/methods/programs.py), measured beside the
# dataset's: (trial, storage, ev, n) -> (values, extractor, extractor hash[, {metric: provenance dict}]).
PROGRAM_METRICS: Registry[Callable] = Registry("program evaluation")
for _name in ("cgan-concat", "cgan-projection", "acgan"):
    PROGRAM_METRICS.add(_name, conditional.measure, "generated-class accuracy, per-class mode accuracy, intra-class FID/KID")
PROGRAM_METRICS.add("cyclegan", cyclegan.measure, "per direction: error against ground truth, label preservation, "
                                                   "cycle error, FID/KID against the target domain, and their baselines")


def _named(trial: Trial, ev: EvalConfig, n: int) -> dict[str, float]:
    """The metrics evaluation.metrics names (plugins'): compute(n generated, n training samples, **params)."""
    if not ev.metrics:
        return {}
    fake, real, out = trial.sample(n), trial.data[:n].cpu().numpy(), {}  # both in the model's range
    for entry in ev.metrics:
        spec = METRICS.get(entry.name)
        values = spec.compute(fake, real, **entry.params)
        out.update({k: float(values[k]) for k in spec.outputs})
    return out


def measure(trial: Trial, storage: Storage, ev: EvalConfig, n: int | None = None) -> Measured:
    """The dataset's metrics of the trial's current generator (n samples; default: the final count),
    the metrics the sweep names, and its program's own."""
    spec = ADDED if trial.cfg.dataset.id else EVALUATIONS.get(trial.cfg.dataset.name)
    m = spec.measure(trial, storage, ev, n or spec.n_final(ev))
    if ev.metrics:
        m = Measured({**m.values, **_named(trial, ev, n or spec.n_final(ev))}, m.extractor, m.extractor_hash,
                     m.provenance)
    if trial.cfg.program not in PROGRAM_METRICS:
        return m
    values, extractor, h, *prov = PROGRAM_METRICS.get(trial.cfg.program)(trial, storage, ev, n or spec.n_final(ev))
    own = {k: json.dumps(p, sort_keys=True) for k, p in (prov[0] if prov else {}).items()}  # its image metrics'
    return Measured({**m.values, **values}, m.extractor or extractor, m.extractor_hash or h, {**m.provenance, **own})


def evaluate_trial(cfg: TrialConfig, storage: Storage, sweep_id: str, ev: EvalConfig,
                   device: str = "cpu") -> list[dict]:
    trial = Trial(cfg, storage, sweep_id, device)
    if not trial.try_resume():
        raise FileNotFoundError(f"trial {cfg.trial_id} has no checkpoint to evaluate")
    samples = trial.program.report_samples()  # None: the dataset's default
    if samples is None:
        samples = trial.sample(ev.n_samples if trial.data.ndim == 2 else 64)  # the report shows an 8x8 image grid
    buf = io.BytesIO()
    np.save(buf, samples)
    storage.write_bytes(buf.getvalue(), "sweeps", sweep_id, "samples", f"{cfg.trial_id}.npy")
    out = rows(cfg, sweep_id, trial.step, measure(trial, storage, ev))
    write_evaluations(storage, sweep_id, cfg.trial_id, out)
    return out


def write_evaluations(storage: Storage, sweep_id: str, trial_id: str, rows_: list[dict],
                      step: int | None = None) -> None:
    """evaluations/<trial_id>.parquet (final: step None) or eval_every/<trial_id>-<step:09d>.parquet (during
    training), apart so that evaluations/ holds one result per trial (gan_tasks/evaluation/seeds.py)."""
    storage.write_parquet(pa.Table.from_pylist(rows_, schema=schema.EVALUATIONS), "sweeps", sweep_id,
                          *evaluation_file(trial_id, step))


def on_eval(storage: Storage, sweep_id: str, ev: EvalConfig, es=None) -> Callable[[Trial], None]:
    """The training-time hook: cheap metrics (ev.eval_every_samples samples) at the trial's step; at
    an early_stop rung (es), the trial then stops unless it is among the best so far there."""
    def hook(trial: Trial) -> None:
        m = measure(trial, storage, ev, ev.eval_every_samples)
        out = rows(trial.cfg, sweep_id, trial.step, m)
        write_evaluations(storage, sweep_id, trial.tid, out, trial.step)
        if es is not None and trial.step in es.rungs:  # its mark at the rung, after its evaluation file
            record_rung(storage, sweep_id, trial.step, trial.tid,
                        {r["metric"]: r["value"] for r in out if r["metric"] in es.metrics})
        if es is not None and trial.step in es.rungs and es.decide == "cohort":
            raise Paused(f"paused at step {trial.step}: its cohort's rung is decided by the flow")
        if es is not None and trial.step in es.rungs:
            values = rung_scores(storage, sweep_id, trial.step, es)
            if not go_on(values, trial.tid, es):
                what = es.metric if isinstance(es.metric, str) else f"mean rank over {', '.join(es.metric)} of"
                raise EarlyStopped(f"early_stop at step {trial.step}: {what} {show(values.get(trial.tid))} not "
                                   f"in the best 1/{es.reduction_factor:g} of {len(values)} trials at this rung")
    return hook
