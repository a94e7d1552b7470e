"""Checkpoints and exported models as single safetensors files, written atomically.

A file holds tensors under prefixed names and a JSON document in the safetensors header
(``__metadata__["foveal"]``)::

    model/<name>            model.state_dict() tensors
    ema/<name>              the weight average's state_dict, when training keeps one
    optim/<path>            every tensor of optimizer.state_dict(), at its key path
    rng/torch, rng/cuda/<d> torch RNG states as uint8 tensors

    {"format": "foveal", "format_version": 2, "kind": "checkpoint" | "model",
     "foveal_version": "...", "model": {"name", "options", "in_channels", "num_classes",
     "image_size", "classes", "mean", "std"}, "optimizer": {"tree": ...}, "scheduler": {...},
     "rng": {...}, "state": {...training progress and config...}}

The optimizer's ``state_dict`` is stored whole, however nested (Lookahead around Muon + AdamW
holds two inner state dicts and a list of slow weights): every tensor goes to ``optim/<path>``
and the JSON keeps the structure, with dicts as ``{"__dict__": [[key, value], ...]}`` (so
integer keys stay integers) and tensors as ``{"__tensor__": name}``. Version 1 files, which
stored a flat optimizer's state, are still read.

One file per checkpoint, replaced with an atomic rename, means a crash (even SIGKILL) at any
moment leaves either the previous complete checkpoint or the new complete one. Safetensors cannot
execute code on load, unlike pickle-based ``torch.save``.
"""

from __future__ import annotations

import json
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.torch
import torch
from torch import nn

import foveal
from foveal.atomic import atomic_write_bytes
from foveal.errors import CheckpointError, FovealError

FORMAT = "foveal"
FORMAT_VERSION = 2


@dataclass
class ModelSpec:
    """Everything needed to rebuild a classifier and feed it images.

    ``mean`` and ``std`` are the per-channel normalisation in ``[0, 1]`` units the model was
    trained with; ``image_size`` is the side of the square input.
    """

    name: str
    in_channels: int
    num_classes: int
    image_size: int
    classes: list[str]
    mean: list[float]
    std: list[float]
    options: dict[str, Any] = field(default_factory=dict)

    def build(self) -> nn.Module:
        from foveal.models import build_model

        return build_model(
            self.name, in_channels=self.in_channels, num_classes=self.num_classes,
            image_size=self.image_size, **self.options,
        )

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ModelSpec:
        try:
            return cls(**doc)
        except TypeError as exc:
            raise CheckpointError(f"malformed model description in checkpoint: {exc}") from exc


