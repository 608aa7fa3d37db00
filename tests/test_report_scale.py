"""The report of a sweep larger than report_scale.SCALE_TRIALS (issue 28 item 2): a table per cell, samples of
each cell's best, median and worst seed only, the rankings' top cells per metric with the rest folded, and
every trial in report/trials.csv. Synthetic rows as the flow writes them: 40 cells x 8 seeds = 320 trials."""
import io
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from gan_tasks.config import dump_config, expand_grid, parse_config
from gan_tasks.data import schema
from gan_tasks.evaluation.report import rebuild
from gan_tasks.evaluation.report_scale import MAX_SAMPLES, TOP_CELLS
from gan_tasks.training.rows import trial_row, write_trial_row
from tests.conftest import tiny_config

pytestmark = pytest.mark.slow


def many_trials(st, sid: str, lrs: int = 20, seeds: int = 8) -> list:
    """2 losses x `lrs` adam learning rates x `seeds` seeds; seed 7 of every cell failed."""
    sweep = parse_config(tiny_config(grid={"optimizer": [{"name": "adam", "lr_g": 1e-4 * (i + 1)} for i in range(lrs)],
                                           "seed": list(range(seeds))}))
    trials = expand_grid(sweep)
    st.write_bytes(dump_config(sweep).encode(), "sweeps", sid, "config.yaml")
    now, ev, rng = datetime.now(timezone.utc), [], np.random.default_rng(0)
    for i, t in enumerate(trials):
        failed = t.seed == 7
        write_trial_row(st, trial_row(t, sid, "failed" if failed else "completed", 60, now, now,
                                      "boom" if failed else ""))
        if failed:
            continue
        ev += [{"sweep_id": sid, "trial_id": t.trial_id, "step": 60, "metric": "modes_covered",
                "value": float(rng.integers(1, 9))}]
        buf = io.BytesIO()
        np.save(buf, rng.standard_normal((64, 2)).astype(np.float32))
        st.write_bytes(buf.getvalue(), "sweeps", sid, "samples", f"{t.trial_id}.npy")
    st.write_parquet(pa.Table.from_pylist(ev, schema=schema.EVALUATIONS), "sweeps", sid, "evaluations", "e.parquet")
    return trials


def test_large_sweep_report_shows_cells_bounded_samples_and_every_trial_in_csv(local_storage):
    trials = many_trials(local_storage, "big")
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
