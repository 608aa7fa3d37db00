"""CycleGAN (Zhu et al. 2017, seed 001): unpaired translation between two image domains A and B.

Two generators G: A -> B and F: B -> A, two discriminators D_B (real B vs G(a)) and D_A (real A vs
F(b)). The adversarial terms come from the loss registry (least squares by default, as the paper);
cycle consistency ties the pair together: F(G(a)) ~ a and G(F(b)) ~ b. Plain torch: the networks,
the two extra losses, the pool of past fakes and one training step (`CycleStep`); the trial loop,
checkpoints and metrics rows are the shared machinery's (training/cyclegan.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import torch
from torch import Tensor, nn


# --- networks ------------------------------------------------------------------------------------
class ResBlock(nn.Module):
    """x + conv3-IN-ReLU-conv3-IN(x), reflection padded: the paper's residual block R_k."""

    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch), nn.ReLU(),
                                  nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def resnet_generator(channels: int, width: int, blocks: int) -> nn.Sequential:
    """Zhu et al.'s c7s1-64, d128, d256, R256 x 9, u128, u64, c7s1-3, scaled down for 28x28 / 32x32 on
    2 CPU cores: one stride-2 down-sampling instead of two (28 -> 14: a second would leave 7x7 maps
    that a 3x3 block sees whole), `width` channels instead of 64 and `blocks` residual blocks instead
    of 6-9. Instance norm and reflection padding as the paper; tanh output in [-1, 1]."""
    w = width
    return nn.Sequential(
        nn.ReflectionPad2d(3), nn.Conv2d(channels, w, 7), nn.InstanceNorm2d(w), nn.ReLU(),
        nn.Conv2d(w, 2 * w, 3, 2, 1), nn.InstanceNorm2d(2 * w), nn.ReLU(),
        *[ResBlock(2 * w) for _ in range(blocks)],
        nn.ConvTranspose2d(2 * w, w, 3, 2, 1, output_padding=1), nn.InstanceNorm2d(w), nn.ReLU(),
        nn.ReflectionPad2d(3), nn.Conv2d(w, channels, 7), nn.Tanh())


