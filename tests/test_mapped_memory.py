"""Two Ray actors on one node memory-map the same added dataset (bench/p3_mapped_memory.py): together
they grow by well under twice its size in proportional set size, though RSS counts it twice."""
import pytest

from bench.p3_mapped_memory import bench_mapped_memory

pytestmark = pytest.mark.slow


def test_two_actors_share_one_mapped_dataset(ray_session):
    f = {x.key: x.value for x in bench_mapped_memory(40)}
    assert 39 < f["p3_mapped_mb"] < 41
    assert f["p3_mapped_rss_ratio"] > 1.8  # each actor maps every page: RSS counts them once per actor
    assert f["p3_mapped_pss_ratio"] <= 1.5  # PSS splits them: about one copy, not two
    assert f["p3_mapped_uss_mb"] < 0.5 * f["p3_mapped_mb"]  # private: batch buffers and allocator, not the data
