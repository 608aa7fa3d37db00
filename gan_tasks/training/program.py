"""The Program interface: one kind of training (the unconditional GAN, a conditional GAN, CycleGAN).

A program is chosen by name (`program:` in the sweep config; gan_tasks/methods/programs.py registers
each name with its torch-free metadata and a Ref to its class). The shared trial loop
(gan_tasks/training/trial.py) stays program-agnostic and owns:

- the step counter and the loop (train.steps, log_every, checkpoint_every, progress callbacks, the
  training-time evaluation hook);
- the trial's random streams: torch's global RNG (seeded with the trial seed just before the
  program is built, so network init draws from it) and `gen`, a torch.Generator(seed) that every
  random draw of a training step must take (batches, z, labels, noise), so that a resume is
  bit-identical; the loop checkpoints both;
- checkpoint files: every checkpoint_every steps it saves {"step", RNG states, **state_dict()},
  keeps the latest keep_checkpoints, and on resume hands the newest readable one to load_state_dict;
- metric rows (schema.METRICS columns; those a step does not return are NaN), buffered in memory and
  written to Parquet with each checkpoint; the trials row; divergence (a non-finite loss or gradient
  norm in a logged row, or a non-finite weight of any network in modules(), marks the trial diverged).

A program owns its data view, networks, optimisers and whatever else it carries across steps.

Several networks or optimisers (CycleGAN: G_ab, G_ba, D_a, D_b): name each one in modules() (every
network, checked for finite weights) and in state_dict() (networks, optimisers, pools, by whatever
keys it likes: {"G_ab": ..., "G_ba": ..., "D_a": ..., "D_b": ..., "opt_g": ..., "opt_d": ...});
the loop checkpoints whatever state_dict() holds, so nothing in it changes. `G_eval` is the network
that evaluation samples through (for CycleGAN: one direction, the rest through the program itself).

Evaluation: the dataset's metrics (gan_tasks/evaluation/evaluate.py, EVALUATIONS) see `sample()` and
`G_eval`; metrics of a program's own are declared by name in its ProgramSpec (`metrics`) and computed
by a function registered under the program's name in evaluate.PROGRAM_METRICS, which reads the
program's attributes; `report_samples()` chooses what the report shows.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from gan_tasks.config import TrialConfig
    from gan_tasks.data.storage import Storage


class Program(ABC):
    """One kind of training. Built once per trial by the loop, as Program(cfg, storage, device, gen)."""

    def __init__(self, cfg: "TrialConfig", storage: "Storage", device: torch.device, gen: torch.Generator):
        """Load the data (from storage: images memory-mapped, training/mapped.py; arrays through
        gan_tasks/data/datasets.load_array), build networks and
        optimisers. torch.manual_seed(cfg.seed) has just been called; draw nothing from `gen` here."""
        self.cfg, self.storage, self.device, self.gen = cfg, storage, device, gen

    @abstractmethod
    def modules(self) -> dict[str, torch.nn.Module]:
        """Every network by name; the loop checks their weights for non-finite values at each checkpoint."""

    @abstractmethod
    def state_dict(self) -> dict:
        """Everything carried across steps (networks, optimisers, averages, loss state, pools), by name:
        the checkpoint's entries besides the loop's "step" and RNG states. torch.load(weights_only=True)
        must read it back: tensors, numbers, strings and lists / dicts of them."""

    @abstractmethod
    def load_state_dict(self, state: dict) -> None:
        """Restore what state_dict() returned (a checkpoint from an older version may lack optional keys)."""

    @abstractmethod
    def train_step(self, step: int, log_now: bool) -> dict[str, torch.Tensor] | None:
        """One training step (all its network updates); `step` counts the steps done before it. When
        log_now: {metric column: 0-dim tensor} (schema.METRICS names, kept on the device: the loop
        syncs once per row), else None. Every random draw takes self.gen. Keys that are not columns
        of schema.METRICS are not written: a new quantity is a new (nullable float) column there."""

    @property
    @abstractmethod
    def G_eval(self) -> torch.nn.Module:
        """The network z -> sample that evaluation uses (torch-fidelity calls it with z of train.z_dim)."""

    def report_samples(self) -> np.ndarray | None:
        """Optional: what the report shows for the trial (saved as samples/<trial_id>.npy by evaluation).
        None: the default (2-D data: evaluation.n_samples points over the modes; images: an 8x8 grid of
        sample()). Images are drawn as a grid whose row width is the ProgramSpec's sample_columns."""
        return None

    @torch.no_grad()
    def sample(self, n: int, seed: int = 12345) -> np.ndarray:
        """n samples of G_eval from a z generator of its own (fixed seed: evaluations are comparable)."""
        g_eval = self.G_eval
        g_eval.eval()
        g = torch.Generator(self.device).manual_seed(seed)
        z = torch.randn(n, self.cfg.train.z_dim, generator=g, device=self.device)
        out = g_eval(z).float().cpu().numpy()
        for m in self.modules().values():
            m.train()
        return out
