"""Every Python example in docs/geometry, docs/detection, docs/models.md and docs/training.md
runs as written.

The pages print what they claim.

Pages whose examples read the real data in ../shared/data are skipped when it is absent.
"""

import os
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
PAGES = sorted((REPO / "docs" / "geometry").glob("*.md")) + sorted(
    (REPO / "docs" / "detection").glob("*.md")) + [REPO / "docs" / "models.md",
                                                    REPO / "docs" / "training.md"]
# page → the folder its example runs in (its relative file names are read there)
WORKDIR = {"ransac_homography.md": SHARED_DATA / "oxford_affine_graf" / "graf"}
# pages whose examples write run folders run in a temporary folder
RUN_IN_TMP = {"training.md"}


@pytest.mark.parametrize("page", PAGES, ids=[f"{p.parent.name}/{p.name}" for p in PAGES])
def test_docs_examples_run(page, tmp_path, monkeypatch, capsys):
    text = page.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    if not blocks:
        pytest.skip(f"{page.name} has no Python example")
    if "shared/data" in "".join(blocks) and not SHARED_DATA.is_dir():
        pytest.skip("../shared/data not found (present on the project's machines only)")
    workdir = tmp_path if page.name in RUN_IN_TMP else WORKDIR.get(page.name, REPO)
    if not workdir.is_dir():
        pytest.skip(f"{workdir} not found")
    monkeypatch.chdir(workdir)
    namespace: dict = {"__name__": "docs_example"}
    # examples that write files write them into a temporary folder
    original_save = None
    if page.name in WORKDIR:
        from PIL import Image

        original_save = Image.Image.save
        monkeypatch.setattr(Image.Image, "save", lambda self, fp, *a, **k: original_save(
            self, tmp_path / os.path.basename(str(fp)), *a, **k))
    for block in blocks:
        exec(compile(block, str(page), "exec"), namespace)
    capsys.readouterr()
