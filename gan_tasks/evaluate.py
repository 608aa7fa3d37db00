"""Final evaluation of one trial from its last checkpoint: metrics rows + a sample file for the report."""
from __future__ import annotations

import io

import numpy as np
import pyarrow as pa

from gan_tasks import schema
from gan_tasks.config import EvalConfig, TrialConfig
from gan_tasks.datasets import DATASETS
from gan_tasks.metrics import mode_coverage
from gan_tasks.storage import Storage
from gan_tasks.train import Trial


def evaluate_trial(cfg: TrialConfig, storage: Storage, sweep_id: str, ev: EvalConfig,
                   device: str = "cpu") -> list[dict]:
    trial = Trial(cfg, storage, sweep_id, device)
    if not trial.try_resume():
        raise FileNotFoundError(f"trial {cfg.trial_id} has no checkpoint to evaluate")
    samples = trial.sample(ev.n_samples)
    buf = io.BytesIO()
    np.save(buf, samples if samples.ndim == 2 else samples[:64])  # the report shows an 8x8 image grid
    storage.write_bytes(buf.getvalue(), "sweeps", sweep_id, "samples", f"{cfg.trial_id}.npy")
    spec = DATASETS.get(cfg.dataset.name)
    values: dict[str, float] = {}
    if spec.modes is not None:
        p = cfg.dataset.params
        values.update(mode_coverage(samples, spec.modes(**p), p["std"], ev.std_threshold))
    rows = [{"sweep_id": sweep_id, "trial_id": cfg.trial_id, "step": trial.step, "metric": k, "value": float(v)}
            for k, v in values.items()]
    storage.write_parquet(pa.Table.from_pylist(rows, schema=schema.EVALUATIONS),
                          "sweeps", sweep_id, "evaluations", f"{cfg.trial_id}.parquet")
    return rows
