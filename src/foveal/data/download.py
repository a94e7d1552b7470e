"""Checksum-verified, resumable, atomic downloads over HTTP(S).

``download(url, dest, md5=…)`` streams to ``dest + ".part"``. If a ``.part`` file is already
there (an earlier attempt was cut off), it asks the server for the rest with
``Range: bytes=<size>-``; a ``206 Partial Content`` answer is appended, a plain ``200`` restarts
from zero. Only once the whole file's digest matches is the ``.part`` renamed to ``dest``
(:func:`os.replace`, atomic), so a partial or corrupt download never looks complete. A digest
mismatch deletes the ``.part`` and raises :class:`ChecksumError`.
"""

from __future__ import annotations

import hashlib
import os
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


def download(
    url: str,
    dest: str | os.PathLike[str],
    *,
    md5: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download ``url`` to ``dest`` (see the module docstring); returns ``dest``.

    If ``dest`` exists and matches the checksum, nothing is fetched.
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    check = _expected(md5, sha256)
    if dest.is_file() and (check is None or file_digest(dest, check[0]) == check[1]):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "foveal"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if offset and response.status != 206:
                offset = 0  # the server ignored the range: start over
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length else None
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
                    f"download of {url} stopped after {received} of {total} bytes "
                    "(run again to resume)"
                )
    except urllib.error.HTTPError as exc:
        # 416: the range starts at the end, so the .part may already be whole; the digest decides
        if not (exc.code == 416 and offset):
            raise DataError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        kept = part.stat().st_size if part.exists() else 0
        raise DataError(
            f"download of {url} failed: {getattr(exc, 'reason', exc)} "
            f"(run again to resume after {kept} bytes)"
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
