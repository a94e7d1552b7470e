"""load_dataset: names, paths and the error messages that guide a user."""

import numpy as np
import pytest
from PIL import Image

from foveal.data import load_dataset
from foveal.errors import ConfigError, DataError


def test_unknown_name_lists_the_valid_names():
    with pytest.raises(ConfigError, match="expected one of digits, mnist, cifar10 or a path"):
        load_dataset("imagenet")


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_missing_official_files_say_where_they_were_looked_for(name, tmp_path):
    with pytest.raises(DataError, match=rf"{name} could not be read from '{tmp_path}'.*--download"):
        load_dataset(name, root=tmp_path)


def test_split_folder_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("FOVEAL_CACHE", str(tmp_path / "cache"))
    for split in ("train", "test"):
        for c in ("x", "y"):
            (tmp_path / "d" / split / c).mkdir(parents=True)
            Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "d" / split / c / "0.png")
    ds = load_dataset(str(tmp_path / "d"), "test", progress=False)
    assert ds.name == "d/test" and ds.classes == ["x", "y"] and len(ds) == 2


def test_single_folder_has_only_a_train_split(tmp_path):
    (tmp_path / "d" / "x").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "d" / "x" / "0.png")
    assert len(load_dataset(str(tmp_path / "d"), cache=False, progress=False)) == 1
    with pytest.raises(DataError, match="has only a 'train' split"):
        load_dataset(str(tmp_path / "d"), "test", cache=False, progress=False)
