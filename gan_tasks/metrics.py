"""Sample-quality metrics, registered by name. Mode coverage follows PacGAN / VEEGAN."""
from __future__ import annotations

import numpy as np

from gan_tasks.registry import Registry


def mode_coverage(samples: np.ndarray, modes: np.ndarray, std: float, threshold: float = 3.0) -> dict[str, float]:
    """PacGAN / VEEGAN mode coverage of 2D samples against a Gaussian mixture's means.

    - a sample is high quality if it lies within `threshold` standard deviations of its nearest mode;
    - modes_covered = number of modes that are the nearest mode of at least one high-quality sample;
    - high_quality = fraction of high-quality samples;
    - reverse_kl = KL(q || uniform), q the histogram of samples over their nearest modes
      (VEEGAN's "reverse KL"; 0 when every mode gets an equal share, log K when one mode gets all).
    """
    samples = np.asarray(samples, dtype=np.float64)
    modes = np.asarray(modes, dtype=np.float64)
    if samples.ndim != 2 or samples.shape[1] != modes.shape[1]:
        raise ValueError(f"samples must be (n, {modes.shape[1]}), got {samples.shape}")
    finite = np.isfinite(samples).all(axis=1)
    dist = np.linalg.norm(samples[:, None, :] - modes[None, :, :], axis=-1)
    dist[~finite] = np.inf
    nearest = dist.argmin(axis=1)
    hq = finite & (dist[np.arange(len(samples)), nearest] <= threshold * std)
    k = len(modes)
    counts = np.bincount(nearest[finite], minlength=k).astype(np.float64)
    q = counts / counts.sum() if counts.sum() else np.full(k, np.nan)
    nz = q > 0
    reverse_kl = float(np.sum(q[nz] * np.log(q[nz] * k))) if counts.sum() else float("nan")
    return {
        "modes_covered": float(len(np.unique(nearest[hq]))),
        "modes_total": float(k),
        "high_quality": float(hq.mean()),
        "reverse_kl": reverse_kl,
    }


METRICS: Registry = Registry("metric")
METRICS.add("mode-coverage", mode_coverage, "PacGAN/VEEGAN modes covered, high-quality fraction, reverse KL")
