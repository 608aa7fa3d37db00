"""The benchmarks run in CI in short mode: every figure printed and saved; no timing assertions."""
import pandas as pd
import pytest

from flows.bench import run_bench

pytestmark = pytest.mark.slow


def test_short_bench_prints_and_saves_every_figure(ray_session, prefect_harness, s3_storage, capsys):
    figures = dict(run_bench(s3_storage, short=True))
    for name in ("P1 overhead ratio", "P2 step rate ratio (mlp ring-8)", "memory peak RSS per trial actor MB",
                 "P3 data ratio", "P3 data ratio next night", "P4 packing speedup N=4"):
        assert figures[name] > 0, name
        print(f"{name} = {figures[name]:.3f}")
    assert figures["P3 data ratio"] <= 1.1  # the dataset is downloaded once however many trials read it
    assert figures["P3 data ratio next night"] < 0.01  # only the manifest is read again
    saved = pd.read_parquet(s3_storage.uri("bench"), storage_options=s3_storage.storage_options)
    assert set(saved.figure) == set(figures) and saved.short.all()
