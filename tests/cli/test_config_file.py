"""read_config_file: the JSON object of a --config file, or a one-line ConfigError."""

import pytest

from foveal.cli.config_file import read_config_file
from foveal.errors import ConfigError


def test_reads_a_json_object(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{"epochs": 3}')
    assert read_config_file(path) == {"epochs": 3}


@pytest.mark.parametrize(("text", "message"), [
    ("[1, 2]", "expected a JSON object of settings, got list"),
    ("{epochs: 3}", "got invalid JSON"),
])
def test_rejects_what_is_not_a_json_object(tmp_path, text, message):
    path = tmp_path / "c.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_config_file(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"config file not found: .*nope\.json"):
        read_config_file(tmp_path / "nope.json")
