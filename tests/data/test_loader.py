"""InMemoryLoader against torch.utils.data.DataLoader and the normalisation formula."""

import numpy as np
import torch

from foveal.data.augment import Augment
from foveal.data.dataset import ArrayDataset
from foveal.data.loader import InMemoryLoader


def make_dataset(n=50, c=3, s=6, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, s, s, c), dtype=np.uint8)
    return ArrayDataset(images, rng.integers(0, 4, n), ["a", "b", "c", "d"], "toy")


def test_unshuffled_batches_equal_dataloader_batches_after_normalisation():
    ds = make_dataset()
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    ours = list(InMemoryLoader(ds, 16, mean=mean, std=std))
    ref = list(torch.utils.data.DataLoader(ds, batch_size=16))
    assert len(ours) == len(ref) == 4
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    for (x, y), (rx, ry) in zip(ours, ref, strict=True):
        torch.testing.assert_close(x, (rx - m) / s)
        torch.testing.assert_close(y, ry)


def test_shuffled_epoch_visits_every_sample_once_and_epochs_differ():
    ds = make_dataset(n=37)
    loader = InMemoryLoader(ds, 8, shuffle=True, seed=3)
    o0, o1 = loader.order(0), loader.order(1)
    assert sorted(o0.tolist()) == list(range(37))
    assert not torch.equal(o0, o1)
    assert torch.equal(o0, InMemoryLoader(ds, 8, shuffle=True, seed=3).order(0))


def test_drop_last_drops_the_tail():
    loader = InMemoryLoader(make_dataset(n=37), 8, drop_last=True)
    assert len(loader) == 4 and loader.num_samples == 32
    assert all(len(y) == 8 for _, y in loader)


def test_starting_mid_epoch_replays_the_same_batches():
    # Exact resumption: batches(epoch, start=k) equals batches k.. of a full iteration.
    ds = make_dataset(n=64)
    loader = InMemoryLoader(ds, 8, shuffle=True, augment=Augment(2, True, 2), seed=7)
    full = list(loader.batches(2))
    tail = list(loader.batches(2, start=5))
    for (x, y), (tx, ty) in zip(full[5:], tail, strict=True):
        torch.testing.assert_close(x, tx)
        torch.testing.assert_close(y, ty)


def test_default_statistics_standardise_the_data():
    ds = make_dataset(n=400, s=8)
    x = torch.cat([x for x, _ in InMemoryLoader(ds, 100)])
    torch.testing.assert_close(x.mean((0, 2, 3)), torch.zeros(3), atol=1e-3, rtol=0)
    torch.testing.assert_close(x.std((0, 2, 3)), torch.ones(3), atol=1e-2, rtol=0)


def test_channels_last_layout():
    x, _ = next(iter(InMemoryLoader(make_dataset(), 4, channels_last=True)))
    assert x.is_contiguous(memory_format=torch.channels_last)
