"""Training throughput: the foveal Trainer against a plain hand-written PyTorch loop.

Both train the same model on the same in-memory data with the same batch size, optimizer and
schedule, alternating A, B, A, B, … so that machine noise hits both alike. The plain loop is what
a careful user writes by hand: data pre-normalised on the device, a random permutation per epoch,
forward, loss, backward, step. The Trainer adds the loader's per-batch normalisation,
NaN checks, running metrics, progress reporting and the scheduler. Time is the training loop
only (per-epoch evaluation and checkpointing excluded for both).

Goal: ratio (Trainer img/s ÷ plain img/s) ≥ 0.95.

    python bench/train_throughput.py [--model resnet9 --width 16 --batch-size 256 --repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch.nn import functional as F

from common import save
from foveal.data.dataset import ArrayDataset
from foveal.models import build_model
from foveal.training.config import TrainConfig
from foveal.training.trainer import Trainer, build_optimizer, build_scheduler, select_device


def synthetic(n: int, size: int, seed: int = 0) -> ArrayDataset:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    return ArrayDataset(images, rng.integers(0, 10, n), [str(i) for i in range(10)], "synthetic")


def plain_loop(config: TrainConfig, data: ArrayDataset, epochs: int) -> float:
    """Images per second of a hand-written loop (no augmentation, as the Trainer here)."""
    device = select_device(config.device)
    torch.manual_seed(config.seed)
    model = build_model(config.model, in_channels=3, num_classes=10, image_size=32,
                        **config.model_options).to(device)
    model = model.to(memory_format=torch.channels_last)
    mean, std = data.channel_stats()
    x_all = torch.from_numpy(data.images).to(device).permute(0, 3, 1, 2).float().div(255)
    x_all = ((x_all - torch.tensor(mean, device=device).view(1, 3, 1, 1))
             / torch.tensor(std, device=device).view(1, 3, 1, 1))
    y_all = torch.from_numpy(data.labels).to(device)
    opt = build_optimizer(config, model)
    steps = len(data) // config.batch_size
    sched = build_scheduler(config, opt, steps)
    seen, start = 0, time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(data), device=device)
        for b in range(steps):
            idx = order[b * config.batch_size : (b + 1) * config.batch_size]
            x = x_all[idx].contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(x), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            seen += len(idx)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - start)


def trainer_loop(config: TrainConfig, data: ArrayDataset, tiny: ArrayDataset, run_dir) -> float:
    trainer = Trainer(config, run_dir, train_set=data, test_set=tiny, progress=True,
                      log=lambda _: None)
    result = trainer.fit()
    seen = sum(r["train_images"] for r in result.history)
    return seen / sum(r["train_time_s"] for r in result.history)


def main() -> None:
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="resnet9")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--images", type=int, default=4096)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    options = {"width": args.width} if args.model == "resnet9" else {}
    config = TrainConfig(dataset="synthetic", model=args.model, model_options=options,
                         epochs=args.epochs, batch_size=args.batch_size, lr=0.05,
                         device=args.device, schedule="cosine")
    data, tiny = synthetic(args.images, 32), synthetic(10, 32, seed=1)
    plain, ours = [], []
    with tempfile.TemporaryDirectory() as tmp:
        plain_loop(config, synthetic(2 * args.batch_size, 32), 1)  # warm-up
        for r in range(args.repeats):
            plain.append(plain_loop(config, data, args.epochs))
            ours.append(trainer_loop(config, data, tiny, f"{tmp}/run{r}"))
            print(f"repeat {r + 1}: plain {plain[-1]:,.0f} img/s, trainer {ours[-1]:,.0f} img/s",
                  flush=True)
    p, o = statistics.median(plain), statistics.median(ours)
    result = {"benchmark": "train_throughput", "model": args.model, "options": options,
              "images": args.images, "batch_size": args.batch_size, "epochs": args.epochs,
              "device": str(select_device(args.device)), "plain_img_per_s": plain,
              "trainer_img_per_s": ours, "median_plain": p, "median_trainer": o,
              "ratio": o / p}
    print(f"median: plain {p:,.0f} img/s, trainer {o:,.0f} img/s, ratio {o / p:.3f}")
    print(f"written to {save('train_throughput_' + str(select_device(args.device)), result)}")


if __name__ == "__main__":
    main()
