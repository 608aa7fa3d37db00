"""The benchmarks run in CI in short mode: every figure printed and saved; no timing assertions."""
import pandas as pd
import pytest

from flows.bench import run_bench

pytestmark = pytest.mark.slow


def test_short_bench_prints_and_saves_every_figure(ray_session, prefect_harness, local_storage, capsys):
    figures = dict(run_bench(local_storage, short=True))
    for name in ("P1 overhead ratio", "P2 step rate ratio (mlp ring-8)", "memory peak RSS per trial actor MB"):
        assert figures[name] > 0, name
        print(f"{name} = {figures[name]:.3f}")
    saved = pd.read_parquet(local_storage.uri("bench"))
    assert set(saved.figure) == set(figures) and saved.short.all()