def patch_discriminator(channels: int, width: int) -> nn.Sequential:
    """The 70x70 PatchGAN (C64-C128-C256-C512, 4x4 convs, LeakyReLU 0.2, instance norm but on the
    first layer) scaled to 28x28: C`width` s2 - C2`width` s2 - a 3x3 conv to one score per patch.
    Each of the 7x7 scores (8x8 at 32x32) sees an 18x18 patch, about the paper's 70/256 of the image
    side times two: a digit's stroke style is judged locally, not the digit as a whole."""
    w = width
    return nn.Sequential(
        nn.Conv2d(channels, w, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(w, 2 * w, 4, 2, 1), nn.InstanceNorm2d(2 * w), nn.LeakyReLU(0.2),
        nn.Conv2d(2 * w, 1, 3, 1, 1))


def build_cyclegan(data_shape: tuple[int, ...], width: int, blocks: int, d_width: int) -> dict[str, nn.Module]:
    """{"G": A -> B, "F": B -> A, "D_A", "D_B"}; both domains share data_shape (C, H, W), H = W in {28, 32}."""
    c, h, w = data_shape
    if h != w or h not in (28, 32):
        raise ValueError(f"cyclegan networks take 28x28 or 32x32 images, got {h}x{w}")
    return {"G": resnet_generator(c, width, blocks), "F": resnet_generator(c, width, blocks),
            "D_A": patch_discriminator(c, d_width), "D_B": patch_discriminator(c, d_width)}


# --- the two losses CycleGAN adds ----------------------------------------------------------------
def cycle_loss(a: Tensor, rec_a: Tensor, b: Tensor, rec_b: Tensor) -> Tensor:
    # L_cyc = E_a ||F(G(a)) - a||_1 + E_b ||G(F(b)) - b||_1   (Zhu et al. Eq. 2; per-pixel mean)
    return (rec_a - a).abs().mean() + (rec_b - b).abs().mean()


def identity_loss(a: Tensor, f_a: Tensor, b: Tensor, g_b: Tensor) -> Tensor:
    # L_idt = E_b ||G(b) - b||_1 + E_a ||F(a) - a||_1   (Zhu et al. Sec. 5.2, after Taigman et al. 2017):
    # a generator fed an image of its own target domain should leave it alone.
    return (g_b - b).abs().mean() + (f_a - a).abs().mean()


class ImagePool:
    """Shrivastava et al. 2017's history of generated images, as CycleGAN uses it (Sec. 4): D is
    updated on a mix of this step's fakes and older ones, which damps oscillation. For each fake:
    while fewer than `size` are stored, store it and return it; then with probability 1/2 return a
    uniformly chosen stored fake and put the new one in its place, else return the new fake.
    Its draws come from the trial's generator, and its contents are checkpointed (state_dict)."""

    def __init__(self, size: int):
        self.size = size
        self.images: Tensor | None = None  # (n <= size, C, H, W)

    @torch.no_grad()
    def query(self, fakes: Tensor, gen: torch.Generator) -> Tensor:
        if self.size == 0:
            return fakes.detach()
        out = []
        for x in fakes.detach():
            n = 0 if self.images is None else len(self.images)
            if n < self.size:
                self.images = x[None].clone() if self.images is None else torch.cat([self.images, x[None]])
                out.append(x)
                continue
            # One uniform and one index per fake in every case: the stream does not depend on the coin.
            coin = torch.rand((), generator=gen, device=gen.device)
            i = int(torch.randint(n, (), generator=gen, device=gen.device))
            if coin < 0.5:
                out.append(self.images[i].clone())
                self.images[i] = x
            else:
                out.append(x)
        return torch.stack(out)

    def state_dict(self) -> dict:
        return {"size": self.size, "images": self.images if self.images is not None else torch.empty(0)}

    def load_state_dict(self, s: dict) -> None:
        self.size = int(s["size"])
        self.images = s["images"].clone() if s["images"].numel() else None


# --- one training step ---------------------------------------------------------------------------
def adversarial_g(loss, sf: Tensor, p: dict) -> Tensor:
    """A generator's adversarial term as Zhu et al. write it: least squares E (D(G(a)) - c)^2 without the
    1/2 the registry's lsgan carries on G (Mao et al.); other losses' G terms have no 1/2 to remove.
    D's term stays the registry's: for lsgan 1/2 E (D(b) - 1)^2 + 1/2 E D(G(a))^2, the paper's."""
    return (2.0 if loss.g_half else 1.0) * loss.g_loss(None, sf, p)


@dataclass(frozen=True)
class CycleParams:
    # lambda = 10: Zhu et al. Sec. 4 ("we set lambda = 10 in Eq. 3"), against their adversarial term
    # (adversarial_g: least squares without Mao et al.'s 1/2), so it weighs the cycle as theirs does.
    cycle: float = 10.0
    # 0.5 x lambda: the identity weight of the authors' code (lambda_identity 0.5); 0 turns it off.
    identity: float = 0.5
    pool: int = 50  # Sec. 4: "we keep an image buffer that stores the 50 previously created images"


class CycleStep:
    """One CycleGAN update: G and F together against D_A, D_B (one Adam for both generators, one for
    both discriminators, as the authors' code), then d_steps discriminator updates on pooled fakes.

    loss: a registry Loss (d_loss, g_loss on raw patch scores; an optional penalty and after-D hook).
    batch(): returns (a, b), independent draws from the two domains: the data are unpaired."""

    def __init__(self, nets: dict[str, nn.Module], opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
                 loss, lp: dict, cp: CycleParams, d_steps: int, gen: torch.Generator):
        self.nets, self.opt_g, self.opt_d, self.loss, self.lp, self.cp = nets, opt_g, opt_d, loss, lp, cp
        self.d_steps, self.gen = d_steps, gen
        self.pool_a, self.pool_b = ImagePool(cp.pool), ImagePool(cp.pool)

    def __call__(self, a: Tensor, b: Tensor, batch) -> dict[str, Tensor]:
        n, p, cp = self.nets, self.lp, self.cp
        G, F, D_A, D_B = n["G"], n["F"], n["D_A"], n["D_B"]
        # Generators: fool both discriminators, and come back where they started.
        fake_b, fake_a = G(a), F(b)
        rec_a, rec_b = F(fake_b), G(fake_a)
        sf_b, sf_a = D_B(fake_b), D_A(fake_a)
        adv = adversarial_g(self.loss, sf_b, p) + adversarial_g(self.loss, sf_a, p)
        cyc = cycle_loss(a, rec_a, b, rec_b)
        idt = identity_loss(a, F(a), b, G(b)) if cp.identity else torch.zeros((), device=a.device)
        loss_g = adv + cp.cycle * cyc + cp.identity * cp.cycle * idt
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        # Discriminators: real against a mix of this step's and pooled past fakes.
        for k in range(self.d_steps):
            if k:  # further critic steps (WGAN's 5) see fresh batches, as the GAN program's do
                a, b = batch()
                with torch.no_grad():
                    fake_b, fake_a = G(a), F(b)
            pb, pa = self.pool_b.query(fake_b, self.gen), self.pool_a.query(fake_a, self.gen)
            sr_b, sr_a, sfd_b, sfd_a = D_B(b), D_A(a), D_B(pb), D_A(pa)
            loss_d = self.loss.d_loss(sr_b, sfd_b, p) + self.loss.d_loss(sr_a, sfd_a, p)
            pen = None
            if self.loss.penalty:
                pen = self.loss.penalty(D_B, b, pb, p, self.gen) + self.loss.penalty(D_A, a, pa, p, self.gen)
            self.opt_d.zero_grad(set_to_none=True)
            (loss_d + pen if pen is not None else loss_d).backward()
            self.opt_d.step()
            if self.loss.after_d_step:
                self.loss.after_d_step(D_A, p), self.loss.after_d_step(D_B, p)
        nan = torch.full((), float("nan"), device=a.device)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(), "penalty": nan if pen is None else pen.detach(),
                "d_real": 0.5 * (sr_a.mean() + sr_b.mean()).detach(),
                "d_fake": 0.5 * (sfd_a.mean() + sfd_b.mean()).detach(),
                "cycle": cyc.detach(), "identity": idt.detach(), "adversarial_g": adv.detach()}

    def state_dict(self) -> dict:
        return {"pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict()}

    def load_state_dict(self, s: dict) -> None:
        self.pool_a.load_state_dict(s["pool_a"]), self.pool_b.load_state_dict(s["pool_b"])


# --- what evaluation and the report see -----------------------------------------------------------
def to_unit_range(x: Tensor) -> Tensor:
    return x.float() / 127.5 - 1.0 if x.dtype == torch.uint8 else x


@torch.no_grad()
def translate(net: nn.Module, x: Tensor, batch: int = 500) -> Tensor:
    """uint8 (or [-1, 1] float) images through a generator, in batches, eval mode; float in [-1, 1]."""
    was = net.training
    net.eval()
    x = x.float() / 127.5 - 1.0 if x.dtype == torch.uint8 else x
    out = torch.cat([net(x[i:i + batch]) for i in range(0, len(x), batch)])
    net.train(was)
    return out


@torch.no_grad()
def grid(G: nn.Module, F: nn.Module, a: Tensor, b: Tensor, n: int = 8) -> np.ndarray:
    """The report's picture: rows a, G(a), F(G(a)), b, F(b), G(F(b)) of n images each,
    as an array (6, n, C, H, W) in [-1, 1]."""
    a, b = to_unit_range(a[:n]), to_unit_range(b[:n])
    ga, fb = translate(G, a), translate(F, b)
    rows = [a, ga, translate(F, ga), b, fb, translate(G, fb)]
    return torch.stack(rows).float().cpu().numpy()
