"""The sweep flow: validate -> dataset -> one task run per trial (each in a Ray actor) -> evaluate -> report."""
from __future__ import annotations

import time
from datetime import datetime, timezone

import pyarrow as pa
import ray
import yaml
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, create_table_artifact, \
    update_progress_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from prefect.cache_policies import NO_CACHE

from prefect.states import Failed

from flows.actors import ActorPool, ensure_ray, slots
from flows import interrupt
from flows.lock import SweepLock, SweepLocked, default_sweep_id
from gan_tasks.config import ConfigError, SweepConfig, check_sweep_id, TrialConfig, dump_config, expand_grid, \
    parse_config, EvalConfig
from gan_tasks.data.datasets import ensure_dataset
from gan_tasks.data.userdata import read_manifest
from gan_tasks.config.early_stop import EarlyStop
from gan_tasks.data.schema import DONE
from gan_tasks.data.storage import DamagedFile, Storage

# torch, pandas, matplotlib and scipy are imported where they are used (trial rows written here on a
# failure, comparison, rankings, report), not with this module: the driver starts seconds sooner.

POLL_SECONDS = 2.0  # how often a trial's task asks its actor for progress


def _completed(storage: Storage, sweep_id: str, tid: str) -> bool:
    """Whether a re-run may skip this trial, verified: its own row and metric files must read back
    (O(files of this trial), not the whole sweep). A damaged trial row is moved to quarantine/ and
    the trial resumes from its checkpoint (it completes at once, rewriting the row); a damaged metrics
    file cannot be rebuilt from a checkpoint that comes after it, so the trial's files are moved
    aside and it retrains from step 0, deterministically: the same rows as before the damage.
    Its final evaluation is checked apart (`_evaluated`)."""
    logger = get_run_logger()
    path = ("sweeps", sweep_id, "trials", f"{tid}.parquet")
    if not storage.exists(*path):
        return False
    try:
        rows = storage.read_parquet(*path).to_pylist()
    except DamagedFile as e:
        logger.warning("%s; moved to %s, the trial resumes from its checkpoint", e, storage.quarantine(*path))
        return False
    if not any(r["status"] in DONE for r in rows):
        return False
    folder = ("sweeps", sweep_id, "metrics")
    for name in [n for n in storage.ls(*folder) if n.startswith(f"{tid}-")]:
        try:
            storage.read_parquet(*folder, name)
        except DamagedFile as e:
            logger.warning("%s; moved to %s, the trial retrains from step 0", e, storage.quarantine(*folder, name))
            forget_trial(storage, sweep_id, tid)
            return False
    return True


def _evaluated(storage: Storage, sweep_id: str, tid: str) -> bool:
    """Whether a skipped trial's final evaluation reads back; a damaged one is moved to quarantine/
    and the trial is evaluated again."""
    path = ("sweeps", sweep_id, "evaluations", f"{tid}.parquet")
    if not storage.exists(*path):
        return False
    try:
        storage.read_parquet(*path)
    except DamagedFile as e:
        get_run_logger().warning("%s; moved to %s, the trial is evaluated again", e, storage.quarantine(*path))
        return False
    return True


def same_trials(stored: bytes, sweep: SweepConfig) -> bool:
    """Whether a stored config.yaml means this sweep: read with today's parser, it expands to the same
    trial ids. Its text may differ (an older gansweep did not dump fields added since, or dumped them
    otherwise); a text that no longer parses, or means other trials, is another sweep."""
    try:
        return {t.trial_id for t in expand_grid(parse_config(yaml.safe_load(stored.decode())))} == \
            {t.trial_id for t in expand_grid(sweep)}
    except (ValueError, yaml.YAMLError):  # ConfigError, or bytes that are not even text
        return False


def _transient(task, run, state) -> bool:
    """Retry storage hiccups, not a refusal: a config that differs will differ again in 5 s."""
    return not isinstance(state.result(raise_on_failure=False), ConfigError)


