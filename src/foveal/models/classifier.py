"""A trained classifier ready for inference: the network plus how to feed it images.

``Classifier.from_file(path)`` accepts an exported ``model.safetensors``, a training
``checkpoint.safetensors``, or a run folder containing either. ``predict`` takes images as PIL
images, file paths or a ``uint8 (N, H, W, C)`` array and returns class probabilities; each image
is converted to the model's channel count (``L`` or ``RGB``), resized to its square input side
with bilinear filtering, and normalised with the training set's per-channel mean and std.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from foveal.data.dataset import ArrayDataset
from foveal.errors import CheckpointError, DataError
from foveal.training.checkpoint import ModelSpec, load_checkpoint

ImageInput = str | os.PathLike[str] | Image.Image


def find_model_file(path: str | os.PathLike[str]) -> Path:
    """``path`` itself, or for a run folder its ``model.safetensors`` (else its checkpoint)."""
    from foveal.training.trainer import CHECKPOINT_FILE, MODEL_FILE

    path = Path(path)
    if path.is_dir():
        found = [p for p in (path / MODEL_FILE, path / CHECKPOINT_FILE) if p.is_file()]
        if not found:
            raise CheckpointError(
                f"expected {MODEL_FILE} or {CHECKPOINT_FILE} in run folder {str(path)!r}, "
                "found neither"
            )
        return found[0]
    return path


class Classifier:
    """A network in eval mode and the :class:`ModelSpec` that describes its inputs.

    ``tta_flip`` averages the logits of each image and its mirror, as training evaluated a
    model trained with ``tta_flip`` (read from the file's config by :meth:`from_file`).
    """

    def __init__(self, model: torch.nn.Module, spec: ModelSpec, *, path: Path | None = None,
                 device: torch.device | str = "cpu", tta_flip: bool = False) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.spec = spec
        self.path = path
        self.tta_flip = tta_flip

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], *, device: str = "auto") -> Classifier:
        """Load from a model/checkpoint file or a run folder (``model.safetensors`` preferred)."""
        from foveal.training.trainer import select_device

        path = find_model_file(path)
        ckpt = load_checkpoint(path)
        spec = ckpt.spec
        try:
            model = spec.build()
        except Exception as exc:
            raise CheckpointError(f"{path}: cannot build model {spec.name!r}: {exc}") from exc
        ckpt.load_model(model)
        tta_flip = bool(ckpt.state.get("config", {}).get("tta_flip", False))
        return cls(model, spec, path=path, device=select_device(device), tta_flip=tta_flip)

    @property
    def classes(self) -> list[str]:
        return self.spec.classes

    def check_dataset(self, dataset: ArrayDataset) -> None:
        """Raise :class:`DataError` if ``dataset``'s images or classes do not fit the model."""
        s = self.spec
        expected = (s.in_channels, s.image_size, s.image_size)
        if tuple(dataset.image_shape) != expected:
            raise DataError(
                f"model {s.name!r} expects images of shape (C, H, W) = {expected}, "
                f"dataset {dataset.name!r} has {tuple(dataset.image_shape)}"
            )
        if dataset.num_classes != s.num_classes:
            raise DataError(
                f"model {s.name!r} has {s.num_classes} classes, dataset {dataset.name!r} has "
                f"{dataset.num_classes}"
            )

    def to_array(self, images: Sequence[ImageInput] | np.ndarray) -> np.ndarray:
        """Images → ``uint8 (N, S, S, C)`` in the model's channel count and input size."""
        s = self.spec
        if isinstance(images, np.ndarray):
            shape = (s.image_size, s.image_size, s.in_channels)
            if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != shape:
                raise DataError(
                    f"expected a uint8 array of shape (N, {shape[0]}, {shape[1]}, {shape[2]}), "
                    f"got {images.dtype} {images.shape}"
                )
            return images
        mode = "L" if s.in_channels == 1 else "RGB"
        out = np.empty((len(images), s.image_size, s.image_size, s.in_channels), np.uint8)
        for i, item in enumerate(images):
            image = item if isinstance(item, Image.Image) else _open(item)
            image = image.convert(mode)
            if image.size != (s.image_size, s.image_size):
                image = image.resize((s.image_size, s.image_size), Image.Resampling.BILINEAR)
            out[i] = np.asarray(image).reshape(out.shape[1:])
        return out

    @torch.no_grad()
    def predict(self, images: Sequence[ImageInput] | np.ndarray) -> np.ndarray:
        """Class probabilities ``(N, K)`` for ``images`` (paths, PIL images or a uint8 array)."""
        x = torch.from_numpy(self.to_array(images)).to(self.device)
        x = x.permute(0, 3, 1, 2).float().div_(255.0)
        mean = torch.tensor(self.spec.mean, device=self.device).view(1, -1, 1, 1)
        std = torch.tensor(self.spec.std, device=self.device).view(1, -1, 1, 1)
        x = (x - mean) / std
        logits = self.model(x).float()
        if self.tta_flip:  # as the model was evaluated in training
            logits = 0.5 * (logits + self.model(x.flip(-1)).float())
        return logits.softmax(1).cpu().numpy()


def _open(path: ImageInput) -> Image.Image:
    try:
        with Image.open(path) as image:
            image.load()
            return image
    except FileNotFoundError as exc:
        raise DataError(f"image not found: expected a file at {str(path)!r}") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{path}: expected a readable image, got {exc}") from exc
