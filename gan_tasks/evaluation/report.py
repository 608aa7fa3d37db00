"""The sweep report, built from storage alone: report/index.html with images embedded."""
from __future__ import annotations

import html
import io
import json

import numpy as np
import pandas as pd

from gan_tasks.data.datasets import dataset_spec
from gan_tasks.methods.programs import DEFAULT_PROGRAM, PROGRAMS
from gan_tasks.config.published import Published
from gan_tasks.evaluation.figures import curves, image_grid, quality, scatter
from gan_tasks.evaluation.rankings import ALPHA, cell_frame, final_values, rank_cells
from gan_tasks.evaluation.real_data import describe
from gan_tasks.evaluation.report_scale import (TRIALS_CSV, at_scale, cells_html, curve_trials, fold_rankings,
                                               sample_rows, trials_csv)
from gan_tasks.evaluation.seeds import seed_results
from gan_tasks.evaluation.search_report import search_html, write_search_tables
from gan_tasks.data.storage import Storage, read_evaluations
from gan_tasks.errors import UserError


def load_frames(storage: Storage, sweep_id: str) -> dict[str, pd.DataFrame]:
    """trials and evaluations (final ones and those during training: the `final` column). Training metrics are
    read where they are drawn, for the trials drawn (_curves_html): not every trial's for every reader."""
    out = {}
    t = storage.read_table("sweeps", sweep_id, "trials")
    out["trials"] = t.to_pandas() if t is not None else pd.DataFrame()
    t = read_evaluations(storage, sweep_id)
    out["evaluations"] = t.to_pandas() if t is not None else pd.DataFrame()
    out["trials"] = cell_frame(out["trials"])  # cells differing by settings or tricks keep apart everywhere
    return out


def load_rankings(storage: Storage, sweep_id: str, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The stored rankings; computed from trials and evaluations when a sweep has none yet."""
    t = storage.read_table("sweeps", sweep_id, "rankings")
    if t is not None:
        return t.to_pandas()
    from gan_tasks.evaluation.published import of_sweep

    return rank_cells(frames["trials"], frames["evaluations"], sweep_id, *of_sweep(storage, sweep_id)) \
        if not frames["trials"].empty else pd.DataFrame()


def summary_table(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per trial: identity, status, and its result as columns: a completed trial's final evaluation
    (gan_tasks/evaluation/seeds.py); blank for the others, never a value from during training."""
    trials = frames["trials"]
    if trials.empty:
        return trials
    cols = ["trial_id", "loss", "optimizer", "seed", "status", "steps", "wall_seconds", "error"]
    table = trials[cols].copy()
    last = seed_results(trials, frames["evaluations"])
    if not last.empty:
        table = table.merge(last.pivot(index="trial_id", columns="metric", values="value").reset_index(),
                            on="trial_id", how="left")
    return table.sort_values(["loss", "optimizer", "seed"]).reset_index(drop=True)


_SORT_JS = ("<script>document.querySelectorAll('table.sortable th').forEach((th,i)=>th.onclick=()=>{"
            "const t=th.closest('table'),b=t.tBodies[0],r=[...b.rows],d=th.dataset.d=th.dataset.d==='1'?'-1':'1';"
            "const v=x=>{const s=x.cells[i].innerText,n=parseFloat(s);return isNaN(n)?s:n};"
            "r.sort((x,y)=>(v(x)>v(y)?1:v(x)<v(y)?-1:0)*d).forEach(x=>b.appendChild(x))});</script>")


def _ci(lo: float, hi: float, seeds: int, note: str) -> str:
    """The interval as shown: a range, "no spread" where all seeds agree, blank with one seed."""
    if pd.notna(lo):
        return f"[{lo:.4g}, {hi:.4g}]"
    return "no spread" if seeds > 1 and "no spread" in (note or "") else ""


def _rankings_html(r: pd.DataFrame) -> str:
    if r.empty:
        return "<p>No metrics to rank.</p>"
    t = r.assign(ci95=[_ci(lo, hi, n, note) for lo, hi, n, note in zip(r.ci95_low, r.ci95_high, r.seeds, r.note)],
                 better=r.higher_is_better.map({True: "higher", False: "lower"}),
                 vs_best=[("worse" if s else "n.s.") if pd.notna(p) else ("best" if k == 1 else "n/a")
                          for s, p, k in zip(r.significant, r.p_adj, r["rank"])])
    cols = ["metric", "rank", "loss", "optimizer", "mean", "std", "ci95", "median", "best_seed", "best_value",
            "seeds", "seeds_failed", "p_value", "p_adj", "vs_best", "better", "note"]
    return t[cols].to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="", classes="sortable",
                           border=0)


