"""The run report: one self-contained HTML file with metrics, figures, tables and the config.

Self-contained means the file alone is the whole report: figures are embedded as base64
``data:image/png`` URIs, the CSS is inline, and there are no scripts, links or external URLs, so
it can be mailed, archived or opened offline and shows the same thing in ten years. A
Content-Security-Policy meta tag makes browsers refuse any other resource as well.

Every string that comes from data (title, metric names, class names, config values, notes) is
HTML-escaped, so a class called ``<script>`` is shown, not run.
"""

from __future__ import annotations

import base64
import html
import json
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from foveal import __version__
from foveal.atomic import atomic_write_text
from foveal.errors import DataError

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class Table(NamedTuple):
    """A table for the report: a caption, column headers and rows of cells.

    Numbers are formatted by :func:`format_metric` under their column's name, so a column
    called ``accuracy`` shows ``94.12 %`` and one called ``images`` shows ``1,000``; ``None``
    and NaN show as ``n/a``. A plain ``(caption, columns, rows)`` tuple works too.
    """

    caption: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]


def _scalar(value: Any) -> Any:
    """Unwrap 0-d NumPy arrays and torch tensors to Python numbers."""
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        return value.item()
    return value


def format_metric(name: str, value: Any) -> str:
    """Format one summary metric for display, choosing the unit from the name's ending.

    - ``img_per_s``, ``images_per_s``, ``throughput``: ``12345.6`` -> ``12,346 img/s``
    - ``acc``, ``accuracy`` (a fraction in [0, 1]): ``0.9412`` -> ``94.12 %``
    - ``_s``, ``_seconds``, ``time``: ``83.456`` -> ``83.5 s`` (``4.25 s`` below 10 s)
    - anything else: ints with thousands separators (``50,000``), floats with 4 significant
      digits (``0.1``), other values with ``str``.

    ``None`` and NaN are shown as ``n/a``, booleans as ``yes`` / ``no``.
    """
    value = _scalar(value)
    key = name.lower()
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, numbers.Real):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if key.endswith(("img_per_s", "images_per_s", "throughput")):
        return f"{value:,.0f} img/s"
    if key.endswith(("acc", "accuracy")):
        return f"{100 * value:.2f} %"
    if key.endswith(("_s", "_seconds", "time")):
        return f"{value:.2f} s" if abs(value) < 10 else f"{value:,.1f} s"
    if isinstance(value, numbers.Integral):
        return f"{value:,}"
    return f"{value:.4g}"


def _label(name: str) -> str:
    """The card label for a metric: the name without its unit suffix, ``_`` as spaces."""
    for suffix in ("img_per_s", "images_per_s", "_seconds", "_s"):
        if name.endswith(suffix):
            name = name[: -len(suffix)].rstrip("_") or "throughput"
            break
    return name.replace("_", " ")


def _png_data_uri(caption: str, path: str | os.PathLike[str]) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(
            f"expected a readable PNG for figure {caption!r}, got {str(path)!r}: "
            f"{exc.strerror or exc}"
        ) from exc
    if not data.startswith(_PNG_SIGNATURE):
        raise DataError(f"expected a PNG file for figure {caption!r}, got {str(path)!r}")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2330;
  background: #f5f6f8; margin: 0; padding: 2rem 1rem; line-height: 1.5; }
main { max-width: 1100px; margin: 0 auto; }
h1 { font-size: 1.7rem; margin: 0 0 .2rem; }
h2 { font-size: 1.2rem; margin: 2rem 0 .8rem; border-bottom: 1px solid #d8dce3;
  padding-bottom: .3rem; }
.subtitle { color: #667085; margin: 0 0 1.5rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(170px, 1fr));
  gap: .8rem; }
