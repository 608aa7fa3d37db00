"""P6 fan-in (issue 28 item 2): the work the flow's `report` task does on a stored sweep once its trials are
done (rankings, search tables, report/index.html, every damaged evaluation moved aside), without Prefect's
artifacts, timed in a subprocess per checkout on the same stored sweep: this one and, with --before, another.
A checkout whose fan_in.py has no `_rebuilt` (before issue 28's ninth pass) first reads every evaluation file
to find damaged ones, as its report task did, then rebuilds.

- `p6_fan_in_work_s_<label>[_before]`: seconds, start-up included (the same imports in both);
- `p6_fan_in_files_<label>`: files under the sweep's trials/, metrics/, evaluations/ and eval_every/.

Acceptance: none asserted; goal: flat cost per trial at 10,000 trials (ninth pass: 104.5 s of fan-in).
Theoretical minimum: reading each trial's row and final evaluation once.

    python -m bench.p6_fan_in STORAGE SWEEP_ID [--before CHECKOUT] [--label L]
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timezone

from bench.p5_many_trials import ROOT, _env
from gan_tasks.data.storage import Storage

_WORK = """
import sys
from gan_tasks.data.storage import Storage
import flows.run.fan_in as f
st, sid = Storage.parse(sys.argv[1]), sys.argv[2]
if hasattr(f, "_rebuilt"):
    f._rebuilt(st, sid)
else:
    from gan_tasks.evaluation.report import rebuild
    for folder in (("sweeps", sid, "evaluations"), ("sweeps", sid, "eval_every")):
        for name in st.ls(*folder):
            st.read_parquet(*folder, name)
    rebuild(st, sid)
"""


def timed(st: Storage, sid: str, checkout: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", _WORK, st.url, sid], cwd=checkout, env=_env(checkout), check=True,
                   capture_output=True)
    return time.perf_counter() - t0


if __name__ == "__main__":
    args = sys.argv[1:]
    st, sid = Storage.parse(args[0]), args[1]
    before = os.path.abspath(args[args.index("--before") + 1]) if "--before" in args else None
    label = args[args.index("--label") + 1] if "--label" in args else sid
    files = sum(len(st.ls("sweeps", sid, f)) for f in ("trials", "metrics", "evaluations", "eval_every"))
    print(f"p6_fan_in_files_{label} = {files}  (P6 files under trials/, metrics/, evaluations/, eval_every/)")
    for checkout, tag in ([(before, "_before")] if before else []) + [(ROOT, "")]:
        took = timed(st, sid, checkout)
        load = f"[load {os.getloadavg()[0]:.1f}, {datetime.now(timezone.utc):%H:%M:%S}]"
        print(f"p6_fan_in_work_s_{label}{tag} = {took:.3f}  (P6 report task's work, {checkout})  {load}", flush=True)
