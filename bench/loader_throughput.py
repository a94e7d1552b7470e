"""Loader throughput: foveal's in-memory loader against torch.utils.data.DataLoader.

Both feed the same training batches from the same ImageFolder (the CIFAR-10 JPEG copy's train
split, 50,000 images) with the same augmentation (random crop with 4-pixel padding and a
horizontal flip), normalisation and batch size, on the CPU.

- foveal: ``load_dataset(folder)`` decodes the folder once into the decoded cache (timed and
  reported separately, as a one-time cost), then :class:`InMemoryLoader` serves epochs from one
  ``uint8`` tensor, augmenting whole batches.
- reference: a ``torch.utils.data.Dataset`` that opens each JPEG with PIL per item, converts,
  normalises and augments it per image, behind a ``DataLoader`` with one worker per core (the
  usual recipe, written without torchvision, which this project does not depend on).

Reported: images per second of one epoch for each, their ratio, and the decode-once cost.

    python bench/loader_throughput.py [--batch-size 512] [--limit 20000]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from common import save
from foveal.data.augment import Augment
from foveal.data.loader import InMemoryLoader
from real_data import unpack


class JpegFolder(torch.utils.data.Dataset):
    """Per-item decoding, as a torchvision ImageFolder + transforms pipeline does it."""

    def __init__(self, root: Path, mean: list[float], std: list[float], limit: int | None) -> None:
        classes = sorted(p.name for p in root.iterdir() if p.is_dir())
        self.items = [(f, i) for i, c in enumerate(classes) for f in sorted((root / c).iterdir())]
        if limit:
            rng = np.random.default_rng(0)
            self.items = [self.items[j] for j in rng.permutation(len(self.items))[:limit]]
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.items[index]
        with Image.open(path) as image:
            x = torch.from_numpy(np.asarray(image.convert("RGB"))).permute(2, 0, 1)
        x = (x.float() / 255 - self.mean) / self.std
        x = F.pad(x[None], (4, 4, 4, 4), mode="reflect")[0]
        dy, dx = np.random.randint(0, 9, 2)
        x = x[:, dy : dy + 32, dx : dx + 32]
        if np.random.rand() < 0.5:
            x = x.flip(-1)
        return x, label


def epoch_rate(batches) -> float:
    n, start = 0, time.perf_counter()
    for x, _ in batches:
        n += len(x)
    return n / (time.perf_counter() - start)


def main() -> None:
    from foveal.data.datasets import load_dataset

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--limit", type=int, default=None, help="use only this many images")
    args = ap.parse_args()
    root = unpack("cifar10-jpg.tar.gz", "cifar10-jpg")
    workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2

    t0 = time.perf_counter()
    train = load_dataset(str(root), "train")
    decode_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    train = load_dataset(str(root), "train")
    decode_cached = time.perf_counter() - t0
    if args.limit:
        train = train.subset(np.random.default_rng(0).permutation(len(train))[: args.limit])
    mean, std = train.channel_stats()

    ours = InMemoryLoader(train, args.batch_size, shuffle=True, drop_last=True,
                          augment=Augment(crop_padding=4, flip=True), mean=mean, std=std)
    ours_rate = max(epoch_rate(ours.batches(e)) for e in range(2))
    reference = torch.utils.data.DataLoader(
        JpegFolder(root / "train", mean, std, args.limit), batch_size=args.batch_size,
        shuffle=True, drop_last=True, num_workers=workers, persistent_workers=True,
    )
    ref_rate = max(epoch_rate(reference) for _ in range(2))
    result = {
        "benchmark": "loader_throughput", "images": len(train), "batch_size": args.batch_size,
        "reference": f"torch.utils.data.DataLoader, PIL per item, num_workers={workers}",
        "foveal_img_per_s": ours_rate, "dataloader_img_per_s": ref_rate,
        "ratio": ours_rate / ref_rate, "decode_once_s": decode_first,
        "cached_load_s": decode_cached,
    }
    print(f"foveal {ours_rate:,.0f} img/s, DataLoader {ref_rate:,.0f} img/s, "
          f"ratio {ours_rate / ref_rate:.1f}; decode once {decode_first:.1f} s, "
          f"cached load {decode_cached:.2f} s")
    print(f"written to {save('loader_throughput', result)}")


if __name__ == "__main__":
    main()
