"""P4 seed packing: N MLP GANs trained one after another / the same N packed in one stacked model
(`pack_seeds`: torch.func.stack_module_state + vmap), same process and device.

Acceptance: none asserted; > 1 means packing pays. Theoretical maximum: N (a device with room for all N at
the cost of one); on CPU, far less.
"""
from __future__ import annotations

import time

import torch

from bench.harness import Figure, bench_config, trials_of
from gan_tasks.data.storage import Storage


def bench_packing(storage: Storage, n: int, steps: int, run_id: str) -> list[Figure]:
    from gan_tasks.training.packing import PackedTrials
    from gan_tasks.training.trial import Trial

    raw = {**bench_config(steps, n), "grid": {"loss": ["non-saturating"], "optimizer": ["adam"],
                                              "seed": list(range(n))}}
    raw["train"] = {**raw["train"], "checkpoint_every": steps}
    cfgs = trials_of(raw)
    t0 = time.perf_counter()
    for c in cfgs:
        Trial(c, storage, f"bench-p4-seq-{run_id}").run()
    seq = time.perf_counter() - t0
    t0 = time.perf_counter()
    PackedTrials(cfgs, storage, f"bench-p4-packed-{run_id}").run()
    packed = time.perf_counter() - t0
    dev = "cpu (no GPU on this machine)" if not torch.cuda.is_available() else "cuda"
    print(f"P4 device: {dev}")
    return [Figure("p4_packing", seq / packed, f"P4 packing speedup N={n}")]
