"""Mode coverage (PacGAN / VEEGAN) on samples whose answer is known."""
import numpy as np

from gan_tasks.datasets import DATASETS
from gan_tasks.metrics import mode_coverage

P = DATASETS.get("ring-8").defaults
MODES = DATASETS.get("ring-8").modes(**P)
STD = P["std"]


def test_samples_from_every_mode_cover_all_eight():
    data = DATASETS.get("ring-8").generate(**{**P, "n_samples": 2500})
    m = mode_coverage(data, MODES, STD)
    assert m["modes_covered"] == 8
    assert m["high_quality"] > 0.98  # 3 sigma holds 98.9 % of a 2D Gaussian's mass
    assert m["reverse_kl"] < 0.01


def test_samples_from_one_mode_cover_one():
    rng = np.random.default_rng(0)
    one = MODES[3] + STD * rng.standard_normal((2500, 2))
    m = mode_coverage(one, MODES, STD)
    assert m["modes_covered"] == 1
    assert np.isclose(m["reverse_kl"], np.log(8))


def test_off_mode_noise_is_low_quality():
    rng = np.random.default_rng(0)
    noise = rng.uniform(-0.4, 0.4, (2500, 2))  # the ring's inside: > 0.6 from every mode
    m = mode_coverage(noise, MODES, STD)
    assert m["modes_covered"] == 0 and m["high_quality"] == 0
    nans = np.full((10, 2), np.nan)
    assert mode_coverage(nans, MODES, STD)["modes_covered"] == 0
