"""`foveal data`: dataset generators (`foveal data shapes`)."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_shapes(args: argparse.Namespace) -> int:
    """Write a synthetic shapes dataset (images/*.png + annotations.json) to ``--out``."""
    import json

    from foveal.data.shapes import SHAPE_CLASSES, write_shapes_dataset

    path = write_shapes_dataset(
        args.out, args.n, seed=args.seed, image_size=args.image_size,
        min_objects=args.min_objects, max_objects=args.max_objects, min_size=args.min_size,
        max_size=args.max_size, progress=not args.no_progress,
    )
    objects = len(json.loads(path.read_text())["annotations"])
    print(f"shapes  {args.n} images ({args.image_size}×{args.image_size}) with {objects} objects "
          f"of {len(SHAPE_CLASSES)} classes")
    print(f"images  {path.parent / 'images'}")
    print(f"labels  {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's sub-command(s) to the ``foveal`` parser."""
    p = sub.add_parser("data", help="generate datasets (shapes)",
                       description="Generate synthetic datasets.")
    gen = p.add_subparsers(dest="data_command", metavar="GENERATOR", required=True)
    q = gen.add_parser(
        "shapes", help="synthetic shapes for detection and instance segmentation",
        description="Write images of coloured shapes (circle, rectangle, triangle, ellipse, "
        "star, hexagon, cross) on textured backgrounds, with COCO annotations (boxes, "
        "visible-pixel RLE masks): DIR/images/*.png and DIR/annotations.json.")
    q.add_argument("--out", type=Path, required=True, help="output folder")
    q.add_argument("--n", type=int, required=True, help="number of images")
    q.add_argument("--seed", type=int, default=0, help="random seed (same seed, same files)")
    q.add_argument("--image-size", type=int, default=128, help="image side in pixels")
    q.add_argument("--min-objects", type=int, default=1, help="fewest objects per image")
    q.add_argument("--max-objects", type=int, default=5, help="most objects per image")
    q.add_argument("--min-size", type=float, default=12, help="smallest object diameter (px)")
    q.add_argument("--max-size", type=float, default=None,
                   help="largest object diameter in px (default: 56, or the image size)")
    q.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    q.set_defaults(func=cmd_shapes)
