"""The machine's own limit: the bare loop on every slot at once (one process a slot, one thread each, as the
actors run) / the same loops one at a time, before and after.

Above 1, the slots share something (memory bandwidth, caches, a host's hyperthreads) no scheduler removes:
P1 and P5 divide by the loop timed alone, so this much of their ratio is the machine's, not the sweep's.
Acceptance: none; theoretical minimum 1.0. Key: `contention`.
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import torch

from bench.harness import Figure, bare_loop, bench_config, load_data, trials_of
from gan_tasks.data.storage import Storage


def bench_contention(storage: Storage, steps: int, n_slots: int) -> list[Figure]:
    cfgs = trials_of(bench_config(steps, n_slots))[:n_slots]  # one trial a slot
    data = load_data(storage, cfgs[0])
    with ProcessPoolExecutor(n_slots, mp_context=get_context("spawn"), initializer=torch.set_num_threads,
                             initargs=(1,)) as ex:
        alone = [ex.submit(bare_loop, c, data).result() for c in cfgs]  # one after another
        busy = list(ex.map(bare_loop, cfgs, [data] * n_slots))  # all at once
        alone += [ex.submit(bare_loop, c, data).result() for c in cfgs]  # again: drift biases neither side
    return [Figure("contention", (sum(busy) / len(busy)) / (sum(alone) / len(alone)),
                   f"bare loop with all {n_slots} slots busy / alone")]
