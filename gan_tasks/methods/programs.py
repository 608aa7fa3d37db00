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

from gan_tasks.methods.catalog import MODELS
from gan_tasks.methods.params import FieldError
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
    # Trains on an unpaired two-domain dataset (DatasetSpec.two_domain), and only on one.
    two_domain: bool = False
    # Can update D and G simultaneously (train.update: simultaneous): its step is the GAN program's.
    simultaneous: bool = False
    # Further config-time checks: (sweep) -> None, raising ValueError naming the field.
    check: Callable[[Any], None] | None = None
    doc: str = ""  # one line for `gansweep list` (a plugin's; built-ins give it to PROGRAMS.add)

    @property
    def summary(self) -> str:
        """What `gansweep list programs` shows beside the description."""
        parts = [f"metrics: {', '.join(self.metrics)} + the dataset's" if self.metrics else "metrics: the dataset's",
                 "labelled data" if self.labels else "", "two-domain data" if self.two_domain else "", "pack_seeds" if self.packable else "no pack_seeds",
                 f"tricks: {', '.join(self.tricks) or 'none'}" if self.tricks is not None else "every trick"]
        return "; ".join(p for p in parts if p)


PROGRAMS: Registry[ProgramSpec] = Registry("program", ProgramSpec, plugins=True)

PROGRAMS.add("gan", ProgramSpec(Ref("gan_tasks.training.programs.gan:GAN"), packable=True, simultaneous=True),
             "unconditional GAN: G(z) against D(x), every loss, optimizer, model and trick (the default)")


# --- conditional GANs (gan_tasks/training/programs/conditional.py) ---------------------------------
# Tricks that act on scores, inputs or weights whatever D looks like; the others assume an unlabelled
# D (pac packs samples of different labels, feature matching / minibatch discrimination / unrolling
# reach into D's layers, virtual batch norm wraps G's).
COND_TRICKS = ("d_steps", "label_smoothing", "label_flip", "instance_noise", "historical_averaging")
COND_METRICS = ("class_accuracy", "class_mode_accuracy", "class_mode_accuracy_min", "intra_fid", "intra_kid")


def _feature_d(sweep: Any) -> None:
    """Projection and AC-GAN heads read D's features: no autoencoder discriminator (BEGAN)."""
    if MODELS.get(sweep.model.name).autoencoder:
        ok = [n for n in MODELS.names() if not MODELS.get(n).autoencoder]
        raise FieldError("model", f"program {sweep.program!r} needs a discriminator with a feature layer; "
                                  f"{sweep.model.name!r} is an autoencoder; valid models: {', '.join(ok)}")


def _cond(cls: str) -> ProgramSpec:
    return ProgramSpec(Ref(f"gan_tasks.training.programs.conditional:{cls}"), labels=True, metrics=COND_METRICS, sample_columns=8,
                       tricks=COND_TRICKS, simultaneous=True, check=_feature_d)


PROGRAMS.add("cgan-concat", _cond("Conditional"),
             "conditional GAN, one-hot label concatenated to G's z and to D's input (Mirza & Osindero 2014)")
PROGRAMS.add("cgan-projection", _cond("Projection"),
             "conditional GAN with a projection discriminator D = psi(phi(x)) + embed(y).phi(x) (Miyato & Koyama 2018)")
PROGRAMS.add("acgan", _cond("ACGAN"),
             "auxiliary-classifier GAN: D also classifies real and generated samples, G is trained to be "
             "classified as its label (Odena et al. 2017)")


# --- CycleGAN (gan_tasks/training/programs/cyclegan.py) --------------------------------------------
# d_steps is the only trick with a meaning here (WGAN's critic steps); the others are built around one
# G(z) and one D. Its metrics, per direction a2b (G on A's test images) and b2a (F on B's): error
# against ground truth, label preservation, cycle error, FID/KID (gan_tasks/evaluation/cyclegan.py).
CYCLE_METRICS = tuple(f"{d}_{m}" for d in ("a2b", "b2a") for m in ("gt_l1", "label_acc", "cycle_l1", "fid", "kid"))


def _cyclegan(sweep: Any) -> None:
    """The cyclegan-resnet networks, evaluated once after training (the two-domain dataset: two_domain)."""
    name = sweep.program
    if MODELS.get(sweep.model.name).program != name:
        ok = [n for n in MODELS.names() if MODELS.get(n).program == name]
        raise FieldError("model", f"program {name!r} needs its own networks; {sweep.model.name!r} builds G(z) and D(x); "
                                  f"valid models: {', '.join(ok)}")
    if sweep.evaluation.eval_every or sweep.early_stop:
        field = "evaluation.eval_every" if sweep.evaluation.eval_every else "early_stop"
        raise FieldError(field, f"program {name!r} is evaluated once, after training; remove it")
    if sweep.evaluation.feature_extractor is not None:
        raise FieldError("evaluation.feature_extractor", f"program {name!r} measures FID/KID with each domain's own "
                                                         "classifier (gansweep evaluator train); leave it unset")


PROGRAMS.add("cyclegan", ProgramSpec(Ref("gan_tasks.training.programs.cyclegan:CycleGAN"), metrics=CYCLE_METRICS,
                                     tricks=("d_steps",), sample_columns=8, two_domain=True,
                                     check=_cyclegan),
             "CycleGAN (Zhu et al. 2017): G: A->B, F: B->A, D_A, D_B on an unpaired two-domain dataset; model "
             "cyclegan-resnet (cycle 10, identity 0.5 x cycle, pool 50)")
