"""Every registered loss, optimizer and model: names, docs, defaults, parameter schemas and flags,
without torch (trick settings: trick_settings.py; evaluation options: gan_tasks/config/eval_options.py).

This is what validation reads (`gansweep validate`, `gansweep list`, and `run` before Ray or Prefect
start). The torch code of an entry is a Ref ("module:function") imported on its first call: the
loss math in losses.py, the networks in models.py, the optimisers in optimizers.py. Those modules
re-export their registry from here, so `from gan_tasks.methods.losses import LOSSES` still works.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from gan_tasks.methods.params import Choice, Num, Seq, Space, Spec, check_spec_params
from gan_tasks.methods.registry import KINDS, Registry, Ref, for_kind


def _L(fn: str) -> Ref:
    return Ref(f"gan_tasks.methods.losses:{fn}")


def _M(fn: str) -> Ref:
    return Ref(f"gan_tasks.methods.models:{fn}")


# --- losses ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Loss:
    d_loss: Callable  # (score_real, score_fake, params) -> scalar to minimise over D
    g_loss: Callable  # (score_real, score_fake, params) -> scalar to minimise over G
    defaults: dict[str, Any] = field(default_factory=dict)
    # Regulariser added to the D loss: (D, real, fake, params, generator) -> scalar.
    penalty: Callable | None = None
    # Called after every D optimiser step (WGAN weight clipping).
    after_d_step: Callable | None = None
    # Logged as "wasserstein" when the critic estimates W(P_r, P_g).
    wasserstein: bool = False
    # Raises ValueError on parameters that make the loss meaningless (e.g. LSGAN a == b).
    check: Callable[[dict], None] | None = None
    # The D loss is binary cross-entropy on logits (real = 1, fake = 0): label tricks apply.
    labels: bool = False
    # Needs an autoencoder discriminator whose score is a reconstruction error (BEGAN).
    autoencoder: bool = False
    # Control variables carried across steps (BEGAN's k_t): their start values, and the update
    # (state, score_real, score_fake_of_G_step, params) -> state after each G step. The Trial
    # checkpoints the state; d_loss/g_loss see it merged into params.
    state0: dict[str, float] = field(default_factory=dict)
    update_state: Callable | None = None
    # Extra metric columns from (state, score_real, score_fake, params): {column: 0-dim tensor}.
    monitor: Callable | None = None
    # Defaults that depend on the kind of data ("points" / "images"), overlaid on `defaults`.
    by_kind: dict[str, dict[str, Any]] = field(default_factory=dict)
    # g_loss carries Mao et al.'s 1/2 (least squares); CycleGAN's objective (Zhu et al. 2017) has none.
    g_half: bool = False
    # Type and range of its own parameters (a plugin's), over the shared LOSS_PARAMS rows of the same key.
    params: dict[str, Spec] = field(default_factory=dict)
    doc: str = ""  # one line for `gansweep list` (a plugin's; built-ins give it to LOSSES.add)

    def defaults_for(self, kind: str) -> dict[str, Any]:
        return for_kind(self.defaults, self.by_kind, kind)

    @property
    def schema(self) -> dict[str, Spec]:
        """Type and range of each of its parameters (both kinds' keys): its own params, else LOSS_PARAMS."""
        keys = {**self.defaults, **self.by_kind.get("points", {}), **self.by_kind.get("images", {}), **self.params}
        return {k: self.params.get(k) or LOSS_PARAMS.get(k) for k in keys}

    def check_spec(self) -> None:
        for kind in KINDS:
            check_spec_params(self.defaults_for(kind), self.schema)



LOSSES: Registry[Loss] = Registry("loss", Loss, plugins=True)

# Type and range of every loss parameter (gan_tasks/methods/params.py); an entry's schema is its keys' rows.
# `search`: the range a search samples (docs/search.md); compare_gan's wide ranges (Lucic et al. 2018).
LOSS_PARAMS: dict[str, Spec] = {
    "d_steps": Num(int, 1, 100, search=Space("int", 1, 5)),  # D steps per G step: WGAN's 5; at 100 G barely trains
    "max_score": Num(float, 0, 80, lo_open=True),  # exp(score) overflows float32 above ~88
    # LSGAN targets: any finite labels; within +-1000 the squared errors stay far from float32's range.
    "a": Num(float, -1e3, 1e3), "b": Num(float, -1e3, 1e3), "c": Num(float, -1e3, 1e3),
    "clip": Num(float, 0, 10, lo_open=True, search=Space("log_uniform", 1e-3, 1e-1)),  # WGAN clips weights to [-0.01, 0.01]; at 10 nothing is clipped
    "gp_lambda": Num(float, 0, 1e4, search=Space("log_uniform", 1e-1, 1e2)),  # penalty weight: 0 turns it off, 10 is the paper's, 1e4 drowns the loss
    "perturb": Num(float, 0, 10, lo_open=True),  # DRAGAN noise in std of the data: 0.5 the paper's
    "gamma": Num(float, 0, 1, lo_open=True),  # BEGAN diversity ratio E L(G(z)) / E L(x), in (0, 1]
    "lambda_k": Num(float, 0, 1, lo_open=True),  # BEGAN's k_t learning rate: 0.001; k_t itself lives in [0, 1]
}

# d_steps=1: Goodfellow 2014 Algorithm 1 used k=1, "the least expensive option" (seed 001).
_ONE_STEP = {"d_steps": 1}


def _lsgan_check(p: dict) -> None:
    if p["a"] == p["b"]:
        raise ValueError(f"lsgan labels a and b must differ (a = b = {p['a']}): D could not tell real from fake")



LOSSES.add("minimax", Loss(_L("_minimax_d"), _L("_minimax_g"), dict(_ONE_STEP), labels=True),
           "saturating generator cost log(1 - D(G(z))) of the original minimax game; 1 D step (Goodfellow 2014)")
LOSSES.add("non-saturating", Loss(_L("_minimax_d"), _L("_nonsat_g"), dict(_ONE_STEP), labels=True),
           "generator minimises -log D(G(z)) (DCGAN default); 1 D step (Goodfellow 2014)")
LOSSES.add("max-likelihood", Loss(_L("_minimax_d"), _L("_maxlik_g"), {**_ONE_STEP, "max_score": 20.0}, labels=True),
           "generator cost -E exp(sigma^-1(D(G(z)))) (maximum-likelihood cost, seed 001); 1 D step, score clamp 20")
LOSSES.add("lsgan", Loss(_L("_lsgan_d"), _L("_lsgan_g"), {**_ONE_STEP, "a": 0.0, "b": 1.0, "c": 1.0}, check=_lsgan_check, g_half=True),
           "least squares GAN with free labels a (fake), b (real), c (G target); default 0-1-1 (Mao 2017 Eq. 9)")
# Eq. 9 of the LSGAN paper (seed 003): the 0-1 coding the authors train with.
LOSSES.add("lsgan-011", Loss(_L("_lsgan_d"), _L("_lsgan_g"), {**_ONE_STEP, "a": 0.0, "b": 1.0, "c": 1.0}, check=_lsgan_check, g_half=True),
           "LSGAN preset a=0, b=1, c=1 (Eq. 9)")
# Eq. 8: b - c = 1 and b - a = 2 make the objective the Pearson chi^2 divergence.
LOSSES.add("lsgan-m110", Loss(_L("_lsgan_d"), _L("_lsgan_g"), {**_ONE_STEP, "a": -1.0, "b": 1.0, "c": 0.0}, check=_lsgan_check, g_half=True),
           "LSGAN preset a=-1, b=1, c=0 (Eq. 8, Pearson chi^2)")
# c = 0.01 and 5 critic steps: WGAN paper defaults (seed 002 Algorithm, seed 004 Table 1).
LOSSES.add("wgan", Loss(_L("_wgan_d"), _L("_wgan_g"), {"d_steps": 5, "clip": 0.01}, after_d_step=_L("_clip_weights"),
                        wasserstein=True),
           "Wasserstein GAN, weight clipping to [-clip, clip]; clip 0.01, 5 critic steps for both kinds (Arjovsky 2017)")
# lambda = 10 and 5 critic steps: Gulrajani et al. 2017 (seed 004 Table 1). On 2-D mixtures lambda
# 0.1, as the authors' own toy code (gan_toy.py: "smaller lambda seems to help for toy tasks");
# measured here: 8/8 ring modes at 50 % high quality against 21-35 % with lambda 10 (3,000 steps).
LOSSES.add("wgan-gp", Loss(_L("_wgan_d"), _L("_wgan_g"), {"d_steps": 5, "gp_lambda": 10.0}, penalty=_L("_wgan_gp_penalty"),
                           wasserstein=True, by_kind={"points": {"gp_lambda": 0.1}}),
           "Wasserstein GAN with gradient penalty on random interpolates (lambda 10 images, Gulrajani 2017; "
           "0.1 points, their gan_toy.py)")
# lambda = 10, perturbation scale 0.5 std: Kodali et al. 2017 defaults. On 2-D mixtures lambda 1,
# measured: with 10 the penalty flattens D across the whole ring (0-2 of 8 modes in 3,000 steps).
LOSSES.add("dragan", Loss(_L("_minimax_d"), _L("_nonsat_g"), {**_ONE_STEP, "gp_lambda": 10.0, "perturb": 0.5},
                          penalty=_L("_dragan_penalty"), labels=True, by_kind={"points": {"gp_lambda": 1.0}}),
           "non-saturating GAN with a gradient penalty around perturbed real data (lambda 10 images, "
           "Kodali 2017; 1 points, measured)")
LOSSES.add("hinge", Loss(_L("_hinge_d"), _L("_wgan_g"), dict(_ONE_STEP)),
           "hinge loss for D, -D(G(z)) for G (SAGAN / BigGAN); 1 D step")
# gamma 0.5 and lambda_k 0.001, k_0 = 0: Berthelot et al. 2017 (the BEGAN of seed 002), Sec. 3.3-4.
LOSSES.add("began", Loss(_L("_began_d"), _L("_began_g"), {**_ONE_STEP, "gamma": 0.5, "lambda_k": 0.001}, autoencoder=True,
                         state0={"k": 0.0}, update_state=_L("_began_update"), monitor=_L("_began_monitor")),
           "BEGAN: autoencoder D, L_D = L(x) - k_t L(G(z)); gamma 0.5, lambda_k 0.001 for both kinds (Berthelot 2017)")


def packable_loss(name: str) -> bool:
    """A pure function of D scores: no penalty, clipping, carried state or autoencoder (gan_tasks/training/packing.py)."""
    spec = LOSSES.get(name)
    return (spec.penalty is None and spec.after_d_step is None and not spec.state0
            and spec.update_state is None and not spec.autoencoder)


def check_packable(pack_seeds: int, loss_names: list[str], tricks: Any = None) -> None:
    """Config-time check: packing needs losses that are pure functions of D scores, and no tricks but
    PacGAN's `pac` (a reshape of D's input, which the stacked models take as they are)."""
    if pack_seeds <= 1:
        return
    if tricks is not None and tricks.model_copy(update={"pac": 1}) != type(tricks)():
        raise ValueError("pack_seeds > 1 cannot be combined with tricks other than pac; set pack_seeds: 1 or "
                         "remove those tricks")
    bad = [n for n in loss_names if not packable_loss(n)]
    if bad:
        ok = [n for n in LOSSES.names() if packable_loss(n)]
        raise ValueError(f"pack_seeds > 1: grid.loss {', '.join(bad)} cannot be packed (gradient penalty, "
                         f"weight clipping or carried state need per-model autograd); packable losses: "
                         f"{', '.join(ok)}")


# --- optimizers -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class OptimizerSpec:
    build: Callable  # (params, lr=..., **defaults) -> Optimizer
    lr: float  # the images default; by_kind may give another per kind of data
    defaults: dict[str, Any] = field(default_factory=dict)
    by_kind: dict[str, dict[str, Any]] = field(default_factory=dict)  # {"points": {"lr": ..., "betas": ...}}
    params: dict[str, Spec] = field(default_factory=dict)  # its own parameters' types, over OPTIMIZER_PARAMS
    doc: str = ""  # one line for `gansweep list` (a plugin's)
    # Where a search samples the learning rate (both lr_g and lr_d, one value): compare_gan's range.
    lr_search: Space | None = Space("log_uniform", 1e-5, 1e-2)

    def lr_for(self, kind: str) -> float:
        return self.by_kind.get(kind, {}).get("lr", self.lr)

    def defaults_for(self, kind: str) -> dict[str, Any]:
        return {k: v for k, v in for_kind(self.defaults, self.by_kind, kind).items() if k != "lr"}

    @property
    def schema(self) -> dict[str, Spec]:
        """Type and range of each of its parameters (both kinds' keys), from OPTIMIZER_PARAMS; lr is lr_g / lr_d."""
        keys = self.defaults_for("points") | self.defaults_for("images") | self.params
        return {k: self.params.get(k) or OPTIMIZER_PARAMS.get(k) for k in keys}

    def check_spec(self) -> None:
        for kind in KINDS:
            if not 0 < self.lr_for(kind) <= 10:  # the range of lr_g / lr_d (config/entries.py)
                raise ValueError(f"default lr {self.lr_for(kind)!r} ({kind}) is out of range: expected a number in (0, 10]")
            check_spec_params(self.defaults_for(kind), self.schema)



OPTIMIZERS: Registry[OptimizerSpec] = Registry("optimizer", OptimizerSpec, plugins=True)

# Type and range of every optimizer parameter (gan_tasks/methods/params.py); an entry's schema is its keys' rows.
OPTIMIZER_PARAMS: dict[str, Spec] = {
    "momentum": Num(float, 0, 1, hi_open=True),  # a decay: at 1 the velocity never forgets
    # Adam's decays (beta1, beta2), each in [0, 1); a search samples beta1 (`betas.0`) as compare_gan does
    "betas": Seq(Num(float, 0, 1, hi_open=True), 2, search=(Space("uniform", 0.0, 1.0), None)),
    "eps": Num(float, 0, 1, lo_open=True),  # the denominator's floor: 1e-8; above 1 it is the step size
}


# Momentum 0.5 as in Goodfellow et al. 2014's released code ("we used momentum", seed 001);
# lr 0.01 is that code's starting rate. Points: the same; measured, neither 0.01 nor 0.05 forms the
# ring within 3,000 steps (non-saturating: 0-7 modes at < 1 % high quality); adaptive steps do.
OPTIMIZERS.add("sgd", OptimizerSpec(Ref("torch.optim:SGD"), 0.01, {"momentum": 0.5}),
               "SGD, momentum 0.5, lr 0.01 for both kinds (Goodfellow 2014 code)")
# lr 2e-4, beta1 0.5: DCGAN (Radford 2015), seed 004 Table 1. On 2-D mixtures lr 1e-3, measured:
# at 2e-4 no loss covers 6 of 8 ring modes at 30 % high quality within 3,000 steps (configs/defaults.md).
OPTIMIZERS.add("adam", OptimizerSpec(Ref("torch.optim:Adam"), 2e-4, {"betas": (0.5, 0.999)}, {"points": {"lr": 1e-3}}),
               "Adam, beta1 0.5; lr 2e-4 images (DCGAN, Radford 2015), 1e-3 points (measured)")
# lr 5e-5: WGAN (Arjovsky 2017), seed 004 Table 1; momentum-free because WGAN found momentum unstable.
# Points lr 5e-4, measured (non-saturating, 3,000 steps): 8/8 ring modes at 20-22 % HQ; 1e-4: 4-5 %.
OPTIMIZERS.add("rmsprop", OptimizerSpec(Ref("torch.optim:RMSprop"), 5e-5, {}, {"points": {"lr": 5e-4}}),
               "RMSProp; lr 5e-5 images (WGAN, Arjovsky 2017), 5e-4 points (measured)")
# lr 2e-4 and betas (0.5, 0.9): the WGAN/CIFAR-10 settings of Daskalakis et al. 2017. Points lr 5e-4,
# measured (non-saturating, 3,000 steps): 8/8 ring modes at 18-24 % HQ; 1e-3 oscillates (8-9 %).
OPTIMIZERS.add("optimistic-adam", OptimizerSpec(Ref("gan_tasks.methods.optimizers:OptimisticAdam"), 2e-4, {"betas": (0.5, 0.9), "eps": 1e-8},
                                                {"points": {"lr": 5e-4}}),
               "Optimistic Adam (Daskalakis 2017): lr 2e-4 images (their CIFAR-10), 5e-4 points (measured)")
# lr 0.01: a plain-SGD-sized step; the optimistic correction keeps bilinear games from cycling.
# Points: the same; measured, 0.01 and 0.05 both fail to form the ring in 3,000 steps, as sgd does.
OPTIMIZERS.add("omd", OptimizerSpec(Ref("gan_tasks.methods.optimizers:OMD"), 0.01, {}),
               "optimistic gradient descent w <- w - lr (2 g_t - g_{t-1}); lr 0.01 for both kinds")


# --- models ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSpec:
    build: Callable  # (data_shape, z_dim, **params) -> (G, D)
    defaults: dict[str, Any] = field(default_factory=dict)
    data_kinds: tuple[str, ...] = ("points",)
    sizes: tuple[int, ...] = ()  # image side lengths it accepts; () = any
    autoencoder: bool = False  # D is an autoencoder (BEGAN)
    batchnorm_g: bool = False  # G has batch norm layers (virtual batch norm can replace them)
    # The one program whose networks it builds (methods/programs.py); None: G(z) and D(x) for the GAN
    # programs (the plain and the conditional ones).
    program: str | None = None
    params: dict[str, Spec] = field(default_factory=dict)  # its own parameters' types, over MODEL_PARAMS
    doc: str = ""  # one line for `gansweep list` (a plugin's)

    @property
    def schema(self) -> dict[str, Spec]:
        """Type and range of each of its parameters: its own params, else MODEL_PARAMS."""
        return {k: self.params.get(k) or MODEL_PARAMS.get(k) for k in {**self.defaults, **self.params}}

    def check_spec(self) -> None:
        if not self.data_kinds or set(self.data_kinds) - set(KINDS):
            raise ValueError(f"data_kinds {self.data_kinds!r}: expected one or more of {', '.join(KINDS)}")
        check_spec_params(self.defaults, self.schema)



MODELS: Registry[ModelSpec] = Registry("model", ModelSpec, plugins=True)
# Hidden-layer activations of the MLPs by name (model param `activation`); models.ACTIVATIONS builds them.
ACTIVATIONS = ("relu", "leaky_relu", "elu", "tanh")

# Type and range of every model parameter (gan_tasks/methods/params.py); widths are capped by limits.width.
MODEL_PARAMS: dict[str, Spec] = {
    "hidden": Num(int, 1, limit="width"), "width": Num(int, 1, limit="width"), "code": Num(int, 1, limit="width"),
    "activation": Choice(ACTIVATIONS),
    "dropout": Num(float, 0, 1, hi_open=True),  # a probability; at 1 D sees nothing
    "slope": Num(float, 0, 1),  # LeakyReLU's negative slope: 0 is ReLU, 1 the identity
    # PacGAN's networks: G / D widths, maxout pieces, the N(0, std^2) init
    "hidden_g": Num(int, 1, limit="width"), "hidden_d": Num(int, 1, limit="width"), "pieces": Num(int, 1, 64),
    "init_std": Num(float, 0, 10, lo_open=True),
    "blocks": Num(int, 0, 64), "d_width": Num(int, 1, limit="width"),  # CycleGAN: residual blocks, D channels
    # CycleGAN's objective, kept with its networks (the program has no parameters of its own):
    "cycle": Num(float, 0, 1000),  # lambda: 10 the paper's; 0 leaves two unrelated GANs
    "identity": Num(float, 0, 100),  # identity weight in units of lambda: 0.5 the authors' code; 0 off
    "pool": Num(int, 0, 10_000),  # past fakes kept for each D: 50 the paper's; 0 no pool
    "resolution": Num(int, 32, 128),  # image side of the dcgan family: 32, 64 or 128 (4 x 2^n)
}


# hidden=128: the 3-layer MLPs of the VEEGAN / Unrolled-GAN mixture experiments. LeakyReLU(0.2),
# measured: with ReLU a G whose hidden units die maps every z to one point (non-saturating, hinge
# and dragan collapsed to 0-1 of 8 ring modes on some seeds at 3,000 steps; with LeakyReLU 8 of 8).
MODELS.add("mlp", ModelSpec(_M("_mlp"), {"hidden": 128, "activation": "leaky_relu"}, ("points",)),
           "3-layer MLP generator and discriminator for 2D data (128 units as VEEGAN; LeakyReLU, measured)")
# code=1: below the data dimension, so the autoencoder cannot learn the identity and must fit
# the data's 1D structure (a ring is a curve): reals reconstruct better than off-curve fakes.
MODELS.add("mlp-ae", ModelSpec(_M("_mlp_ae"), {"hidden": 128, "code": 1, "activation": "leaky_relu"}, ("points",), autoencoder=True),
           "3-layer MLP generator and MLP autoencoder discriminator for 2D data (BEGAN)")
# dropout 0.3 and LeakyReLU slope 0.3: the Keras defaults of the tutorial seed 004 reproduces.
MODELS.add("dcgan-28", ModelSpec(_M("_dcgan28"), {"dropout": 0.3, "slope": 0.3}, ("images",), (28,), batchnorm_g=True),
           "DCGAN for 28x28 images as in seed 004's appendix (2.33M G / 213k D parameters)")
# width 64 and slope 0.2: DCGAN's base channel count and LeakyReLU slope (Radford et al. 2015).
MODELS.add("dcgan-32", ModelSpec(_M("_dcgan32"), {"width": 64, "slope": 0.2}, ("images",), (32,), batchnorm_g=True),
           "DCGAN for 32x32 images (CIFAR-10): 4x4 stride-2 convs, 64-128-256 channels")
# resolution 64: DCGAN's own (Radford et al. 2015, LSUN / faces); 32 and 128 add or drop a layer.
MODELS.add("dcgan", ModelSpec(_M("_dcgan"), {"width": 64, "slope": 0.2, "resolution": 64}, ("images",), (32, 64, 128),
                              batchnorm_g=True),
           "DCGAN at resolution 32, 64 (default: 64-128-256-512 channels) or 128: 4x4 stride-2 convs")
# width 64, code 64: Berthelot et al. 2017 use n = 64..128 filters and h = 64 for 64x64 faces;
# the smaller images here need no more.
MODELS.add("began", ModelSpec(_M("_began"), {"width": 64, "code": 64}, ("images",), (28, 32), autoencoder=True),
           "BEGAN: decoder generator, conv autoencoder discriminator (ELU, no batch norm), 28x28 or 32x32")
# 400 / 200 units, 5 pieces, N(0, 0.02): PacGAN's config.py for the ring and grid (Table 1).
MODELS.add("pacgan-mlp", ModelSpec(_M("_pacgan_mlp"), {"hidden_g": 400, "hidden_d": 200, "pieces": 5, "init_std": 0.02},
                                   ("points",), batchnorm_g=True),
           "PacGAN Table 1 MLPs (fjxmlzn/PacGAN config.py): G 4x400 BN+ReLU, D 3 maxout layers 200x5 pieces, N(0,0.02)")
# width 64 (gf_dim = df_dim), slope 0.2, N(0, 0.02): the DCGAN-tensorflow defaults PacGAN keeps.
MODELS.add("pacgan-dcgan", ModelSpec(_M("_pacgan_dcgan"), {"width": 64, "slope": 0.2, "init_std": 0.02}, ("images",),
                                     (28,), batchnorm_g=True),
           "PacGAN/VEEGAN Stacked MNIST DCGAN (fjxmlzn/PacGAN, DCGAN-tensorflow): 5x5 convs 64-512, BN in G and D")
# width 16, 3 residual blocks, D width 16: Zhu et al.'s 64 channels and 6-9 blocks scaled down for 28x28
# on 2 CPU cores; cycle 10, identity 0.5 x cycle, pool 50: Zhu et al. 2017 Sec. 4 and their code's
# defaults. What it reaches in 300 steps: docs/programs.md, CycleGAN.
MODELS.add("cyclegan-resnet", ModelSpec(Ref("gan_tasks.methods.cyclegan:build_cyclegan"),
                                        {"width": 16, "blocks": 3, "d_width": 16, "cycle": 10.0, "identity": 0.5,
                                         "pool": 50}, ("images",), (28, 32), program="cyclegan"),
           "CycleGAN: two ResNet generators (c7s1-w, d2w, R2w x blocks, uw, c7s1) and two PatchGAN Ds, 28x28 "
           "or 32x32; cycle / identity weights and pool size of the objective")
