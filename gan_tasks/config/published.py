"""A config's `published:` block (a paper's table), torch- and pandas-free; the comparison with what a
sweep measured is gan_tasks/evaluation/published.py, whose rules follow (docs/statistics.md has them all).

A published row names the trials that reproduce it by `match` (dotted paths into the resolved trial
config, e.g. {"tricks.pac": 2} or {"loss.name": "wgan"}) and gives per metric the paper's mean and
standard error over its runs. Each figure gets two verdicts, never one hiding the other:

- absolute: "agrees" when a TOST equivalence test (Welch-Satterthwaite df; the paper's mean +- s.e. over
  `runs` is one sample, our seeds the other) puts the difference inside +- margin at level 0.05;
  "differs" when the 95 % CI of the difference (same t distribution) excludes 0; "inconclusive (reason)"
  otherwise, and always with fewer than `min_seeds` seeds, a budget ratio below `min_budget_ratio`,
  no s.e. in the paper, or no spread on either side; "not comparable" with `absolute: false`;
  "not run" when no trial matched the row (or none reached a final value).
- ordering: per pair of rows of one metric, it counts when the paper's difference is significant from
  its s.e. and runs (p <= 0.05) and ours is significant (Holm over the metric's counted pairs): "reproduced"
  when every counted pair of the row keeps the paper's sign, "reversed (vs <row>)" when one flips;
  "not assessable (reason)" when no pair counts (paper ties, too few seeds, an inadequate budget).

margin: a figure's own `margin`, else `margins[metric]`, else relative_margin x |published mean|
(default 10 %). budget_ratio = our generator steps / the paper's.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Figure(_Frozen):
    mean: float  # the paper's published mean
    se: float | None = Field(None, ge=0)  # standard error over the paper's runs; None: not given (inconclusive)
    margin: float | None = Field(None, gt=0, allow_inf_nan=False)  # equivalence margin of this figure, in the metric's units


class PublishedRow(_Frozen):
    name: str  # the paper's row label, e.g. "PacGAN2"
    match: dict[str, Any] = Field(min_length=1)  # dotted path into the trial config -> value
    values: dict[str, Figure] = Field(min_length=1)  # our metric name -> the paper's figure


class Published(_Frozen):
    source: str  # paper and code, e.g. "Lin et al. 2018, PacGAN (NeurIPS); github.com/fjxmlzn/PacGAN"
    table: str  # e.g. "Table 1, 2-D ring"
    runs: int = Field(gt=0)  # runs behind each published mean
    steps: int = Field(gt=0)  # the paper's generator-step budget per run
    absolute: bool = True  # False: our metric is not the paper's; compare the ordering only
    note: str = ""  # how the paper's protocol differs from this config's, in a sentence or two
    rows: tuple[PublishedRow, ...] = Field(min_length=1)
    margins: dict[str, float] = {}  # metric -> equivalence margin (metric units) for figures without their own
    relative_margin: float = Field(0.1, gt=0, le=1)  # else margin = this x |published mean|
    min_seeds: int = Field(5, ge=2, le=1000)  # fewer seeds: inconclusive / not assessable
    min_budget_ratio: float = Field(0.5, gt=0, le=1)  # a smaller budget ratio: inconclusive / not assessable

    @model_validator(mode="after")
    def _known(self) -> "Published":
        from gan_tasks.config.scores import SCORES, outside

        fields = ("sweep_name", "dataset", "model", "loss", "optimizer", "seed", "train", "tricks", "program")
        for i, row in enumerate(self.rows):
            bad = sorted(set(row.values) - set(SCORES))
            if bad:
                raise ValueError(f"published.rows.{i}.values: unknown metric {', '.join(bad)}; "
                                 f"valid: {', '.join(sorted(SCORES))}")
            for metric, fig in row.values.items():
                if outside(metric, fig.mean):
                    lo, hi = SCORES[metric].low, SCORES[metric].high
                    raise ValueError(f"published.rows.{i}.values.{metric}.mean: {fig.mean} is outside the metric's "
                                     f"range [{lo}, {hi if hi is not None else 'inf'}]")
            bad = sorted(k for k in row.match if k.split(".")[0] not in fields)
            if bad:
                raise ValueError(f"published.rows.{i}.match: {', '.join(bad)} is not a trial config path; "
                                 f"paths start with one of {', '.join(fields)}")
        for metric, m in self.margins.items():
            if metric not in SCORES:
                raise ValueError(f"published.margins: unknown metric {metric}; valid: {', '.join(sorted(SCORES))}")
            if not m > 0 or m == float("inf"):
                raise ValueError(f"published.margins.{metric}: {m} must be a positive number")
        names = [r.name for r in self.rows]
        if len(set(names)) != len(names):
            raise ValueError(f"published.rows: row names must be unique, got {names}")
        return self

    def margin(self, metric: str, fig: Figure) -> float:
        """The equivalence margin of one figure (module docstring)."""
        if fig.margin is not None:
            return fig.margin
        return self.margins.get(metric, self.relative_margin * abs(fig.mean))
