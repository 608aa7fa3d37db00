"""A spot node's warning on a loopback cluster (bench/loopback_cluster.py: preempt_node, SIGTERM to the node's
workers, then to its raylet): the trial running there checkpoints at its next step boundary within the bound
(gan_tasks/training/preempt.py, 10 s), its row says `preempted`, and the sweep resumes it on the other node from
that very step, so no completed step is lost; its final row counts the preemption."""
import subprocess
import time

import pytest

from tests.test_nodes import COLUMNS, assert_metrics_contiguous, checkpoint_step, rows, sweep_command, wait_for_victim

pytestmark = pytest.mark.slow


def test_preempted_trial_checkpoints_at_once_and_resumes_from_that_step(loopback_cluster, tmp_path):
    cluster = loopback_cluster
    t0 = time.monotonic()
    # checkpoint_every 500: the preemption's checkpoint falls between two regular ones
    cmd, env, drv = sweep_command(cluster, tmp_path, "spot", train={"steps": 2000, "checkpoint_every": 500})
    store = tmp_path / "store"
    proc = subprocess.Popen(cmd, env=env, cwd=drv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        victim = wait_for_victim(cluster, store, "spot", proc, 500)
        took = cluster.preempt_node(victim[1])
        noticed = rows(store, "spot").set_index("trial_id").loc[victim[0]]
        newest = checkpoint_step(store, "spot", victim[0])  # the preemption's own checkpoint
        out, _ = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
        cluster.add_node()
    print(f"\nworkers exited {took:.2f} s after SIGTERM; row then: {noticed.status} at step {noticed.steps}: "
          f"{noticed.error}")
    assert took < 10, took
    assert noticed.status == "preempted" and noticed.preemptions == 1, noticed.to_dict()
    seconds = float(noticed.error.rsplit("checkpointed ", 1)[1].split(" s")[0])
    assert seconds < 10, noticed.error
    at = int(noticed.steps)
    assert newest == at, (newest, at)
    assert proc.returncode == 0, out[-4000:]
    trials = rows(store, "spot")
    print(trials[COLUMNS].to_string(index=False))
    print(f"sweep with a preempted node: {time.monotonic() - t0:.0f} s")
    assert (trials.status == "completed").all() and len(trials) == 2
    t = trials.set_index("trial_id").loc[victim[0]]
    assert t.preemptions == 1 and list(t.resumed_from) == [0, at], (t.resumed_from, at)
    assert list(t.nodes)[0] == victim[1].node_id and len(t.nodes) == 2
    assert_metrics_contiguous(store, "spot", trials, 10)
