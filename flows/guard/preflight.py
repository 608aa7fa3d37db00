"""Checks between a valid config and the first trial: what would otherwise surface only after Ray
and Prefect start, as retries, tracebacks or an endless wait.

- storage is reachable and writable (a probe object written, read back and removed) within
  TIMEOUT seconds: missing credentials, an unreachable endpoint, a read-only path;
- the uploaded datasets the sweep reads are in storage, and the node cache ($GANSWEEP_CACHE) has room for
  the files of it not cached yet: this machine's on a local run, on a cluster every node's that can hold
  a trial (check_node_caches, after joining it);
- on a local run, one trial's resources fit this machine; on a cluster (`--ray-address`), some alive
  node offers them, or one joins within `--wait-for-resources` seconds (an autoscaler adding it):
  Ray itself would wait for such a node forever, without a word.

- a plugin model's networks fit the dataset: G maps z to one sample of its shape, D a sample to one score
  (built once on the driver, torch imported only for a sweep with a plugin model).

Each failure is a PreflightError of one line; `gansweep run` prints it and exits 2.
"""
from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import threading
import uuid
from typing import Any, Callable

import numpy as np

from gan_tasks.data.datasets import DATASETS, RESHARD_HINT, dataset_spec, stored_path
from gan_tasks.data.userdata import manifest_path, read_index
from gan_tasks.data.storage import Storage, node_cache
from gan_tasks.errors import UserError

# 10 s: S3 answers in well under a second; botocore's own retries on an unreachable endpoint take
# minutes, and storage.retrying 90 s more, before anyone is told.
TIMEOUT = 10.0


class PreflightError(UserError, RuntimeError):
    """Storage, datasets or resources that cannot serve the sweep: one line, exit 2."""


def _within(fn: Callable[[], Any], seconds: float, what: str) -> Any:
    """fn() in a daemon thread, given `seconds`: a hung connection cannot hold the command."""
    out: dict = {}

    def call() -> None:
        try:
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
            out["error"] = e

    t = threading.Thread(target=call, daemon=True, name="gansweep-preflight")
    t.start()
    t.join(seconds)
    if t.is_alive():
        raise PreflightError(f"{what} did not answer within {seconds:.0f} s; check the endpoint / network")
    if "error" in out:
        raise out["error"]
    return out.get("value")


def _why(e: BaseException) -> str:
    """One readable reason for a storage error: no credentials, unreachable, refused, read-only."""
    name, text = type(e).__name__, " ".join(str(e).split())[:200]
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return "no AWS credentials found (environment, ~/.aws profile or instance role)"
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionError", "ConnectionRefusedError"):
        return f"endpoint unreachable ({text})"
    if isinstance(e, (PermissionError, IsADirectoryError, NotADirectoryError)) or "Read-only" in text:
        return f"not writable ({name}: {text})"
    return f"{name}: {text}"


