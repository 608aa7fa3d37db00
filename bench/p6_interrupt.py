"""P6 interrupt: Ctrl-C or SIGTERM on a sweep of N short trials (issue 28 item 6), as a new user's terminal
sees it. `gansweep run` of N ring-8 MLP trials (500 steps, a checkpoint every 50) in a subprocess with the
embedded defaults; once 10 trials are evaluated and another is at most half way, the signal; then:

- `p6_signal_exit_s_N`: signal to exit; `p6_signal_rc_N`: the exit status (130 for both signals);
- `p6_signal_noise_N`: stderr lines that read as trouble (tracebacks, Ray "failed to connect to GCS",
  Prefect websocket errors, warnings); `p6_signal_left_N`: processes of the run still alive 1 s later;
- `p6_signal_unresumable_N`: trials whose row is neither completed nor interrupted at its last checkpoint's
  step (an interrupted trial resumes from exactly its row's step); `p6_signal_interrupted_N`: interrupted rows.

Acceptance (issue 28): exit <= 10 s, rc 130, no noise, nothing left, nothing unresumable, at 10,000 trials.
Theoretical minimum of the exit: the in-flight trials' checkpoints and rows, Ray's and the API's stop (~1 s).
tests/test_interrupt_scale.py runs it at 1,000 trials and asserts the acceptance.

    python -m bench.p6_interrupt DIR [N] [--sig INT|TERM]
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

from bench.harness import Figure
from bench.p5_many_trials import ROOT, _env
from flows.guard.interrupt import _alive, _start_time, descendants

NOISE = ("Traceback", "Error", "error", "GCS", "websocket", "Exception", "WARNING", "Crash")


def interrupt_config(n: int, steps: int = 500) -> dict:
    """n trials (2 losses x n/2 seeds) of `steps` steps: one is mid-training whenever the signal lands."""
    return {"name": "p6-interrupt", "dataset": "ring-8", "model": "mlp",
            "grid": {"loss": ["non-saturating", "lsgan-011"], "optimizer": ["adam"], "seed": list(range(n // 2))},
            "train": {"steps": steps, "batch_size": 64, "log_every": 10, "checkpoint_every": 50},
            "evaluation": {"n_samples": 500}}


def _running(sweep: Path, steps: int) -> bool:
    """Whether a trial not evaluated yet has a `running` row and at most half its steps checkpointed (only
    those rows are read)."""
    evaluated = {f.stem for f in (sweep / "evaluations").glob("*.parquet")}
    for f in (sweep / "trials").glob("*.parquet"):
        if f.stem in evaluated or not (pd.read_parquet(f).status == "running").any():
            continue
        ckpts = sorted((sweep / "checkpoints" / f.stem).glob("step-*.pt"))
        if not ckpts or int(ckpts[-1].name[5:14]) <= steps // 2:
            return True
    return False


def _wait(p: subprocess.Popen, sweep: Path, err: Path, timeout_s: float, steps: int, evaluated: int) -> None:
    """Until `evaluated` trials are evaluated and another is training."""
    deadline = time.monotonic() + timeout_s
    while len(list((sweep / "evaluations").glob("*.parquet"))) < evaluated or not _running(sweep, steps):
        if time.monotonic() > deadline or p.poll() is not None:
            raise RuntimeError(f"no trial training after {timeout_s:.0f} s:\n{err.read_text()[-3000:]}")
        time.sleep(0.1)


def unresumable(sweep: Path) -> tuple[int, int]:
    """(rows neither completed nor interrupted at their last checkpoint's step, interrupted rows)."""
    rows = pd.concat(pd.read_parquet(f) for f in (sweep / "trials").glob("*.parquet"))
    bad = int((~rows.status.isin(["completed", "interrupted"])).sum())
    for r in rows[rows.status == "interrupted"].itertuples():
        ckpts = sorted((sweep / "checkpoints" / r.trial_id).glob("step-*.pt"))
        bad += r.steps != (int(ckpts[-1].name[5:14]) if ckpts else 0)
    return bad, int((rows.status == "interrupted").sum())


def signal_run(folder: Path, n: int, sig: signal.Signals, wait_s: float = 900, steps: int = 500,
               evaluated: int = 10) -> tuple[list[Figure], str, str]:
    """One run of n trials of `steps` steps under folder, signalled once `evaluated` are evaluated: (figures,
    its stdout, its stderr)."""
    (folder / "c.yaml").write_text(yaml.safe_dump(interrupt_config(n, steps)))
    store, sweep = folder / "store", folder / "store" / "sweeps" / "big"
    env = {**_env(ROOT), "PREFECT_HOME": str(folder / "prefect")}
    out, err = folder / "out", folder / "err"
    with open(out, "w") as o, open(err, "w") as e:  # files: a full pipe would block it
        p = subprocess.Popen([sys.executable, "-m", "flows.cli", "run", str(folder / "c.yaml"), "--storage",
                              str(store), "--sweep-id", "big"], cwd=ROOT, stdout=o, stderr=e, text=True, env=env,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            _wait(p, sweep, err, wait_s, steps, evaluated)
        except BaseException:
            p.send_signal(signal.SIGINT)  # the run stops its Ray and API server itself
            p.wait(timeout=60)
            raise
        children = {c: _start_time(c) for c in descendants(p.pid)}
        t0 = time.monotonic()
        p.send_signal(sig)
        p.wait(timeout=120)
        took = time.monotonic() - t0
    time.sleep(1)
    left = [c for c, start in children.items() if _start_time(c) == start and _alive(c)]
    noise = [line for line in err.read_text().splitlines() if any(w in line for w in NOISE)]
    bad, interrupted = unresumable(sweep)
    what = f"{n} trials, {sig.name}"
    figures = [Figure(f"p6_signal_exit_s_{n}", took, f"P6 signal to exit seconds ({what})"),
               Figure(f"p6_signal_rc_{n}", float(p.returncode), f"P6 exit status after the signal ({what})"),
               Figure(f"p6_signal_noise_{n}", float(len(noise)), f"P6 stderr lines of trouble ({what})"),
               Figure(f"p6_signal_left_{n}", float(len(left)), f"P6 processes left 1 s after exit ({what})"),
               Figure(f"p6_signal_unresumable_{n}", float(bad), f"P6 trials not resumable ({what})"),
               Figure(f"p6_signal_interrupted_{n}", float(interrupted), f"P6 interrupted rows ({what})")]
    return figures, out.read_text(), err.read_text()


if __name__ == "__main__":
    args = sys.argv[1:]
    folder = Path(args[0])
    folder.mkdir(parents=True, exist_ok=False)
    n = int(args[1]) if len(args) > 1 and args[1].isdigit() else 10_000
    sig = signal.SIGTERM if "--sig" in args and args[args.index("--sig") + 1] == "TERM" else signal.SIGINT
    figures, _, err = signal_run(folder, n, sig)
    for f in figures:
        print(f"{f.key} = {f.value:.3f}  ({f.label})  [load {os.getloadavg()[0]:.1f}]", flush=True)
    print("stderr's last lines:\n" + "\n".join(err.splitlines()[-5:]))
