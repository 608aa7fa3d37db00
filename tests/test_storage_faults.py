"""Storage faults: a 20 s S3 outage mid-sweep, a truncated checkpoint, a corrupt dataset file."""
import threading
import time

import boto3
import pandas as pd
import pytest

from flows.run.flow import sweep_flow
from gan_tasks.config import expand_grid, parse_config
from gan_tasks.data.datasets import dataset_path, ensure_dataset
from gan_tasks.data.storage import Storage
from gan_tasks.training.trial import Trial, run_trial
from tests.conftest import tiny_config
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow
OUTAGE_SECONDS = 20


def test_sweep_survives_a_20s_s3_outage(ray_session, prefect_harness, s3_storage, capfd):
    port = int(s3_storage.endpoint_url.rsplit(":", 1)[1])
    proxy = TcpProxy(port).start()
    via_proxy = Storage.parse(s3_storage.url, endpoint_url=f"http://127.0.0.1:{proxy.port}")
    direct = boto3.client("s3", endpoint_url=s3_storage.endpoint_url, region_name="us-east-1")
    bucket, prefix = s3_storage.url[5:].split("/", 1)
    outage = {}

    def cut_when_training() -> None:  # watch the bucket directly, then take the endpoint away
        deadline = time.time() + 120
        while time.time() < deadline:
            keys = [o["Key"] for o in direct.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
            if any(k.endswith(".pt") for k in keys):
                proxy.down()
                outage["at"] = time.time()
                time.sleep(OUTAGE_SECONDS)
                proxy.up()
                return
            time.sleep(0.05)

    cfg = tiny_config(train={"steps": 400, "checkpoint_every": 50, "log_every": 10})
    watcher = threading.Thread(target=cut_when_training, daemon=True)
    watcher.start()
    out = sweep_flow(cfg, via_proxy.url, "outage", None, via_proxy.endpoint_url)
    watcher.join()
    proxy.stop()
    assert "at" in outage, "the outage never happened"
    assert out["not_completed"] == 0

    opts = {"storage_options": s3_storage.storage_options}
    trials = pd.read_parquet(s3_storage.uri("sweeps", "outage", "trials"), **opts)
    assert (trials.status == "completed").all() and len(trials) == 2
    metrics = pd.read_parquet(s3_storage.uri("sweeps", "outage", "metrics"), **opts)
    for _, g in metrics.groupby("trial_id"):
        assert sorted(g.step) == list(range(10, 401, 10))  # nothing lost, nothing twice
    logs = capfd.readouterr()
    assert "retrying in" in logs.out + logs.err  # the retries were logged with their backoff
    with capfd.disabled():
        print(f"outage of {OUTAGE_SECONDS} s survived; {len(metrics)} metric rows checked for gaps/duplicates, "
              f"{(logs.out + logs.err).count('retrying in')} retries logged")


def test_truncated_latest_checkpoint_falls_back_to_previous(local_storage, caplog):
    cfg = parse_config(tiny_config(train={"steps": 40, "checkpoint_every": 20, "log_every": 10}))
    trial = expand_grid(cfg)[0]
    ensure_dataset(local_storage, cfg.dataset.name, cfg.dataset.params)
    assert run_trial(trial, local_storage, "trunc")["status"] == "completed"
    ck = ("sweeps", "trunc", "checkpoints", trial.trial_id)
    latest = local_storage.read_bytes(*ck, "step-000000040.pt")
    local_storage.write_bytes(latest[: len(latest) // 2], *ck, "step-000000040.pt")
    t = Trial(trial, local_storage, "trunc")
    assert t.try_resume() and t.step == 20
    assert "step-000000040.pt" in caplog.text and "falling back" in caplog.text


def test_corrupt_dataset_file_is_a_clear_error_naming_it(local_storage):
    cfg = parse_config(tiny_config())
    trial = expand_grid(cfg)[0]
    path = dataset_path(cfg.dataset.name, cfg.dataset.params)
    local_storage.write_bytes(b"\x93NUMPY garbage", *path)
    row = run_trial(trial, local_storage, "corrupt")
    assert row["status"] == "failed"
    assert "corrupt" in row["error"] and "train.npy" in row["error"]
