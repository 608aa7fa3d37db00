"""The growth curve as a figure (docs/growth-curve.png) from committed logs of bench/p6_growth.py runs: per
number of trials (log scale), wall / ideal, wall seconds, the driver's CPU per trial, its peak memory, fan-in seconds and
report-rebuild seconds, for this checkout (keys without a suffix), the code before (keys `_before`), the runs on
a loopback cluster (`_cluster`) and Ray Tune on the same trials (`_tune`: wall / ideal only).
A key given by several logs takes the last log's value (files in name order).

    python -m bench.p6_plot [LOG ...] [--out docs/growth-curve.png]    (default: bench/p6-logs/*.log)
"""
from __future__ import annotations

import glob
import os
import re
import sys

PANELS = (("p6_ratio", "wall / ideal"), ("p6_wall_s", "sweep wall s"), ("p6_driver_cpu_ms", "driver CPU ms per trial"),
          ("p6_driver_rss_mb", "driver peak RSS (MB)"), ("p6_fan_in_s", "fan-in s (last trial -> report)"),
          ("p6_report_s", "report rebuild s"))
LINE = re.compile(r"^(p6_[a-z_]+?)_(\d+)(_before_cluster|_before|_cluster|_tune)? = (-?[\d.]+)")
SERIES = (("", "this checkout", "o-"), ("_before", "main before (c0203e0)", "s--"),
          ("_cluster", "loopback cluster, 2 nodes", "^-"), ("_tune", "Ray Tune, same trials", "D"))


def read(paths: list[str]) -> dict[tuple[str, str], dict[int, float]]:
    """{(key, suffix): {trials: value}} from the logs' figure lines."""
    out: dict[tuple[str, str], dict[int, float]] = {}
    for path in sorted(paths):
        with open(path) as f:
            for line in f:
                if m := LINE.match(line):
                    out.setdefault((m[1], m[3] or ""), {})[int(m[2])] = float(m[4])
    return out


def plot(values: dict[tuple[str, str], dict[int, float]], out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PANELS), figsize=(3.3 * len(PANELS), 3.0))
    for ax, (key, title) in zip(axes, PANELS):
        for suffix, label, style in SERIES:
            pts = sorted(values.get((key, suffix), {}).items())
            if pts:
                ax.plot([n for n, _ in pts], [v for _, v in pts], style, label=label, ms=4)
        ax.set_xscale("log")
        ax.set_xlabel("trials", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
        if key in ("p6_ratio", "p6_wall_s"):  # Ray Tune's point is an order of magnitude above
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=90)


if __name__ == "__main__":
    args = sys.argv[1:]
    out = args[args.index("--out") + 1] if "--out" in args else "docs/growth-curve.png"
    logs = [a for i, a in enumerate(args) if a != "--out" and (i == 0 or args[i - 1] != "--out")]
    logs = logs or glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "p6-logs", "*.log"))
    plot(read(logs), out)
    print(out)
