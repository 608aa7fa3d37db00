"""WarmActors (flows/actors/warm.py): sweeps run one after another in one process share their trial actors;
a flow given `actors` leaves them running; another resource shape stops them first; `with` ends them all."""
from __future__ import annotations

import time

import pytest

from flows.run.flow import sweep_flow
from flows.actors.warm import WarmActors
from gan_tasks.config import ConfigError
from tests.conftest import tiny_config

pytestmark = pytest.mark.slow


def _pids(ray, prefix: str) -> dict[str, int]:
    """Named actors of this context that answer, by name: their process ids."""
    out = {}
    for name in ray.util.list_named_actors():
        if name.startswith(prefix):
            try:
                out[name] = ray.get(ray.get_actor(name).pid.remote(), timeout=60)
            except (ValueError, ray.exceptions.RayError):  # stopped meanwhile
                pass
    return out


def _gone(ray, prefix: str, names: set[str], seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not names & set(_pids(ray, prefix)):
            return True
        time.sleep(0.5)
    return False


def test_sweeps_in_one_context_train_in_the_same_actors(ray_session, prefect_harness, local_storage):
    ray = ray_session
    first, second = tiny_config(), tiny_config(grid={"seed": [1]})
    with WarmActors() as warm:
        name = warm.for_sweep(first)
        started = _pids(ray, warm.prefix)
        assert len(started) == 2 and all(n.startswith(name) for n in started)  # one a slot (2 CPUs, 1 each)

        out = sweep_flow(first, local_storage.url, "warm-1", actors=name)
        assert out["not_completed"] == 0
        assert _pids(ray, warm.prefix) == started  # the flow left them running

        assert warm.for_sweep(second) == name
        out = sweep_flow(second, local_storage.url, "warm-2", actors=name)
        assert out["not_completed"] == 0
        assert _pids(ray, warm.prefix) == started  # same processes: nothing restarted
        # They trained the second sweep: an actor reports the last trial it ran (60 steps).
        progress = [ray.get(ray.get_actor(n).progress.remote()) for n in started]
        assert any(step == 60 for step, _, _ in progress), progress
        rows = local_storage.read_table("sweeps", "warm-2", "metrics").to_pandas()
        assert sorted(rows.groupby("trial_id").size()) == [6, 6]  # every metric row: 60 steps / log_every 10

        # Another resource shape: the idle actors of the old one are stopped first (they hold the CPUs).
        wide = tiny_config(resources={"cpus_per_trial": 2})
        wide_name = warm.for_sweep(wide)
        assert wide_name != name
        assert _gone(ray, warm.prefix, set(started))
        assert list(_pids(ray, warm.prefix)) == [f"{wide_name}-0"]

        with pytest.raises(ConfigError, match="train.steps"):  # bad input: refused before any actor starts
            warm.for_sweep(tiny_config(train={"steps": -1}))
        assert list(_pids(ray, warm.prefix)) == [f"{wide_name}-0"]
        last = set(_pids(ray, warm.prefix))
    assert _gone(ray, warm.prefix, last)  # leaving `with` stops them


def test_a_flow_without_actors_stops_its_own(ray_session, prefect_harness, local_storage):
    """The default is unchanged: a flow's own actors end with it and give their CPUs back."""
    ray = ray_session
    out = sweep_flow(tiny_config(train={"steps": 20}), local_storage.url, "own-actors")
    assert out["not_completed"] == 0
    deadline = time.monotonic() + 60
    while ray.available_resources().get("CPU", 0) < ray.cluster_resources()["CPU"] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ray.available_resources().get("CPU", 0) == ray.cluster_resources()["CPU"]