.card { background: #fff; border: 1px solid #e1e4ea; border-radius: 8px; padding: .8rem 1rem; }
.card .label { color: #667085; font-size: .8rem; text-transform: uppercase;
  letter-spacing: .03em; }
.card .value { font-size: 1.35rem; font-weight: 600; font-variant-numeric: tabular-nums; }
figure { background: #fff; border: 1px solid #e1e4ea; border-radius: 8px; margin: 0 0 1rem;
  padding: 1rem; }
figure img { max-width: 100%; height: auto; display: block; margin: 0 auto;
  image-rendering: auto; }
figcaption { color: #475467; font-size: .9rem; margin-top: .5rem; text-align: center; }
table { border-collapse: collapse; background: #fff; margin-bottom: 1rem; font-size: .9rem; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
th, td { border: 1px solid #e1e4ea; padding: .3rem .7rem; text-align: left; }
th { background: #eef0f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #fff; border: 1px solid #e1e4ea; border-radius: 8px; padding: 1rem;
  overflow-x: auto; font-size: .85rem; }
.notes p { margin: 0 0 .6rem; white-space: pre-wrap; }
footer { color: #98a2b3; font-size: .8rem; margin-top: 2rem; }
"""


def write_report(
    path: str | os.PathLike[str],
    *,
    title: str,
    metrics: Mapping[str, Any],
    config: Mapping[str, Any] | None = None,
    figures: Sequence[tuple[str, str | os.PathLike[str]]] = (),
    tables: Sequence[Table | tuple[str, Sequence[str], Sequence[Sequence[Any]]]] = (),
    notes: str = "",
) -> Path:
    """Write the run report as a single self-contained HTML file.

    Args:
        path: destination ``.html``; written atomically.
        title: the page heading, e.g. ``"resnet9 on cifar10"``.
        metrics: the summary card, in order, e.g. ``{"test_acc": 0.94, "train_time_s": 83.4,
            "throughput_img_per_s": 12000}``; units are chosen by :func:`format_metric`.
        config: the resolved configuration, shown as indented JSON in its own key order
            (values JSON cannot encode are shown with ``str``).
        figures: ``(caption, png_path)`` pairs; each PNG is embedded as a base64 data URI.
        tables: :class:`Table` entries (or ``(caption, columns, rows)`` tuples).
        notes: free text shown after the summary; blank lines separate paragraphs.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(str(title))}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        "<main>",
        f"<h1>{e(str(title))}</h1>",
        f'<p class="subtitle">foveal {e(__version__)} run report</p>',
    ]

    if metrics:
        parts.append('<section><h2>Summary</h2><div class="cards">')
        for name, value in metrics.items():
            label = _label(str(name))
            parts.append(
                f'<div class="card"><div class="label">{e(label)}</div>'
                f'<div class="value">{e(format_metric(str(name), value))}</div></div>'
            )
        parts.append("</div></section>")

    if notes.strip():
        paragraphs = [p.strip() for p in notes.strip().split("\n\n") if p.strip()]
        parts.append('<section class="notes"><h2>Notes</h2>')
        parts.extend(f"<p>{e(p)}</p>" for p in paragraphs)
        parts.append("</section>")

    if figures:
        parts.append("<section><h2>Figures</h2>")
        for caption, figure_path in figures:
            uri = _png_data_uri(caption, figure_path)
            parts.append(
                f'<figure><img src="{uri}" alt="{e(str(caption))}">'
                f"<figcaption>{e(str(caption))}</figcaption></figure>"
            )
        parts.append("</section>")

    if tables:
        parts.append("<section><h2>Tables</h2>")
        for caption, columns, rows in tables:
            parts.append(f"<table><caption>{e(str(caption))}</caption><thead><tr>")
            parts.extend(f"<th>{e(str(c))}</th>" for c in columns)
            parts.append("</tr></thead><tbody>")
            for row in rows:
                if len(row) != len(columns):
                    raise DataError(
                        f"expected {len(columns)} cells per row in table {caption!r}, "
                        f"got {len(row)}"
                    )
                cells = []
                for column, value in zip(columns, row, strict=True):
                    value = _scalar(value)
                    numeric = isinstance(value, numbers.Real) and not isinstance(value, bool)
                    css = ' class="num"' if numeric or value is None else ""
                    cells.append(f"<td{css}>{e(format_metric(str(column), value))}</td>")
                parts.append("<tr>" + "".join(cells) + "</tr>")
            parts.append("</tbody></table>")
        parts.append("</section>")

    if config is not None:
        text = json.dumps(config, indent=2, default=str, ensure_ascii=False)
        parts.append(f"<section><h2>Configuration</h2><pre>{e(text)}</pre></section>")

    parts += [f"<footer>generated by foveal {e(__version__)}</footer>", "</main>", "</body>"]
    parts.append("</html>")
    path = Path(path)
    atomic_write_text(path, "\n".join(parts) + "\n")
    return path
