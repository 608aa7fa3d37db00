"""Published vs measured: a config's `published:` block (gan_tasks/config/published.py) beside what the
sweep measured, with a verdict per figure (the rules are in that module's docstring)."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from gan_tasks.config.published import Z95, Published, PublishedRow
from gan_tasks.evaluation.seeds import COMPLETED, FAILED

if TYPE_CHECKING:  # numpy, pandas and scipy load where a comparison is computed
    import numpy as np
    import pandas as pd


def _lookup(cfg: dict, path: str) -> Any:
    node: Any = cfg
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def matches(row: PublishedRow, config_json: str) -> bool:
    cfg = json.loads(config_json)
    return all(_lookup(cfg, k) == v for k, v in row.match.items())


def verdict(pub_mean: float, pub_se: float | None, values: np.ndarray, ordering_ok: bool | None,
            absolute: bool) -> str:
    """One figure's verdict (module docstring); ordering_ok None: no other row to order against."""
    import numpy as np
    if len(values) == 0:
        return "not run"
    se_m = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else 0.0
    band = Z95 * np.sqrt((pub_se or 0.0) ** 2 + se_m ** 2)
    if absolute and abs(values.mean() - pub_mean) <= band:
        return "agrees"
    return "ordering reproduced" if ordering_ok else "differs"


def compare(pub: Published, trials: pd.DataFrame, finals: pd.DataFrame, steps: int) -> pd.DataFrame:
    """Per (published row, metric): the paper's figure, ours over seeds, budget ratio, verdict.

    trials: trial_id, config_json, loss, optimizer (the rankings' cell labels), status; finals: trial_id,
    metric, value: the seeds' results (gan_tasks/evaluation/seeds.py: completed trials' final evaluations).
    seeds_failed: the row's diverged, failed or interrupted trials."""
    import numpy as np
    import pandas as pd
    from scipy import stats
    rows = []
    for r in pub.rows:
        ids = trials[trials.config_json.map(lambda s: matches(r, s))]
        cells = ids[["loss", "optimizer"]].drop_duplicates()
        loss, opt = (cells.iloc[0].tolist() if len(cells) == 1 else (None, None))
        for metric, fig in r.values.items():
            done = ids.trial_id[ids.status == COMPLETED]  # finals of other trials are no seed's result
            v = finals[(finals.metric == metric) & finals.trial_id.isin(done)].value.to_numpy(float)
            v = v[np.isfinite(v)]
            n = len(v)
            half = stats.t.ppf(0.975, n - 1) * v.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
            rows.append({"published_row": r.name, "metric": metric, "loss": loss, "optimizer": opt,
                         "published_mean": fig.mean, "published_se": fig.se, "published_runs": pub.runs,
                         "measured_mean": v.mean() if n else np.nan, "ci95_low": v.mean() - half if n else np.nan,
                         "ci95_high": v.mean() + half if n else np.nan, "seeds": n, "values_": v,
                         "seeds_failed": int(ids.status.isin(FAILED).sum()),
                         "budget_ratio": steps / pub.steps})
    df = pd.DataFrame(rows)
    verdicts = []
    for x in df.itertuples():
        others = df[(df.metric == x.metric) & (df.published_row != x.published_row) & (df.seeds > 0)
                    & (df.published_mean != x.published_mean)]
        ok = None if others.empty or not x.seeds else bool(
            (np.sign(x.measured_mean - others.measured_mean) == np.sign(x.published_mean - others.published_mean)).all())
        verdicts.append(verdict(x.published_mean, x.published_se, x.values_, ok, pub.absolute))
    return df.assign(verdict=verdicts).drop(columns="values_")


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def markdown(pub: Published, cmp: pd.DataFrame, steps: int, seeds: int, sweep_id: str) -> str:
    """The committed comparison: budget first, then one line per (row, metric)."""
    import pandas as pd
    lines = [f"# {pub.table}: published vs measured", "",
             f"Source: {pub.source}. Sweep `{sweep_id}`.", "",
             f"Budget: ours {steps:,} generator steps x {seeds} seeds; published {pub.steps:,} steps x {pub.runs} "
             f"runs (budget ratio {steps / pub.steps:.3g}).", ""]
    if pub.note:
        lines += [f"Protocol differences: {pub.note}", ""]
    if not pub.absolute:
        lines += ["Our metric is not the paper's: only the ordering is compared.", ""]
    lines += ["| row | metric | published mean ± s.e. | measured mean [95 % CI] | seeds | budget ratio | verdict |",
              "|---|---|---|---|---|---|---|"]
    for x in cmp.itertuples():
        pub_s = _fmt(x.published_mean) + (f" ± {_fmt(x.published_se)}" if pd.notna(x.published_se) else "")
        meas = "-" if not x.seeds else _fmt(x.measured_mean) + (
            f" [{_fmt(x.ci95_low)}, {_fmt(x.ci95_high)}]" if pd.notna(x.ci95_low) else "")
        seeds = f"{x.seeds}" + (f" (+{x.seeds_failed} failed)" if x.seeds_failed else "")
        lines.append(f"| {x.published_row} | {x.metric} | {pub_s} | {meas} | {seeds} | {x.budget_ratio:.3g} "
                     f"| {x.verdict} |")
    lines += ["", "agrees: difference within 1.96 sqrt(se_pub² + se_ours²); ordering reproduced: every published "
              "difference to another row keeps its sign; differs: neither."]
    return "\n".join(lines) + "\n"


def of_sweep(storage, sweep_id: str) -> tuple[Published | None, int | None]:
    """(published block, train.steps) of a stored sweep's config.yaml; (None, None) without one."""
    import yaml

    from gan_tasks.config.load import parse_config

    path = ("sweeps", sweep_id, "config.yaml")
    if not storage.exists(*path):
        return None, None
    try:
        sweep = parse_config(yaml.safe_load(storage.read_bytes(*path).decode()))
    except (ValueError, yaml.YAMLError):  # a config an older gansweep wrote: rankings without the paper
        return None, None
    return sweep.published, sweep.train.steps


def over_training(pub: Published, trials: pd.DataFrame, evaluations: pd.DataFrame) -> str:
    """Markdown: per published row and metric, the seed mean at every evaluated step (evaluation.eval_every),
    so a reader sees whether a figure still moves at the budget's end; '' with one step only. Over the
    seeds the verdict stands on: completed trials (gan_tasks/evaluation/seeds.py)."""
    trials = trials[trials.status == COMPLETED]
    evaluations = evaluations[evaluations.trial_id.isin(trials.trial_id)]
    if evaluations.empty or evaluations.step.nunique() < 2:
        return ""
    steps = sorted(evaluations.step.unique())
    lines = ["## Over training (seed mean at each evaluated step; the last step's evaluation uses "
             "evaluation.n_samples, earlier ones evaluation.eval_every_samples)", "",
             "| row | metric | " + " | ".join(f"{s:,}" for s in steps) + " |", "|---|---|" + "---|" * len(steps)]
    for r in pub.rows:
        ids = trials[trials.config_json.map(lambda c: matches(r, c))].trial_id
        for metric in r.values:
            ev = evaluations[(evaluations.metric == metric) & evaluations.trial_id.isin(ids)]
            if ev.empty:
                continue
            mean = ev.groupby("step").value.mean()
            lines.append(f"| {r.name} | {metric} | " + " | ".join(_fmt(mean[s]) if s in mean else "-" for s in steps)
                         + " |")
    return "\n".join(lines) + "\n"