@task(retries=2, retry_delay_seconds=5, retry_condition_fn=_transient)
def prepare(sweep: SweepConfig, storage: Storage, sweep_id: str) -> None:
    """Write the sweep's config.yaml, or check that a re-run of this sweep id is the same sweep.

    A stored config.yaml is kept as it is (the text that was run first), however it is spelt."""
    path = ("sweeps", sweep_id, "config.yaml")
    if storage.exists(*path):
        if not same_trials(storage.read_bytes(*path), sweep):
            raise ConfigError(f"sweep {sweep_id} exists in {storage.url} with a different config; "
                              "choose another --sweep-id")
    else:
        storage.write_bytes(dump_config(sweep).encode(), *path)
    if sweep.dataset.id:  # added with gansweep data add: its manifest must be there (read_manifest says why not)
        read_manifest(storage, sweep.dataset.name, sweep.dataset.id)
    else:
        ensure_dataset(storage, sweep.dataset.name, sweep.dataset.params)


def forget_trial(storage: Storage, sweep_id: str, tid: str) -> None:
    """--force: remove a trial's outputs so it trains from scratch."""
    storage.rm("sweeps", sweep_id, "checkpoints", tid, recursive=True)
    for folder in ("trials", "evaluations", "eval_every", "metrics"):
        for name in storage.ls("sweeps", sweep_id, folder):
            if name.startswith(tid):
                storage.rm("sweeps", sweep_id, folder, name)


