"""Mode coverage (PacGAN / VEEGAN) on samples whose answer is known."""
import numpy as np

from gan_tasks.data.datasets import DATASETS
from gan_tasks.evaluation.metrics import mode_coverage

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


def test_reverse_kl_hq_counts_only_high_quality_samples_as_pacgan_does():
    """A G that smears samples evenly around the ring: low reverse_kl (every mode nearest to 1/8), but
    only the samples near mode 0 are high quality, so PacGAN's reverse KL is log 8."""
    rng = np.random.default_rng(0)
    angles = rng.uniform(0, 2 * np.pi, 2500)
    smear = np.stack([np.cos(angles), np.sin(angles)], 1) * 1.3  # off the ring: never within 3 sigma
    smear[:100] = MODES[0] + STD * rng.standard_normal((100, 2))
    m = mode_coverage(smear, MODES, STD)
    assert m["reverse_kl"] < 0.05 and np.isclose(m["reverse_kl_hq"], np.log(8))
    assert m["modes_covered"] == 1
    noise = rng.uniform(-0.4, 0.4, (50, 2))
    assert np.isnan(mode_coverage(noise, MODES, STD)["reverse_kl_hq"])
