"""The sweep report, built from storage alone: report/index.html with images embedded."""
from __future__ import annotations

import base64
import html
import io
import json

import matplotlib

matplotlib.use("Agg")  # no display on cluster nodes
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from gan_tasks.datasets import DATASETS  # noqa: E402
from gan_tasks.storage import Storage  # noqa: E402


def load_frames(storage: Storage, sweep_id: str) -> dict[str, pd.DataFrame]:
    out = {}
    for name in ("trials", "metrics", "evaluations"):
        t = storage.read_table("sweeps", sweep_id, name)
        out[name] = t.to_pandas() if t is not None else pd.DataFrame()
    return out


def summary_table(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per trial: identity, status, and its final evaluation metrics as columns."""
    trials = frames["trials"]
    if trials.empty:
        return trials
    cols = ["trial_id", "loss", "optimizer", "seed", "status", "steps", "wall_seconds", "error"]
    table = trials[cols].copy()
    ev = frames["evaluations"]
    if not ev.empty:
        last = ev.sort_values("step").groupby(["trial_id", "metric"]).tail(1)
        table = table.merge(last.pivot(index="trial_id", columns="metric", values="value").reset_index(),
                            on="trial_id", how="left")
    return table.sort_values(["loss", "optimizer", "seed"]).reset_index(drop=True)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _scatter(samples: np.ndarray, modes: np.ndarray | None, title: str) -> str:
    fig, ax = plt.subplots(figsize=(3, 3))
    ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.4, c="tab:blue", label="generated")
    if modes is not None:
        ax.scatter(modes[:, 0], modes[:, 1], s=40, marker="x", c="tab:red", label="true modes")
        pad = np.abs(modes).max() * 0.5 + 0.5
        lim = np.abs(modes).max() + pad
        ax.set_xlim(-lim, lim), ax.set_ylim(-lim, lim)
    ax.set_title(title, fontsize=8)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=6)
    return _png(fig)


def _image_grid(images: np.ndarray, title: str) -> str:
    """An 8x8 grid of generated images in [-1, 1] (N, C, H, W)."""
    n, c, h, w = images.shape
    k = int(np.ceil(np.sqrt(n)))
    canvas = np.ones((k * (h + 2), k * (w + 2), c), dtype=np.float32)
    for i, img in enumerate(images):
        r, col = divmod(i, k)
        canvas[r * (h + 2):r * (h + 2) + h, col * (w + 2):col * (w + 2) + w] = (img.transpose(1, 2, 0) + 1) / 2
    fig, ax = plt.subplots(figsize=(3, 3))
    ax.imshow(canvas.squeeze(-1) if c == 1 else canvas, cmap="gray", vmin=0, vmax=1)
    ax.set_title(title, fontsize=8), ax.axis("off")
    return _png(fig)


def _curves(metrics: pd.DataFrame, trials: pd.DataFrame) -> str:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3))
    m = metrics.merge(trials[["trial_id", "loss", "optimizer"]], on="trial_id")
    for (loss, opt), g in m.groupby(["loss", "optimizer"]):
        agg = g.groupby("step")[["loss_d", "loss_g"]].agg(["mean", "std"])
        for ax, col in zip(axes, ("loss_d", "loss_g")):
            mean, std = agg[(col, "mean")], agg[(col, "std")].fillna(0)
            ax.plot(agg.index, mean, label=f"{loss}/{opt}", lw=1)
            ax.fill_between(agg.index, mean - std, mean + std, alpha=0.2)
    for ax, col in zip(axes, ("D loss", "G loss")):
        ax.set_title(f"{col} (mean ± std over seeds)", fontsize=9), ax.set_xlabel("step")
    axes[1].legend(fontsize=6)
    return _png(fig)


def render_html(storage: Storage, sweep_id: str) -> str:
    frames = load_frames(storage, sweep_id)
    table = summary_table(frames)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>gansweep {html.escape(sweep_id)}</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}"
             "td,th{border:1px solid #ccc;padding:3px 6px}.grid{display:flex;flex-wrap:wrap;gap:8px}"
             ".bad{background:#fdd}</style></head><body>",
             f"<h1>Sweep {html.escape(sweep_id)}</h1>"]
    if table.empty:
        parts.append("<p>No trials recorded.</p>")
    else:
        counts = table["status"].value_counts().to_dict()
        parts.append(f"<p>{len(table)} trials: {html.escape(json.dumps(counts))}</p>")
        parts.append(table.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="",
                                   classes="trials", border=0))
    if not frames["metrics"].empty:
        parts.append(f"<h2>Training curves</h2><img src='data:image/png;base64,{_curves(frames['metrics'], frames['trials'])}'>")
    parts.append("<h2>Generated samples</h2><div class='grid'>")
    configs = frames["trials"].set_index("trial_id")["config_json"].to_dict() if not table.empty else {}
    for _, row in table.iterrows():
        name = f"{row['trial_id']}.npy"
        if not storage.exists("sweeps", sweep_id, "samples", name):
            continue
        samples = np.load(io.BytesIO(storage.read_bytes("sweeps", sweep_id, "samples", name)))
        cfg = json.loads(configs[row["trial_id"]])
        spec = DATASETS.get(cfg["dataset"]["name"])
        modes = spec.modes(**cfg["dataset"]["params"]) if spec.modes else None
        title = f"{row['loss']}/{row['optimizer']}/seed {row['seed']}"
        if "modes_covered" in row and pd.notna(row.get("modes_covered")):
            title += f"\n{int(row['modes_covered'])} modes"
        png = _scatter(samples, modes, title) if samples.ndim == 2 else _image_grid(samples, title)
        parts.append(f"<figure><img alt='{html.escape(title)}' src='data:image/png;base64,{png}'></figure>")
    parts.append("</div></body></html>")
    return "".join(parts)


def write_report(storage: Storage, sweep_id: str) -> str:
    storage.write_bytes(render_html(storage, sweep_id).encode(), "sweeps", sweep_id, "report", "index.html")
    return storage.uri("sweeps", sweep_id, "report", "index.html")
