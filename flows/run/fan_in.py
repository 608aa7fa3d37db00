"""After the trials: evaluations still missing, the comparison with the previous night, rankings and report."""
from __future__ import annotations

import pyarrow as pa
import ray
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import TaskRunner

from flows.actors.pool import ActorPool
from flows.run.stored import evaluated, mark_failed
from flows.run.text import artifact_key, ranking_md
from flows.run.train import submit
from gan_tasks.config import EvalConfig, SweepConfig, TrialConfig
from gan_tasks.data.schema import DONE
from gan_tasks.data.storage import DamagedFile, Storage


@task(retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE, task_run_name="evaluate {cfg.label} [{cfg.trial_id}]")
def evaluate_trial(cfg: TrialConfig, storage: Storage, sweep_id: str, ev: EvalConfig, pool: ActorPool) -> list[dict]:
    with pool.lease() as actor:
        return ray.get(actor.evaluate.remote(cfg, storage, sweep_id, ev))


def evaluate_rest(sweep: SweepConfig, trials: list[TrialConfig], results: list[dict], storage: Storage,
                  sweep_id: str, pool: ActorPool, runner: TaskRunner) -> list[dict]:
    """Trials trained now were evaluated in their actor; skipped ones are evaluated here if their final
    evaluation is missing. A failed evaluation fails its trial; the results, updated."""
    done = [t for t, r in zip(trials, results) if r["status"] in DONE and not r.get("evaluated")
            and not (r.get("skipped") and evaluated(storage, sweep_id, t.trial_id))]
    evals = [submit(runner, evaluate_trial,
                    cfg=t, storage=storage, sweep_id=sweep_id, ev=sweep.evaluation, pool=pool) for t in done]
    results, position = list(results), {t.trial_id: i for i, t in enumerate(trials)}
    for t, f in zip(done, evals):
        if isinstance(err := f.result(raise_on_failure=False), BaseException):
            get_run_logger().error("evaluation of %s failed: %s", t.label, err)
            results[position[t.trial_id]] = mark_failed(storage, sweep_id, t, f"evaluation failed: {err}")
    return results


@task(cache_policy=NO_CACHE)
def compare_with_previous(storage: Storage, name: str, sweep_id: str) -> dict:
    """Night over night: compare with the newest earlier sweep of the same config name."""
    from gan_tasks.evaluation.compare import compare, detectable, previous_sweep, regressions

    prev = previous_sweep(storage, name, sweep_id)
    if prev is None:
        return {"previous": None, "regressions": 0}
    cmp = compare(storage, prev, sweep_id)
    storage.write_parquet(pa.Table.from_pandas(cmp, preserve_index=False), "sweeps", sweep_id, "comparison",
                          f"{prev}.parquet")
    bad = regressions(cmp)
    create_markdown_artifact(f"# {sweep_id} vs {prev}\n\n{len(bad)} regression(s): one-sided tests in each metric's "
                             "worse direction, Benjamini-Hochberg over the night's tests (flagged: p_adj <= 0.05); "
                             "a cell missing tonight or with more failed seeds counts.\n\n"
                             + cmp.to_markdown(index=False, floatfmt=".4g")
                             + "\n\n## Smallest worsening the seeds detect (80 % power, in s.d. and metric units)\n\n"
                             + detectable(cmp).to_markdown(index=False, floatfmt=".3g"),
                             key=artifact_key(sweep_id, "comparison"), description=f"Comparison with {prev}")
    return {"previous": prev, "regressions": len(bad)}


@task(retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def report(storage: Storage, sweep_id: str) -> dict:
    """Rankings over seeds (Parquet + table artifact), then report/index.html from storage alone."""
    from gan_tasks.evaluation.report import summary_table
    from gan_tasks.evaluation.report_scale import at_scale, cells_table

    frames, ranks, url = _rebuilt(storage, sweep_id)
    if not ranks.empty:
        create_table_artifact(ranks.astype(object).where(ranks.notna(), None).to_dict(orient="records"),
                              key=artifact_key(sweep_id, "rankings"), description=f"Rankings over seeds of {sweep_id}")
    table = summary_table(frames)
    counts = table["status"].value_counts().to_dict() if not table.empty else {}
    # A large sweep's artifacts hold a row per cell (its report does too: every trial is in report/trials.csv)
    shown, what = (cells_table(table), "Cells") if at_scale(table) else (table, "Trials")
    create_table_artifact(shown.astype(object).where(shown.notna(), None).to_dict(orient="records"),
                          key=artifact_key(sweep_id, "trials"), description=f"{what} of sweep {sweep_id}")
    create_markdown_artifact(f"# Sweep {sweep_id}\n\nReport: `{url}`\n\nStatus: {counts}\n\n"
                             + shown.drop(columns=["error"], errors="ignore").to_markdown(index=False)
                             + "\n\n## Rankings (mean over seeds, 95 % CI, test vs the best cell with Holm's p_adj)\n\n"
                             + ranking_md(ranks),
                             key=artifact_key(sweep_id, "report"), description="Sweep report")
    return {"report": url, "counts": counts}


def _rebuilt(storage: Storage, sweep_id: str) -> tuple:
    """report.rebuild, each file read once: a damaged evaluation (an older run's; final ones were just
    rewritten) is moved aside and the rebuild starts again without it; any other damaged file is an error."""
    from gan_tasks.evaluation.report import rebuild

    moved: set[tuple[str, ...]] = set()
    while True:
        try:
            return rebuild(storage, sweep_id)
        except DamagedFile as e:
            if (e.parts[:2] != ("sweeps", sweep_id) or e.parts[2:3] not in (("evaluations",), ("eval_every",))
                    or e.parts in moved):  # a file that could not be moved aside: no loop, the error stands
                raise
            moved.add(e.parts)
            get_run_logger().warning("%s; moved to %s", e, storage.quarantine(*e.parts))
