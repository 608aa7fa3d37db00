"""A search's stages in a run (docs/search.md): its settings table beside the trials, and the confirm stage that
re-runs each cell's best setting on new seeds once the search's trials are done."""
from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from gan_tasks.config import SweepConfig, TrialConfig
from gan_tasks.config.plugins import sweep_plugins
from gan_tasks.config.trial import confirm_seeds, search_settings, setting_trial
from gan_tasks.data.storage import Storage

SETTINGS = ("search", "settings.parquet")


def settings_rows(sweep: SweepConfig, sweep_id: str, best: dict[str, int] | None = None,
                  settings: list[dict] | None = None) -> list[dict]:
    """One row per trial of the search (stage 'search') and of the confirm stage ('confirm', given `best`):
    trial_id, stage, cell, loss, optimizer, setting, round (tpe's; else 0), seed, values (the setting as JSON)
    and each value as its own column. `settings`: search_settings' (default: those known before any result)."""
    rows, codes = [], sweep_plugins(sweep)
    for st in search_settings(sweep) if settings is None else settings:
        stages = [("search", sweep.grid.seed[:sweep.search.seeds_per_setting])]
        if best is not None and best.get(st["cell"]) == st["setting"]:
            stages.append(("confirm", confirm_seeds(sweep)))
        for stage, seeds in stages:
            for seed in seeds:
                t = setting_trial(sweep, st, seed, codes)
                rows.append({"sweep_id": sweep_id, "trial_id": t.trial_id, "stage": stage, "cell": st["cell"],
                             "loss": st["loss"], "optimizer": st["optimizer"], "setting": st["setting"],
                             "round": st["round"], "seed": seed, "values": json.dumps(st["values"], sort_keys=True),
                             **{k.replace(".", "_"): v for k, v in st["values"].items()}})
    return rows


def stored_results(storage: Storage, sweep_id: str) -> dict[str, dict[str, float]]:
    """Trial id -> {metric: final value} of the sweep's completed trials (what tpe's rounds are told)."""
    from gan_tasks.config.scores import DIRECTIONS
    from gan_tasks.evaluation.report import load_frames
    from gan_tasks.evaluation.seeds import seed_results

    frames = load_frames(storage, sweep_id)
    out: dict[str, dict[str, float]] = {}
    for r in seed_results(frames["trials"], frames["evaluations"], DIRECTIONS).itertuples():
        out.setdefault(r.trial_id, {})[r.metric] = float(r.value)
    return out


@task(retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def round_trials(sweep: SweepConfig, storage: Storage, sweep_id: str, r: int) -> list[TrialConfig]:
    """sampler tpe: round r's trials, asked from the stored results of every earlier setting (a deterministic
    function of them); the settings table rewritten with the rounds so far."""
    settings = search_settings(sweep, results=stored_results(storage, sweep_id), upto=r)
    write_settings(storage, sweep_id, settings_rows(sweep, sweep_id, settings=settings))
    mine = [st for st in settings if st["round"] == r]
    get_run_logger().info("tpe round %d: %s", r, ", ".join(f"{st['cell']} s{st['setting']}" for st in mine))
    codes = sweep_plugins(sweep)
    return [setting_trial(sweep, st, seed, codes) for st in mine for seed in sweep.grid.seed[:sweep.search.seeds_per_setting]]


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
    settings = search_settings(sweep, results=stored_results(storage, sweep_id)
                               if sweep.search.sampler == "tpe" else None)
    rows = settings_rows(sweep, sweep_id, settings=settings)
    scores = setting_scores(pd.DataFrame(rows), frames["trials"], frames["evaluations"])
    best = best_settings(scores, sweep.search.metric)
    rows = settings_rows(sweep, sweep_id, best, settings)
    write_settings(storage, sweep_id, rows)
    missing = sorted({r["cell"] for r in rows} - set(best))
    if missing:
        get_run_logger().warning("no completed setting to confirm in %s", ", ".join(missing))
    by_cell = {st["cell"]: st for st in settings if best.get(st["cell"]) == st["setting"]}
    get_run_logger().info("confirm stage: %s", ", ".join(f"{c} s{s}" for c, s in best.items()))
    codes = sweep_plugins(sweep)
    return [setting_trial(sweep, by_cell[c], seed, codes) for c in by_cell for seed in confirm_seeds(sweep)]
