"""WarmActors: sweeps run one after another in one process (a notebook, `gansweep bench`) share their
trial actors instead of each starting its own."""
from __future__ import annotations

import ray

from flows.actors.pool import ActorPool, sweep_pool
from flows.actors.shipping import code_key


class WarmActors:
    """Trial actors kept between sweeps run one after another in this process (a notebook, a script,
    `gansweep bench`): only the first sweep pays their start, a process each importing torch and
    torch._dynamo (seconds of CPU each; bench/README.md), and each actor's first trial no longer shares its CPU
    with those imports.

        ray.init()  # or flows.actors.session.start_local_ray(): a Ray that outlives the sweeps
        with WarmActors() as warm:
            for cfg in configs:
                sweep_flow(cfg, storage_url, actors=warm.for_sweep(cfg))

    One sweep at a time: a sweep borrows every actor of its resource shape and plugin code. Actors of a
    shape the next sweep does not ask for are stopped before its own start, so they never hold the
    CPUs/GPUs it needs; so are actors that imported other plugin code (an actor keeps a module it imported).
    Leaving `with` stops them all. A sweep that starts its own Ray (none running) stops it at its end,
    actors included: hence the check in for_sweep."""

    def __init__(self):
        import uuid

        self.prefix = f"gansweep-warm-{uuid.uuid4().hex[:12]}"
        self._pools: dict[tuple[float, float, str], ActorPool] = {}

    def for_sweep(self, config) -> str:
        """The `actors` name to pass to sweep_flow for this sweep (a dict as sweep_flow takes, or a
        SweepConfig); its actors are started here if this context has none of its shape yet."""
        from gan_tasks.config import SweepConfig, expand_grid, parse_config

        sweep = config if isinstance(config, SweepConfig) else parse_config(config)  # bad input: before any actor
        if not ray.is_initialized():
            raise RuntimeError("WarmActors needs a Ray that outlives the sweeps: call ray.init() (or "
                               "flows.actors.session.start_local_ray()) before for_sweep")
        res, trials = sweep.resources, expand_grid(sweep)
        shape = (res.gpus_per_trial, res.cpus_per_trial, code_key(trials))
        for other in [s for s in self._pools if s != shape]:
            self._pools.pop(other).shutdown()
        name = f"{self.prefix}-g{shape[0]:g}-c{shape[1]:g}" + (f"-p{shape[2]}" if shape[2] else "")
        pool = sweep_pool(res, len(trials), name)  # existing actors of that name taken over
        if shape not in self._pools or len(pool.actors) > len(self._pools[shape].actors):
            self._pools[shape] = pool  # these handles keep the actors alive (Ray stops unreferenced ones)
        return name

    def close(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        if ray.is_initialized():
            for pool in pools:
                pool.shutdown()

    def __enter__(self) -> "WarmActors":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
