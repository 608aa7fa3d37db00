"""Published vs measured: verdict logic on constructed values, rankings columns, configs/repro, and a
comparison regenerated from a real stored sweep."""
from __future__ import annotations

import glob
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml

from gan_tasks.data import schema
from gan_tasks.config import ConfigError, dump_config, expand_grid, parse_config
from gan_tasks.config.published import Published
from gan_tasks.evaluation.published import compare
from gan_tasks.evaluation.rankings import rank_cells, write_rankings
from tests.conftest import tiny_config

# Measured modes over 3 seeds: GAN 6.0, 6.5, 6.4 (mean 6.3); PacGAN2 7.9, 8.0, 7.8 (mean 7.9).
MEASURED = {1: [6.0, 6.5, 6.4], 2: [7.9, 8.0, 7.8]}


def _pub(gan: float, pac2: float, se: float = 0.1, absolute: bool = True, extra_row: bool = False) -> Published:
    rows = [{"name": "GAN", "match": {"tricks.pac": 1}, "values": {"modes_covered": {"mean": gan, "se": se}}},
            {"name": "PacGAN2", "match": {"tricks.pac": 2}, "values": {"modes_covered": {"mean": pac2, "se": se}}}]
    if extra_row:
        rows.append({"name": "PacGAN3", "match": {"tricks.pac": 3}, "values": {"modes_covered": {"mean": 7.8}}})
    return Published.model_validate({"source": "test", "table": "T1", "runs": 10, "steps": 4000,
                                     "absolute": absolute, "rows": rows})


def _frames():
    trials, finals = [], []
    for pac, vals in MEASURED.items():
        for seed, v in enumerate(vals):
            tid = f"p{pac}s{seed}"
            cfg = {"tricks": {"pac": pac}, "loss": {"name": "non-saturating", "params": {}},
                   "optimizer": {"name": "adam", "params": {}}}
            trials.append({"trial_id": tid, "loss": "non-saturating", "optimizer": "adam", "seed": seed,
                           "status": "completed", "config_json": json.dumps(cfg)})
            finals.append({"trial_id": tid, "step": 100, "metric": "modes_covered", "value": v})
    return pd.DataFrame(trials), pd.DataFrame(finals)


def _verdicts(pub: Published) -> dict[str, str]:
    trials, finals = _frames()
    return compare(pub, trials, finals, steps=1000).set_index("published_row").verdict.to_dict()


def test_figures_within_the_combined_uncertainty_agree():
    cmp = compare(_pub(6.3, 7.9), *_frames(), steps=1000).set_index("published_row")
    assert cmp.verdict.to_dict() == {"GAN": "agrees", "PacGAN2": "agrees"}
    assert np.isclose(cmp.loc["GAN", "measured_mean"], 6.3) and cmp.loc["GAN", "seeds"] == 3
    assert cmp.loc["GAN", "ci95_low"] < 6.3 < cmp.loc["GAN", "ci95_high"]
    assert np.isclose(cmp.loc["GAN", "budget_ratio"], 0.25)


def test_a_deliberately_wrong_published_value_is_flagged():
    # GAN published 9.5 +- 0.1: above PacGAN2's 7.9, so neither the value nor the ordering holds
    assert _verdicts(_pub(9.5, 7.9))["GAN"] == "differs"
    # GAN published 2.0: far from 6.3, but GAN < PacGAN2 holds in ours too
    assert _verdicts(_pub(2.0, 7.9)) == {"GAN": "ordering reproduced", "PacGAN2": "agrees"}


def test_band_is_the_combined_standard_error():
    # measured GAN std 0.2646, se = std/sqrt(3) = 0.1528; with published se 0.1 the 95 % band is
    # 1.96 * sqrt(0.1^2 + 0.1528^2) = 0.358
    assert _verdicts(_pub(6.3 + 0.35, 7.9))["GAN"] == "agrees"
    assert _verdicts(_pub(6.3 - 0.36, 7.9))["GAN"] == "ordering reproduced"


def test_other_metric_only_the_ordering_and_rows_not_run():
    v = _verdicts(_pub(6.3, 7.9, absolute=False, extra_row=True))
    assert v == {"GAN": "ordering reproduced", "PacGAN2": "ordering reproduced", "PacGAN3": "not run"}
    assert _verdicts(_pub(8.5, 7.9, absolute=False)) == {"GAN": "differs", "PacGAN2": "differs"}


