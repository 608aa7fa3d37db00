"""Sample-quality metrics, registered by name. Mode coverage follows PacGAN / VEEGAN."""
from __future__ import annotations

import numpy as np

from gan_tasks.methods.metric_specs import METRICS  # noqa: F401 - re-exported: registered in methods/metric_specs.py


def mode_coverage(samples: np.ndarray, modes: np.ndarray, std: float, threshold: float = 3.0) -> dict[str, float]:
    """PacGAN / VEEGAN mode coverage of 2D samples against a Gaussian mixture's means.

    - a sample is high quality if it lies within `threshold` standard deviations of its nearest mode;
    - modes_covered = number of modes that are the nearest mode of at least one high-quality sample;
    - high_quality = fraction of high-quality samples;
    - reverse_kl = KL(q || uniform), q the histogram of samples over their nearest modes
      (VEEGAN's "reverse KL"; 0 when every mode gets an equal share, log K when one mode gets all);
    - reverse_kl_hq = the same over the high-quality samples only, PacGAN's Table 1 definition (its
      MetricLogger: log K - entropy of the high-quality counts). NaN when no sample is high quality.
      A G that smears samples evenly around the ring has a low reverse_kl but not reverse_kl_hq.
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
    reverse_kl = _kl_uniform(counts)
    reverse_kl_hq = _kl_uniform(np.bincount(nearest[hq], minlength=k).astype(np.float64))
    return {
        "modes_covered": float(len(np.unique(nearest[hq]))),
        "modes_total": float(k),
        "high_quality": float(hq.mean()),
        "reverse_kl": reverse_kl,
        "reverse_kl_hq": reverse_kl_hq,
    }


def _kl_uniform(counts: np.ndarray) -> float:
    """KL(q || uniform over len(counts)) of the histogram q = counts / sum; NaN for an empty one."""
    if not counts.sum():
        return float("nan")
    q = counts / counts.sum()
    nz = q > 0
    return float(np.sum(q[nz] * np.log(q[nz] * len(counts))))


def stacked_mnist_coverage(digits: np.ndarray) -> dict[str, float]:
    """Stacked MNIST (Metz 2016, PacGAN): each sample's three channels classified as digits d_R, d_G,
    d_B give its mode 100 d_R + 10 d_G + d_B, one of 1,000.

    - modes_covered = number of distinct modes among the samples (PacGAN reports it over 26,000);
    - reverse_kl = KL(q || uniform over 1,000), q the histogram of modes (0: all equal, log 1000: one).
    """
    digits = np.asarray(digits)
    if digits.ndim != 2 or digits.shape[1] != 3 or digits.min(initial=0) < 0 or digits.max(initial=0) > 9:
        raise ValueError(f"digits must be (n, 3) in 0..9 (one per channel), got shape {digits.shape}")
    modes = digits[:, 0] * 100 + digits[:, 1] * 10 + digits[:, 2]
    q = np.bincount(modes, minlength=1000) / len(modes)
    nz = q > 0
    return {"modes_covered": float(nz.sum()), "modes_total": 1000.0,
            "reverse_kl": float(np.sum(q[nz] * np.log(q[nz] * 1000)))}

