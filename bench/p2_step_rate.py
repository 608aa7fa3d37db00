"""P2 step rate: steps/s of the training loop inside a Ray trial actor (metric rows, checkpoints and their
uploads included; actor start and data loading not) / steps/s of the bare loop on the same config, run
before and after the actor. Memory: the actor's peak resident memory.

Acceptance: none asserted and no goal set. Theoretical value: 1.0 (the actor runs the same loop); what
falls short of it is logging, checkpoints and storage.
Keys: `p2_step_rate_<model>`, `p2_bare_steps_per_s_<model>`, `memory_peak_rss_mb_<model>` (mlp, dcgan).
"""
from __future__ import annotations

import ray

from bench.harness import Figure, bare_loop, load_data
from flows.actors.trial_actor import make_actor
from gan_tasks.config import TrialConfig
from gan_tasks.data.storage import Storage


def dcgan_config(steps: int) -> dict:
    """dcgan-28 on MNIST as seed 004 trains it (batch 50, z 100), logging and checkpointing as a sweep would."""
    return {"name": "bench-dcgan", "dataset": "mnist", "model": "dcgan-28",
            "grid": {"loss": ["non-saturating"], "optimizer": ["adam"], "seed": [0]},
            "train": {"steps": steps, "batch_size": 50, "z_dim": 100, "log_every": 10,
                      "checkpoint_every": max(steps // 2, 1)}}


def bench_step_rate(storage: Storage, cfg: TrialConfig, model: str, label: str, run_id: str) -> list[Figure]:
    data = load_data(storage, cfg)
    bare_s = bare_loop(cfg, data)
    actor = make_actor(0, 1)
    ray.get(actor.pid.remote())  # started: time the training only
    row = ray.get(actor.train.remote(cfg, storage, f"bench-p2-{cfg.model.name}-{run_id}"))
    step, _, rate = ray.get(actor.progress.remote())
    rss = ray.get(actor.peak_rss_mb.remote())
    ray.kill(actor)
    assert row["status"] == "completed" and step == cfg.train.steps, row
    # The bare loop runs before and after the actor: a machine whose speed drifts biases neither side.
    bare_rate = 2 * cfg.train.steps / (bare_s + bare_loop(cfg, data))
    return [Figure(f"p2_step_rate_{model}", rate / bare_rate, f"P2 step rate ratio ({label})"),
            Figure(f"p2_bare_steps_per_s_{model}", bare_rate, f"P2 bare steps/s ({label})"),
            Figure(f"memory_peak_rss_mb_{model}", rss, f"memory peak RSS per trial actor MB ({label})")]