def _published_html(storage: Storage, sweep_id: str) -> str:
    """The config's published table beside the measured values (gan_tasks/evaluation/published.py); '' without one."""
    from gan_tasks.evaluation.published import of_sweep

    if of_sweep(storage, sweep_id)[0] is None:
        return ""
    pub, cmp, _ = sweep_comparison(storage, sweep_id)
    t = cmp.assign(published=[f"{m:.4g}" + (f" ± {se:.3g}" if pd.notna(se) else "")
                              for m, se in zip(cmp.published_mean, cmp.published_se)],
                   margin=[f"±{m:.3g}" for m in cmp.published_margin],
                   difference_ci95=[f"{d:+.4g} [{lo:+.4g}, {hi:+.4g}]" if pd.notna(d) else "" for d, lo, hi in
                                    zip(cmp.difference, cmp.diff_ci95_low, cmp.diff_ci95_high)])
    cols = ["published_row", "metric", "published", "published_runs", "margin", "measured_mean", "difference_ci95",
            "seeds", "seeds_failed", "budget_ratio", "verdict_absolute", "verdict_ordering"]
    return (f"<h2>Published vs measured: {html.escape(pub.table)}</h2><p>{html.escape(pub.source)}. "
            f"Published: {pub.runs} runs of {pub.steps:,} generator steps. {html.escape(pub.note)}</p>"
            "<p>absolute: agrees = within ± margin by a TOST equivalence test, differs = the 95 % interval of the "
            f"difference excludes 0, inconclusive otherwise or with fewer than {pub.min_seeds} seeds or a budget "
            f"ratio below {pub.min_budget_ratio:g}; ordering: pairs of rows whose paper difference is significant, "
            "ours tested with Holm's correction (docs/statistics.md).</p>"
            + t[cols].to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="", border=0))


def _provenance(storage: Storage, ev: pd.DataFrame) -> str:
    """Which extractor (and weights hash) produced the image metrics, and the library versions."""
    from importlib.metadata import version  # not `import torch` for a version string: the driver stays torch-free

    lines = [f"torch {version('torch')}, torch-fidelity {version('torch-fidelity')}"]
    if not ev.empty and "extractor" in ev:
        for (name, h), _ in ev[ev.extractor.fillna("") != ""].groupby(["extractor", "extractor_hash"]):
            line = f"feature extractor {name}, weights sha256[:16] {h}"
            for ds in storage.ls("evaluators"):
                if storage.exists("evaluators", ds, f"{h}.json"):
                    meta = json.loads(storage.read_bytes("evaluators", ds, f"{h}.json"))
                    line += f" ({ds} classifier, test accuracy {meta['test_accuracy']:.2%})"
            lines.append(line)
    return "<ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in lines) + "</ul>"


def _samples_html(storage: Storage, sweep_id: str, frames: dict[str, pd.DataFrame], table: pd.DataFrame) -> str:
    """Per trial: 2D samples over the true modes (seed 000's Figure 8), or an 8x8 image grid."""
    parts = []
    configs = frames["trials"].set_index("trial_id")["config_json"].to_dict() if not table.empty else {}
    stored = set(storage.ls("sweeps", sweep_id, "samples"))  # one listing, not one request per trial
    for _, row in table.iterrows():
        name = f"{row['trial_id']}.npy"
        if name not in stored:
            continue
        samples = np.load(io.BytesIO(storage.read_bytes("sweeps", sweep_id, "samples", name)))
        cfg = json.loads(configs[row["trial_id"]])
        spec = dataset_spec(cfg["dataset"])
        modes = spec.modes(**cfg["dataset"]["params"]) if spec.modes else None
        title = f"{row['loss']}/{row['optimizer']}/seed {row['seed']}" + (f" ({row['pick']})" if row.get("pick") else "")
        shown = [fmt.format(row[col]) for col, fmt in (("modes_covered", "{:.0f} modes"), ("high_quality", "HQ {:.0%}"),
                                                        ("inception_score", "IS {:.2f}"), ("fid", "FID {:.3g}"))
                 if col in row and pd.notna(row.get(col))]
        caption = ", ".join(shown)
        cols = PROGRAMS.get(cfg.get("program", DEFAULT_PROGRAM)).sample_columns  # Program.report_samples' rows
        img = scatter(samples, modes) if samples.ndim == 2 else image_grid(samples, cols)
        parts.append(f"<figure><img alt='{html.escape(title)}' src='data:image/png;base64,{img}'>"
                     f"<figcaption>{html.escape(title)}<br>{html.escape(caption)}</figcaption></figure>")
    return "".join(parts)


