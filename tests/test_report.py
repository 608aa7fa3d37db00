"""The HTML report from storage alone: rankings table, curves with bands, quality over steps,
embedded sample plots, extractor provenance, failed seeds shown, not hidden."""
import io
import json
import math
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa

from gan_tasks.data import schema
from gan_tasks.config import expand_grid, parse_config
from gan_tasks.evaluation.report import render_html
from gan_tasks.training.rows import trial_row, write_trial_row
from tests.conftest import tiny_config
from tests.test_ingest import mnist_arrays  # noqa: F401 - the fixture


def fake_sweep(st, sid="r1"):
    """4 trials (2 cells x 2 seeds) written as the flow writes them; one seed of lsgan diverged."""
    trials = expand_grid(parse_config(tiny_config(grid={"seed": [0, 1]})))
    now = datetime.now(timezone.utc)
    ev = []
    for i, t in enumerate(trials):
        diverged = t.loss.name == "lsgan-011" and t.seed == 1
        write_trial_row(st, trial_row(t, sid, "diverged" if diverged else "completed", 60, now, now,
                                      "non-finite loss_d at step 40" if diverged else ""))
        metrics = [{"sweep_id": sid, "trial_id": t.trial_id, "step": s, "loss_d": 1.0 / s, "loss_g": 2.0,
                    "penalty": math.nan, "d_real": 0.5, "d_fake": 0.5, "grad_norm_d": 0.1 * s, "grad_norm_g": 1.0,
                    "wasserstein": math.nan, "began_k": math.nan, "convergence": math.nan} for s in (10, 20)]
        st.write_parquet(pa.Table.from_pylist(metrics, schema=schema.METRICS), "sweeps", sid, "metrics",
                         f"{t.trial_id}-{10:09d}.parquet")  # as the flow names them: the report reads by trial
        if diverged:
            continue
        for step, cov in ((30, 3 + i), (60, 5 + i)):
            ev += [{"sweep_id": sid, "trial_id": t.trial_id, "step": step, "metric": "modes_covered", "value": cov},
                   {"sweep_id": sid, "trial_id": t.trial_id, "step": step, "metric": "fid", "value": 10.0 - i,
                    "extractor": "classifier", "extractor_hash": "feedc0ffee123456"}]
        buf = io.BytesIO()
        np.save(buf, np.random.default_rng(i).standard_normal((200, 2)).astype(np.float32))
        st.write_bytes(buf.getvalue(), "sweeps", sid, "samples", f"{t.trial_id}.npy")
    st.write_parquet(pa.Table.from_pylist(ev, schema=schema.EVALUATIONS), "sweeps", sid, "evaluations", "e.parquet")
    st.write_bytes(json.dumps({"test_accuracy": 0.9923}).encode(), "evaluators", "mnist", "feedc0ffee123456.json")
    return trials


def test_report_holds_rankings_curves_samples_and_provenance(local_storage):
    fake_sweep(local_storage)
    html = render_html(local_storage, "r1")
    assert html.startswith("<!doctype html>") and html.rstrip().endswith("</html>")
    assert "Rankings over seeds" in html and "Welch" in html and "table.sortable" in html
    # curves + quality over steps + 3 sample scatters (the diverged trial has none)
    assert html.count("data:image/png;base64,") == 1 + 1 + 3
    assert "Quality over training steps" in html
    assert "diverged 1 of 2 seeds" in html  # the cell's failed seed is shown in the rankings
    assert "feedc0ffee123456" in html and "99.23%" in html and "torch-fidelity" in html
    # the budget every figure stands on, and what was evaluated (the 2-D default: an EMA of G)
    assert "Budget: 4 trials = 2 cells x 2 seeds (0, 1), 60 generator steps each, dataset ring-8" in html
    assert "an EMA of the generator&#x27;s weights (decay 0.99)" in html
    assert html.index("Generated samples") < html.index("<h2>Trials</h2>"), "the samples follow the rankings"


