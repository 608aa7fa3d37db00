"""The training tricks of a trial as a typed, torch-free setting (Tricks), its label, and the checks of
trick/loss/model combinations; gan_tasks/methods/tricks.py holds the torch code that applies them."""
from __future__ import annotations

from pydantic import Field

from gan_tasks.methods.catalog import LOSSES, MODELS
from gan_tasks.methods.params import Strict


class Tricks(Strict):
    """The training tricks of one trial, each off by default; part of its id when any is on.

    Upper bounds (le): far past any paper's setting, short of a value that only burns compute."""

    # Every default is "off"; the descriptions are what `gansweep list tricks` prints.
    d_steps: int | None = Field(None, gt=0, le=100, description="D steps per G step; default: the loss's own (1, wgan* 5)")
    label_smoothing: float = Field(0.0, ge=0, lt=0.5,
                                   description="one-sided label smoothing: real target 1 - s (Salimans 2016: 0.1)")
    label_flip: float = Field(0.0, ge=0, lt=0.5, description="probability of swapping a sample's real/fake label")
    instance_noise: float = Field(0.0, ge=0, le=100, description="std of Gaussian noise on D inputs, annealed linearly to 0")
    feature_matching: bool = Field(False, description="G matches the mean of D's last hidden features (Salimans 2016)")
    minibatch_discrimination: int = Field(0, ge=0, le=1024, description="minibatch discrimination kernels B; 0: off "
                                                               "(Salimans 2016 CIFAR code: 100)")
    minibatch_kernel_dim: int = Field(5, gt=0, le=1024, description="minibatch discrimination kernel size C (Salimans: 5)")
    historical_averaging: float = Field(0.0, ge=0, le=1e4, description="weight of ||theta - mean of past theta||^2")
    virtual_batchnorm: bool = Field(False, description="G's batch norm uses a fixed reference batch (Salimans 2016)")
    unrolled_steps: int = Field(0, ge=0, le=100, description="G steps against D unrolled k steps ahead, G's gradient taken "
                                                     "back through the k D updates of D's own optimiser (sgd, adam, "
                                                     "rmsprop; others: plain gradient steps) (Metz 2016: 5-10)")
    # Off: the true unrolled objective. On: G sees the unrolled D's weights as constants (cheaper, no 2nd order).
    unrolled_first_order: bool = Field(False, description="unrolled_steps without backprop through the D updates "
                                                          "(first-order approximation)")
    # PacGAN (Lin et al. 2018): not the seed-packing speed feature `pack_seeds` (gan_tasks/training/packing.py).
    pac: int = Field(1, ge=1, le=16, description="PacGAN packing m: D sees m samples concatenated (points: width "
                                                 "m*dim, images: m*C channels), each group all real or all fake; "
                                                 "1: off (Lin 2018: 2-4)")

    @property
    def short(self) -> str:
        """The tricks that are on, e.g. 'label_smoothing=0.1,unrolled_steps=5'; '' when none is."""
        return tricks_label(self.model_dump(mode="json"))


def tricks_label(tricks: dict) -> str:
    """'k=v,...' of the non-default entries of a (json-dumped) Tricks; for labels and report cells."""
    off = Tricks().model_dump(mode="json")
    return ",".join(f"{k}={v}" for k, v in sorted(tricks.items()) if k not in off or off[k] != v)


def check_tricks(tricks: Tricks, loss_names: list[str], model_name: str, where: str = "tricks") -> None:
    """Refuse trick/loss/model combinations that cannot work, naming the field (before any compute)."""
    model = MODELS.get(model_name)
    no_labels = sorted({n for n in loss_names if not LOSSES.get(n).labels})
    if (tricks.label_smoothing or tricks.label_flip) and no_labels:
        valid = [n for n in LOSSES.names() if LOSSES.get(n).labels]
        raise ValueError(f"{where}.label_smoothing / {where}.label_flip need a cross-entropy loss "
                         f"({', '.join(valid)}); {', '.join(no_labels)} has no real/fake labels")
    needs_body = {"feature_matching": tricks.feature_matching,
                  "minibatch_discrimination": tricks.minibatch_discrimination}
    for field, on in needs_body.items():
        if on and model.autoencoder:
            raise ValueError(f"{where}.{field} needs a discriminator with a feature layer; "
                             f"model {model_name!r} has an autoencoder discriminator")
    if tricks.virtual_batchnorm and not model.batchnorm_g:
        valid = [n for n in MODELS.names() if MODELS.get(n).batchnorm_g]
        raise ValueError(f"{where}.virtual_batchnorm needs a generator with batch norm ({', '.join(valid)}); "
                         f"model {model_name!r} has none")
    if tricks.unrolled_first_order and not tricks.unrolled_steps:
        raise ValueError(f"{where}.unrolled_first_order needs {where}.unrolled_steps > 0")


def merge_tricks(base: Tricks, entries: tuple[Tricks, ...], loss_names: list[str],
                 model_name: str) -> tuple[Tricks, ...]:
    """grid.tricks: each entry's keys (only those it sets) over the sweep's `tricks:`, then checked.

    The result is fully resolved (every key set), so a dumped and re-read config resolves the same."""
    out = []
    for i, entry in enumerate(entries):
        merged = Tricks.model_validate({**base.model_dump(), **entry.model_dump(include=entry.model_fields_set)})
        check_tricks(merged, loss_names, model_name, where=f"grid.tricks.{i}")
        out.append(merged)
    return tuple(out)
