"""P6 report at scale (issue 28 item 2): `gansweep report` of a synthetic sweep of N trials (2 losses x N/200 adam
learning rates x 100 seeds; rows, final evaluations and 64-point samples as the flow writes them; seed 7 of each
cell failed), timed as a command for this checkout and, with --before, another one, on the same stored sweep.

- `p6_report_cmd_s_N[_before]`: seconds of `gansweep report` (start-up included);
- `p6_report_images_N[_before]`, `p6_report_html_mb_N[_before]`: images embedded in report/index.html, its size;
- `p6_interrupt_all_s_N`, `p6_interrupt_in_flight_s_N`: the Ctrl-C handler's marking of 2 running trials of
  the N, reading every trial's row (as before issue 28) and reading the rows of the trials in flight only.

    python -m bench.p6_report STORAGE N [--before CHECKOUT]
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.p5_many_trials import ROOT, _env
from gan_tasks.config import dump_config, expand_grid, parse_config
from gan_tasks.data import schema
from gan_tasks.data.storage import Storage
from gan_tasks.training.rows import trial_row, write_trial_row


def synthetic_sweep(st: Storage, sid: str, lrs: int, seeds: int) -> list:
    """2 losses x `lrs` adam learning rates x `seeds` seeds of ring-8 trials, written as the flow writes them;
    seed 7 of every cell failed (no evaluation, no samples)."""
    sweep = parse_config({"name": "p6-report", "dataset": "ring-8", "model": "mlp",
                          "grid": {"loss": ["non-saturating", "lsgan-011"],
                                   "optimizer": [{"name": "adam", "lr_g": 1e-4 * (i + 1)} for i in range(lrs)],
                                   "seed": list(range(seeds))},
                          "train": {"steps": 60, "batch_size": 64, "log_every": 10, "checkpoint_every": 20}})
    trials = expand_grid(sweep)
    st.write_bytes(dump_config(sweep).encode(), "sweeps", sid, "config.yaml")
    now, ev, rng = datetime.now(timezone.utc), [], np.random.default_rng(0)
    for t in trials:
        failed = t.seed == 7
        row = trial_row(t, sid, "failed" if failed else "completed", 60, now, now, "boom" if failed else "")
        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pylist([row], schema=schema.TRIALS), buf)
        _put(st, buf.getvalue(), "sweeps", sid, "trials", f"{t.trial_id}.parquet")
        if failed:
            continue
        ev.append({"sweep_id": sid, "trial_id": t.trial_id, "step": 60, "metric": "modes_covered",
                   "value": float(rng.integers(1, 9))})
        buf = io.BytesIO()
        np.save(buf, rng.standard_normal((64, 2)).astype(np.float32))
        _put(st, buf.getvalue(), "sweeps", sid, "samples", f"{t.trial_id}.npy")
    st.write_parquet(pa.Table.from_pylist(ev, schema=schema.EVALUATIONS), "sweeps", sid, "evaluations", "e.parquet")
    return trials


def _put(st: Storage, data: bytes, *parts: str) -> None:
    """A file of the synthetic sweep: on a local disk written plainly (no write-aside, no fsync: 20,000 small
    files in seconds, not minutes), else through Storage."""
    if st.is_s3:
        return st.write_bytes(data, *parts)
    path = st.uri(*parts)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def timed_report(st: Storage, sid: str, checkout: str) -> tuple[float, int, float]:
    """(seconds of `gansweep report` in `checkout`, images in index.html, its MB)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "flows.cli", "report", sid, "--storage", st.url], cwd=checkout,
                   env=_env(checkout), check=True, capture_output=True)
    took = time.perf_counter() - t0
    html = st.read_bytes("sweeps", sid, "report", "index.html")
    return took, html.count(b"data:image/png;base64,"), len(html) / 2**20


def time_interrupt(st: Storage, sid: str, trials: list) -> tuple[float, float]:
    """Seconds of interrupt.mark_interrupted over every row, then over the 2 trials in flight only."""
    from flows.guard.interrupt import mark_interrupted

    out = []
    for tids in (None, {t.trial_id for t in trials[:2]}):
        now = datetime.now(timezone.utc)
        for t in trials[:2]:
            write_trial_row(st, trial_row(t, sid, "running", 20, now, None))
        t0 = time.perf_counter()
        assert len(mark_interrupted(st, sid, None, tids)) == 2
        out.append(time.perf_counter() - t0)
    return out[0], out[1]


if __name__ == "__main__":
    args = sys.argv[1:]
    st, n = Storage.parse(args[0]), int(args[1])
    before = os.path.abspath(args[args.index("--before") + 1]) if "--before" in args else None
    sid = f"p6-report-{n}"
    trials = synthetic_sweep(st, sid, max(1, n // 200), 100)
    every, in_flight = time_interrupt(st, sid, trials)
    load = f"[load {os.getloadavg()[0]:.1f}, {datetime.now(timezone.utc):%H:%M:%S}]"
    print(f"p6_interrupt_all_s_{n} = {every:.4f}  (P6 Ctrl-C: mark 2 running trials, reading every row)  {load}")
    print(f"p6_interrupt_in_flight_s_{n} = {in_flight:.4f}  (P6 Ctrl-C: the same, rows in flight only)  {load}",
          flush=True)
    for checkout, tag in ([(before, "_before")] if before else []) + [(ROOT, "")]:
        took, images, mb = timed_report(st, sid, checkout)
        load = f"[load {os.getloadavg()[0]:.1f}, {datetime.now(timezone.utc):%H:%M:%S}]"
        print(f"p6_report_cmd_s_{n}{tag} = {took:.3f}  (P6 gansweep report seconds, {n} synthetic trials)  {load}")
        print(f"p6_report_images_{n}{tag} = {images}  (P6 images in report/index.html)  {load}")
        print(f"p6_report_html_mb_{n}{tag} = {mb:.3f}  (P6 report/index.html MB)  {load}", flush=True)
