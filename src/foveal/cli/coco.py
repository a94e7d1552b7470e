"""`foveal coco-eval`: COCO-style evaluation of a detections file against ground truth."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add this module's sub-command(s) to the ``foveal`` parser."""
