"""Checksum-verified, resumable, atomic downloads over HTTP(S), with :mod:`urllib` only.

``download(url, dest, md5=…)`` streams to ``dest + ".part"``. If a ``.part`` file is already
there (an earlier attempt was cut off), it asks the server for the rest with
``Range: bytes=<size>-``:

- ``206 Partial Content`` whose ``Content-Range`` starts at ``<size>``: the bytes are appended;
- ``200 OK`` (the server ignores ranges): the ``.part`` is rewritten from zero;
- ``416 Range Not Satisfiable``: the ``.part`` already holds the whole file, if its size equals
  the total the server reports (otherwise it is deleted and the next call starts over).

Only once the whole file's digest matches is the ``.part`` renamed to ``dest``
(:func:`os.replace`, atomic), so a partial or corrupt download never looks complete. A digest
mismatch deletes the ``.part`` and raises :class:`ChecksumError`. A connection that breaks keeps
the ``.part``, and the :class:`DataError` says to run again to resume.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from foveal.errors import ChecksumError, DataError

CHUNK = 1 << 16


def file_digest(path: str | os.PathLike[str], algorithm: str) -> str:
    """Hex digest (``md5`` or ``sha256``) of a file, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _expected(md5: str | None, sha256: str | None) -> tuple[str, str] | None:
    if sha256:
        return "sha256", sha256.lower()
    if md5:
        return "md5", md5.lower()
    return None


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _range_start(content_range: str | None) -> int | None:
    """The first byte of ``Content-Range: bytes <start>-<end>/<total>``, or None."""
    match = re.match(r"\s*bytes\s+(\d+)-", content_range or "")
    return int(match.group(1)) if match else None


def _range_total(content_range: str | None) -> int | None:
    """The total size in ``Content-Range: bytes …/<total>``, or None if absent or ``*``."""
    match = re.search(r"/(\d+)\s*$", content_range or "")
    return int(match.group(1)) if match else None


def download(
    url: str,
    dest: str | os.PathLike[str],
    *,
    md5: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest`` (see the module docstring); returns ``dest`` as a Path.

    Args:
        url: an ``http://`` or ``https://`` address.
        dest: the final file; bytes first go to ``dest + ".part"``.
        md5, sha256: the expected hex digest (``sha256`` wins if both are given). Without one
            the file is accepted as received.
        progress: show a tqdm progress bar.
        timeout: seconds to wait for the server on connect and on each read.

    If ``dest`` exists and matches the checksum (or no checksum is given), nothing is fetched.

    Raises:
        ChecksumError: the received file has another digest (the ``.part`` is deleted).
        DataError: the URL is invalid, the server answers an HTTP error, or the connection fails
            or breaks off (the ``.part`` is kept for the next call to resume).
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    check = _expected(md5, sha256)
    if dest.is_file() and (check is None or file_digest(dest, check[0]) == check[1]):
        return dest
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"expected a writable folder for {str(dest)!r}, got {exc}") from exc
    offset = part.stat().st_size if part.is_file() else 0
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "foveal"})
    except ValueError as exc:
        raise DataError(f"expected an http(s) URL to download, got {url!r}") from exc
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if offset and response.status == 206:
                start = _range_start(response.headers.get("Content-Range"))
                if start is not None and start != offset:
                    part.unlink(missing_ok=True)
                    raise DataError(
                        f"download of {url}: expected the range from byte {offset}, got one "
                        f"from byte {start}; the partial file was deleted, run again"
                    )
            elif offset:
                offset = 0  # the server ignored the range: start over
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length and length.isdigit() else None
            with open(part, "ab" if offset else "wb") as out, tqdm(
                total=total, initial=offset, unit="B", unit_scale=True, disable=not progress,
                desc=dest.name, leave=False,
            ) as bar:
                for block in iter(lambda: response.read(CHUNK), b""):
                    out.write(block)
                    bar.update(len(block))
            # A connection closed early is a short read, not an exception: check the length.
            received = part.stat().st_size
            if total is not None and received < total:
                raise DataError(
                    f"download of {url}: expected {total} bytes, got {received} "
                    "(connection closed; run again to resume)"
                )
    except DataError:
        raise
    except urllib.error.HTTPError as exc:
        if not (exc.code == 416 and offset):
            raise DataError(
                f"download of {url} failed: HTTP {exc.code} {_one_line(exc.reason)}"
            ) from exc
        # 416: the range starts at or past the end. Whole only if the sizes agree.
        size = _range_total(exc.headers.get("Content-Range") if exc.headers else None)
        if size is not None and size != offset:
            part.unlink(missing_ok=True)
            raise DataError(
                f"download of {url}: expected a partial file of at most {size} bytes, got "
                f"{offset}; the partial file was deleted, run again"
            ) from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        kept = part.stat().st_size if part.exists() else 0
        reason = _one_line(getattr(exc, "reason", None) or exc) or type(exc).__name__
        raise DataError(
            f"download of {url} failed: {reason} (run again to resume after {kept} bytes)"
        ) from exc
    if check is not None:
        got = file_digest(part, check[0])
        if got != check[1]:
            part.unlink(missing_ok=True)
            raise ChecksumError(
                f"{url}: expected {check[0]} {check[1]}, got {got}; the download was deleted"
            )
    os.replace(part, dest)
    return dest
