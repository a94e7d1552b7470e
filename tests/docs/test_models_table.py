"""docs/models.md lists every registered model with its published parameter count (the
registry's, which the model tests assert against the built modules)."""

import re
from pathlib import Path

from foveal.models import list_models

PAGE = Path(__file__).resolve().parents[2] / "docs" / "models.md"


def test_models_table_lists_every_registered_model_with_its_count():
    row = re.compile(r"^\| `([\w.]+)` \|[^|]*\|[^|]*\|[^|]*\| ([\d,—]+) \|", re.M)
    rows = {m.group(1): m.group(2) for m in row.finditer(PAGE.read_text())}
    for entry in list_models():
        assert entry.name in rows, f"{entry.name} missing from docs/models.md"
        published = f"{entry.params:,}" if entry.params else "—"
        assert rows[entry.name] == published, entry.name
