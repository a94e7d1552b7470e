"""Build a model by name: the names the CLI, checkpoints and :func:`create` use.

Every architecture module registers its builders with :func:`register_model`; a builder is called
as ``builder(in_channels=C, num_classes=K, image_size=S, **options)`` and returns an ``nn.Module``
mapping ``(N, C, S, S)`` images to ``(N, K)`` logits. ``foveal.models`` imports every
architecture module, so importing it fills the registry.

``create(name, num_classes=K)`` builds a model at its own default input size (224 for the
ImageNet configurations, 32 for the CIFAR-sized ones); ``build_model`` is the same with every size
given explicitly, as checkpoints store them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from foveal.errors import ConfigError

__all__ = ["DEFAULT_MODEL", "ModelEntry", "build_model", "create", "get_model_entry",
           "list_models", "model_names", "register_model"]

DEFAULT_MODEL = "resnet9"

Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelEntry:
    """One registered architecture.

    Attributes:
        name: the registry name (``"resnet18"``).
        builder: ``builder(in_channels=, num_classes=, image_size=, **options) -> nn.Module``.
        family: a group for listings (``"resnet"``, ``"vit"``).
        image_size: the default input side length (224 ImageNet, 32 CIFAR).
        options: the keyword options the builder accepts besides the three sizes.
        description: one line for ``foveal models list``.
        params: the published parameter count of the default configuration (1000 classes for
            ImageNet models), or None.
        source: where ``params`` comes from (paper, table, or reference implementation).
    """

    name: str
    builder: Builder
    family: str
    image_size: int
    options: tuple[str, ...]
    description: str
    params: int | None = None
    source: str | None = None


_REGISTRY: dict[str, ModelEntry] = {}


def _keyword_options(builder: Builder) -> tuple[str, ...]:
    fixed = {"in_channels", "num_classes", "image_size"}
    return tuple(name for name, p in inspect.signature(builder).parameters.items()
                 if name not in fixed and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))


def register_model(name: str, *, family: str, image_size: int, description: str,
                   params: int | None = None, source: str | None = None
                   ) -> Callable[[Builder], Builder]:
    """Decorator: register ``builder`` under ``name``; its keyword arguments become options.

    The builder must accept ``in_channels``, ``num_classes`` and ``image_size`` keywords.
    """

    def decorate(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        params_ = inspect.signature(builder).parameters
        missing = [k for k in ("in_channels", "num_classes", "image_size") if k not in params_]
        if missing:
            raise TypeError(f"builder for {name!r} lacks keyword(s) {missing}")
        _REGISTRY[name] = ModelEntry(name, builder, family, image_size, _keyword_options(builder),
                                     description, params, source)
        return builder

    return decorate


def model_names() -> tuple[str, ...]:
    """Every registered name, sorted."""
    return tuple(sorted(_REGISTRY))


def list_models(family: str | None = None) -> list[ModelEntry]:
    """The registered entries (of one ``family`` if given), sorted by family then name."""
    entries = [e for e in _REGISTRY.values() if family is None or e.family == family]
    return sorted(entries, key=lambda e: (e.family, e.name))


def get_model_entry(name: str) -> ModelEntry:
    """The entry of ``name``, or ConfigError listing the valid names."""
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}: expected one of {', '.join(model_names())}")
    return _REGISTRY[name]


def build_model(
    name: str, *, in_channels: int, num_classes: int, image_size: int, **options: Any
) -> nn.Module:
    """Instantiate the model ``name`` for ``in_channels×image_size×image_size`` inputs.

    ``options`` are the model's own keyword arguments (``width`` for resnet9, ``hidden`` and
    ``dropout`` for mlp). Unknown names or options raise :class:`ConfigError` listing valid ones.
    """
    entry = get_model_entry(name)
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        valid = ", ".join(entry.options) or "none"
        raise ConfigError(f"unknown option(s) {unknown} for model {name!r}: valid options: {valid}")
    return entry.builder(in_channels=in_channels, num_classes=num_classes,
                         image_size=image_size, **options)


def create(name: str, num_classes: int | None = None, *, in_channels: int = 3,
           image_size: int | None = None, **options: Any) -> nn.Module:
    """Build ``name`` at its default input size (or ``image_size``) with ``num_classes`` outputs
    (default: the builder's own, 1000 for ImageNet configurations and 10 for CIFAR-sized ones).

    ``create("resnet18")`` is the ImageNet ResNet-18 with its published 11,689,512 parameters.
    """
    entry = get_model_entry(name)
    size = entry.image_size if image_size is None else image_size
    if num_classes is None:
        num_classes = inspect.signature(entry.builder).parameters["num_classes"].default
        if num_classes is inspect.Parameter.empty:
            num_classes = 1000
    return build_model(name, in_channels=in_channels, num_classes=num_classes, image_size=size,
                       **options)
