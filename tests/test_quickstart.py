"""The quickstart, unchanged, through the real flow: does it show what the README says it shows?

configs/quickstart.yaml at its full budget (15 trials of 5,000 steps, ~5 minutes on 2 cores): the best
cell covers at least 6 of 8 ring modes with at least 50 % high-quality samples in every seed, and the
mode-dropping lsgan-m110 is significantly worse on mode coverage after Holm's correction (5 seeds: the
exact test's smallest p, 2/252, times the 3 pairs of cells is 0.024; docs/statistics.md).
"""
from pathlib import Path

import pytest

from flows.run.flow import sweep_flow
from gan_tasks.config import load_config
from gan_tasks.evaluation.report import load_frames
from gan_tasks.evaluation.rankings import final_values
from gan_tasks.data.storage import Storage

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quickstart_forms_the_ring_and_separates_its_cells(tmp_path, ray_session, prefect_harness):
    sweep = load_config(str(ROOT / "configs/quickstart.yaml"))
    st = Storage.parse(str(tmp_path / "store"))
    out = sweep_flow(sweep.model_dump(mode="json"), st.url, "quickstart-test", None, None, False)
    assert out["counts"] == {"completed": 15}, out
    ranks = st.read_table("sweeps", "quickstart-test", "rankings").to_pandas()
    # the best cell by mode coverage (PacGAN's first figure): high quality alone would reward a G that
    # keeps a few sharp modes (lsgan-m110 ranks first on it with 3-5 of 8)
    best = ranks[ranks.metric == "modes_covered"].sort_values("rank").iloc[0]
    frames = load_frames(st, "quickstart-test")
    vals = final_values(frames["trials"], frames["evaluations"])
    mine = vals[(vals.loss == best.loss) & (vals.optimizer == best.optimizer)]
    per_seed = mine.pivot_table(index="seed", columns="metric", values="value")
    print(ranks[["metric", "rank", "loss", "optimizer", "mean", "ci95_low", "ci95_high", "p_value",
                 "p_adj", "significant"]].to_string())
    assert len(per_seed) == 5
    assert (per_seed.modes_covered >= 6).all() and (per_seed.high_quality >= 0.5).all(), per_seed
    modes = ranks[ranks.metric == "modes_covered"].set_index("loss")
    assert modes.significant["lsgan-m110"] and modes.p_adj["lsgan-m110"] <= 0.05, modes
    assert (best.loss, best.optimizer) == ("non-saturating", "adam")
