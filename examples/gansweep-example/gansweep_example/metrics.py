"""The energy-distance metric (specs.ENERGY_DISTANCE): compute(fake, real, **params) -> {output: float}."""
import numpy as np


def _mean_dist(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1).mean())


def energy_distance(fake: np.ndarray, real: np.ndarray, max_points: int) -> dict[str, float]:
    x = fake.reshape(len(fake), -1)[:max_points].astype(np.float64)
    y = real.reshape(len(real), -1)[:max_points].astype(np.float64)
    if not np.isfinite(x).all():
        return {"energy_distance": float("nan")}
    return {"energy_distance": 2 * _mean_dist(x, y) - _mean_dist(x, x) - _mean_dist(y, y)}
