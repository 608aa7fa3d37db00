"""The entries this distribution registers (pyproject.toml's entry points name these objects).

Torch-free: gansweep imports this module to validate a sweep and to list entries; the torch code is
named by Ref("module:function") and imported only when a trial trains.
"""
from gan_tasks.plugin_api import Loss, Metric, Model, Num, Program, Ref

# Relativistic pairing GAN (Jolicoeur-Martineau 2018) with a zero-centred R1 penalty on real data
# (Mescheder et al. 2018): the pairing of R3GAN (Huang et al. 2024). gamma 0.1 suits 2-D mixtures.
RPGAN_R1 = Loss(
    d_loss=Ref("gansweep_example.losses:rp_d"),
    g_loss=Ref("gansweep_example.losses:rp_g"),
    penalty=Ref("gansweep_example.losses:r1_penalty"),
    defaults={"d_steps": 1, "gamma": 0.1},  # d_steps: the built-in parameter (its type comes from gansweep)
    params={"gamma": Num(float, 0, 1000)},  # the R1 weight: 0 turns the penalty off
    doc="relativistic pairing loss softplus(-(D(x) - D(G(z)))) with an R1 penalty gamma/2 E|grad D(x)|^2",
)

# An MLP pair of configurable depth for 2-D data; `hidden` reuses the built-in parameter's type and limit.
DEEP_MLP = Model(
    build=Ref("gansweep_example.models:deep_mlp"),
    defaults={"hidden": 128, "depth": 3},
    params={"depth": Num(int, 1, 8)},
    data_kinds=("points",),
    doc="MLP generator and discriminator with `depth` hidden LeakyReLU(0.2) layers, for 2-D data",
)

# Energy distance between generated and training samples (Szekely & Rizzo 2013): 0 iff the
# distributions are equal; lower is better.
ENERGY_DISTANCE = Metric(
    compute=Ref("gansweep_example.metrics:energy_distance"),
    outputs={"energy_distance": False},
    bounds={"energy_distance": (0.0, None)},  # confidence intervals are cut to this range
    defaults={"max_points": 1000},
    params={"max_points": Num(int, 10, 20_000)},  # pairwise distances cost max_points^2 memory
    doc="energy distance 2E|X-Y| - E|X-X'| - E|Y-Y'| between generated and training samples (lower is better)",
)

# The built-in GAN step with Lookahead-minmax (Chavdarova et al. 2021): every 5 steps both players' weights
# are pulled halfway back to slow copies. A program subclassing the built-in gan_tasks.training.programs.gan:GAN.
LOOKAHEAD_GAN = Program(
    build=Ref("gansweep_example.programs:LookaheadGAN"),
    tricks=("d_steps", "label_smoothing", "instance_noise"),  # tricks its GAN step applies unchanged
    doc="the unconditional GAN with Lookahead-minmax: every 5 steps G's and D's weights halfway back to slow copies",
)
