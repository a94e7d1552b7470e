"""Shared fixtures for the detection tests: the real tiny_coco subset of MS-COCO 2017."""

from pathlib import Path

import pytest

# /work/main/tests/detection/conftest.py -> /work/shared/data (the repository's ../shared/data)
SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
TINY_COCO = SHARED_DATA / "tiny_coco" / "tiny_coco"


@pytest.fixture(scope="session")
def tiny_coco_dir() -> Path:
    """The tiny_coco root (``annotations/``, ``train2017/``, ``val2017/``); skips when absent."""
    if not (TINY_COCO / "annotations" / "instances_val2017.json").is_file():
        pytest.skip(f"tiny_coco not found at {TINY_COCO} (the shared data folder is absent)")
    return TINY_COCO