def _probe(st: Storage, folders: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Write, read back and remove a probe object (bypassing the retries); which of `folders` lack
    their files."""
    fs, path = st.fs, st.uri(".preflight", uuid.uuid4().hex[:12])
    if not st.is_s3:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    fs.pipe_file(path, b"gansweep preflight")
    if fs.cat_file(path) != b"gansweep preflight":
        raise OSError(f"a probe written to {path} read back different bytes")
    fs.rm(path)
    if not st.is_s3:  # leave no empty folder behind
        with contextlib.suppress(OSError):
            os.rmdir(os.path.dirname(path))
    return [f for f in folders if not fs.exists(st.uri(*f))]


def check_storage(st: Storage, sweep: Any, timeout: float = TIMEOUT) -> None:
    where = st.url + (f" (endpoint {st.endpoint_url})" if st.endpoint_url else "")
    name = sweep.dataset.name
    if sweep.dataset.id:  # added with gansweep data add: its manifest
        uploaded = [manifest_path(name, sweep.dataset.id)]
    else:  # a built-in upload: its current.json (sharded) or first array (two domains)
        uploaded = [stored_path(name, {})] if DATASETS.get(name).generate is None else []
    try:
        st.fs  # noqa: B018 - imports s3fs and builds the client here: the timeout measures the network only
        missing = _within(lambda: _probe(st, uploaded), timeout, f"storage {where}")
    except PreflightError:
        raise
    except Exception as e:  # noqa: BLE001 - every storage failure becomes one line
        raise PreflightError(f"storage {where}: {_why(e)}") from None
    if missing:
        how = f"gansweep data add {name} SRC" if sweep.dataset.id else f"gansweep data upload {name} PATH"
        old = not sweep.dataset.id and DATASETS.get(name).sharded and st.exists("datasets", name, "manifest.json")
        raise PreflightError(f"dataset {name!r} is not in storage at {st.uri(*missing[0])}; "
                             f"{'add' if sweep.dataset.id else 'upload'} it first: {how} --storage {st.url}"
                             + (RESHARD_HINT if old else ""))


def _cache_entries(st: Storage, sweep: Any) -> list[tuple[str, int]]:
    """(sha256, bytes) of each file of the sweep's dataset that trials cache on a node."""
    name, spec = sweep.dataset.name, dataset_spec(sweep.dataset)
    if spec.sharded:  # data add, data upload: its shards and labels, sizes from the manifest
        splits = read_index(st, name, sweep.dataset.id)["splits"].values()
        return [(e["sha256"], int(np.prod(e["shape"])) * itemsize) for s in splits  # uint8 images, int16 labels
                for e, itemsize in [*((shard, 1) for shard in s["shards"]), (s["labels"], 2)]]
    if spec.generate is not None or not st.exists("datasets", name, "manifest.json"):
        return []
    files = json.loads(st.read_bytes("datasets", name, "manifest.json"))["files"]
    return [(f["sha256"], st.fs.size(st.uri("datasets", name, f"{key}.npy"))) for key, f in files.items()]


def _cache_room(entries: list[tuple[str, int]], cache: str | None = None) -> tuple[int, int, str]:
    """On this node: (bytes of `entries` not in its cache yet, free bytes of the cache's disk, the cache folder)."""
    cache = cache or node_cache()
    need = sum(n for sha, n in entries if not os.path.exists(os.path.join(cache, "datasets", f"{sha}.npy")))
    where = cache
    while not os.path.exists(where):  # the cache folder may not exist yet: its nearest existing parent's disk
        where = os.path.dirname(where)
    return need, shutil.disk_usage(where).free, cache


def _no_room(sweep: Any, need: int, free: int, cache: str, node: str = "") -> str:
    return (f"dataset {sweep.dataset.name!r} needs {_size(need)} in the node cache {cache} (GANSWEEP_CACHE){node}, "
            f"which has {_size(free)} free; free space or point GANSWEEP_CACHE at a larger disk")


def check_cache_space(st: Storage, sweep: Any, cache: str | None = None) -> None:
    """The dataset's files not yet in this node's cache must fit its free space (a local run: trials cache here)."""
    need, free, cache = _cache_room(_cache_entries(st, sweep), cache)
    if need > free:
        raise PreflightError(_no_room(sweep, need, free, cache))


def check_node_caches(st: Storage, sweep: Any, timeout: float = 120.0) -> int:
    """On a cluster: check_cache_space on every alive node that can hold a trial, by a zero-CPU task pinned to
    each (its own GANSWEEP_CACHE and disk); the first node without room is a PreflightError naming it. The
    number of nodes checked."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    entries = _cache_entries(st, sweep)
    res = sweep.resources
    nodes = [n for n in ray.nodes() if n["Alive"] and _fits(n, _request(res))]
    if not entries or not nodes:
        return 0
    room = ray.remote(num_cpus=0, max_retries=0)(_cache_room)
    refs = [room.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(entries)
            for n in nodes]
    for n, ref in zip(nodes, refs):
        where = f" on node {n['NodeID']} ({n.get('NodeManagerAddress', '?')})"
        try:
            need, free, cache = ray.get(ref, timeout=timeout)
        except ray.exceptions.GetTimeoutError:
            raise PreflightError(f"the node cache check did not answer{where} within {timeout:.0f} s") from None
        if need > free:
            raise PreflightError(_no_room(sweep, need, free, cache, where))
    return len(nodes)


def _size(n: int) -> str:
    return f"{n / 1e9:,.2f} GB" if n >= 1e9 else f"{n / 1e6:,.2f} MB"


def _local_gpus() -> int:
    """GPUs a local Ray would see: CUDA_VISIBLE_DEVICES when set, else the NVIDIA device files."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    return len(glob.glob("/dev/nvidia[0-9]*"))


def check_local_resources(res: Any) -> None:
    """A local run: one trial's request must fit this machine, or Ray would wait for it forever."""
    cpus, gpus = os.cpu_count() or 1, _local_gpus()
    if res.cpus_per_trial > cpus:
        raise PreflightError(f"resources.cpus_per_trial {res.cpus_per_trial:g} is more than this machine's {cpus} "
                             "CPUs; lower it, or run on a cluster with --ray-address")
    if res.gpus_per_trial > gpus:
        raise PreflightError(f"resources.gpus_per_trial {res.gpus_per_trial:g} but this machine has {gpus} GPU(s) "
                             "visible; set gpus_per_trial: 0, or run on a cluster with --ray-address")


def _request(res: Any) -> dict[str, float]:
    """One trial's Ray resources: CPU, GPU and resources.custom."""
    return {"CPU": res.cpus_per_trial, "GPU": res.gpus_per_trial, **getattr(res, "custom", {})}


def _fits(node: dict, need: dict[str, float]) -> bool:
    return all(node["Resources"].get(k, 0) >= v for k, v in need.items() if v)


def _shortfall(res: Any, nodes: list[dict]) -> tuple[str, str]:
    """(the fields no node satisfies, what the nodes have) for the message."""
    custom = getattr(res, "custom", {})
    missing = [k for k, v in custom.items() if not any(n["Resources"].get(k, 0) >= v for n in nodes)]
    if missing:  # a label no node carries (in the amount asked): name it
        labels = sorted({k for n in nodes for k in n["Resources"] if k not in ("CPU", "GPU", "memory",
                         "object_store_memory") and not k.startswith("node:")})
        return (f"resources.custom {', '.join(f'{k}: {custom[k]:g}' for k in missing)}",
                f"{len(nodes)} node(s), labels: {', '.join(labels) or 'none'}")
    largest = max(((n["Resources"].get("CPU", 0), n["Resources"].get("GPU", 0)) for n in nodes), default=(0, 0))
    what = f"resources.cpus_per_trial {res.cpus_per_trial:g} / resources.gpus_per_trial {res.gpus_per_trial:g}"
    return what + (" with resources.custom" if custom else ""), \
        f"{len(nodes)} node(s), the largest {largest[0]:g} CPU / {largest[1]:g} GPU"


def wait_for_cluster_resources(res: Any, address: str, wait_s: float, say: Callable[[str], None],
                               poll_s: float = 2.0) -> None:
    """On a connected cluster: return once an alive node can hold one trial (CPUs, GPUs and the custom
    resources it asks for, all on one node); say that we wait (once), and give up with a PreflightError
    naming the fields (a missing label by name) after wait_s seconds."""
    import time

    import ray

    need = _request(res)
    deadline, told = time.monotonic() + wait_s, False
    while True:
        nodes = [n for n in ray.nodes() if n["Alive"]]
        if any(_fits(n, need) for n in nodes):
            return
        what, have = _shortfall(res, nodes)
        if time.monotonic() >= deadline:
            raise PreflightError(
                f"{what}: no node of the Ray cluster at {address} offers them ({have}) after waiting {wait_s:g} s; "
                "lower them, add such a node, or wait longer with --wait-for-resources SECONDS")
        if not told:
            say(f"waiting up to {wait_s:g} s for a node with {what} to join the Ray cluster at {address} "
                f"({have} now) ...")
            told = True
        time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))


