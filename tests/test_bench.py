"""The benchmarks run in CI in short mode: every figure printed and saved under its stable key; no timing
assertions beyond P3's data ratios. (Ray Tune's P5 figure is in the full run only.)"""
import pandas as pd
import pytest

from bench.run import run_bench
from tests.conftest import DATA

pytestmark = pytest.mark.slow

EVERY_FIGURE = {
    *(f"{k}_{v}" for v in ("2s", "2s_warm") for k in ("p1_overhead", "p1_overhead_vs_serial", "p1_ideal_s",
                                                      "p1_bare_trial_s", "p1_bare_conc_trial_s", "p1_overhead_s",
                                                      "p1_startup_s", "p1_fan_in_s", "p1_actor_vs_bare",
                                                      "p1_slots", "p1_cluster_cpus")),
    *(f"{k}_{m}" for m in ("mlp", "dcgan") for k in ("p2_step_rate", "p2_bare_steps_per_s", "memory_peak_rss_mb")),
    "p3_data", "p3_data_next_night", "p4_packing", "contention",
    "p3_mapped_mb", "p3_mapped_pss_ratio", "p3_mapped_rss_ratio", "p3_mapped_uss_mb",
    "p5_many_trials", "p5_many_trials_vs_serial", "p5_sweep_s", "p5_ideal_s", "p5_ideal_serial_s", "startup_s", "noop_rerun_s", "fan_in_s",
    "p8_search", "p8_sweep_s", "p8_ideal_s", "p8_sampler_ms_random", "p8_sampler_ms_sobol", "p8_sampler_ms_tpe",
}

# measured, so above zero (the overhead decomposes: what is not trial time is start-up, fan-in or waiting)
POSITIVE = ("p1_overhead_2s", "p1_overhead_2s_warm", "p1_overhead_vs_serial_2s", "p1_ideal_s_2s",
            "p1_bare_conc_trial_s_2s", "p5_many_trials_vs_serial", "p5_ideal_serial_s", "p1_actor_vs_bare_2s_warm", "p1_startup_s_2s", "p1_fan_in_s_2s",
            "p1_overhead_s_2s", "p2_step_rate_mlp", "p2_step_rate_dcgan", "memory_peak_rss_mb_mlp",
            "memory_peak_rss_mb_dcgan", "p3_data", "p3_data_next_night", "p4_packing", "p5_many_trials",
            "startup_s", "noop_rerun_s", "fan_in_s", "p8_search", "p8_sampler_ms_tpe")


def test_short_bench_prints_and_saves_every_figure(ray_session, prefect_harness, s3_storage, capsys):
    run = run_bench(s3_storage, short=True, mnist=str(DATA / "mnist"))
    figures = {f.key: f.value for f in run}
    with capsys.disabled():
        for f in run:
            print(f"{f.key} = {f.value:.3f}  ({f.label})")
    assert len(figures) == len(run), "keys are unique"
    for key in figures:  # a key names the figure; its label says what it is
        assert key.isidentifier() and key == key.lower() and len(key) <= 32, key
    # the Ray and Prefect API start are reported only when the bench starts them (here: the tests' own)
    assert EVERY_FIGURE <= set(figures) <= EVERY_FIGURE | {"ray_start_s", "prefect_api_start_s"}, \
        sorted(set(figures) ^ EVERY_FIGURE)
    for key in POSITIVE:
        assert figures[key] > 0, key
    # both P1 and P5 ratios from the one run: the sweep's wall over each ideal
    for v in ("2s", "2s_warm"):
        sweep_s = figures[f"p1_overhead_s_{v}"] + figures[f"p1_ideal_s_{v}"]
        assert figures[f"p1_overhead_{v}"] == pytest.approx(sweep_s / figures[f"p1_ideal_s_{v}"], rel=1e-6)
    for key, ideal in (("p5_many_trials", "p5_ideal_s"), ("p5_many_trials_vs_serial", "p5_ideal_serial_s")):
        assert figures[key] == pytest.approx(figures["p5_sweep_s"] / figures[ideal], rel=1e-6), key
    assert figures["p8_search"] == pytest.approx(figures["p8_sweep_s"] / figures["p8_ideal_s"], rel=1e-6)
    assert figures["p3_data"] <= 1.1  # the dataset is downloaded once however many trials read it
    assert figures["p3_data_next_night"] < 0.01  # only the manifest is read again
    assert figures["p3_mapped_pss_ratio"] <= 1.5  # two actors mapping one dataset: well below two copies
    saved = pd.read_parquet(s3_storage.uri("bench"), storage_options=s3_storage.storage_options)
    assert set(saved.figure) == set(figures) and saved.short.all() and saved.label.str.len().gt(0).all()

