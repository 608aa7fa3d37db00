"""A Ray cluster of several nodes on this machine, every server on 127.0.0.1: the benchmark's and the slow
tests' stand-in for a cluster of spot GPU nodes (issue 28).

`ray start` starts a head with 0 CPUs (it runs no trial, as a cluster's CPU head) and N worker nodes, each
a raylet of its own with its own Ray temp dir, working directory and node cache ($GANSWEEP_CACHE), so that a
node sees only what Ray ships to it (the job's py_modules) and downloads a dataset for itself. Each worker
advertises `cpus` CPUs and the custom resources `gpu_node: 1` and `loopback_node_<i>: 1`, as labelled GPU
nodes would (`resources.custom` asks for them). A node is lost with kill_node (SIGKILL to its raylet and
every process below it: its workers, agents) and preempted with preempt_node (SIGTERM to its workers, the
spot warning, then to its raylet); add_node joins a fresh one.

    python -m bench.loopback_cluster up --workers 3 [--cpus 2] [--dir DIR]   # prints the address, stays up
    python -m bench.loopback_cluster ray start ...    # `ray start` keeping 127.0.0.1 (tests/test_cluster.py)

Ray 2.60's `ray start --node-ip-address 127.0.0.1` swaps the loopback address for the machine's routable
one and binds its servers on all interfaces; the `ray` subcommand keeps the loopback address
(flows/actors/ray_patches.py: loopback_start). Token authentication with a token of the cluster's own:
drivers need `env` (RAY_AUTH_MODE, RAY_AUTH_TOKEN) in their environment.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Node:
    index: int  # 0: the head
    port: int  # its raylet's node manager port: how its processes are found
    dir: Path  # its working directory, node cache (cache/) and Ray temp dir (ray/)
    resources: dict = field(default_factory=dict)
    node_id: str = ""  # Ray's, once known (LoopbackCluster.node_ids)

    @property
    def label(self) -> str:
        return f"loopback_node_{self.index}"

    @property
    def cache(self) -> Path:
        return self.dir / "cache"


class LoopbackCluster:
    """`with LoopbackCluster(workers=2) as c:` a head and `workers` worker nodes; c.address, c.env for drivers."""

    def __init__(self, workers: int = 2, cpus: int = 1, root: str | Path | None = None, gpus: int = 0,
                 health_check_ms: int = 1000, extra_resources: dict | None = None):
        self.head_port = free_port()
        # Short: Ray's unix sockets live under each node's temp dir (108 characters at most)
        self.root = Path(root or f"/tmp/lb{self.head_port}")
        self.cpus, self.gpus, self.extra = cpus, gpus, extra_resources or {}
        self.health_check_ms = health_check_ms
        self.env = {**os.environ, "RAY_ADDRESS": "", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex * 2}
        self.nodes: list[Node] = []
        self.n_workers = workers

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.head_port}"

    @property
    def workers(self) -> list[Node]:
        return [n for n in self.nodes if n.index > 0]

    # --- start and stop --------------------------------------------------------------------------------
    def up(self) -> "LoopbackCluster":
        head = self._node(0, {"head": 1})
        # The GCS declares a node dead after 3 missed health checks a second apart (Ray's default is
        # 5 of 3 s): a lost node is noticed in seconds, not half a minute. Workers at nice 0, as `gansweep run`'s
        # own Ray has them (Ray's default, 15, would let anything else on the machine starve the trials).
        system = {"health_check_period_ms": self.health_check_ms, "health_check_failure_threshold": 3,
                  "worker_niceness": 0}
        self._ray("start", "--head", "--port", str(self.head_port), "--num-cpus", "0", "--num-gpus", "0",
                  "--system-config", json.dumps(system), "--include-dashboard", "false", *self._common(head), node=head)
        for _ in range(self.n_workers):
            self.add_node()
        return self

    def add_node(self, cpus: int | None = None, resources: dict | None = None) -> Node:
        """A worker node joined to the head: `cpus` CPUs, gpu_node and loopback_node_<i> labels (plus `resources`)."""
        i = max((n.index for n in self.nodes), default=0) + 1
        node = self._node(i, {"gpu_node": 1, f"loopback_node_{i}": 1, **self.extra, **(resources or {})})
        self._ray("start", "--address", self.address, "--num-cpus", str(self.cpus if cpus is None else cpus),
                  "--num-gpus", str(self.gpus), *self._common(node), node=node)
        return node

    def _node(self, i: int, resources: dict) -> Node:
        node = Node(i, free_port(), self.root / f"n{i}", resources)
        node.cache.mkdir(parents=True, exist_ok=True)
        self.nodes.append(node)
        return node

    def _common(self, node: Node) -> list[str]:
        return ["--node-ip-address", "127.0.0.1", "--node-manager-port", str(node.port), "--temp-dir",
                str(node.dir / "ray"), "--resources", json.dumps(node.resources), "--disable-usage-stats"]

    def _ray(self, *args: str, node: Node, tries: int = 3) -> None:
        """`ray start ...` for the node. Ray gives a raylet 30 s to register with the GCS, which a machine
        under heavy load can miss: what that try started is stopped and it is tried again."""
        # PYTHONPATH: for the launcher only (it drops it before Ray starts the node's processes)
        # AWS_SDK_UA_APP_ID: the node's S3 requests say which node they come from (bench/p7_nodes.py counts them)
        env = {**self.env, "GANSWEEP_CACHE": str(node.cache), "PYTHONPATH": str(ROOT), "AWS_SDK_UA_APP_ID": node.label}
        for i in range(tries):
            r = subprocess.run([sys.executable, "-m", "bench.loopback_cluster", "ray", *args], cwd=node.dir, env=env,
                               capture_output=True, text=True, timeout=300)
            if not r.returncode:
                return
            if i + 1 < tries and "timed out during startup" in r.stdout + r.stderr:
                self._stop_dir(node.dir / "ray")
                continue
            raise RuntimeError(f"ray {' '.join(args[:2])} failed: {(r.stdout + r.stderr)[-2000:]}")

    def _stop_dir(self, folder: Path) -> None:
        procs = self._all_procs(str(folder))
        for p in procs:
            _signal(p, signal.SIGKILL)
        psutil.wait_procs(procs, timeout=10)

    def down(self) -> None:
        """Every process of the cluster (its command line or a parent's names its root), then its files."""
        self._stop_dir(self.root)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "LoopbackCluster":
        try:
            return self.up()
        except BaseException:
            self.down()
            raise

    def __exit__(self, *exc) -> None:
        self.down()

    # --- a node's processes ---------------------------------------------------------------------------
    def _all_procs(self, under: str) -> list[psutil.Process]:
        """Processes whose command line names `under` (a folder of ours), and every process below them."""
        mine = [p for p in psutil.process_iter(["cmdline"]) if under in " ".join(p.info["cmdline"] or [])]
        return list({q.pid: q for p in mine for q in [p, *_children(p)]}.values())

    def raylet(self, node: Node) -> psutil.Process | None:
        flag = f"--node_manager_port={node.port}"
        for p in psutil.process_iter(["name", "cmdline"]):
            if flag in (p.info["cmdline"] or []):
                return p
        return None

    def workers_of(self, node: Node) -> list[psutil.Process]:
        """The node's Ray worker processes (trial actors among them), below its raylet; not its agents
        (ray::DashboardAgent, ray::RuntimeEnvAgent), whose end takes the raylet with them at once."""
        r = self.raylet(node)
        return [c for c in _children(r) if ("default_worker" in _cmd(c) or _cmd(c).startswith("ray::"))
                and "Agent" not in _cmd(c).split(" ")[0]] if r else []

    def kill_node(self, node: Node) -> list[int]:
        """The node is gone at once, as a machine that lost power: SIGKILL to its raylet and everything below it."""
        r = self.raylet(node)
        procs = [r, *_children(r)] if r else []
        for p in procs:
            _signal(p, signal.SIGKILL)
        psutil.wait_procs(procs, timeout=10)
        return [p.pid for p in procs]

    def preempt_node(self, node: Node, grace_s: float = 10.0) -> float:
        """A spot node's warning: SIGTERM to its workers, which may checkpoint; once they have exited (at most
        grace_s), SIGTERM then SIGKILL to the raylet and what is left. Returns the seconds the workers took."""
        workers, t0 = self.workers_of(node), time.monotonic()
        for p in workers:
            _signal(p, signal.SIGTERM)
        psutil.wait_procs(workers, timeout=grace_s)
        took = time.monotonic() - t0
        r = self.raylet(node)
        if r:
            rest = [r, *_children(r)]
            _signal(r, signal.SIGTERM)
            _, alive = psutil.wait_procs([r], timeout=5)
            for p in [*alive, *rest]:
                _signal(p, signal.SIGKILL)
        return took

    def node_ids(self) -> dict[str, Node]:
        """Ray's node id of every alive node of ours (asked through a short driver in a subprocess)."""
        code = ("import json, ray; from flows.actors.session import connect_ray; connect_ray(%r); "
                "print(json.dumps({n['NodeID']: n['NodeManagerPort'] for n in ray.nodes() if n['Alive']}))" % self.address)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=self.env, timeout=180,
                             check=True).stdout.strip().splitlines()[-1]
        alive, by_port = json.loads(out), {n.port: n for n in self.nodes}
        for nid, port in alive.items():
            if port in by_port:
                by_port[port].node_id = nid
        return {nid: by_port[port] for nid, port in alive.items() if port in by_port}  # not the killed ones


