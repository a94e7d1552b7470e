"""Reading a ``--config`` JSON file of settings for the CLI's training commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from foveal.errors import ConfigError


def read_config_file(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``, or ConfigError naming the file and what is wrong with it."""
    try:
        settings = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {str(path)!r}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: expected a JSON object, got invalid JSON "
                          f"({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(settings, dict):
        raise ConfigError(f"{path}: expected a JSON object of settings, got "
                          f"{type(settings).__name__}")
    return settings