def _curves_html(storage: Storage, sweep_id: str, frames: dict[str, pd.DataFrame], table: pd.DataFrame,
                 ranks: pd.DataFrame) -> str:
    """Training curves and quality over training steps of at most CURVE_CELLS cells x CURVE_SEEDS seeds
    (report_scale.curve_trials): only those trials' metrics files are read."""
    trials, ev = frames["trials"], frames["evaluations"]
    if trials.empty:
        return ""
    ids, note = curve_trials(table, ranks)
    note = f"<p>{html.escape(note)}</p>" if note else ""
    out = ""
    metrics = storage.read_table("sweeps", sweep_id, "metrics", keep=lambda n: n.rsplit("-", 1)[0] in ids)
    if metrics is not None:
        out += f"<h2>Training curves</h2>{note}<img src='data:image/png;base64,{curves(metrics.to_pandas(), trials)}'>"
    if not ev.empty and (q := quality(ev[ev.trial_id.isin(ids)], trials)):
        out += f"<h2>Quality over training steps</h2>{note}<img src='data:image/png;base64,{q}'>"
    return out


def _dataset_html(storage: Storage, trials: pd.DataFrame) -> tuple[str, str]:
    """(the Dataset section: name, id, images, shape, classes; a figure of real images for the samples grid)."""
    if trials.empty or "config_json" not in trials:
        return "", ""
    info, real = describe(storage, json.loads(trials.config_json.iloc[0])["dataset"])
    text = ", ".join(f"{k} {v}" for k, v in info.items())
    if real is None:
        return f"<h2>Dataset</h2><p>{html.escape(text)}</p>", ""
    figure = (f"<figure><img alt='real images' src='data:image/png;base64,{image_grid(real)}'>"
              f"<figcaption>real: {html.escape(info['name'])}@{html.escape(info['id'])}<br>"
              f"{len(real)} training images, seeded random</figcaption></figure>")
    return f"<h2>Dataset</h2><p>{html.escape(text)}</p>", figure


def _budget_html(trials: pd.DataFrame) -> str:
    """The budget every figure of the report stands on: data, model, steps, seeds, what G is evaluated."""
    if trials.empty or "config_json" not in trials:
        return ""
    cfgs = [json.loads(c) for c in trials.config_json]
    steps = sorted({c["train"]["steps"] for c in cfgs})
    seeds = sorted({c["seed"] for c in cfgs})
    ema = sorted({c["train"].get("g_ema") or 0.0 for c in cfgs})
    cells = trials.groupby(["loss", "optimizer"]).ngroups
    text = (f"Budget: {len(trials)} trials = {cells} cells x {len(seeds)} seeds ({_spans(seeds)}), "
            f"{' / '.join(f'{s:,}' for s in steps)} generator steps each, dataset {cfgs[0]['dataset']['name']}, "
            f"model {cfgs[0]['model']['name']}, batch {cfgs[0]['train']['batch_size']}{_protocol(cfgs[0]['train'])}. "
            "Evaluated: "
            + ("the raw generator" if ema == [0.0] else f"an EMA of the generator's weights (decay {ema[-1]})")
            + ". Every resolved setting: each trial's config_json below.")
    return f"<p>{html.escape(text)}</p>"


def _spans(values: list[int]) -> str:
    """Sorted integers, runs of three or more as ranges: '0-511' for 512 seeds, '0-2, 5, 7, 8'."""
    runs: list[list[int]] = []
    for v in values:
        if runs and v == runs[-1][1] + 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    return ", ".join(f"{a}-{b}" if b - a >= 2 else ", ".join(map(str, range(a, b + 1))) for a, b in runs)


def _protocol(train: dict) -> str:
    """' packed groups, simultaneous updates' where the train options are not at their defaults."""
    parts = [" packed groups" if train.get("batch_unit") == "groups" else "",
             ", simultaneous D/G updates" if train.get("update") == "simultaneous" else ""]
    return "".join(parts)


