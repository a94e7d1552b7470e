"""The decoded cache returns exactly what a fresh read_image_folder returns (the oracle), is
reused without decoding while the folder is unchanged, and is rebuilt whenever it must be."""

import hashlib
import json
import os

import numpy as np
import pytest
from PIL import Image

from foveal.data import cache as cache_mod
from foveal.data.cache import cache_entry_dir, cached_image_folder, folder_fingerprint
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


def count_decodes(monkeypatch):
    calls = []
    real = cache_mod.read_image_folder
    monkeypatch.setattr(cache_mod, "read_image_folder",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def assert_equals_fresh_decode(ds, src, **kwargs):
    fresh = read_image_folder(src, progress=False, **kwargs)
    np.testing.assert_array_equal(ds.images, fresh.images)
    np.testing.assert_array_equal(ds.labels, fresh.labels)
    assert ds.classes == fresh.classes and ds.images.dtype == np.uint8


def test_second_load_comes_from_cache_and_equals_a_fresh_decode(folder, monkeypatch):
    src, cache = folder
    first = cached_image_folder(src, cache_dir=cache, progress=False)
    assert_equals_fresh_decode(first, src)
    forbid_decoding(monkeypatch)
    second = cached_image_folder(src, cache_dir=cache, progress=False, name="renamed")
    assert_equals_fresh_decode(second, src)
    assert second.name == "renamed"


def test_entry_layout_and_manifest(folder, monkeypatch):
    src, cache = folder
    monkeypatch.setenv("FOVEAL_CACHE", str(cache))
    cached_image_folder(src, progress=False)
    key = hashlib.sha256(str(src.resolve()).encode()).hexdigest()[:16]
    entry = cache / "decoded" / key
    assert entry == cache_entry_dir(src)
    assert sorted(p.name for p in entry.iterdir()) == ["images.npy", "labels.npy",
                                                       "manifest.json"]
    assert sorted(p.name for p in entry.parent.iterdir()) == [key]  # no temporaries left
    manifest = json.loads((entry / "manifest.json").read_text())
    assert manifest["source"] == str(src.resolve()) and manifest["count"] == 8
    assert manifest["shape"] == [8, 6, 6, 3] and manifest["classes"] == ["a", "b"]
    assert manifest["fingerprint"] == folder_fingerprint(src)
    assert manifest["options"] == {"skip_corrupt": False, "image_size": None}
    assert isinstance(manifest["format_version"], int)


def test_fingerprint_is_sha256_of_sorted_path_size_mtime(folder):
    src, _ = folder
    rows = sorted(f"{p.relative_to(src)}\0{p.stat().st_size}\0{p.stat().st_mtime_ns}"
                  for p in src.rglob("*") if p.is_file())
    assert folder_fingerprint(src) == hashlib.sha256("\n".join(rows).encode()).hexdigest()


@pytest.mark.parametrize("change", ["add", "remove", "modify", "touch"])
def test_changed_folder_is_decoded_again(folder, monkeypatch, change):
    src, cache = folder
    cached_image_folder(src, cache_dir=cache, progress=False)
    target = src / "a" / "0.png"
    if change == "add":
        Image.fromarray(np.zeros((6, 6, 3), np.uint8)).save(src / "b" / "new.png")
    elif change == "remove":
        target.unlink()
    elif change == "modify":
        stat = target.stat()
        img = np.asarray(Image.open(target)).copy()
        img[0, 0] ^= 0xFF
        Image.fromarray(img).save(target)
        # a later mtime even where the clock is coarser than the test is fast
        os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    else:
        os.utime(target, ns=(1, 1))
    calls = count_decodes(monkeypatch)
    ds = cached_image_folder(src, cache_dir=cache, progress=False)
    assert calls == [1]
    assert_equals_fresh_decode(ds, src)
    forbid_decoding(monkeypatch)  # and the rebuilt entry is reused
    assert_equals_fresh_decode(cached_image_folder(src, cache_dir=cache, progress=False), src)


def test_other_read_options_get_their_own_decode(folder, monkeypatch):
    src, cache = folder
    cached_image_folder(src, cache_dir=cache, progress=False)
    calls = count_decodes(monkeypatch)
    ds = cached_image_folder(src, cache_dir=cache, image_size=(3, 3), progress=False)
    assert calls == [1] and ds.images.shape == (8, 3, 3, 3)
    assert_equals_fresh_decode(ds, src, image_size=(3, 3))


@pytest.mark.parametrize("damage", ["manifest-not-json", "manifest-a-list", "manifest-keys",
                                    "images-truncated", "labels-missing", "shape-mismatch"])
def test_damaged_entry_is_rebuilt_with_a_warning(folder, monkeypatch, damage):
    src, cache = folder
    cached_image_folder(src, cache_dir=cache, progress=False)
    entry = cache_entry_dir(src, cache)
    manifest = json.loads((entry / "manifest.json").read_text())
    if damage == "manifest-not-json":
        (entry / "manifest.json").write_text("{ not json")
    elif damage == "manifest-a-list":
        (entry / "manifest.json").write_text("[]")
    elif damage == "manifest-keys":
        del manifest["shape"]
        (entry / "manifest.json").write_text(json.dumps(manifest))
    elif damage == "images-truncated":
        data = (entry / "images.npy").read_bytes()
        (entry / "images.npy").write_bytes(data[: len(data) // 2])
    elif damage == "labels-missing":
        (entry / "labels.npy").unlink()
    else:
        np.save(entry / "images.npy", np.zeros((3, 6, 6, 3), np.uint8))
    calls = count_decodes(monkeypatch)
    with pytest.warns(UserWarning, match="rebuilding damaged decoded cache") as record:
        ds = cached_image_folder(src, cache_dir=cache, progress=False)
    assert "\n" not in str(record[0].message)
    assert calls == [1]
    assert_equals_fresh_decode(ds, src)
    assert json.loads((entry / "manifest.json").read_text())["count"] == 8


def test_entry_without_manifest_is_not_trusted(folder, monkeypatch):
    src, cache = folder
    cached_image_folder(src, cache_dir=cache, progress=False)
    (cache_entry_dir(src, cache) / "manifest.json").unlink()
    calls = count_decodes(monkeypatch)
    cached_image_folder(src, cache_dir=cache, progress=False)
    assert calls == [1]


@pytest.mark.parametrize("stage", ["arrays", "manifest", "rename"])
def test_interrupted_write_leaves_no_valid_looking_entry(folder, monkeypatch, stage):
    src, cache = folder

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    target = {"arrays": "_save_array", "manifest": "atomic_write_json", "rename": "os.replace"}
    if stage == "rename":
        monkeypatch.setattr(cache_mod.os, "replace", interrupt)
    else:
        monkeypatch.setattr(cache_mod, target[stage], interrupt)
    with pytest.raises(KeyboardInterrupt):
        cached_image_folder(src, cache_dir=cache, progress=False)
    monkeypatch.undo()
    entry = cache_entry_dir(src, cache)
    assert not entry.exists() and list(entry.parent.iterdir()) == []  # temporaries removed
    calls = count_decodes(monkeypatch)
    assert_equals_fresh_decode(cached_image_folder(src, cache_dir=cache, progress=False), src)
    assert calls == [1]


def test_stale_temporaries_of_old_interrupted_writes_are_removed(folder):
    src, cache = folder
    entry = cache_entry_dir(src, cache)
    old, recent = entry.parent / f".{entry.name}.old1", entry.parent / f".{entry.name}.new1"
    for tmp in (old, recent):
        tmp.mkdir(parents=True)
        (tmp / "images.npy").write_bytes(b"partial")
    os.utime(old, (1, 1))
    cached_image_folder(src, cache_dir=cache, progress=False)
    assert not old.exists() and recent.exists()  # a recent one may be another writer's


def test_unwritable_cache_warns_and_still_returns_the_data(folder, monkeypatch):
    src, cache = folder
    cache.write_text("a file where the cache folder should be")
    with pytest.warns(UserWarning, match="could not write the decoded cache"):
        ds = cached_image_folder(src, cache_dir=cache, progress=False)
    assert_equals_fresh_decode(ds, src)
