"""P7 nodes: bytes of a dataset read per node when a sweep's trials run on several nodes (issue 28, item 3).

A loopback cluster (bench/loopback_cluster.py) of N worker nodes of 1 CPU, each with its own node cache; an
S3 endpoint (moto) on 127.0.0.1 that counts the bytes of every dataset object it sends, per requester (each
node's processes name themselves in their S3 User-Agent: AWS_SDK_UA_APP_ID=loopback_node_<i>; the driver
`driver`). The dataset: the first M MNIST training images added with `gansweep data add` (shards of 4,096).
The sweep: T trials of dcgan-28 on it, a few steps each, through `gansweep run --ray-address`, cold caches
(the driver's too).

- `p7_dataset_reads`: dataset bytes sent to anyone ÷ (dataset size × N). Goal ≤ 1.1: each node downloads
  the dataset once whatever the number of its trials, and the driver reads only what its report shows.
  Theoretical minimum 1.0 (the nodes that ran no trial read nothing: below 1.0 then).
- `p7_bytes_<requester>` (MB), `p7_dataset_mb`, `p7_sweep_s`.

    python -m bench.p7_nodes [--nodes 2] [--trials 4] [--images 20000] [--steps 20]
"""
from __future__ import annotations

import argparse
import collections
import gzip
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import yaml

from bench.harness import Figure
from bench.loopback_cluster import ROOT, LoopbackCluster, free_port

MNIST = ROOT.parent / "shared" / "data" / "mnist" / "train-images-idx3-ubyte.gz"
BUCKET = "p7-nodes"
GANSWEEP = [sys.executable, "-c", "from flows.cli import app; app()"]


class CountingS3:
    """moto's S3 on 127.0.0.1, counting the body bytes of GETs under datasets/ per User-Agent app id."""

    def __init__(self):
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request

        self.bytes: dict[str, int] = collections.defaultdict(int)
        self.requests: dict[tuple[str, str], list[int]] = collections.defaultdict(list)  # (who, object): bytes per GET
        self.port = free_port()
        app = DomainDispatcherApplication(create_backend_app)
        self.server = make_server("127.0.0.1", self.port, self._counting(app), threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _counting(self, app):
        def count(body, key: str, path: str):
            n = 0
            for chunk in body:
                n += len(chunk)
                yield chunk
            self.bytes[key] += n
            self.requests[key, path.rsplit("/", 1)[-1]].append(n)

        def wrapped(environ, start_response):
            body = app(environ, start_response)
            if environ["REQUEST_METHOD"] != "GET" or "/datasets/" not in environ.get("PATH_INFO", ""):
                return body
            who = re.search(r"app/(\S+)", environ.get("HTTP_USER_AGENT", ""))
            return count(body, who.group(1) if who else "unknown", environ["PATH_INFO"])
        return wrapped


def _pngs(folder: Path, n: int) -> None:
    from PIL import Image

    with gzip.open(MNIST) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:n]
    for i, im in enumerate(images):
        Image.fromarray(im).save(folder / f"{i:05d}.png")


def bench_nodes(nodes: int, trials: int, images: int, steps: int) -> list[Figure]:
    os.environ.update(AWS_ACCESS_KEY_ID="AKIATESTFAKEKEY12345", AWS_SECRET_ACCESS_KEY="fake/secret",
                      AWS_DEFAULT_REGION="us-east-1", AWS_SDK_UA_APP_ID="driver")
    import boto3

    s3 = CountingS3()
    boto3.client("s3", endpoint_url=s3.url).create_bucket(Bucket=BUCKET)
    storage = ["--storage", f"s3://{BUCKET}/gansweep", "--s3-endpoint-url", s3.url]
    with tempfile.TemporaryDirectory() as tmp, LoopbackCluster(workers=nodes, cpus=1) as cluster:
        tmp = Path(tmp)
        (tmp / "png").mkdir()
        _pngs(tmp / "png", images)
        env = {**cluster.env, "PYTHONPATH": str(ROOT), "AWS_SDK_UA_APP_ID": "driver",
               "GANSWEEP_CACHE": str(tmp / "driver-cache")}  # cold, like the nodes
        subprocess.run([*GANSWEEP, "data", "add", "digits", str(tmp / "png"), "--size", "28", "--mode", "L",
                        *storage], check=True, env=env, cwd=tmp, capture_output=True, timeout=900)
        listing = boto3.client("s3", endpoint_url=s3.url).list_objects_v2(Bucket=BUCKET,
                                                                           Prefix="gansweep/datasets/digits/")
        size = sum(o["Size"] for o in listing["Contents"] if o["Key"].endswith(".npy"))
        s3.bytes.clear()
        s3.requests.clear()
        cfg = {"name": "p7", "dataset": "digits", "model": "dcgan-28",
               "grid": {"loss": ["non-saturating"], "optimizer": ["adam"], "seed": list(range(trials))},
               "train": {"steps": steps, "batch_size": 64, "log_every": steps, "checkpoint_every": steps},
               "resources": {"cpus_per_trial": 1, "custom": {"gpu_node": 1}}, "evaluation": {"n_samples": 256}}
        (tmp / "p7.yaml").write_text(yaml.safe_dump(cfg))
        t0 = time.perf_counter()
        r = subprocess.run([*GANSWEEP, "run", str(tmp / "p7.yaml"), *storage, "--ray-address", cluster.address,
                            "--sweep-id", "p7"], env=env, cwd=tmp, capture_output=True, text=True, timeout=1800)
        wall = time.perf_counter() - t0
        if r.returncode:
            raise RuntimeError((r.stdout + r.stderr)[-3000:])
    s3.server.shutdown()
    for (who, name), sizes in sorted(s3.requests.items()):  # where the bytes went: GETs per requester and object
        print(f"  {who} {name}: {len(sizes)} GET(s), {sum(sizes) / 1e6:.2f} MB", flush=True)
    read = dict(s3.bytes)
    out = [Figure("p7_dataset_reads", sum(read.values()) / (size * nodes),
                  f"P7 dataset bytes read / (dataset x {nodes} nodes), {trials} trials"),
           Figure("p7_dataset_mb", size / 1e6, f"P7 dataset MB ({images} images)"),
           Figure("p7_sweep_s", wall, "P7 sweep seconds")]
    out += [Figure(f"p7_bytes_{who}", n / 1e6, f"P7 dataset MB read by {who}") for who, n in sorted(read.items())]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.p7_nodes", description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, default=2)
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--images", type=int, default=20000)
    ap.add_argument("--steps", type=int, default=20)
    a = ap.parse_args()
    for f in bench_nodes(a.nodes, a.trials, a.images, a.steps):
        print(f"{f.key} = {f.value:.4g} ({f.label})", flush=True)


if __name__ == "__main__":
    main()