def render_html(storage: Storage, sweep_id: str, frames: dict[str, pd.DataFrame] | None = None,
                table: pd.DataFrame | None = None) -> str:
    """frames: load_frames' result when the caller has it already (rebuild), else read here; table: their
    summary_table. More than report_scale.SCALE_TRIALS trials: cells instead of trials (report_scale.py)."""
    frames = frames if frames is not None else load_frames(storage, sweep_id)
    table = table if table is not None else summary_table(frames)
    ranks = load_rankings(storage, sweep_id, frames)
    big = at_scale(table)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>gansweep {html.escape(sweep_id)}</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}"
             "td,th{border:1px solid #ccc;padding:3px 6px}.grid{display:flex;flex-wrap:wrap;gap:8px}"
             ".bad{background:#fdd}figure{margin:0}figcaption{font-size:11px;text-align:center}</style></head><body>",
             f"<h1>Sweep {html.escape(sweep_id)}</h1>", _budget_html(frames["trials"])]
    parts.append("<h2>Rankings over seeds</h2><p>Per (loss, optimizer) cell and metric: mean, standard "
                 "deviation and 95 % confidence interval (Student t, cut to the metric's bounds; <i>no spread</i> "
                 "where all seeds agree) over seeds, median and best seed. <i>vs_best</i>: against the best cell, "
                 "an exact permutation test (&le; 5 seeds or no spread) or Welch's t-test, p_adj by Holm over all "
                 f"pairs of cells, p_adj &le; {ALPHA} = worse. Seeds are completed trials' final evaluations; "
                 "diverged, failed or interrupted seeds are counted in seeds_failed, early-stopped ones named in the "
                 "note. Click a header to sort.</p>")
    parts.append(fold_rankings(ranks, _rankings_html) if big and not ranks.empty else _rankings_html(ranks))
    parts.append(_published_html(storage, sweep_id))
    parts.append(search_html(storage, sweep_id))
    data_html, real_grid = _dataset_html(storage, frames["trials"])
    parts.append(data_html)
    parts.append("<h2>Generated samples</h2><div class='grid'>" + real_grid
                 + _samples_html(storage, sweep_id, frames, sample_rows(table, ranks) if big else table) + "</div>")
    if table.empty:
        parts.append("<p>No trials recorded.</p>")
    elif big:
        parts.append(cells_html(table))
    else:
        counts = table["status"].value_counts().to_dict()
        parts.append(f"<h2>Trials</h2><p>{len(table)} trials: {html.escape(json.dumps(counts))}</p>")
        parts.append(table.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="",
                                   classes="trials sortable", border=0))
    parts.append(_curves_html(storage, sweep_id, frames, table, ranks))
    parts.append("<h2>Extractors and versions</h2>" + _provenance(storage, frames["evaluations"]))
    parts.append(_SORT_JS + "</body></html>")
    return "".join(parts)


def write_report(storage: Storage, sweep_id: str, frames: dict[str, pd.DataFrame] | None = None) -> str:
    """report/index.html (and, for a large sweep, every trial in report/trials.csv beside it)."""
    frames = frames if frames is not None else load_frames(storage, sweep_id)
    table = summary_table(frames)
    if at_scale(table):
        storage.write_bytes(trials_csv(table), "sweeps", sweep_id, "report", TRIALS_CSV)
    storage.write_bytes(render_html(storage, sweep_id, frames, table).encode(), "sweeps", sweep_id, "report",
                        "index.html")
    return storage.uri("sweeps", sweep_id, "report", "index.html")


def rebuild(storage: Storage, sweep_id: str) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, str]:
    """Rankings over seeds (rankings/rankings.parquet), then report/index.html, from storage alone:
    (frames, rankings, report URL)."""
    from gan_tasks.evaluation.published import of_sweep
    from gan_tasks.evaluation.rankings import write_rankings

    frames = load_frames(storage, sweep_id)
    ranks = rank_cells(frames["trials"], frames["evaluations"], sweep_id, *of_sweep(storage, sweep_id))
    write_rankings(storage, sweep_id, ranks)
    write_search_tables(storage, sweep_id, frames)  # a search's budget curves and confirm rankings
    return frames, ranks, write_report(storage, sweep_id, frames)


def sweep_comparison(storage, sweep_id: str) -> tuple[Published, pd.DataFrame, str]:
    """(published block, compare() table, markdown) of a stored sweep; UserError without a block."""
    import pandas as pd

    from gan_tasks.evaluation.published import compare, markdown, of_sweep, over_training, protocol

    pub, steps = of_sweep(storage, sweep_id)
    if pub is None:
        raise UserError(f"sweep {sweep_id!r} has no published: block in its config.yaml")
    f = load_frames(storage, sweep_id)
    trials = f["trials"]
    finals = final_values(trials, f["evaluations"]) if not f["evaluations"].empty else pd.DataFrame(
        columns=["trial_id", "metric", "value"])
    cmp = compare(pub, trials, finals, steps)
    seeds = int(trials.seed.nunique()) if not trials.empty else 0
    md = markdown(pub, cmp, steps, seeds, sweep_id, protocol(trials) if "config_json" in trials else "")
    curve = over_training(pub, trials, f["evaluations"]) if not trials.empty else ""
    return pub, cmp, md + ("\n" + curve if curve else "")