def test_rankings_carry_the_published_columns_into_parquet(local_storage):
    trials, finals = _frames()
    r = rank_cells(trials, finals, "s", _pub(9.5, 7.9), 1000)
    assert list(r.columns) == schema.RANKINGS.names
    write_rankings(local_storage, "s", r)
    back = local_storage.read_table("sweeps", "s", "rankings").to_pandas().set_index("loss")
    assert back.loc["non-saturating", "published_row"] == "GAN" and back.loc["non-saturating", "verdict"] == "differs"
    assert back.loc["non-saturating + pac=2", "published_mean"] == 7.9
    assert back.loc["non-saturating + pac=2", "verdict"] == "agrees" and back.budget_ratio.eq(0.25).all()
    plain = rank_cells(trials, finals, "s")  # no published block: the columns are there, null
    assert plain.published_row.isna().all()
    assert pa.Table.from_pandas(plain, schema=schema.RANKINGS, preserve_index=False).num_rows == 2


@pytest.mark.parametrize("path", sorted(glob.glob("configs/repro/*.yaml")))
def test_every_repro_config_validates(path):
    from typer.testing import CliRunner

    from flows.cli import app

    r = CliRunner().invoke(app, ["validate", path], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    sweep = parse_config(yaml.safe_load(open(path)))
    assert sweep.published is not None and sweep.published.rows and sweep.published.steps > 0
    matched = {r.name for r in sweep.published.rows
               if any(all(json.loads(t.model_dump_json()).get(k.split(".")[0], {}).get(k.split(".")[1]) == v
                          for k, v in r.match.items()) for t in expand_grid(sweep))}
    assert len(matched) >= 2  # at least two published rows are run by the grid: an ordering to check


def test_bad_published_block_is_a_config_error_naming_the_field():
    bad = {"source": "x", "table": "t", "runs": 1, "steps": 10,
           "rows": [{"name": "a", "match": {"tricks.pac": 1}, "values": {"modes": {"mean": 1}}}]}
    with pytest.raises(ConfigError, match=r"published.rows.0.values: unknown metric modes; valid: .*modes_covered"):
        parse_config(tiny_config(published=bad))
    bad["rows"][0] = {"name": "a", "match": {"pac": 1}, "values": {"modes_covered": {"mean": 1}}}
    with pytest.raises(ConfigError, match=r"published.rows.0.match: pac is not a trial config path"):
        parse_config(tiny_config(published=bad))


def test_comparison_regenerated_from_a_stored_sweep(local_storage):
    """Real trials (GAN and PacGAN2, 2 seeds, 30 steps), real evaluation, the CLI's markdown."""
    from typer.testing import CliRunner

    from flows.cli import app
    from gan_tasks.data.datasets import ensure_dataset
    from gan_tasks.evaluation.evaluate import evaluate_trial, on_eval
    from gan_tasks.training.trial import run_trial

    pub = _pub(6.3, 7.9, extra_row=True).model_dump(mode="json")
    pub["rows"] = [{**r, "values": {**r["values"], "reverse_kl": {"mean": 0.1, "se": 0.01}}} for r in pub["rows"]]
    raw = tiny_config(grid={"loss": ["non-saturating"], "optimizer": ["adam"], "seed": [0, 1],
                            "tricks": [{}, {"pac": 2}]},
                      train={"steps": 30, "batch_size": 64, "log_every": 10, "checkpoint_every": 30},
                      published=pub)
    sweep = parse_config(raw)
    local_storage.write_bytes(dump_config(sweep).encode(), "sweeps", "pub", "config.yaml")
    ensure_dataset(local_storage, sweep.dataset.name, sweep.dataset.params)
    for t in expand_grid(sweep):  # cheap metrics at steps 10 and 20 too: the markdown's "over training"
        run_trial(t, local_storage, "pub", on_eval=on_eval(local_storage, "pub", sweep.evaluation), eval_every=10)
        evaluate_trial(t, local_storage, "pub", sweep.evaluation)
    r = CliRunner().invoke(app, ["published", "pub", "--storage", local_storage.url], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    assert "ours 30 generator steps x 2 seeds; published 4,000 steps x 10 runs (budget ratio 0.0075)" in r.output
    table, curve = r.output.split("## Over training")
    lines = [ln for ln in table.splitlines() if ln.startswith("| PacGAN")]
    assert len(lines) == 4 and all(ln.endswith(("| agrees |", "| ordering reproduced |", "| differs |"))
                                   for ln in lines if "PacGAN2" in ln)
    assert sum("| not run |" in ln for ln in lines) == 2  # PacGAN3's two figures: no trial matched
    assert "| 10 | 20 | 30 |" in curve and "| GAN | modes_covered |" in curve and "PacGAN3" not in curve
