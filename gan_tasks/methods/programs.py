"""Training programs by name (`program:` in a sweep config; `gansweep list programs`), torch-free.

A program is one kind of training: the unconditional GAN (the default), the conditional GANs, ...
Its class implements gan_tasks/training/program.py's Program interface and is named here by Ref, so
validating a config never imports torch. What the trial loop shares (checkpoint/resume, Parquet rows,
progress) is program-agnostic; what a program cannot combine with is refused at validation
(`check`), naming the field.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from gan_tasks.methods.registry import Ref, Registry

# The default program: configs without `program:` train it, and their trial ids stay as they were
# (config/trial.py leaves the default out of the hashed config).
DEFAULT_PROGRAM = "gan"


@dataclass(frozen=True)
class ProgramSpec:
    build: Callable  # (cfg, storage, device, gen) -> Program (gan_tasks/training/program.py)
    # Seed-packing (pack_seeds > 1, gan_tasks/training/packing.py) trains it: only the plain GAN step.
    packable: bool = False
    # Trains on class labels: the dataset must store them (DatasetSpec.classes).
    labels: bool = False
    # Metrics it adds to the dataset's own (gan_tasks/evaluation/ computes them; DIRECTIONS ranks them).
    metrics: tuple[str, ...] = ()
    # Tricks it can apply (gan_tasks/methods/trick_settings.py field names); None: every one.
    tricks: tuple[str, ...] | None = None
    # Images per row of the report's sample grid (Program.report_samples); None: a square grid.
    sample_columns: int | None = None
    # Further config-time checks: (sweep) -> None, raising ValueError naming the field.
    check: Callable[[Any], None] | None = None

    @property
    def summary(self) -> str:
        """What `gansweep list programs` shows beside the description."""
        parts = [f"metrics: {', '.join(self.metrics)} + the dataset's" if self.metrics else "metrics: the dataset's",
                 "labelled data" if self.labels else "", "pack_seeds" if self.packable else "no pack_seeds",
                 f"tricks: {', '.join(self.tricks) or 'none'}" if self.tricks is not None else "every trick"]
        return "; ".join(p for p in parts if p)


PROGRAMS: Registry[ProgramSpec] = Registry("program")

PROGRAMS.add("gan", ProgramSpec(Ref("gan_tasks.training.programs.gan:GAN"), packable=True),
             "unconditional GAN: G(z) against D(x), every loss, optimizer, model and trick (the default)")
