"""The report's figures, each a base64 PNG: training curves as bands over seeds, 2-D sample scatters and
image grids (pixels written by Pillow directly)."""
from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")  # no display on cluster nodes
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from gan_tasks.evaluation.rankings import HIGHER_IS_BETTER  # noqa: E402


def png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def raw_png(rgb: np.ndarray) -> str:
    """An (H, W, 3) float image in [0, 1] as base64 PNG, pixels as they are: no figure, no axes, and
    Pillow directly (a matplotlib figure, then matplotlib's imsave, per trial was most of a large report's
    time: bench/README.md, bench/results.md). Pixels as imsave wrote them: x * 255 truncated."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8), "RGB").save(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode()


SCATTER_PX = 200  # pixels per side of a trial's 2-D sample plot


def scatter(samples: np.ndarray, modes: np.ndarray | None) -> str:
    """Generated points (blue, denser = darker) over the true modes (red crosses), on a square
    around the modes with a grey frame; points outside it are not drawn."""
    lim = (np.abs(modes).max() * 1.5 + 0.5) if modes is not None else float(np.abs(samples).max() or 1.0)
    n = SCATTER_PX

    def px(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # y up, as on a plot
        ij = np.floor((xy + lim) / (2 * lim) * n).astype(int)
        return n - 1 - ij[:, 1], ij[:, 0]

    r, c = px(samples[np.isfinite(samples).all(axis=1)])
    hits = np.zeros((n, n))
    for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1)):  # a point is a 2x2 dot
        keep = (r + dr >= 0) & (r + dr < n) & (c + dc >= 0) & (c + dc < n)
        np.add.at(hits, (r[keep] + dr, c[keep] + dc), 1.0)
    ink = 1 - 0.4 ** hits  # each point on a pixel: 60 % more blue; overlaps darken
    img = np.ones((n, n, 3)) - ink[..., None] * (1 - np.array([0.12, 0.47, 0.71]))  # tab:blue
    for mr, mc in zip(*px(modes)) if modes is not None else []:
        for d in range(-4, 5):  # a red x, 9 pixels wide
            for rr, cc in ((mr + d, mc + d), (mr + d, mc - d)):
                if 0 <= rr < n and 0 <= cc < n:
                    img[rr, cc] = (0.84, 0.15, 0.16)  # tab:red
    img[[0, -1], :], img[:, [0, -1]] = 0.6, 0.6
    return raw_png(img)


def image_grid(images: np.ndarray, cols: int | None = None) -> str:
    """A grid of generated images in [-1, 1] (N, C, H, W): square (8x8), or `cols` a row (conditional
    programs: a row per class)."""
    n, c, h, w = images.shape
    k = cols or int(np.ceil(np.sqrt(n)))
    canvas = np.ones((int(np.ceil(n / k)) * (h + 2), k * (w + 2), c), dtype=np.float32)
    for i, img in enumerate(images):
        r, col = divmod(i, k)
        canvas[r * (h + 2):r * (h + 2) + h, col * (w + 2):col * (w + 2) + w] = (img.transpose(1, 2, 0) + 1) / 2
    canvas = np.repeat(canvas, 3, axis=-1) if c == 1 else canvas
    return raw_png(np.kron(canvas, np.ones((2, 2, 1))))  # twice the size: 28-px digits stay legible


CURVES = (("loss_d", "D loss"), ("loss_g", "G loss"), ("grad_norm_d", "D gradient norm"),
          ("grad_norm_g", "G gradient norm"), ("wasserstein", "Wasserstein estimate"))


def bands(df: pd.DataFrame, trials: pd.DataFrame, columns: list[tuple[str, str]], by: str = "step") -> str:
    """One panel per column: per (loss, optimizer) the mean over seeds with a +-1 std band."""
    fig, axes = plt.subplots(1, len(columns), figsize=(3.6 * len(columns), 2.8), squeeze=False)
    m = df.merge(trials[["trial_id", "loss", "optimizer"]], on="trial_id")
    for i, ((loss, opt), g) in enumerate(m.groupby(["loss", "optimizer"])):
        agg = g.groupby(by)[[c for c, _ in columns]].agg(["mean", "std"])
        color = f"C{i % 10}"  # one colour per cell in every panel, also where a cell has no curve
        for ax, (col, _) in zip(axes[0], columns):
            mean, std = agg[(col, "mean")], agg[(col, "std")].fillna(0)
            if mean.notna().any():
                ax.plot(agg.index, mean, label=f"{loss}/{opt}", lw=1, color=color)
                ax.fill_between(agg.index, mean - std, mean + std, alpha=0.2, color=color)
    for ax, (_, title) in zip(axes[0], columns):
        ax.set_title(f"{title} (mean ± std over seeds)", fontsize=8), ax.set_xlabel(by, fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0][0].legend(fontsize=6)  # the first panel has every cell
    return png(fig)


def curves(metrics: pd.DataFrame, trials: pd.DataFrame) -> str:
    cols = [(c, t) for c, t in CURVES if c in metrics and metrics[c].notna().any()]
    return bands(metrics, trials, cols)


def quality(evaluations: pd.DataFrame, trials: pd.DataFrame) -> str | None:
    """Metrics measured at several steps (evaluation.eval_every) as curves; None if there are none."""
    ev = evaluations[evaluations.metric.isin(HIGHER_IS_BETTER)]
    multi = [m for m, g in ev.groupby("metric") if g.step.nunique() > 1]
    if not multi:
        return None
    wide = ev[ev.metric.isin(multi)].pivot_table(index=["trial_id", "step"], columns="metric",
                                                 values="value").reset_index()
    return bands(wide, trials, [(m, m) for m in sorted(multi)])
