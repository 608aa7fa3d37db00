"""Published vs measured: a config's `published:` block (gan_tasks/config/published.py) beside what the
sweep measured, with two verdicts per figure, absolute and ordering (the rules are in that module's
docstring and docs/statistics.md; the tests in gan_tasks/evaluation/stats.py)."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from gan_tasks.config.published import Figure, Published, PublishedRow
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


def _gates(pub: Published, seeds: int, ratio: float) -> list[str]:
    """Why no verdict can be given at all: too few seeds, too small a budget."""
    out = [f"{seeds} seeds < {pub.min_seeds}"] if seeds < pub.min_seeds else []
    return out + ([f"budget ratio {ratio:.3g} < {pub.min_budget_ratio:g}"] if ratio < pub.min_budget_ratio else [])


def absolute(pub: Published, metric: str, fig: Figure, values: np.ndarray, ratio: float) -> dict:
    """The absolute verdict of one figure and the difference interval it stands on (module docstring)."""
    import math

    from gan_tasks.evaluation import stats

    margin = pub.margin(metric, fig)
    out = {"published_margin": margin, "difference": math.nan, "diff_ci95_low": math.nan, "diff_ci95_high": math.nan}
    if len(values) == 0:
        return {**out, "verdict_absolute": "not run"}
    if not pub.absolute:
        return {**out, "verdict_absolute": "not comparable"}
    why = _gates(pub, len(values), ratio)
    if fig.se is None:
        why.append("no published s.e.")
    elif pub.runs < 2:
        why.append("one published run")
    diff = se = df = None
    if len(values) > 1 and fig.se is not None and pub.runs > 1:
        diff, se, df = stats.versus_summary(values, fig.mean, fig.se, pub.runs)
        if se > 0:
            lo, hi = stats.diff_ci(diff, se, df)
            out.update(difference=diff, diff_ci95_low=lo, diff_ci95_high=hi)
        else:
            why.append("no spread on either side")
    if not margin > 0:
        why.append("margin 0: declare one")
    if why:
        return {**out, "verdict_absolute": f"inconclusive ({'; '.join(why)})"}
    if stats.tost_p(diff, se, df, margin) <= stats.ALPHA:
        return {**out, "verdict_absolute": "agrees"}
    if out["diff_ci95_low"] > 0 or out["diff_ci95_high"] < 0:
        return {**out, "verdict_absolute": "differs"}
    return {**out, "verdict_absolute": f"inconclusive (not within ±{margin:.3g}, not different from 0)"}


def _pair(pub: Published, x, y, ratio: float) -> tuple[str | None, float]:
    """(why the pair of rows x, y does not count, None if it does; the p of our difference)."""
    from gan_tasks.evaluation import stats

    if any(v is None or v != v for v in (x.published_se, y.published_se)) or pub.runs < 2:
        return "no published s.e.", float("nan")
    if stats.summary_p(x.published_mean, x.published_se, y.published_mean, y.published_se, pub.runs) > stats.ALPHA:
        return "paper's difference not significant", float("nan")
    why = _gates(pub, min(x.seeds, y.seeds), ratio)
    return ("; ".join(why) if why else None), stats.two_sample_p(x.values_, y.values_)


def ordering(pub: Published, df: pd.DataFrame, ratio: float) -> list[str]:
    """The ordering verdict of each row of compare()'s table (module docstring): pairs of rows of one
    metric whose paper difference is significant, ours tested with Holm over the counted pairs."""
    import itertools

    import numpy as np

    from gan_tasks.evaluation import stats

    found: dict[int, list[tuple[str, str]]] = {i: [] for i in df.index}  # row -> (outcome, other row)
    for _, g in df[df.seeds > 0].groupby("metric"):
        pairs = [(i, j, *_pair(pub, g.loc[i], g.loc[j], ratio)) for i, j in itertools.combinations(g.index, 2)]
        counted = [k for k, p in enumerate(pairs) if p[2] is None]
        adj = stats.holm([pairs[k][3] for k in counted]) if counted else []
        for k, (i, j, why, _) in enumerate(pairs):
            if why is None:
                p = adj[counted.index(k)]
                same = np.sign(g.loc[i].measured_mean - g.loc[j].measured_mean) == np.sign(
                    g.loc[i].published_mean - g.loc[j].published_mean)
                why = ("reproduced" if same else "reversed") if p <= stats.ALPHA else "our difference not significant"
            found[i].append((why, g.loc[j].published_row))
            found[j].append((why, g.loc[i].published_row))
    out = []
    for i in df.index:
        got = found[i]
        for outcome in ("reversed", "reproduced"):
            rows = [r for w, r in got if w == outcome]
            if rows:
                out.append(f"{outcome} (vs {', '.join(rows)})")
                break
        else:
            reasons = sorted({w for w, _ in got}) or (["not run"] if df.loc[i].seeds == 0 else ["no other row"])
            out.append(f"not assessable ({'; '.join(reasons)})")
    return out


def compare(pub: Published, trials: pd.DataFrame, finals: pd.DataFrame, steps: int) -> pd.DataFrame:
    """Per (published row, metric): the paper's figure and margin, ours over seeds, the difference with its
    95 % interval, budget ratio, and the two verdicts (verdict_absolute, verdict_ordering).

    trials: trial_id, config_json, loss, optimizer (the rankings' cell labels), status; finals: trial_id,
    metric, value: the seeds' results (gan_tasks/evaluation/seeds.py: completed trials' final evaluations).
    seeds_failed: the row's diverged, failed or interrupted trials."""
    import numpy as np
    import pandas as pd
    rows = []
    ratio = steps / pub.steps
    for r in pub.rows:
        ids = trials[trials.config_json.map(lambda s: matches(r, s))]
        cells = ids[["loss", "optimizer"]].drop_duplicates()
        loss, opt = (cells.iloc[0].tolist() if len(cells) == 1 else (None, None))
        for metric, fig in r.values.items():
            done = ids.trial_id[ids.status == COMPLETED]  # finals of other trials are no seed's result
            v = finals[(finals.metric == metric) & finals.trial_id.isin(done)].value.to_numpy(float)
            v = v[np.isfinite(v)]
            rows.append({"published_row": r.name, "metric": metric, "loss": loss, "optimizer": opt,
                         "published_mean": fig.mean, "published_se": fig.se, "published_runs": pub.runs,
                         "measured_mean": v.mean() if len(v) else np.nan, "seeds": len(v), "values_": v,
                         "seeds_failed": int(ids.status.isin(FAILED).sum()),
                         "budget_ratio": ratio, **absolute(pub, metric, fig, v, ratio)})
    df = pd.DataFrame(rows)
    return df.assign(verdict_ordering=ordering(pub, df, ratio)).drop(columns="values_")


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def markdown(pub: Published, cmp: pd.DataFrame, steps: int, seeds: int, sweep_id: str, protocol: str = "") -> str:
    """The committed comparison: budget and the protocol the trials ran first, then one line per (row, metric)."""
    import pandas as pd
    lines = [f"# {pub.table}: published vs measured", "",
             f"Source: {pub.source}. Sweep `{sweep_id}`.", "",
             f"Budget: ours {steps:,} generator steps x {seeds} seeds; published {pub.steps:,} steps x {pub.runs} "
             f"runs (budget ratio {steps / pub.steps:.3g}).", ""]
    if protocol:
        lines += [f"Trained with: {protocol}.", ""]
    if pub.note:
        lines += [f"Protocol differences: {pub.note}", ""]
    if not pub.absolute:
        lines += ["Our metric is not the paper's: only the ordering is compared.", ""]
    lines += ["| row | metric | published mean ± s.e. | margin | measured mean | difference [95 % CI] | seeds "
              "| budget ratio | absolute | ordering |", "|---|---|---|---|---|---|---|---|---|---|"]
    for x in cmp.itertuples():
        pub_s = _fmt(x.published_mean) + (f" ± {_fmt(x.published_se)}" if pd.notna(x.published_se) else "")
        meas = _fmt(x.measured_mean) if x.seeds else "-"
        diff = f"{x.difference:+.3g} [{x.diff_ci95_low:+.3g}, {x.diff_ci95_high:+.3g}]" if pd.notna(x.difference) else "-"
        seeds = f"{x.seeds}" + (f" (+{x.seeds_failed} failed)" if x.seeds_failed else "")
        lines.append(f"| {x.published_row} | {x.metric} | {pub_s} | ±{_fmt(x.published_margin)} | {meas} | {diff} "
                     f"| {seeds} | {x.budget_ratio:.3g} | {x.verdict_absolute} | {x.verdict_ordering} |")
    lines += ["", f"absolute: *agrees* when the difference is within ± margin by a TOST equivalence test (α 0.05, "
              f"Welch-Satterthwaite df; the interval shown is the 95 % one of that t distribution), *differs* when "
              f"that interval excludes 0, *inconclusive* otherwise and always with fewer than {pub.min_seeds} seeds, "
              f"a budget ratio below {pub.min_budget_ratio:g} or no published s.e. ordering: a pair of rows counts "
              "when the paper's difference is significant (p ≤ 0.05 from its s.e. and runs) and ours is too (Holm "
              "over the counted pairs): *reproduced* / *reversed*; *not assessable* when no pair counts. "
              "Seeds: completed trials' final evaluations (+ failed: diverged, failed or interrupted, never a value). "
              "docs/statistics.md states every rule."]
    return "\n".join(lines) + "\n"


def protocol(trials: pd.DataFrame) -> str:
    """How the sweep's trials updated D and G and counted the batch (train.update, train.batch_unit)."""
    import json

    seen = sorted({(t.get("update", "alternating"), t.get("batch_unit", "samples"))
                   for t in (json.loads(c).get("train", {}) for c in trials.config_json)})
    return "; ".join(f"train.update {u}, train.batch_unit {b}" for u, b in seen)


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
