"""`foveal models list | summary`: the architecture registry and per-layer summaries."""

from __future__ import annotations

import argparse
import inspect
import json
import re
from typing import Any

from foveal.errors import ConfigError


def parse_input_size(text: str) -> tuple[int, int, int]:
    """``"3x224x224"`` → ``(3, 224, 224)``; ConfigError for anything else."""
    if not re.fullmatch(r"\s*\d+\s*[x×]\s*\d+\s*[x×]\s*\d+\s*", text):
        raise ConfigError(f"--input: expected CxHxW such as 3x224x224, got {text!r}")
    c, h, w = (int(v) for v in re.split(r"[x×]", text))
    if min(c, h, w) < 1:
        raise ConfigError(f"--input: expected positive sizes, got {text!r}")
    return c, h, w


def _default_num_classes(builder: Any) -> int:
    default = inspect.signature(builder).parameters["num_classes"].default
    return default if isinstance(default, int) else 1000


def cmd_list(args: argparse.Namespace) -> int:
    """Print the registered architectures (of one family)."""
    from foveal.models import list_models

    entries = list_models(args.family)
    if args.family is not None and not entries:
        families = sorted({e.family for e in list_models()})
        raise ConfigError(f"unknown family {args.family!r}: expected one of "
                          f"{', '.join(families)}")
    rows = [{"name": e.name, "family": e.family,
             "input_size": [3, e.image_size, e.image_size], "params": e.params,
             "params_source": e.source, "options": list(e.options),
             "description": e.description} for e in entries]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    table = [("name", "family", "input", "params", "description")]
    table += [(r["name"], r["family"], "×".join(map(str, r["input_size"])),
               f"{r['params']:,}" if r["params"] else "-", r["description"]) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(4)]
    for line in table:
        print("  ".join([line[0].ljust(widths[0]), line[1].ljust(widths[1]),
                         line[2].ljust(widths[2]), line[3].rjust(widths[3]), line[4]]))
    return 0


# models above this many parameters are summarized on the meta device: no memory, no compute
_META_ABOVE_PARAMS = 30_000_000


def _build(name: str, size: tuple[int, int, int], num_classes: int | None) -> Any:
    """The model and its summary: on the meta device for big models (shapes only), on the CPU
    for small ones (the meta kernels take seconds to load) or when the forward needs data."""
    import torch

    from foveal.models import build_model, get_model_entry
    from foveal.models.summary import summarize

    entry = get_model_entry(name)
    c, h, _ = size
    classes = _default_num_classes(entry.builder) if num_classes is None else num_classes
    if classes < 1:
        raise ConfigError(f"--num-classes: expected a positive integer, got {classes}")
    with torch.device("meta"):
        model = build_model(name, in_channels=c, num_classes=classes, image_size=h)
    if sum(p.numel() for p in model.parameters()) > _META_ABOVE_PARAMS:
        try:
            return model, summarize(model, size)
        except ConfigError:  # the forward needs data (or the input is bad): run it on the CPU
            pass
    model = build_model(name, in_channels=c, num_classes=classes, image_size=h)
    return model, summarize(model, size)


def cmd_summary(args: argparse.Namespace) -> int:
    """Print the per-layer table, the totals and, for a plain chain, the receptive field."""
    from foveal.models import get_model_entry
    from foveal.models.receptive_field import chain_receptive_field, layer_geometry
    from foveal.models.summary import format_summary

    entry = get_model_entry(args.name)
    size = parse_input_size(args.input) if args.input else (3, entry.image_size, entry.image_size)
    model, summary = _build(args.name, size, args.num_classes)
    rf = None
    try:
        if layer_geometry(model):
            rf = chain_receptive_field(model)
    except ConfigError:  # not a plain chain: the closed form does not apply
        pass
    if args.json:
        record = {"model": args.name, **summary.to_dict(), "published_params": entry.params}
        if rf is not None:
            record["receptive_field"] = list(rf)
        print(json.dumps(record, indent=2))
        return 0
    print(f"{args.name}: {entry.description}")
    print(format_summary(summary))
    if entry.params is not None:
        print(f"published        {entry.params:,} parameters ({entry.source or 'registry'})")
    if rf is not None:
        print(f"receptive field  {rf[0]}×{rf[1]} px (plain chain, closed form)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's sub-command(s) to the ``foveal`` parser."""
    p = sub.add_parser("models", help="list architectures, summarize one layer by layer",
                       description="The registered architectures and their per-layer summaries.")
    tools = p.add_subparsers(dest="models_command", metavar="TOOL", required=True)
    q = tools.add_parser("list", help="the registered architectures",
                         description="Name, family, default input size, published parameter "
                         "count and description of each registered architecture.")
    q.add_argument("--family", default=None, help="only this family (resnet, vit, …)")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_list)
    q = tools.add_parser("summary", help="per-layer table: shapes, parameters, FLOPs, memory",
                         description="One forward pass with hooks (on the meta device where the "
                         "model allows): per-layer output shapes, parameters, FLOPs (one "
                         "multiply-accumulate = 2 FLOPs) and activation memory, the totals, and "
                         "the receptive field when the model is a plain chain.")
    q.add_argument("name", help="model name (see `foveal models list`)")
    q.add_argument("--input", default=None, metavar="CxHxW",
                   help="input size, e.g. 3x224x224 (default: the model's own; the model is "
                   "built for image_size H)")
    q.add_argument("--num-classes", type=int, default=None,
                   help="output classes (default: the builder's default)")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=cmd_summary)
