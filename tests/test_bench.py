"""The benchmarks run in CI in short mode: every figure printed and saved; no timing assertions."""
import pandas as pd
import pytest

from flows.bench import run_bench
from tests.conftest import DATA

pytestmark = pytest.mark.slow


def test_short_bench_prints_and_saves_every_figure(ray_session, prefect_harness, s3_storage, capsys):
    figures = dict(run_bench(s3_storage, short=True, mnist=str(DATA / "mnist")))
    with capsys.disabled():
        for name, value in figures.items():
            print(f"{name} = {value:.3f}")
    for name in ("P1 overhead ratio (2 s trials)", "P1 overhead ratio (2 s trials, warm actors)",
                 "P1 trial time in actors / bare (2 s trials, warm actors)", "P1 start-up seconds: flow start to first trial training (2 s trials)",
                 "P1 fan-in seconds: last trial done to flow end, evaluation + report (2 s trials)",
                 "P2 step rate ratio (mlp ring-8)", "P2 step rate ratio (dcgan-28 mnist)",
                 "memory peak RSS per trial actor MB (mlp ring-8)", "memory peak RSS per trial actor MB (dcgan-28 mnist)",
                 "P3 data ratio", "P3 data ratio next night", "P4 packing speedup N=4"):
        assert figures[name] > 0, name
    # issue 15: every figure's line, under the same name as in the full run
    for start in ("P5 many-trials ratio", "P5 ray-tune ratio", "start-up seconds", "no-op re-run seconds",
                  "fan-in seconds (256 trials)"):
        hits = [name for name in figures if name.startswith(start)]
        assert len(hits) == 1 and figures[hits[0]] > 0, (start, hits)
    assert figures["P3 data ratio"] <= 1.1  # the dataset is downloaded once however many trials read it
    assert figures["P3 data ratio next night"] < 0.01  # only the manifest is read again
    # The overhead decomposes: what is not trial time is start-up, fan-in or waiting in between.
    assert figures["P1 overhead seconds (2 s trials)"] > 0
    saved = pd.read_parquet(s3_storage.uri("bench"), storage_options=s3_storage.storage_options)
    assert set(saved.figure) == set(figures) and saved.short.all()
