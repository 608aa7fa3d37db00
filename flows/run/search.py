"""A search's stages in a run (docs/search.md): its settings table beside the trials, and the confirm stage that
re-runs each cell's best setting on new seeds once the search's trials are done."""
from __future__ import annotations

import pandas as pd
import pyarrow as pa
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from gan_tasks.config import SweepConfig, TrialConfig
from gan_tasks.config.plugins import sweep_plugins
from gan_tasks.config.trial import confirm_seeds, search_settings, setting_trial
from gan_tasks.data.storage import Storage

SETTINGS = ("search", "settings.parquet")


def settings_rows(sweep: SweepConfig, sweep_id: str, best: dict[str, int] | None = None) -> list[dict]:
    """One row per trial of the search (stage 'search') and of the confirm stage ('confirm', given `best`):
    trial_id, stage, cell, loss, optimizer, setting, seed, and the setting's values as columns."""
    rows, codes = [], sweep_plugins(sweep)
    for st in search_settings(sweep):
        stages = [("search", sweep.grid.seed[:sweep.search.seeds_per_setting])]
        if best is not None and best.get(st["cell"]) == st["setting"]:
            stages.append(("confirm", confirm_seeds(sweep)))
        for stage, seeds in stages:
            for seed in seeds:
                t = setting_trial(sweep, st, seed, codes)
                rows.append({"sweep_id": sweep_id, "trial_id": t.trial_id, "stage": stage, "cell": st["cell"],
                             "loss": st["loss"], "optimizer": st["optimizer"], "setting": st["setting"],
                             "seed": seed, **{k.replace(".", "_"): v for k, v in st["values"].items()}})
    return rows


def cohorts(sweep: SweepConfig, sweep_id: str, trials: list[TrialConfig]) -> dict[str, str]:
    """Trial id -> its early-stopping cohort: a search's cell (the settings of one loss), else the whole sweep."""
    if sweep.search is None:
        return {t.trial_id: "sweep" for t in trials}
    return {r["trial_id"]: r["cell"] for r in settings_rows(sweep, sweep_id)}


def write_settings(storage: Storage, sweep_id: str, rows: list[dict]) -> None:
    storage.write_parquet(pa.Table.from_pandas(pd.DataFrame(rows), preserve_index=False), "sweeps", sweep_id,
                          *SETTINGS)


@task(retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def confirm_trials(sweep: SweepConfig, storage: Storage, sweep_id: str) -> list[TrialConfig]:
    """Each cell's best setting on search.metric, from the stored results of the search's trials (a
    deterministic function of them), x the confirm seeds; the settings table rewritten with them."""
    from gan_tasks.evaluation.budget import best_settings, setting_scores
    from gan_tasks.evaluation.report import load_frames

    frames = load_frames(storage, sweep_id)
    rows = settings_rows(sweep, sweep_id)
    scores = setting_scores(pd.DataFrame(rows), frames["trials"], frames["evaluations"])
    best = best_settings(scores, sweep.search.metric)
    rows = settings_rows(sweep, sweep_id, best)
    write_settings(storage, sweep_id, rows)
    missing = sorted({r["cell"] for r in rows} - set(best))
    if missing:
        get_run_logger().warning("no completed setting to confirm in %s", ", ".join(missing))
    by_cell = {st["cell"]: st for st in search_settings(sweep) if best.get(st["cell"]) == st["setting"]}
    get_run_logger().info("confirm stage: %s", ", ".join(f"{c} s{s}" for c, s in best.items()))
    codes = sweep_plugins(sweep)
    return [setting_trial(sweep, by_cell[c], seed, codes) for c in by_cell for seed in confirm_seeds(sweep)]