@task(retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def train_trial(cfg: TrialConfig, storage: Storage, sweep_id: str, pool: ActorPool, force: bool = False,
                ev: EvalConfig | None = None, es: EarlyStop | None = None) -> dict:
    """Runs one trial in a Ray actor of the sweep's pool and reports its progress while it trains;
    the actor evaluates it in the same call (`evaluated`: True; a failed evaluation fails the trial)."""
    logger = get_run_logger()
    if force:
        forget_trial(storage, sweep_id, cfg.trial_id)
    elif _completed(storage, sweep_id, cfg.trial_id):
        logger.info("%s already completed in %s: skipped", cfg.label, sweep_id)
        return {"trial_id": cfg.trial_id, "status": "completed", "skipped": True}
    from gan_tasks.training.rows import trial_row, write_trial_row

    art = create_progress_artifact(0.0, description=f"{cfg.label} ({cfg.trial_id}): waiting for an actor")
    actor = pool.borrow()
    started = datetime.now(timezone.utc)
    rate = None
    try:
        ref = actor.train.remote(cfg, storage, sweep_id, ev, es, ev is not None)
        shown = 0.0
        while not ray.wait([ref], timeout=POLL_SECONDS)[0]:
            step, steps, rate = ray.get(actor.progress.remote())
            if steps and step / steps >= shown + 0.1:  # log every 10 %, not every poll
                shown = step / steps
                update_progress_artifact(art, 100.0 * shown, description=_progress_text(cfg, step, steps, rate))
                logger.info("%s: step %d/%d (%.0f steps/s)", cfg.label, step, steps, rate)
        row = ray.get(ref)
        try:  # the rate over the whole run, as the trial ended (for the UI only: never fails the trial)
            step, _, last = ray.get(actor.progress.remote(), timeout=10)
            rate = last if step == row["steps"] else rate
        except ray.exceptions.RayError:
            pass
    except ray.exceptions.RayError as e:
        # The actor died more often than Ray restarts it: record the failure, let the sweep go on.
        row = trial_row(cfg, sweep_id, "failed", 0, started, datetime.now(timezone.utc), f"{type(e).__name__}: {e}")
        if not interrupt.STOPPING.is_set():  # Ctrl-C stopped the actor: the handler writes `interrupted`
            write_trial_row(storage, row)
    finally:
        pool.give_back(actor)
    if row.get("evaluation_error"):
        logger.error("evaluation of %s failed: %s", cfg.label, row["evaluation_error"])
        row = mark_failed(storage, sweep_id, cfg, f"evaluation failed: {row['evaluation_error']}")
    update_progress_artifact(art, 100.0, description=_progress_text(cfg, row["steps"], cfg.train.steps, rate,
                                                                    row["status"]))
    logger.info("%s: %s after %d steps %s", cfg.label, row["status"], row["steps"], row.get("error") or "")
    return {"trial_id": cfg.trial_id, "status": row["status"], "evaluated": ev is not None}


def _progress_text(cfg: TrialConfig, step: int, steps: int, rate: float | None, status: str = "training") -> str:
    """The progress artifact's description: what the UI shows next to the bar, steps/s included."""
    speed = f", {rate:.0f} steps/s" if rate else ""
    return f"{cfg.label} ({cfg.trial_id}): {status}, step {step}/{steps}{speed}"


@task(retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def train_pack(cfgs: list[TrialConfig], storage: Storage, sweep_id: str, pool: ActorPool,
               force: bool = False) -> list[dict]:
    """pack_seeds > 1: the seeds of one cell trained together in one actor (gan_tasks/training/packing.py)."""
    from gan_tasks.training.rows import trial_row, write_trial_row

    for c in cfgs if force else []:
        forget_trial(storage, sweep_id, c.trial_id)
    todo = [c for c in cfgs if force or not _completed(storage, sweep_id, c.trial_id)]
    out = {c.trial_id: {"trial_id": c.trial_id, "status": "completed", "skipped": True} for c in cfgs}
    if todo:
        actor, started = pool.borrow(), datetime.now(timezone.utc)
        try:
            rows = ray.get(actor.train_packed.remote(todo, storage, sweep_id))
        except ray.exceptions.RayError as e:
            rows = [trial_row(c, sweep_id, "failed", 0, started, datetime.now(timezone.utc), f"{type(e).__name__}: {e}")
                    for c in todo]
            for r in rows:
                if not interrupt.STOPPING.is_set():
                    write_trial_row(storage, r)
        finally:
            pool.give_back(actor)
        out.update({r["trial_id"]: {"trial_id": r["trial_id"], "status": r["status"]} for r in rows})
    return [out[c.trial_id] for c in cfgs]


def packs(trials: list[TrialConfig], n: int) -> list[list[TrialConfig]]:
    """Trials grouped by cell (all but the seed), each cell cut into packs of at most n seeds."""
    cells: dict[str, list[TrialConfig]] = {}
    for t in trials:
        cells.setdefault(t.model_dump_json(exclude={"seed"}), []).append(t)
    return [c[i:i + n] for c in cells.values() for i in range(0, len(c), n)]


def _train_all(sweep: SweepConfig, trials: list[TrialConfig], storage: Storage, sweep_id: str, pool: ActorPool,
               force: bool) -> list[dict]:
    if sweep.pack_seeds > 1:
        groups = packs(trials, sweep.pack_seeds)
        futures = [train_pack.with_options(task_run_name=f"{g[0].loss.name}/{g[0].optimizer.name} seeds "
                                                         f"{','.join(str(t.seed) for t in g)}")
                   .submit(g, storage, sweep_id, pool, force) for g in groups]
    else:
        futures = [train_trial.with_options(task_run_name=f"{t.label} [{t.trial_id}]", tags=_tags(t))
                   .submit(t, storage, sweep_id, pool, force, sweep.evaluation, sweep.early_stop) for t in trials]
    by_id = {r["trial_id"]: r for r in _follow(futures, len(trials), len(pool.actors))}
    return [by_id[t.trial_id] for t in trials]


def _tags(t: TrialConfig) -> list[str]:
    """loss:, optimizer:, seed: tags for filtering in a Prefect UI; none on the temporary API a run
    starts without PREFECT_API_URL, which has no UI and ends with the run. Each tag costs its task
    run a concurrency-slot acquire, lease and release (API round trips against SQLite on the same
    cores): with 256 one-second trials on 2 busy cores, that API answered 503 and the flow crashed."""
    from flows.warm import on_temporary_api

    if on_temporary_api():
        return []
    return [f"loss:{t.loss.name}", f"optimizer:{t.optimizer.name}", f"seed:{t.seed}"]


def _follow(futures: list, total: int, slots_: int) -> list[dict]:
    """Results as they come, with one sweep-wide progress line each time a trial (or pack) ends:
    in the terminal and in the flow run's log in the UI."""
    from prefect.futures import as_completed

    logger, t0, rows = get_run_logger(), time.perf_counter(), []
    for f in as_completed(futures):
        out = f.result()
        rows += out if isinstance(out, list) else [out]
        logger.info(progress_line(rows, total, slots_, time.perf_counter() - t0))
    return rows


def progress_line(rows: list[dict], total: int, slots_: int, elapsed: float) -> str:
    """'sweep: 5/12 trials done (4 completed, 1 failed), 2 running, 41 s elapsed, ETA ~58 s'."""
    done = len(rows)
    bad = sum(r["status"] not in DONE for r in rows)
    stopped = sum(r["status"] == "stopped" for r in rows)
    trained = [r for r in rows if not r.get("skipped")]
    left = total - done
    eta = f", ETA ~{elapsed / len(trained) * left:.0f} s" if trained and left else ""
    cut = f", {stopped} stopped early" if stopped else ""
    return (f"sweep: {done}/{total} trials done ({done - bad - stopped} completed{cut}, {bad} failed), "
            f"{min(slots_, left)} running, {elapsed:.0f} s elapsed{eta}")


@task(retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def evaluate_trial(cfg: TrialConfig, storage: Storage, sweep_id: str, ev: EvalConfig, pool: ActorPool) -> list[dict]:
    actor = pool.borrow()
    try:
        return ray.get(actor.evaluate.remote(cfg, storage, sweep_id, ev))
    finally:
        pool.give_back(actor)


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
                             key=_key(sweep_id, "comparison"), description=f"Comparison with {prev}")
    return {"previous": prev, "regressions": len(bad)}


@task(retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def report(storage: Storage, sweep_id: str) -> dict:
    """Rankings over seeds (Parquet + table artifact), then report/index.html from storage alone."""
    from gan_tasks.evaluation.published import of_sweep
    from gan_tasks.evaluation.rankings import rank_cells, write_rankings
    from gan_tasks.evaluation.report import load_frames, summary_table, write_report

    for folder in (("sweeps", sweep_id, "evaluations"), ("sweeps", sweep_id, "eval_every")):
        for name in storage.ls(*folder):  # final evaluations were just rewritten; a damaged older one goes aside
            try:
                storage.read_parquet(*folder, name)
            except DamagedFile as e:
                get_run_logger().warning("%s; moved to %s", e, storage.quarantine(*folder, name))
    frames = load_frames(storage, sweep_id)
    ranks = rank_cells(frames["trials"], frames["evaluations"], sweep_id, *of_sweep(storage, sweep_id))
    write_rankings(storage, sweep_id, ranks)
    if not ranks.empty:
        create_table_artifact(ranks.astype(object).where(ranks.notna(), None).to_dict(orient="records"),
                              key=_key(sweep_id, "rankings"), description=f"Rankings over seeds of {sweep_id}")
    url = write_report(storage, sweep_id)
    table = summary_table(frames)
    create_table_artifact(table.astype(object).where(table.notna(), None).to_dict(orient="records"),
                          key=_key(sweep_id, "trials"),
                          description=f"Trials of sweep {sweep_id}")
    counts = table["status"].value_counts().to_dict() if not table.empty else {}
    create_markdown_artifact(f"# Sweep {sweep_id}\n\nReport: `{url}`\n\nStatus: {counts}\n\n"
                             + table.drop(columns=["error"], errors="ignore").to_markdown(index=False)
                             + "\n\n## Rankings (mean over seeds, 95 % CI, test vs the best cell with Holm's p_adj)\n\n"
                             + _ranking_md(ranks),
                             key=_key(sweep_id, "report"), description="Sweep report")
    return {"report": url, "counts": counts}


def _ranking_md(ranks) -> str:
    if ranks.empty:
        return "(no metrics)"
    cols = ["metric", "rank", "loss", "optimizer", "mean", "ci95_low", "ci95_high", "best_value", "seeds",
            "seeds_failed", "p_value", "p_adj", "significant", "note"]
    return ranks[cols].to_markdown(index=False, floatfmt=".4g")


def _key(sweep_id: str, what: str) -> str:
    # Artifact keys allow lowercase letters, digits and dashes only.
    return "".join(c if c.isalnum() else "-" for c in f"{what}-{sweep_id}".lower())


@flow(name="gansweep", log_prints=True)
def sweep_flow(config: dict, storage_url: str, sweep_id: str | None = None, ray_address: str | None = None,
               s3_endpoint_url: str | None = None, force: bool = False, fail_on_regression: bool = False,
               actors: str | None = None):
    """actors: the name of trial actors started already (`gansweep run`, WarmActors: flows/warm.py),
    borrowed, and left running at the end: whoever named them stops them."""
    sweep = parse_config(config)
    trials = expand_grid(sweep)
    storage = Storage.parse(storage_url, s3_endpoint_url)
    sweep_id = check_sweep_id(sweep_id or default_sweep_id(sweep.name))
    lock = SweepLock(storage, sweep_id)
    try:
        lock.acquire()  # before any Ray work: a second run of this id stops here
    except SweepLocked as e:  # a refusal, not a crash: the flow fails with the message, no traceback
        get_run_logger().error(str(e))
        return Failed(message=str(e), data=e)
    try:  # the lock is renewed while the sweep runs and released at its end, whatever happens
        out = _run(sweep, trials, storage, sweep_id, ray_address, force, actors)
        out.update(compare_with_previous(storage, sweep.name, sweep_id))
    finally:
        lock.release()
    if fail_on_regression and out["regressions"]:
        return Failed(message=f"{out['regressions']} regression(s) against {out['previous']}", data=out)
    if out["not_completed"]:
        # The flow's final state says how many trials did not complete; the data stays readable.
        return Failed(message=f"{out['not_completed']} of {len(trials)} trials did not complete: {out['counts']}",
                      data=out)
    return out


def mark_failed(storage: Storage, sweep_id: str, cfg: TrialConfig, error: str) -> dict:
    """A trial that trained but could not be evaluated has no result: it is `failed` in its row, the
    summary and the exit code, and a re-run evaluates it again (its last checkpoint is kept)."""
    from gan_tasks.training.rows import write_trial_row

    path = ("sweeps", sweep_id, "trials", f"{cfg.trial_id}.parquet")
    row = storage.read_parquet(*path).to_pylist()[-1]
    row.update(status="failed", error=error[:2000])
    write_trial_row(storage, row)
    return {"trial_id": cfg.trial_id, "status": "failed", "steps": row["steps"], "error": row["error"]}


def _run(sweep: SweepConfig, trials: list[TrialConfig], storage: Storage, sweep_id: str, ray_address: str | None,
         force: bool, actors: str | None = None) -> dict:
    started_ray = ensure_ray(ray_address)
    try:
        pool = sweep_pool(sweep, len(trials), actors)
        # Threads only wait on Ray actors; the pool bounds how many train at once. Two per slot: the
        # next trial's task run is created and waiting while the slot's current trial trains, and
        # the API server (SQLite on the same cores) is not asked for 64 task runs at once.
        runner = ThreadPoolTaskRunner(max_workers=min(2 * len(pool.actors) + 2, len(trials)))
        with pool, runner:
            prepare(sweep, storage, sweep_id)
            results = _train_all(sweep, trials, storage, sweep_id, pool, force)
            # Trials trained now were evaluated in their actor; skipped ones only if not yet evaluated.
            done = [t for t, r in zip(trials, results) if r["status"] in DONE and not r.get("evaluated")
                    and not (r.get("skipped") and _evaluated(storage, sweep_id, t.trial_id))]
            evals = [evaluate_trial.with_options(task_run_name=f"evaluate {t.label} [{t.trial_id}]")
                     .submit(t, storage, sweep_id, sweep.evaluation, pool) for t in done]
            position = {t.trial_id: i for i, t in enumerate(trials)}
            for t, f in zip(done, evals):
                if isinstance(err := f.result(raise_on_failure=False), BaseException):
                    get_run_logger().error("evaluation of %s failed: %s", t.label, err)
                    results[position[t.trial_id]] = mark_failed(storage, sweep_id, t, f"evaluation failed: {err}")
        out = report(storage, sweep_id)
    finally:
        if started_ray:
            ray.shutdown()
    return {"sweep_id": sweep_id, "storage": storage.url, **out,
            "not_completed": sum(r["status"] not in DONE for r in results)}


def sweep_pool(sweep: SweepConfig, n_trials: int, name: str | None = None) -> ActorPool:
    """The sweep's actors, one per slot (a process each, importing torch: seconds, paid once per slot
    and started before prepare); named: the ones `gansweep run` started early, taken over."""
    res = sweep.resources
    n = slots(res.gpus_per_trial, res.cpus_per_trial, min(res.max_parallel or n_trials, n_trials))
    return ActorPool(n, res.gpus_per_trial, res.cpus_per_trial, name=name)
