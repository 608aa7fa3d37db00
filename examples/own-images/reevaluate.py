"""A copy of a finished sweep whose trials are evaluated again under other evaluation settings (--set, as
for gansweep run), so that `gansweep compare` meets numbers made differently and refuses them:
`python reevaluate.py STORAGE SWEEP NEW_SWEEP --set evaluation.fidelity_samples=256`."""
from __future__ import annotations

import argparse

import yaml

from gan_tasks.config import expand_grid, parse_config
from gan_tasks.config.load import apply_overrides, resolve_dataset
from gan_tasks.data.storage import Storage
from gan_tasks.evaluation.evaluate import evaluate_trial
from gan_tasks.evaluation.report import rebuild


def main(url: str, sweep: str, new: str, sets: list[str]) -> None:
    st = Storage.parse(url)
    for folder in ("trials", "metrics", "checkpoints", "samples"):
        for path in st.fs.find(st.uri("sweeps", sweep, folder)):
            rel = path.split(f"/sweeps/{sweep}/", 1)[1]
            st.write_bytes(st.fs.cat_file(path), "sweeps", new, *rel.split("/"))
    raw = yaml.safe_load(st.read_bytes("sweeps", sweep, "config.yaml"))
    st.write_bytes(st.read_bytes("sweeps", sweep, "config.yaml"), "sweeps", new, "config.yaml")
    cfg = parse_config(resolve_dataset(apply_overrides(raw, sets), st))
    for t in expand_grid(cfg):
        evaluate_trial(t, st, new, cfg.evaluation)
    print(rebuild(st, new)[2])


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("storage"), p.add_argument("sweep"), p.add_argument("new")
    p.add_argument("--set", action="append", default=[], dest="sets")
    a = p.parse_args()
    main(a.storage, a.sweep, a.new, a.sets)
