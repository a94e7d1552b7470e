"""The decoded cache returns what a fresh decode returns, and only rebuilds when it must."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from foveal.data import cache as cache_mod
from foveal.data.cache import cached_image_folder
from foveal.data.image_folder import read_image_folder


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(1)
    for c in ("a", "b"):
        (tmp_path / "src" / c).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).save(
                tmp_path / "src" / c / f"{i}.png")
    return tmp_path / "src", tmp_path / "cache"


def forbid_decoding(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(cache_mod, "read_image_folder", fail)


def test_second_load_comes_from_cache_and_equals_a_fresh_decode(folder, monkeypatch):
    src, cache = folder
    first = cached_image_folder(src, cache_dir=cache, progress=False)
    forbid_decoding(monkeypatch)
    second = cached_image_folder(src, cache_dir=cache, progress=False)
    fresh = read_image_folder(src, progress=False)
    np.testing.assert_array_equal(second.images, fresh.images)
    np.testing.assert_array_equal(second.labels, first.labels)
    assert second.classes == fresh.classes


@pytest.mark.parametrize("change", ["add", "remove", "modify"])
def test_changed_folder_is_decoded_again(folder, change):
    src, cache = folder
    cached_image_folder(src, cache_dir=cache, progress=False)
    target = src / "a" / "0.png"
    if change == "add":
        Image.fromarray(np.zeros((6, 6, 3), np.uint8)).save(src / "b" / "new.png")
    elif change == "remove":
        target.unlink()
    else:
        Image.fromarray(np.full((6, 6, 3), 3, np.uint8)).save(target)
        os.utime(target, ns=(1, 1))  # a different mtime even on coarse clocks
    ds = cached_image_folder(src, cache_dir=cache, progress=False)
    np.testing.assert_array_equal(ds.images, read_image_folder(src, progress=False).images)


def test_damaged_manifest_is_rebuilt_with_a_warning(folder):
    src, cache = folder
    cached_image_folder(src, cache_dir=cache, progress=False)
    (manifest,) = cache.glob("decoded/*/manifest.json")
    manifest.write_text("{ not json")
    with pytest.warns(UserWarning, match="rebuilding damaged decoded cache"):
        ds = cached_image_folder(src, cache_dir=cache, progress=False)
    assert len(ds) == 8
    assert json.loads(manifest.read_text())["count"] == 8


def test_entry_without_manifest_is_not_trusted(folder, monkeypatch):
    # An interrupted write leaves arrays without a manifest: that is no valid entry.
    src, cache = folder
    cached_image_folder(src, cache_dir=cache, progress=False)
    (manifest,) = cache.glob("decoded/*/manifest.json")
    manifest.unlink()
    calls = []
    real = cache_mod.read_image_folder
    monkeypatch.setattr(cache_mod, "read_image_folder",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    cached_image_folder(src, cache_dir=cache, progress=False)
    assert calls == [1]