def test_report_without_evaluations_still_renders(local_storage):
    trials = fake_sweep(local_storage, "r2")
    local_storage.rm("sweeps", "r2", "evaluations", recursive=True)
    html = render_html(local_storage, "r2")
    assert "No metrics to rank." in html and "Quality over training steps" not in html
    assert all(t.trial_id in html for t in trials)


def test_a_sweep_written_before_the_cell_column_still_reports_and_ranks(local_storage):
    """Trial rows without `cell` (older gansweep), some rewritten with it (a re-run): one table, two cells."""
    import pyarrow.parquet as pq

    from gan_tasks.evaluation.rankings import rank_cells
    from gan_tasks.evaluation.report import load_frames

    trials = fake_sweep(local_storage, "r3")
    old_schema = schema.TRIALS.remove(schema.TRIALS.get_field_index("cell"))
    for t in trials[:3]:
        parts = ("sweeps", "r3", "trials", f"{t.trial_id}.parquet")
        table = pq.read_table(io.BytesIO(local_storage.read_bytes(*parts))).drop_columns(["cell"])
        local_storage.write_parquet(table.cast(old_schema), *parts)
    frames = load_frames(local_storage, "r3")
    assert frames["trials"].cell.isna().sum() == 3 and frames["trials"].cell.notna().sum() == 1
    html = render_html(local_storage, "r3")
    assert "diverged 1 of 2 seeds" in html and all(t.trial_id in html for t in trials)
    ranks = rank_cells(frames["trials"], frames["evaluations"], "r3")
    assert set(zip(ranks.loss, ranks.optimizer)) == {("non-saturating", "adam"), ("lsgan-011", "adam")}


def test_report_shows_the_dataset_and_real_images_beside_the_generated(tmp_path, local_storage, mnist_arrays):  # noqa: F811
    """A sweep on an added dataset: a Dataset section (name, id, images, shape, classes) and a grid of
    real training images as the first figure of the samples."""
    from gan_tasks.config import load_config
    from gan_tasks.data.ingest import IngestOptions, add
    from tests.test_ingest import write_pngs

    x, y = mnist_arrays
    write_pngs(tmp_path / "png", x[:100], y[:100])
    did = add(local_storage, "digits", str(tmp_path / "png"), IngestOptions(size=28, mode="L",
                                                                            labels="subfolders"))["id"]
    path = tmp_path / "sweep.yaml"
    path.write_text(json.dumps({**tiny_config(), "dataset": "digits", "model": "dcgan-28"}))
    now = datetime.now(timezone.utc)
    trials = expand_grid(load_config(str(path), storage=local_storage))
    for t in trials:
        write_trial_row(local_storage, trial_row(t, "d1", "completed", 60, now, now))
        buf = io.BytesIO()
        np.save(buf, np.zeros((64, 1, 28, 28), np.float32))
        local_storage.write_bytes(buf.getvalue(), "sweeps", "d1", "samples", f"{t.trial_id}.npy")
    page = render_html(local_storage, "d1")
    assert f"name digits, id {did}, images train 100, shape 1x28x28, classes 10" in page
    assert page.count("data:image/png;base64,") == 1 + len(trials)  # the real grid and each trial's (no curves)
    first = page.index("<h2>Generated samples</h2>")
    assert page.index(f"real: digits@{did}", first) < page.index("non-saturating/adam/seed 0", first)
    ring = render_html(local_storage, "r1") if fake_sweep(local_storage) else ""
    assert "name ring-8, kind points" in ring and "real:" not in ring


def test_the_budget_line_names_seeds_as_ranges():
    """A sweep of 5,000 seeds has a budget line, not 5,000 numbers."""
    from gan_tasks.evaluation.report import _spans

    assert _spans(list(range(5000))) == "0-4999"
    assert _spans([0, 1]) == "0, 1" and _spans([0, 1, 2, 5, 7, 8]) == "0-2, 5, 7, 8" and _spans([3]) == "3"
