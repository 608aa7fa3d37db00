"""A sweep's rankings of FID / KID with the provenance every value was made under (from storage alone).
`python show_rankings.py STORAGE SWEEP_ID`"""
from __future__ import annotations

import json
import sys

from gan_tasks.data.storage import Storage
from gan_tasks.evaluation.report import load_frames


def main(url: str, sweep_id: str) -> None:
    st = Storage.parse(url)
    ranks = st.read_table("sweeps", sweep_id, "rankings").to_pandas()
    cols = ["metric", "rank", "loss", "optimizer", "seeds", "mean", "std", "ci95_low", "ci95_high", "p_adj", "note"]
    print(ranks[ranks.metric.isin(["fid", "kid"])][cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    ev = load_frames(st, sweep_id)["evaluations"]
    final = ev[ev.final & ev.metric.isin(["fid", "kid"])]
    print(f"\n{len(final)} final FID/KID rows, {final.provenance_key.nunique()} provenance key(s):")
    for k, p in final.groupby("provenance_key").provenance.first().items():
        print(f"{k}: {json.dumps(json.loads(p), indent=None)}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
