"""Stacked MNIST mode coverage on constructed inputs whose answer is known."""
import itertools

import numpy as np
import pytest

from gan_tasks.evaluation.metrics import METRICS, stacked_mnist_coverage


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


def test_training_time_metrics_land_in_evaluations_without_changing_training(local_storage):
    """evaluation.eval_every: cheap mode coverage every N steps, and bit-identical training."""
    import torch

    from gan_tasks.config import expand_grid, parse_config
    from gan_tasks.data.datasets import ensure_dataset
    from gan_tasks.evaluation.evaluate import on_eval
    from gan_tasks.training.trial import Trial
    from tests.conftest import tiny_config

    sweep = parse_config(tiny_config(train={"steps": 30}, evaluation={"eval_every": 10, "eval_every_samples": 300}))
    cfg = expand_grid(sweep)[0]
    ensure_dataset(local_storage, cfg.dataset.name, cfg.dataset.params)
    hooked, plain = Trial(cfg, local_storage, "hooked"), Trial(cfg, local_storage, "plain")
    hooked.run(on_eval=on_eval(local_storage, "hooked", sweep.evaluation), eval_every=10)
    plain.run()
    for a, b in zip(hooked.G.state_dict().values(), plain.G.state_dict().values()):
        assert torch.equal(a, b)
    ev = local_storage.read_table("sweeps", "hooked", "eval_every").to_pandas()
    assert sorted(set(ev.step)) == [10, 20]  # step 30 is the final evaluation's
    assert local_storage.ls("sweeps", "hooked", "evaluations") == []  # that folder holds final evaluations only
    assert {"modes_covered", "high_quality", "reverse_kl"} <= set(ev.metric) and (ev.extractor == "").all()
