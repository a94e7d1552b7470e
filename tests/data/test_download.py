"""The downloader against a loopback server: checksums, resumption, atomicity."""

import hashlib
import os

import pytest

from foveal.data.download import download
from foveal.errors import ChecksumError, DataError

PAYLOAD = os.urandom(300_000)
MD5 = hashlib.md5(PAYLOAD).hexdigest()


def test_download_verifies_and_renames(http_server, tmp_path):
    url, h = http_server
    h.files["/f.bin"] = PAYLOAD
    out = download(f"{url}/f.bin", tmp_path / "f.bin", md5=MD5, progress=False)
    assert out.read_bytes() == PAYLOAD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


def test_interrupted_download_resumes_with_a_range_request(http_server, tmp_path):
    url, h = http_server
    h.files["/f.bin"] = PAYLOAD
    h.drop_after["/f.bin"] = 100_000
    with pytest.raises(DataError, match="run again to resume"):
        download(f"{url}/f.bin", tmp_path / "f.bin", md5=MD5, progress=False)
    assert not (tmp_path / "f.bin").exists()  # a partial file never looks complete
    assert (tmp_path / "f.bin.part").stat().st_size == 100_000
    download(f"{url}/f.bin", tmp_path / "f.bin", md5=MD5, progress=False)
    assert h.requests[-1]["range"] == "bytes=100000-"
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


def test_server_ignoring_range_restarts_from_zero(http_server, tmp_path):
    url, h = http_server
    h.files["/f.bin"] = PAYLOAD
    h.honour_range = False
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD[:5000])
    download(f"{url}/f.bin", tmp_path / "f.bin", sha256=hashlib.sha256(PAYLOAD).hexdigest(),
             progress=False)
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


def test_checksum_mismatch_leaves_nothing_behind(http_server, tmp_path):
    url, h = http_server
    h.files["/f.bin"] = PAYLOAD
    with pytest.raises(ChecksumError, match=f"expected md5 {'0' * 32}, got {MD5}"):
        download(f"{url}/f.bin", tmp_path / "f.bin", md5="0" * 32, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_existing_verified_file_makes_no_request(http_server, tmp_path):
    url, h = http_server
    (tmp_path / "f.bin").write_bytes(PAYLOAD)
    download(f"{url}/f.bin", tmp_path / "f.bin", md5=MD5, progress=False)
    assert h.requests == []


def test_http_error_is_one_line(http_server, tmp_path):
    url, _ = http_server
    with pytest.raises(DataError, match="HTTP 404"):
        download(f"{url}/missing", tmp_path / "x", progress=False)
