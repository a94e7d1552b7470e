"""The HTML report: self-contained (oracle: the stdlib html.parser plus Pillow decoding each
embedded image), escaped, and with metrics formatted in their units."""

from __future__ import annotations

import base64
import html
import io
import json
import math
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from PIL import Image

from foveal.errors import FovealError
from foveal.report import Table, format_metric, plot_confusion_matrix, write_report

PREFIX = "data:image/png;base64,"
EVIL = "<script>alert(1)</script>"


class _Collector(HTMLParser):
    """Records every start tag with its attributes, and the page text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(text: str) -> _Collector:
    parser = _Collector()
    parser.feed(text)
    parser.close()
    return parser


@pytest.fixture(scope="module")
def png(tmp_path_factory):
    path = tmp_path_factory.mktemp("figures") / "cm.png"
    cm = np.array([[5, 1, 0], [2, 7, 1], [0, 0, 9]])
    return plot_confusion_matrix(cm, ["cat", "dog", EVIL], path)


def _report(tmp_path, png, **overrides):
    kwargs = dict(
        title="resnet9 on digits",
        metrics={
            "test_acc": 0.9412,
            "train_time_s": 83.456,
            "throughput_img_per_s": 12345.6,
            "epochs": 20,
            "final_train_loss": 0.0123456,
        },
        config={"model": "resnet9", "lr": 0.1, "classes": ["cat", "dog", EVIL]},
        figures=[("confusion matrix", png)],
        tables=[
            Table(
                "per-class accuracy",
                ["class", "accuracy"],
                [["cat", 0.5], ["dog", float("nan")], [EVIL, 1.0]],
            )
        ],
        notes="first paragraph\n\nsecond & last",
    )
    kwargs.update(overrides)
    path = write_report(tmp_path / "report.html", **kwargs)
    assert path == tmp_path / "report.html"
    return path.read_text(encoding="utf-8")


def test_report_is_self_contained(tmp_path, png):
    text = _report(tmp_path, png)
    lowered = text.lower()
    for forbidden in ("http://", "https://", "<script", "<link", "<iframe", "url("):
        assert forbidden not in lowered, forbidden
    images = [attrs for tag, attrs in _parse(text).tags if tag == "img"]
    assert len(images) == 1
    for attrs in images:
        src = attrs["src"]
        assert src.startswith(PREFIX)
        data = base64.b64decode(src[len(PREFIX) :], validate=True)
        assert data == png.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "PNG"
            image.load()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]  # no temp leftovers


def test_urls_in_data_stay_text_not_resources(tmp_path, png):
    """A URL in the config is shown as text; no attribute may point outside the file."""
    text = _report(tmp_path, png, config={"source": "https://example.org/data.tar.gz"})
    parsed = _parse(text)
    assert "https://example.org/data.tar.gz" in "".join(parsed.text)
    for _, attrs in parsed.tags:
        for name, value in attrs.items():
            if name in ("src", "href", "action", "srcset", "poster", "data"):
                assert value is not None and value.startswith(PREFIX), (name, value)


def test_data_strings_are_html_escaped(tmp_path, png):
    """Pitfall: interpolating class names or config values raw lets `<script>` run."""
    text = _report(tmp_path, png, title=f"run {EVIL}", notes=EVIL)
    parsed = _parse(text)
    assert not any(tag == "script" for tag, _ in parsed.tags)
    assert "&lt;script&gt;" in text
    shown = "".join(parsed.text)
    assert shown.count(EVIL) >= 4  # shown as text in the title, heading, table and notes
    assert "first &amp; second" in _report(tmp_path, png, notes="first & second")


def test_metrics_appear_formatted(tmp_path, png):
    text = _report(tmp_path, png)
    cards = {
        "test acc": "94.12 %",
        "train time": "83.5 s",
        "throughput": "12,346 img/s",
        "epochs": "20",
        "final train loss": "0.01235",
    }
    for label, value in cards.items():
        card = f'<div class="label">{label}</div><div class="value">{value}</div>'
        assert card in text, card


def test_table_cells_are_formatted_by_column_name(tmp_path, png):
    """Oracle: format_metric's conventions, applied with the column name as the metric name."""
    table = Table(
        "per class",
        ["class", "images", "accuracy"],
        [["cat", 1200, 0.5], ["dog", 0, None], ["eel", 3, float("nan")]],
    )
    text = _report(tmp_path, png, tables=[table])
    cells = text[text.index("<tbody>") : text.index("</tbody>")]
    for expected in (
        "<td>cat</td>",
        '<td class="num">1,200</td>',
        '<td class="num">50.00 %</td>',
        '<td class="num">n/a</td>',
    ):
        assert expected in cells, expected
    assert cells.count("n/a") == 2


def test_config_is_pretty_json(tmp_path, png):
    """Oracle: json.loads of the <pre> block gives back the config."""
    config = {"model": "resnet9", "lr": 0.1, "nested": {"b": 1, "a": [1, 2]}, "name": EVIL}
    text = _report(tmp_path, png, config=config)
    pre_start = text.index("<pre>") + len("<pre>")
    block = text[pre_start : text.index("</pre>")]
    assert json.loads(html.unescape(block)) == config
    assert "\n  " in html.unescape(block)  # indented


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("test_acc", 0.9412, "94.12 %"),
        ("top5_accuracy", 1.0, "100.00 %"),
        ("test_acc", np.float32(0.5), "50.00 %"),
        ("test_acc", torch.tensor(0.25), "25.00 %"),
        ("train_time_s", 83.456, "83.5 s"),
        ("eval_seconds", 4.254, "4.25 s"),
        ("throughput_img_per_s", 12345.6, "12,346 img/s"),
        ("images_per_s", 999.4, "999 img/s"),
        ("num_parameters", 6_573_130, "6,573,130"),
        ("final_loss", 0.0123456, "0.01235"),
        ("test_acc", float("nan"), "n/a"),
        ("test_acc", None, "n/a"),
        ("amp", True, "yes"),
        ("device", "cpu", "cpu"),
    ],
)
def test_format_metric(name, value, expected):
    """Oracle: the unit conventions documented in format_metric."""
    assert format_metric(name, value) == expected


def test_missing_or_non_png_figure_raises_and_writes_nothing(tmp_path):
    not_png = tmp_path / "fig.png"
    not_png.write_bytes(b"GIF89a")
    out = tmp_path / "out"
    with pytest.raises(FovealError, match="expected a PNG file for figure 'x'"):
        write_report(out / "report.html", title="t", metrics={}, figures=[("x", not_png)])
    with pytest.raises(FovealError, match="expected a readable PNG for figure 'y'"):
        write_report(
            out / "report.html", title="t", metrics={}, figures=[("y", tmp_path / "missing.png")]
        )
    assert not out.exists()


def test_table_row_length_mismatch_raises(tmp_path):
    with pytest.raises(FovealError, match="expected 2 cells per row in table 't', got 3"):
        write_report(
            tmp_path / "r.html", title="t", metrics={}, tables=[("t", ["a", "b"], [[1, 2, 3]])]
        )
    assert not (tmp_path / "r.html").exists()


def test_minimal_report(tmp_path):
    """Only a title and metrics: still a complete page, and NaN accuracy shows as n/a."""
    path = write_report(tmp_path / "r.html", title="empty", metrics={"test_acc": math.nan})
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert "n/a" in text and "<img" not in text
