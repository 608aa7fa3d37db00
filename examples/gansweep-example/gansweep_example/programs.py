"""The lookahead-gan program (specs.LOOKAHEAD_GAN): the built-in GAN step with Lookahead-minmax
(Chavdarova et al. 2021). Every K steps both players' weights move back toward slow copies,
slow += ALPHA (fast - slow), and the fast weights restart from there. The slow copies are carried
across steps, so they are in state_dict(): a resumed trial continues bit-identically."""
import copy

import torch

from gan_tasks.training.programs.gan import GAN

K, ALPHA = 5, 0.5  # the paper's k and alpha for its 2-D and CIFAR-10 runs


class LookaheadGAN(GAN):
    def __init__(self, cfg, storage, device, gen):
        super().__init__(cfg, storage, device, gen)  # G, D, optimisers, data: the built-in GAN's
        self.slow = {name: copy.deepcopy(m.state_dict()) for name, m in self.modules().items()}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "slow": self.slow}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.slow = {name: {k: v.to(self.device) for k, v in s.items()} for name, s in state["slow"].items()}

    def train_step(self, step: int, log_now: bool) -> dict[str, torch.Tensor] | None:
        out = super().train_step(step, log_now)  # one D and G update, every random draw from self.gen
        if (step + 1) % K == 0:
            self._look_back()
        return out

    @torch.no_grad()
    def _look_back(self) -> None:
        for name, m in self.modules().items():
            for k, fast in m.state_dict().items():
                slow = self.slow[name][k]
                if fast.is_floating_point():
                    slow.add_(fast - slow, alpha=ALPHA)
                else:  # counters (batch norm's num_batches_tracked) follow the fast network
                    slow.copy_(fast)
                fast.copy_(slow)
