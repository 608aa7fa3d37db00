"""The report of a sweep larger than report_scale.SCALE_TRIALS (issue 28 item 2): a table per cell, samples of
each cell's best, median and worst seed only, the rankings' top cells per metric with the rest folded, and
every trial in report/trials.csv. Synthetic rows as the flow writes them (bench/p6_report.py): 40 cells x 8
seeds = 320 trials."""
import io

import pandas as pd
import pytest

from bench.p6_report import synthetic_sweep
from gan_tasks.evaluation.report import rebuild
from gan_tasks.evaluation.report_scale import MAX_SAMPLES, TOP_CELLS

pytestmark = pytest.mark.slow


def test_large_sweep_report_shows_cells_bounded_samples_and_every_trial_in_csv(local_storage):
    trials = synthetic_sweep(local_storage, "big", lrs=20, seeds=8)
    _, ranks, _ = rebuild(local_storage, "big")
    html = local_storage.read_bytes("sweeps", "big", "report", "index.html").decode()
    assert len(trials) == 320 and ranks.groupby("metric").size().max() == 40
    images = html.count("data:image/png;base64,")
    assert images <= MAX_SAMPLES + 2, images  # + the training curves and nothing else (no metrics rows here)
    assert html.count("(best)<br>") == html.count("(median)<br>") == html.count("(worst)<br>") == MAX_SAMPLES // 3
    assert "40 cells" in html and "trials.csv" in html and "seeds_failed" in html
    assert "<details><summary>30 more cells</summary>" in html  # 40 ranked, TOP_CELLS shown
    assert TOP_CELLS == 10
    csv = pd.read_csv(io.BytesIO(local_storage.read_bytes("sweeps", "big", "report", "trials.csv")))
    assert len(csv) == 320 and set(csv.trial_id) == {t.trial_id for t in trials}
    assert (csv.status == "failed").sum() == 40 and csv.modes_covered.notna().sum() == 280


def test_training_curves_are_the_best_cells_lowest_seeds_and_the_note_says_which():
    """12 cells x 40 seeds: the curves are the 10 best cells by the ranking, each its 32 lowest seeds, and the
    note says so; a small sweep is drawn whole, with no note."""
    from gan_tasks.evaluation.report_scale import CURVE_CELLS, CURVE_SEEDS, curve_trials

    table = pd.DataFrame([{"trial_id": f"t{c:02d}{s:02d}", "loss": "ns", "optimizer": f"o{c}", "seed": s,
                           "status": "completed", "modes_covered": float(c)} for c in range(12) for s in range(40)])
    ranks = pd.DataFrame({"metric": "modes_covered", "loss": "ns", "optimizer": [f"o{c}" for c in range(12)],
                          "rank": [12 - c for c in range(12)]})  # o11 best
    ids, note = curve_trials(table, ranks)
    drawn = table[table.trial_id.isin(ids)]
    assert (CURVE_CELLS, CURVE_SEEDS) == (10, 32)
    assert set(drawn.optimizer) == {f"o{c}" for c in range(2, 12)} and set(drawn.seed) == set(range(32))
    assert len(ids) == 320
    assert note == "Drawn: the best 10 of 12 cells by modes_covered; each cell's 32 lowest seed numbers."
    small = table[(table.optimizer.isin(["o0", "o1"])) & (table.seed < 3)]
    assert curve_trials(small, ranks) == (set(small.trial_id), "")


def test_report_reads_the_metrics_of_drawn_trials_only(local_storage):
    """40 cells: a metrics file of a trial the curves do not draw is never read (garbage there breaks nothing);
    a drawn trial's is, and the curves say which cells they show."""
    import pyarrow as pa

    from gan_tasks.data import schema
    from gan_tasks.evaluation.report_scale import curve_trials
    from gan_tasks.evaluation.report import load_frames, summary_table

    synthetic_sweep(local_storage, "cur", lrs=20, seeds=8)
    _, ranks, _ = rebuild(local_storage, "cur")
    table = summary_table(load_frames(local_storage, "cur"))
    drawn, _ = curve_trials(table, ranks)
    undrawn = sorted(set(table.trial_id) - drawn)[0]
    local_storage.write_bytes(b"not parquet", "sweeps", "cur", "metrics", f"{undrawn}-{10:09d}.parquet")
    row = {"sweep_id": "cur", "trial_id": sorted(drawn)[0], "step": 10, "loss_d": 1.0, "loss_g": 2.0}
    local_storage.write_parquet(pa.Table.from_pylist([row], schema=schema.METRICS), "sweeps", "cur", "metrics",
                                f"{sorted(drawn)[0]}-{10:09d}.parquet")
    rebuild(local_storage, "cur")
    html = local_storage.read_bytes("sweeps", "cur", "report", "index.html").decode()
    assert "<h2>Training curves</h2>" in html and "Drawn: the best 10 of 40 cells by modes_covered." in html
