"""A packed group (pack_seeds 2: two seeds trained as one stacked model in one actor) on the loopback cluster
(bench/loopback_cluster.py) is re-sent as an ordinary trial is (tests/test_nodes.py, tests/test_preemption.py):
preempted, it checkpoints at its next step boundary, its rows say `preempted`, and it resumes from that step on
the other node; that node then killed, it resumes from its last checkpoint on a node added after. The sweep
completes; each seed's row lists the three nodes and the three starts, and its metric steps are logged once."""
import subprocess
import time

import pytest

from tests.test_nodes import COLUMNS, assert_metrics_contiguous, checkpoint_step, rows, sweep_command, wait_for_victim

pytestmark = pytest.mark.slow


def test_packed_group_resumes_after_a_preemption_and_a_node_loss(loopback_cluster, tmp_path):
    cluster = loopback_cluster
    t0, lost, added = time.monotonic(), 0, 0
    cmd, env, drv = sweep_command(cluster, tmp_path, "pack", pack_seeds=2,
                                  grid={"loss": ["non-saturating"], "seed": [0, 1]},
                                  train={"steps": 1000, "checkpoint_every": 50})
    store = tmp_path / "store"
    proc = subprocess.Popen(cmd, env=env, cwd=drv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        ids = cluster.node_ids()  # asked once, before: a driver of its own takes seconds the group trains on
        first = wait_for_victim(cluster, store, "pack", proc, 50, ids)
        took = cluster.preempt_node(first[1])
        lost += 1
        noticed = rows(store, "pack").set_index("trial_id")
        # The driver may have re-sent the group by now: its rows then say running, resumed from the preempted step.
        row = noticed.loc[first[0]]
        at = int(row.steps) if row.status == "preempted" else int(row.resumed_from[-1])
        newest = checkpoint_step(store, "pack", first[0])
        second = wait_for_victim(cluster, store, "pack", proc, at + 1, ids)  # resumed on the other node
        killed_at = checkpoint_step(store, "pack", second[0])
        cluster.kill_node(second[1])
        lost += 1
        third = cluster.add_node()  # room for the group again
        added += 1
        out, _ = proc.communicate(timeout=400)
    finally:
        if proc.poll() is None:
            proc.kill()
        for _ in range(lost - added):  # back to 2 workers for the next test
            cluster.add_node()
    print(f"\nworkers exited {took:.2f} s after SIGTERM; rows then:\n{noticed[['status', 'steps', 'error']]}")
    assert took < 10, took
    assert noticed.status.isin(["preempted", "running"]).all() and (noticed.preemptions == 1).all(), noticed.to_dict()
    for r in noticed.itertuples():  # checkpointed at the preempted step; a re-sent group resumed from exactly there
        assert (r.steps == at) if r.status == "preempted" else (list(r.resumed_from) == [0, at]), r
    assert newest >= at > 0, (newest, at)
    assert proc.returncode == 0, out[-4000:]
    assert out.count("resuming it from its last checkpoint") >= 2, out[-3000:]
    trials = rows(store, "pack")
    print(trials[COLUMNS].to_string(index=False))
    print(f"packed sweep with a preempted and a lost node: {time.monotonic() - t0:.0f} s")
    assert len(trials) == 2 and (trials.status == "completed").all() and (trials.preemptions == 1).all()
    assert second[0] in set(trials.trial_id) and second[1] is not first[1]
    alive = cluster.node_ids()
    for t in trials.itertuples():  # the seeds of a group start together, on the same nodes
        assert list(t.nodes)[:2] == [first[1].node_id, second[1].node_id] and len(t.nodes) == 3, t.nodes
        assert alive[t.nodes[2]] is third
        assert list(t.resumed_from)[:2] == [0, at] and t.resumed_from[2] >= killed_at > at, t.resumed_from
    assert_metrics_contiguous(store, "pack", trials, 10)
    assert (store / "sweeps" / "pack" / "report" / "index.html").exists()
