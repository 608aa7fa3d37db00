"""`search: {sampler: tpe}`: an adaptive search, in rounds (docs/search.md#what-is-reproducible).

A cell's first `n_startup` settings are its scrambled-Sobol ones (what `validate` prints); then each round of
`round_size` settings is asked from a fresh Optuna TPESampler seeded from (search.seed, the cell, the round) and
told every earlier setting's score, in setting order: the mean rank over search.metric among the scored earlier
settings (each metric in its direction; a setting without a score, failed or stopped, is not told). So a round
is a deterministic function of the scores before it: a re-run with the same results proposes the same settings
(and trials: resume works), and a larger budget adds rounds (the last one, if it was cut short, completed with
the same first settings). Another result before a round (a failed trial that completes on a re-run, another
machine's arithmetic) may change that round and every later one.
"""
from __future__ import annotations

import json
import warnings
from typing import Any

from gan_tasks.config.scores import mean_ranks
from gan_tasks.methods.params import Space


def rounds(search, budget: int | None = None) -> list[tuple[int, int]]:
    """(first setting, size) of each adaptive round after the start-up settings, up to the budget."""
    budget, out = budget or search.budget, []
    first = min(search.n_startup, budget)
    while first < budget:
        out.append((first, min(search.round_size, budget - first)))
        first += search.round_size
    return out


def round_of(search, setting: int) -> int:
    """0 for a start-up setting, r for one of the r-th adaptive round."""
    return 0 if setting < search.n_startup else 1 + (setting - search.n_startup) // search.round_size


def objective(scores: list[dict[str, float] | None], metrics: tuple[str, ...]) -> list[float | None]:
    """What TPE is told per setting (lower is better): its mean rank among the scored ones; None: no score."""
    scored = [i for i, s in enumerate(scores) if s]
    if not scored:
        return [None] * len(scores)
    ranks = mean_ranks({m: [scores[i].get(m, float("nan")) for i in scored] for m in metrics}, metrics)
    out: list[float | None] = [None] * len(scores)
    for i, r in zip(scored, ranks):
        out[i] = r
    return out


_ASKED: dict[tuple, tuple[dict, ...]] = {}  # propose's memory, emptied past 1,024 entries


def propose(spaces: dict[str, Space], seed: int, told: list[tuple[dict, float | None]], size: int) -> list[dict]:
    """`size` settings asked from a TPESampler seeded with `seed`, told `told` ((values, objective), in order).
    Remembered in this process: the flow asks round r again with every earlier round (tpe_settings), and the
    same arguments ask the same settings."""
    key = (repr(sorted(spaces.items())), seed, json.dumps(told, sort_keys=True), size)
    if key not in _ASKED:
        if len(_ASKED) >= 1024:
            _ASKED.clear()
        _ASKED[key] = _ask(spaces, seed, told, size)
    return [dict(v) for v in _ASKED[key]]


def _ask(spaces: dict[str, Space], seed: int, told: list[tuple[dict, float | None]], size: int) -> tuple[dict, ...]:
    import optuna

    from gan_tasks.config.search import _distribution, _round

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = {k: _distribution(s) for k, s in spaces.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=0))
        for values, value in told:
            state = optuna.trial.TrialState.COMPLETE if value is not None else optuna.trial.TrialState.FAIL
            study.add_trial(optuna.trial.create_trial(params=values, distributions=dists, value=value, state=state))
        asked = [study.ask(dists) for _ in range(size)]
    return tuple({k: _round(t.params[k], s) for k, s in spaces.items()} for t in asked)


def tpe_settings(search, spaces: dict[str, Space], cell_key: str, budget: int | None = None,
                 score_of: Any = None, upto: int | None = None) -> list[dict]:
    """The cell's settings: the start-up ones, then its first `upto` rounds (None: every round), each told the
    scores of the settings before it, `score_of(index, values)`: {metric: value}, or None for no score (a
    setting whose seeds all failed or stopped). Without score_of: the start-up settings only."""
    from gan_tasks.config.search import sample, sampler_seed

    budget = budget or search.budget
    if not spaces:
        return [{} for _ in range(budget)]
    out = sample(search.model_copy(update={"sampler": "sobol"}), spaces, cell_key, min(search.n_startup, budget))
    todo = rounds(search, budget)[:0 if score_of is None else upto]
    for r, (first, size) in enumerate(todo, start=1):
        told = list(zip(out[:first], objective([score_of(i, v) for i, v in enumerate(out[:first])], search.metrics)))
        out += propose(spaces, sampler_seed(search.seed, f"{cell_key}|tpe|{r}"), told, size)
    return out
