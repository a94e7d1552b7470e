"""An in-memory loader: the whole dataset lives on the device as one ``uint8`` tensor.

For datasets that fit in (GPU) memory this removes the per-image Python work of a
``torch.utils.data.DataLoader``: each batch is one index into a resident tensor, followed by
conversion, normalisation and augmentation of the whole batch at once,

    x = augment((images[idx] / 255 − mean) / std),

with ``mean`` and ``std`` per channel in ``[0, 1]`` units.

Every random choice of an epoch (the shuffle and each batch's augmentation) comes from a generator
seeded by ``(seed, epoch)`` and ``(seed, epoch, batch)``. Iteration is therefore reproducible, and
:meth:`InMemoryLoader.batches` can start at any batch of an epoch, which is how an interrupted
training run resumes exactly where its last checkpoint left it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from foveal.data.augment import Augment, alternating_flip, first_epoch_flip_mask
from foveal.data.dataset import ArrayDataset
from foveal.errors import ConfigError


def derive_seed(*keys: int) -> int:
    """A well-mixed 63-bit seed from integer keys (NumPy's SeedSequence hashing)."""
    words = [int(k) & 0xFFFFFFFF for k in keys]
    state = np.random.SeedSequence(words).generate_state(1, dtype=np.uint64)[0]
    return int(state >> np.uint64(1))  # torch seeds must fit in a signed 64-bit integer


class InMemoryLoader:
    """Batches of ``(x, y)`` from an :class:`ArrayDataset` resident on ``device``.

    Args:
        dataset: the images and labels.
        batch_size: images per batch.
        device: where the data lives and batches are made.
        mean, std: per-channel normalisation in ``[0, 1]`` units; default: the dataset's own.
        shuffle: draw a new permutation each epoch.
        drop_last: drop the final incomplete batch (keeps batch statistics steady in training).
        augment: batch augmentations, or ``None``.
        seed: base seed of all random draws.
        channels_last: return ``x`` in channels-last memory format (faster convolutions).

    Yields ``x`` float32 ``(B, C, H, W)`` and ``y`` int64 ``(B,)``.
    """

    def __init__(
        self,
        dataset: ArrayDataset,
        batch_size: int,
        *,
        device: torch.device | str = "cpu",
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        shuffle: bool = False,
        drop_last: bool = False,
        augment: Augment | None = None,
        seed: int = 0,
        channels_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.device = torch.device(device)
        self.images = torch.from_numpy(np.ascontiguousarray(dataset.images)).to(self.device)
        self.images = self.images.permute(0, 3, 1, 2)  # N,C,H,W view of the N,H,W,C store
        self.labels = torch.from_numpy(dataset.labels).to(self.device)
        if mean is None or std is None:
            mean, std = dataset.channel_stats()
        c = self.images.shape[1]
        self.mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, c, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, c, 1, 1)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.augment = augment
        self.seed = seed
        self.channels_last = channels_last
        self.epoch = 0
        self.flip_mask: torch.Tensor | None = None
        if augment is not None and augment.alternating_flip:
            g = torch.Generator().manual_seed(derive_seed(seed, 0x0F11B))
            self.flip_mask = first_epoch_flip_mask(len(self.labels), g).to(self.device)
        if augment is not None and augment.has_photometric and c != 3:
            raise ConfigError(
                f"colour jitter and RandAugment need RGB images, got {c} channel(s)"
            )

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    @property
    def num_samples(self) -> int:
        """Images yielded per epoch (fewer than the dataset when ``drop_last`` drops a tail)."""
        n = len(self.labels)
        return len(self) * self.batch_size if self.drop_last else n

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose shuffle and augmentation the next iteration uses."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.batches(self.epoch)

    def order(self, epoch: int) -> torch.Tensor:
        """The sample order of ``epoch``: a permutation when shuffling, else ``0..N-1``."""
        n = len(self.labels)
        if not self.shuffle:
            return torch.arange(n)
        g = torch.Generator().manual_seed(derive_seed(self.seed, epoch))
        return torch.randperm(n, generator=g)

    def batches(self, epoch: int, start: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield the batches of ``epoch`` from batch index ``start`` on."""
        order = self.order(epoch).to(self.device)
        for b in range(start, len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            yield self.make_batch(idx, epoch, b)

    def make_batch(
        self, idx: torch.Tensor, epoch: int = 0, batch: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalise (and augment) the images at ``idx``; returns ``(x, y)``.

        Each kind of random draw has its own generator seeded by ``(seed, epoch, batch, kind)``.
        """
        x = self.images[idx].float().div_(255.0)
        if self.augment is not None and self.augment.has_photometric:
            g = torch.Generator().manual_seed(derive_seed(self.seed, epoch, batch, 3))
            x = self.augment.photometric(x, g)
        x = x.sub_(self.mean).div_(self.std)
        if self.augment is not None:
            g = torch.Generator().manual_seed(derive_seed(self.seed, epoch, batch, 1))
            x = self.augment(x, g)
            if self.flip_mask is not None:
                x = alternating_flip(x, epoch, self.flip_mask[idx])
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        else:
            x = x.contiguous()
        return x, self.labels[idx]
