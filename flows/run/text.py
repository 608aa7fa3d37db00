"""The words a run shows: progress lines, the progress artifact's text, rankings as markdown, artifact keys."""
from __future__ import annotations

from gan_tasks.config import TrialConfig
from gan_tasks.data.schema import DONE


def progress_line(rows: list[dict], total: int, slots_: int, elapsed: float) -> str:
    """'sweep: 5/12 trials done (4 completed, 1 failed), 2 running, 41 s elapsed, ETA ~58 s'."""
    done = len(rows)
    bad = sum(r["status"] not in DONE for r in rows)
    stopped = sum(r["status"] == "stopped" for r in rows)
    trained = [r for r in rows if not r.get("skipped")]
    left = total - done
    eta = f", ETA ~{elapsed / len(trained) * left:.0f} s" if trained and left else ""
    cut = f", {stopped} stopped early" if stopped else ""
    return (f"sweep: {done}/{total} trials done ({done - bad - stopped} completed{cut}, {bad} failed), "
            f"{min(slots_, left)} running, {elapsed:.0f} s elapsed{eta}")


def progress_text(cfg: TrialConfig, step: int, steps: int, rate: float | None, status: str = "training") -> str:
    """The progress artifact's description: what the UI shows next to the bar, steps/s included."""
    speed = f", {rate:.0f} steps/s" if rate else ""
    return f"{cfg.label} ({cfg.trial_id}): {status}, step {step}/{steps}{speed}"


def ranking_md(ranks) -> str:
    if ranks.empty:
        return "(no metrics)"
    cols = ["metric", "rank", "loss", "optimizer", "mean", "ci95_low", "ci95_high", "best_value", "seeds",
            "seeds_failed", "p_value", "p_adj", "significant", "note"]
    return ranks[cols].to_markdown(index=False, floatfmt=".4g")


def artifact_key(sweep_id: str, what: str) -> str:
    # Artifact keys allow lowercase letters, digits and dashes only.
    return "".join(c if c.isalnum() else "-" for c in f"{what}-{sweep_id}".lower())
