"""A packed group's run (pack_seeds > 1, packing.py), as run_trial is an ordinary trial's: it starts, or resumes
from the newest step every seed has a checkpoint of (after a crash, a node lost, a preemption, a re-run), its
seeds' metric rows after that step dropped and logged again; each seed's row records where and from which step it
trained (`nodes`, `resumed_from`), `preempted` after a preemption notice (checkpointed at the next step boundary),
`diverged` as soon as its own numbers are not finite (written then: a resumed group trains on without it)."""
from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Callable

from gan_tasks.training import preempt
from gan_tasks.training.packing import PackedTrials
from gan_tasks.training.rows import history, now, started_on, stored_row, trial_row, write_trial_row
from gan_tasks.training.trial import checkpoint_names, drop_metrics_after, read_checkpoint

if TYPE_CHECKING:
    from gan_tasks.config import TrialConfig
    from gan_tasks.data.storage import Storage

log = logging.getLogger("gansweep.train")


def resume(packed: PackedTrials) -> int:
    """Load the newest step that every seed of the group has a readable checkpoint of; that step (0: none,
    from scratch). checkpoint() writes all seeds' before pruning any, so a kill between them costs one interval."""
    s, sid = packed.storage, packed.sweep_id
    common = set.intersection(*(set(checkpoint_names(s, sid, c.trial_id)) for c in packed.cfgs))
    for name in sorted(common, reverse=True):
        try:
            states = [read_checkpoint(s, sid, c.trial_id, name, packed.device) for c in packed.cfgs]
        except Exception as e:  # noqa: BLE001 - any unreadable file means: try the previous step
            log.warning("checkpoint %s of a packed group is unreadable (%s); falling back", name, e)
            continue
        packed.load_seed_states(states)
        return packed.step
    return 0


def run_packed(cfgs: list["TrialConfig"], storage: "Storage", sweep_id: str, device: str = "cpu",
               on_progress: Callable[[int, int, float], None] | None = None, node: str = "") -> list[dict]:
    """Train (or resume) the seeds of one cell packed, to completion; one trial row per seed. Returns those
    rows. A seed whose stored row says `diverged` stays so (the same step diverges again)."""
    started = now()
    hist = {c.trial_id: history(storage, sweep_id, c.trial_id) for c in cfgs}
    done = {c.trial_id: r for c in cfgs if (r := stored_row(storage, sweep_id, c.trial_id)) and r["status"] == "diverged"}
    live = [c for c in cfgs if c.trial_id not in done]
    for c in live:
        storage.write_bytes(json.dumps(c.model_dump(mode="json"), indent=1).encode(),
                            "sweeps", sweep_id, "checkpoints", c.trial_id, "config.json")
    packed, status, err = None, "completed", ""

    def row(c: "TrialConfig", status: str, error: str, finished=True) -> dict:
        r = trial_row(c, sweep_id, status, packed.step if packed else 0, started, now() if finished else None,
                      error, device, node, hist[c.trial_id])
        write_trial_row(storage, r)
        return r

    def diverged(i: int) -> None:
        done[live[i].trial_id] = row(live[i], "diverged", packed.diverged[i])

    try:
        if live:
            packed = PackedTrials(live, storage, sweep_id, device)  # reads the dataset: may fail
            step = resume(packed)
            if step:
                log.info("packed seeds %s resume at step %d", [c.seed for c in live], step)
            for c in live:
                drop_metrics_after(storage, sweep_id, c.trial_id, step)
                hist[c.trial_id] = started_on(hist[c.trial_id], node, step)
                row(c, "running", "", finished=False)
            packed.run(on_progress, diverged)
    except preempt.Preempted as e:
        packed.flush_metrics()
        packed.checkpoint()  # this step's metrics and states: the resumed group loses no completed step
        status, err = "preempted", f"{e}; checkpointed {preempt.since_notice():.2f} s after the notice"
        for c in live:
            hist[c.trial_id] = {**hist[c.trial_id], "preemptions": hist[c.trial_id]["preemptions"] + 1}
    except Exception as e:  # noqa: BLE001 - recorded on every seed's row, the sweep goes on
        status, err = "failed", f"{type(e).__name__}: {e}"
        if packed is not None:
            packed.flush_metrics()  # keep the curves up to the failure
    return [done[c.trial_id] if c.trial_id in done else row(c, status, err) for c in cfgs]
