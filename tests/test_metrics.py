"""Stacked MNIST mode coverage on constructed inputs whose answer is known."""
import itertools

import numpy as np
import pytest

from gan_tasks.metrics import METRICS, stacked_mnist_coverage


def test_all_thousand_combinations_cover_every_mode_with_zero_kl():
    digits = np.array(list(itertools.product(range(10), repeat=3)))
    m = stacked_mnist_coverage(np.repeat(digits, 26, axis=0))  # 26,000 samples, PacGAN's count
    assert m["modes_covered"] == 1000 and m["modes_total"] == 1000
    assert abs(m["reverse_kl"]) < 1e-12


def test_one_combination_is_one_mode_with_kl_log_1000():
    m = stacked_mnist_coverage(np.tile([3, 1, 4], (26000, 1)))
    assert m["modes_covered"] == 1 and np.isclose(m["reverse_kl"], np.log(1000))


def test_half_the_modes_equally_gives_kl_log_2():
    digits = np.array([d for d in itertools.product(range(10), repeat=3) if d[0] < 5])
    m = stacked_mnist_coverage(digits)
    assert m["modes_covered"] == 500 and np.isclose(m["reverse_kl"], np.log(2))


def test_bad_shapes_and_labels_are_refused():
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        stacked_mnist_coverage(np.zeros((10, 2), int))
    with pytest.raises(ValueError, match="0..9"):
        stacked_mnist_coverage(np.full((10, 3), 10))


def test_metrics_registry_names_every_metric():
    assert {"mode-coverage", "stacked-mnist-coverage", "image-fidelity"} <= set(METRICS.names())
    with pytest.raises(ValueError, match="valid: image-fidelity, mode-coverage"):
        METRICS.get("fdi")