def _cpu(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu").contiguous()


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The torch (CPU and CUDA), NumPy and Python RNG states as tensors and JSON."""
    tensors = {"rng/torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for d, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{d}"] = s
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss = random.getstate()
    doc = {
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "python": [version, list(py_state), gauss],
    }
    return tensors, doc


def set_rng_state(tensors: dict[str, torch.Tensor], doc: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured (CUDA states only where CUDA is in use)."""
    torch.set_rng_state(tensors["rng/torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng/cuda/")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda[: torch.cuda.device_count()])
    kind, keys, pos, has_gauss, cached = doc["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, py_state, gauss = doc["python"]
    random.setstate((version, tuple(py_state), gauss))


def encode_tree(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON-able form of a nested state dict; its tensors go to ``tensors`` under ``prefix/…``
    and non-finite floats become ``{"__float__": "inf"}``, so the header is strict JSON."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = _cpu(obj)
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        return {"__dict__": [[k, encode_tree(v, f"{prefix}/{k}", tensors)]
                             for k, v in obj.items()]}
    if isinstance(obj, list | tuple):
        return [encode_tree(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, float) and not math.isfinite(obj):  # strict JSON has no inf / NaN
        return {"__float__": repr(obj)}
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise CheckpointError(
        f"cannot store {prefix}: expected tensors, dicts, lists and JSON scalars, "
        f"got {type(obj).__name__}"
    )


def decode_tree(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`encode_tree` (tuples come back as lists)."""
    if isinstance(obj, dict):
        if "__float__" in obj:
            return float(obj["__float__"])
        if "__tensor__" in obj:
            name = obj["__tensor__"]
            if name not in tensors:
                raise CheckpointError(f"checkpoint lacks tensor {name!r} named in its metadata")
            return tensors[name]
        return {k: decode_tree(v, tensors) for k, v in obj["__dict__"]}
    if isinstance(obj, list):
        return [decode_tree(v, tensors) for v in obj]
    return obj


def _load_optimizer_state_v1(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], doc: dict[str, Any]
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim/"):
            _, index, key = name.split("/", 2)
            state.setdefault(int(index), {})[key] = value
    for index, entries in doc.get("scalars", {}).items():
        state.setdefault(int(index), {}).update(entries)
    optimizer.load_state_dict({"state": state, "param_groups": doc["param_groups"]})


def _load_optimizer_state(
    optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], doc: dict[str, Any]
) -> None:
    try:
        if "tree" in doc:
            optimizer.load_state_dict(decode_tree(doc["tree"], tensors))
        else:
            _load_optimizer_state_v1(optimizer, tensors, doc)
    # torch raises the first three; the nested optimizers (Muon + AdamW, Lookahead) FovealErrors
    except (ValueError, KeyError, TypeError, FovealError) as exc:
        raise CheckpointError(f"optimizer state does not match this optimizer: {exc}") from exc


def save_checkpoint(
    path: str | os.PathLike[str],
    *,
    model: nn.Module,
    spec: ModelSpec,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    state: dict[str, Any] | None = None,
    include_rng: bool = True,
    ema: nn.Module | None = None,
) -> Path:
    """Write model (and optionally optimizer, scheduler, weight average, RNG, progress) to
    ``path`` atomically.

    Without an optimizer the file is an exported model (``kind: "model"``) for eval and predict.
    ``scheduler`` is anything with a JSON-able ``state_dict()``.
    """
    tensors = {f"model/{k}": _cpu(v) for k, v in model.state_dict().items()}
    if ema is not None:
        tensors.update({f"ema/{k}": _cpu(v) for k, v in ema.state_dict().items()})
    doc: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "foveal_version": foveal.__version__,
        "kind": "checkpoint" if optimizer is not None else "model",
        "model": spec.to_json(),
        "state": state or {},
    }
    if optimizer is not None:
        doc["optimizer"] = {"tree": encode_tree(optimizer.state_dict(), "optim", tensors)}
    if scheduler is not None:
        doc["scheduler"] = encode_tree(scheduler.state_dict(), "scheduler", tensors)
    if include_rng and optimizer is not None:
        rng_tensors, doc["rng"] = rng_state()
        tensors.update(rng_tensors)
    metadata = {FORMAT: json.dumps(doc)}
    data = safetensors.torch.save(tensors, metadata=metadata)
    atomic_write_bytes(path, data)
    return Path(path)


@dataclass
class Checkpoint:
    """A checkpoint read from disk: its JSON document and its tensors (on the CPU)."""

    path: Path
    doc: dict[str, Any]
    tensors: dict[str, torch.Tensor]

    @property
    def spec(self) -> ModelSpec:
        return ModelSpec.from_json(self.doc["model"])

    @property
    def state(self) -> dict[str, Any]:
        return self.doc.get("state", {})

    def model_state(self) -> dict[str, torch.Tensor]:
        return {k[len("model/") :]: v for k, v in self.tensors.items() if k.startswith("model/")}

    def load_model(self, model: nn.Module) -> None:
        """Copy the weights into ``model``; mismatched names or shapes raise CheckpointError."""
        weights = self.model_state()
        expected = model.state_dict()
        missing = sorted(set(expected) - set(weights))
        extra = sorted(set(weights) - set(expected))
        shapes = [k for k in expected if k in weights and weights[k].shape != expected[k].shape]
        if missing or extra or shapes:
            details = []
            if missing:
                details.append(f"missing {missing[:3]}")
            if extra:
                details.append(f"unexpected {extra[:3]}")
            if shapes:
                k = shapes[0]
                details.append(
                    f"{k}: expected shape {tuple(expected[k].shape)}, got {tuple(weights[k].shape)}"
                )
            raise CheckpointError(
                f"{self.path}: weights do not fit model {self.spec.name!r}: " + "; ".join(details)
            )
        model.load_state_dict(weights)

    def load_ema(self, ema: nn.Module) -> None:
        """Copy the saved weight average into ``ema``; CheckpointError if there is none."""
        weights = {k[len("ema/"):]: v for k, v in self.tensors.items() if k.startswith("ema/")}
        if not weights:
            raise CheckpointError(f"{self.path}: expected a weight average (ema/…), found none")
        try:
            ema.load_state_dict(weights)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise CheckpointError(f"{self.path}: saved weight average does not fit: {first}") \
                from exc

    def load_training_state(
        self,
        optimizer: torch.optim.Optimizer,
        scheduler: Any | None = None,
        restore_rng: bool = True,
    ) -> None:
        """Restore optimizer, scheduler and RNG state saved by :func:`save_checkpoint`."""
        if self.doc.get("kind") != "checkpoint":
            raise CheckpointError(
                f"{self.path}: expected a training checkpoint, got an exported model "
                "(it has no optimizer state to resume from)"
            )
        _load_optimizer_state(optimizer, self.tensors, self.doc["optimizer"])
        if scheduler is not None and "scheduler" in self.doc:
            state = self.doc["scheduler"]
            if self.doc.get("format_version", 1) >= 2:
                state = decode_tree(state, self.tensors)
            scheduler.load_state_dict(state)
        if restore_rng and "rng" in self.doc:
            set_rng_state(self.tensors, self.doc["rng"])


def load_checkpoint(path: str | os.PathLike[str], *, expect_model: str | None = None) -> Checkpoint:
    """Read a file written by :func:`save_checkpoint`.

    Raises :class:`CheckpointError` (one line) if the file is missing, not safetensors, not a
    foveal file, from a newer format version, or (with ``expect_model``) for another model.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: expected a file at {str(path)!r}")
    try:
        with safetensors.safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118
    except Exception as exc:  # safetensors raises several types for corrupt headers
        raise CheckpointError(
            f"{path}: expected a safetensors checkpoint, could not read it ({exc})"
        ) from exc
    if FORMAT not in metadata:
        raise CheckpointError(f"{path}: expected a foveal checkpoint, got safetensors without one")
    try:
        doc = json.loads(metadata[FORMAT])
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: checkpoint metadata is not valid JSON ({exc})") from exc
    version = doc.get("format_version")
    if doc.get("format") != FORMAT or not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: expected checkpoint format version <= {FORMAT_VERSION}, got {version!r} "
            f"(written by foveal {doc.get('foveal_version', '?')})"
        )
    ckpt = Checkpoint(path, doc, tensors)
    if expect_model is not None and ckpt.spec.name != expect_model:
        raise CheckpointError(
            f"{path}: checkpoint is for model {ckpt.spec.name!r}, expected {expect_model!r}"
        )
    return ckpt