def check_ray_head(address: str, timeout: float = 5.0) -> None:
    """A cluster address must be a Ray head's GCS: asked for its cluster id over gRPC within `timeout`.
    ray.init would retry an address where nothing or something else listens for minutes, without a word.
    A Ray head answers (or refuses our token: still a Ray head); another gRPC server says UNIMPLEMENTED."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if address.startswith("ray://") or not port.isdigit():  # Ray Client, or `auto`: Ray's own lookup
        return
    import grpc

    with grpc.insecure_channel(f"{host}:{port}") as channel:
        call = channel.unary_unary("/ray.rpc.NodeInfoGcsService/GetClusterId",  # Ray 2.60's GCS (ray_patches.py)
                                   request_serializer=lambda b: b, response_deserializer=lambda b: b)
        try:
            call(b"", timeout=timeout)
        except grpc.RpcError as e:
            code = e.code()
            if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                return
            details = e.details() or ""
            if code == grpc.StatusCode.UNAVAILABLE and "connect" in details.lower():
                code, details = None, ""
            why = {None: "nothing listens there (connection failed)",
                   grpc.StatusCode.UNIMPLEMENTED: "a gRPC server that is not a Ray GCS answers there",
                   grpc.StatusCode.DEADLINE_EXCEEDED: f"no Ray GCS answered within {timeout:g} s",
                   }.get(code) or f"what listens there does not speak Ray's protocol ({code.name}: {details[:120]})"
            raise PreflightError(f"--ray-address {address} is not a Ray head: {why}; give the head node's "
                                 "address (host:6379, as `ray start --head` prints it), or leave it out for a "
                                 "local Ray") from None


def check_model_shapes(sweep: Any) -> None:
    """A plugin model's G and D, built for the dataset, probed with two zero inputs (no random draw
    taken from any stream a trial uses): G's output must be samples of the dataset's shape, D's one score each."""
    from gan_tasks.data.datasets import dataset_spec
    from gan_tasks.methods.catalog import MODELS

    provider = MODELS.provider(sweep.model.name)
    if provider is None:  # the built-ins are tested against every dataset kind they accept
        return
    import torch

    from gan_tasks.methods.models import build_models

    shape, z_dim = tuple(dataset_spec(sweep.dataset).shape), sweep.train.z_dim
    who = f"model {sweep.model.name!r} of {provider.dist} {provider.version}"
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        g, d = build_models(sweep.model.name, shape, z_dim, sweep.model.params)
        g.eval(), d.eval()
        made = tuple(g(torch.zeros(2, z_dim)).shape)
        if made != (2, *shape):
            raise PreflightError(f"{who}: G makes samples of shape {made[1:]} from z of train.z_dim {z_dim}; "
                                 f"dataset {sweep.dataset.name!r} has samples of shape {shape}")
        scores = tuple(d(torch.zeros(2, *shape)).shape)
        if scores not in ((2, 1), (2,)):
            raise PreflightError(f"{who}: D gives scores of shape {scores[1:]} per sample of dataset "
                                 f"{sweep.dataset.name!r}; expected one raw score per sample, shape (n, 1)")


def preflight(st: Storage, sweep: Any, ray_address: str | None, timeout: float = TIMEOUT) -> None:
    """Before Ray or Prefect start. A cluster's resources are checked after joining it
    (wait_for_cluster_resources), storage and datasets first."""
    if not ray_address:
        check_local_resources(sweep.resources)
    else:
        check_ray_head(ray_address)
    check_storage(st, sweep, timeout)
    check_model_shapes(sweep)
    if not ray_address:
        check_cache_space(st, sweep)
