"""The in-memory image classification dataset that every reader returns.

Convention: ``images`` is a ``uint8`` array of shape ``(N, H, W, C)`` (channels last, as images are
stored on disk; ``C`` is 1 for grey, 3 for RGB) and ``labels`` is an ``int64`` array of shape
``(N,)`` with values in ``[0, len(classes))``. Keeping the raw ``uint8`` pixels (not normalised
floats) makes a dataset four times smaller and lets the loader normalise on the target device.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from foveal.errors import DataError


@dataclass
class ArrayDataset(torch.utils.data.Dataset):
    """Images and labels held in memory as NumPy arrays.

    Indexing returns ``(image, label)`` with ``image`` a float tensor of shape ``(C, H, W)`` in
    ``[0, 1]``, so the dataset also works with a plain :class:`torch.utils.data.DataLoader`.

    Attributes:
        images: ``uint8`` array, shape ``(N, H, W, C)``.
        labels: ``int64`` array, shape ``(N,)``.
        classes: class names; ``labels`` index into this list.
        name: a short human-readable name, e.g. ``"digits/train"``.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    name: str = "dataset"
    metadata: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        images, labels = self.images, self.labels
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
            got = getattr(images, "dtype", type(images).__name__), getattr(images, "shape", "?")
            raise DataError(f"{self.name}: expected images as uint8 (N, H, W, C), got {got}")
        if images.shape[-1] not in (1, 3):
            raise DataError(
                f"{self.name}: expected 1 or 3 channels in the last axis, got shape {images.shape}"
            )
        labels = np.asarray(labels)
        if labels.ndim != 1 or len(labels) != len(images):
            raise DataError(
                f"{self.name}: expected {len(images)} labels of shape (N,), got {labels.shape}"
            )
        if not np.issubdtype(labels.dtype, np.integer):
            raise DataError(f"{self.name}: expected integer labels, got {labels.dtype}")
        self.labels = labels.astype(np.int64, copy=False)
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise DataError(
                f"{self.name}: expected labels in [0, {len(self.classes)}), "
                f"got range [{self.labels.min()}, {self.labels.max()}]"
            )

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = torch.from_numpy(self.images[index]).permute(2, 0, 1).float().div_(255.0)
        return image, int(self.labels[index])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image, the shape a model sees."""
        _, h, w, c = self.images.shape
        return (c, h, w)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, indices: np.ndarray, name: str | None = None) -> ArrayDataset:
        """A new dataset with the rows ``indices`` (copies the selected pixels)."""
        return ArrayDataset(
            self.images[indices], self.labels[indices], list(self.classes),
            name or self.name, dict(self.metadata),
        )

    def balanced_subset(self, n: int, seed: int = 0) -> ArrayDataset:
        """``n`` images drawn class by class in turn, each class in its own seeded random order.

        Class counts differ by at most one while every class still has images; the selection
        keeps dataset order and depends only on ``(labels, n, seed)``. ``n >= len(self)``
        returns all images.
        """
        if n < 1:
            raise ValueError(f"balanced_subset: expected n >= 1, got {n}")
        if n >= len(self):
            return self
        rng = np.random.default_rng(seed)
        queues = [rng.permutation(np.flatnonzero(self.labels == k))
                  for k in range(self.num_classes)]
        # rank r of class k goes before rank r + 1 of any class: sort by (rank, class)
        rank = np.concatenate([np.arange(len(q)) for q in queues])
        cls = np.concatenate([np.full(len(q), k) for k, q in enumerate(queues)])
        order = np.lexsort((cls, rank))
        chosen = np.concatenate(queues)[order[:n]]
        return self.subset(np.sort(chosen), f"{self.name} ({n} of {len(self)})")

    def channel_stats(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and standard deviation of the pixels, in ``[0, 1]`` units."""
        x = self.images.reshape(-1, self.images.shape[-1])
        # float64 accumulation over a strided sample keeps this exact enough and fast.
        sample = x[:: max(1, len(x) // 2_000_000)].astype(np.float64) / 255.0
        std = np.maximum(sample.std(axis=0), 1e-6)
        return sample.mean(axis=0).tolist(), std.tolist()
