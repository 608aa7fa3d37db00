"""The growth-curve benchmark (bench/p6_growth.py, issue 28) at two tiny sizes: every figure under its stable
key, and the marginal cost between sizes."""
import pytest

from bench.p6_growth import bench_growth
from gan_tasks.data.storage import Storage

pytestmark = pytest.mark.slow

PER_SIZE = ("p6_ratio", "p6_wall_s", "p6_ideal_s", "p6_overhead_s", "p6_driver_cpu_ms", "p6_driver_threads",
            "p6_driver_rss_mb", "p6_api_rss_mb", "p6_objects", "p6_fan_in_s", "p6_report_s", "p6_report_mb",
            "p6_db_rows", "p6_db_task_run", "p6_db_task_run_state", "p6_db_artifact", "p6_db_log", "p6_db_events")


def test_growth_bench_measures_every_size_under_stable_keys(tmp_path):
    figures = {f.key: f.value for f in bench_growth(Storage.parse(str(tmp_path)), (4, 6), 2, "t", lambda f: None)}
    expected = {f"{k}_{n}" for k in PER_SIZE for n in (4, 6)} | {"p6_marginal_s_6"}
    assert set(figures) == expected, sorted(set(figures) ^ expected)
    for n in (4, 6):
        assert figures[f"p6_wall_s_{n}"] > 0 and figures[f"p6_ideal_s_{n}"] > 0
        assert figures[f"p6_ratio_{n}"] == pytest.approx(figures[f"p6_wall_s_{n}"] / figures[f"p6_ideal_s_{n}"])
        assert figures[f"p6_driver_cpu_ms_{n}"] > 0 and figures[f"p6_driver_threads_{n}"] > 1
        assert figures[f"p6_objects_{n}"] >= 5 * n and figures[f"p6_report_mb_{n}"] > 0
        assert figures[f"p6_db_task_run_{n}"] >= n and figures[f"p6_db_rows_{n}"] > figures[f"p6_db_task_run_{n}"]
    assert figures["p6_marginal_s_6"] == pytest.approx((figures["p6_overhead_s_6"] - figures["p6_overhead_s_4"]) / 2)
