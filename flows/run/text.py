"""The words a run shows: progress lines, the progress artifact's text, rankings as markdown, artifact keys."""
from __future__ import annotations

from gan_tasks.config import TrialConfig
from gan_tasks.data.schema import DONE


class Tally:
    """A sweep's trial results counted as they come, so that each progress line costs the same at the
    10,000th trial as at the first."""

    def __init__(self, total: int, slots_: int):
        self.total, self.slots, self.done, self.bad, self.stopped, self.trained = total, slots_, 0, 0, 0, 0

    def add(self, rows: list[dict]) -> "Tally":
        for r in rows:
            self.done += 1
            self.bad += r["status"] not in DONE
            self.stopped += r["status"] == "stopped"
            self.trained += not r.get("skipped")
        return self

    def line(self, elapsed: float) -> str:
        """'sweep: 5/12 trials done (4 completed, 1 failed), 2 running, 41 s elapsed, ETA ~58 s'."""
        left = self.total - self.done
        eta = f", ETA ~{elapsed / self.trained * left:.0f} s" if self.trained and left else ""
        cut = f", {self.stopped} stopped early" if self.stopped else ""
        return (f"sweep: {self.done}/{self.total} trials done ({self.done - self.bad - self.stopped} completed{cut}, "
                f"{self.bad} failed), {min(self.slots, left)} running, {elapsed:.0f} s elapsed{eta}")


def progress_line(rows: list[dict], total: int, slots_: int, elapsed: float) -> str:
    """The progress line after these rows (Tally.line)."""
    return Tally(total, slots_).add(rows).line(elapsed)


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