def _children(p: psutil.Process | None) -> list[psutil.Process]:
    try:
        return p.children(recursive=True) if p else []
    except psutil.NoSuchProcess:
        return []


def _cmd(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline())
    except psutil.Error:
        return ""


def _signal(p: psutil.Process, sig: int) -> None:
    try:
        p.send_signal(sig)
    except psutil.Error:
        pass


def _ray_cli(args: list[str]) -> int:
    """Ray's own command line, with ray start keeping a 127.x address on loopback."""
    from flows.actors.ray_patches import loopback_start

    loopback_start()
    from ray.scripts.scripts import main

    # A node's processes import what Ray ships them (the job's py_modules), not this checkout: nothing of
    # it on their path, and their working directory is the node's own folder.
    os.environ.pop("PYTHONPATH", None)

    sys.argv = ["ray", *args]
    return main()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["ray"]:
        return _ray_cli(argv[1:])
    ap = argparse.ArgumentParser(prog="python -m bench.loopback_cluster", description=__doc__.split("\n\n")[0])
    ap.add_argument("command", choices=["up"])
    ap.add_argument("--workers", type=int, default=3)
    ap.add_argument("--cpus", type=int, default=1, help="CPUs each worker node advertises")
    ap.add_argument("--dir", default=None, help="root of the nodes' folders (default /tmp/lb<port>)")
    a = ap.parse_args(argv)
    c = LoopbackCluster(a.workers, a.cpus, a.dir)
    with c:
        print(f"Ray cluster at {c.address}: a head (0 CPUs) and {a.workers} worker nodes of {a.cpus} CPU(s), "
              f"labels gpu_node and loopback_node_1..{a.workers}, under {c.root}")
        print(f"export RAY_AUTH_MODE=token RAY_AUTH_TOKEN={c.env['RAY_AUTH_TOKEN']}")
        print(f"gansweep run CONFIG --ray-address {c.address}   (Ctrl-C stops the cluster)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
