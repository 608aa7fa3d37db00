"""A config's `published:` block (a paper's table), torch- and pandas-free; the comparison with what a
sweep measured is gan_tasks/evaluation/published.py, whose rules follow.

A published row names the trials that reproduce it by `match` (dotted paths into the resolved trial
config, e.g. {"tricks.pac": 2} or {"loss.name": "wgan"}) and gives per metric the paper's mean and
standard error over its runs. Each figure gets a verdict:

- agrees: |measured - published| <= 1.96 sqrt(se_pub^2 + se_meas^2), se_meas = std / sqrt(seeds)
  (the two means' difference within its 95 % band; an s.e. the paper does not give counts as 0);
- ordering reproduced: not within that band, but every published difference between this row and
  another row of the same metric keeps its sign in the measured means (ties in the paper are skipped);
- differs: neither; not run: no trial matched the row (or none reached a final value).

`absolute: false` (a metric computed differently, e.g. an in-domain classifier's Inception score)
allows only the ordering verdict. budget_ratio = our generator steps / the paper's.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

Z95 = 1.959964  # two-sided 95 % of a normal: the band of the difference of two means


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Figure(_Frozen):
    mean: float
    se: float | None = Field(None, ge=0)  # standard error over the paper's runs; None: not given


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

    @model_validator(mode="after")
    def _known(self) -> "Published":
        from gan_tasks.config.early_stop import DIRECTIONS as HIGHER_IS_BETTER

        fields = ("sweep_name", "dataset", "model", "loss", "optimizer", "seed", "train", "tricks", "program")
        for i, row in enumerate(self.rows):
            bad = sorted(set(row.values) - set(HIGHER_IS_BETTER))
            if bad:
                raise ValueError(f"published.rows.{i}.values: unknown metric {', '.join(bad)}; "
                                 f"valid: {', '.join(sorted(HIGHER_IS_BETTER))}")
            bad = sorted(k for k in row.match if k.split(".")[0] not in fields)
            if bad:
                raise ValueError(f"published.rows.{i}.match: {', '.join(bad)} is not a trial config path; "
                                 f"paths start with one of {', '.join(fields)}")
        names = [r.name for r in self.rows]
        if len(set(names)) != len(names):
            raise ValueError(f"published.rows: row names must be unique, got {names}")
        return self
