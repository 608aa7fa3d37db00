"""A sharded image dataset (`gansweep data add`, or a built-in of `gansweep data upload`), as a trial reads
it: shards memory-mapped from the node cache (gan_tasks/data/userdata.py), each batch gathered on the CPU
and moved to the device. Trials on one node share the mapped pages instead of each holding the dataset
in its own memory."""
from __future__ import annotations

import numpy as np
import torch

from gan_tasks.data.userdata import batch_indices, open_split


class MappedImages:
    """What the GAN programs index like a tensor of images in [-1, 1]: len(), .shape, .ndim, data[idx]."""

    def __init__(self, cfg, storage, device: torch.device):
        self.images, labels = open_split(storage, cfg.dataset.name, cfg.dataset.id)
        self.did, self.seed, self.device = cfg.dataset.id, cfg.seed, device
        # data add: batches drawn by (dataset id, seed, step, draw), `indices`. A built-in (no id in its
        # config) keeps drawing them from the trial's generator, so it trains exactly as when it was one array.
        self.keyed = cfg.dataset.id is not None
        self.labels = torch.from_numpy(labels.astype(np.int64)).to(device)  # -1: unlabelled
        self.shape = torch.Size(self.images.shape)
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def dim(self) -> int:
        return self.ndim

    def indices(self, step: int, draw: int, size: int) -> torch.Tensor:
        """The draw-th batch of step `step`: a function of (dataset id, seed, step, draw) only, so a
        resumed trial draws exactly the batches it would have drawn."""
        return torch.from_numpy(batch_indices(self.did, self.seed, step, draw, len(self), size)).to(self.device)

    def __getitem__(self, idx: torch.Tensor | slice) -> torch.Tensor:
        """Images idx (a tensor of indices, or a slice: data[:n]) in [-1, 1] on the device: the same values
        as indexing the whole array so converted (x.float() / 127.5 - 1, elementwise)."""
        at = np.arange(len(self))[idx] if isinstance(idx, slice) else idx.cpu().numpy()
        x = torch.from_numpy(self.images.take(at))
        return (x.float() / 127.5 - 1.0).to(self.device)
