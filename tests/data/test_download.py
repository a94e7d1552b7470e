"""The downloader against a loopback HTTP server: checksums, resumption, atomicity.

Oracles: the served bytes themselves (hashlib digests and byte equality) and the requests the
server recorded (the ``Range`` header it saw)."""

import hashlib
import os
import socket

import pytest

from foveal.data.download import download
from foveal.errors import ChecksumError, DataError

PAYLOAD = os.urandom(300_000)
MD5 = hashlib.md5(PAYLOAD).hexdigest()
SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


def one_line(info):
    assert "\n" not in str(info.value)


def test_download_is_byte_identical_to_the_served_file(http_server, tmp_path, capsys):
    url, h = http_server
    h.files["/f.bin"] = PAYLOAD
    out = download(f"{url}/f.bin", tmp_path / "sub" / "f.bin", md5=MD5, progress=True)
    assert out == tmp_path / "sub" / "f.bin" and out.read_bytes() == PAYLOAD
    assert sorted(p.name for p in out.parent.iterdir()) == ["f.bin"]  # no .part left
    assert h.requests == [{"path": "/f.bin", "range": None}]


def test_interrupted_download_resumes_with_a_range_request(http_server, tmp_path):
    url, h = http_server
    h.files["/f.bin"] = PAYLOAD
    h.drop_after["/f.bin"] = 100_000
    with pytest.raises(DataError, match=r"expected 300000 bytes, got 100000.*run again") as info:
        download(f"{url}/f.bin", tmp_path / "f.bin", md5=MD5, progress=False)
    one_line(info)
    assert not (tmp_path / "f.bin").exists()  # a partial file never looks complete
    assert (tmp_path / "f.bin.part").read_bytes() == PAYLOAD[:100_000]
    download(f"{url}/f.bin", tmp_path / "f.bin", md5=MD5, progress=False)
    assert h.requests[-1]["range"] == "bytes=100000-"
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD
    assert not (tmp_path / "f.bin.part").exists()


def test_server_ignoring_range_restarts_from_zero(http_server, tmp_path):
    url, h = http_server
    h.files["/f.bin"] = PAYLOAD
    h.honour_range = False
    (tmp_path / "f.bin.part").write_bytes(b"x" * 5000)  # not even a prefix of the file
    download(f"{url}/f.bin", tmp_path / "f.bin", sha256=SHA256, progress=False)
    assert h.requests[-1]["range"] == "bytes=5000-"  # asked, answered 200 with the whole file
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


def test_range_answer_from_another_offset_is_not_appended(http_server, tmp_path):
    url, h = http_server
    h.files["/f.bin"] = PAYLOAD
    h.wrong_range_start = True
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD[:5000])
    with pytest.raises(DataError, match="expected the range from byte 5000, got one from byte 0"):
        download(f"{url}/f.bin", tmp_path / "f.bin", md5=MD5, progress=False)
    assert list(tmp_path.iterdir()) == []
    download(f"{url}/f.bin", tmp_path / "f.bin", md5=MD5, progress=False)  # starts over
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


def test_complete_part_answered_416_is_verified_and_renamed(http_server, tmp_path):
    url, h = http_server
    h.files["/f.bin"] = PAYLOAD
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD)
    download(f"{url}/f.bin", tmp_path / "f.bin", md5=MD5, progress=False)
    assert h.requests[-1]["range"] == f"bytes={len(PAYLOAD)}-"
    assert (tmp_path / "f.bin").read_bytes() == PAYLOAD


def test_part_longer_than_the_file_is_discarded(http_server, tmp_path):
    url, h = http_server
    h.files["/f.bin"] = PAYLOAD
    (tmp_path / "f.bin.part").write_bytes(PAYLOAD + b"junk")
    with pytest.raises(DataError, match="at most 300000 bytes, got 300004"):
        download(f"{url}/f.bin", tmp_path / "f.bin", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_checksum_mismatch_leaves_nothing_behind(http_server, tmp_path):
    url, h = http_server
    h.files["/f.bin"] = PAYLOAD
    with pytest.raises(ChecksumError, match=f"expected md5 {'0' * 32}, got {MD5}") as info:
        download(f"{url}/f.bin", tmp_path / "f.bin", md5="0" * 32, progress=False)
    one_line(info)
    assert url in str(info.value)
    assert list(tmp_path.iterdir()) == []  # neither dest nor .part


def test_sha256_is_checked_when_given(http_server, tmp_path):
    url, h = http_server
    h.files["/f.bin"] = PAYLOAD
    with pytest.raises(ChecksumError, match=f"expected sha256 {'1' * 64}, got {SHA256}"):
        download(f"{url}/f.bin", tmp_path / "f.bin", sha256="1" * 64, progress=False)


def test_existing_verified_file_makes_no_request(http_server, tmp_path):
    url, h = http_server
    (tmp_path / "f.bin").write_bytes(PAYLOAD)
    download(f"{url}/f.bin", tmp_path / "f.bin", md5=MD5, progress=False)
    assert h.requests == []


def test_existing_file_with_wrong_digest_is_fetched_again(http_server, tmp_path):
    url, h = http_server
    h.files["/f.bin"] = PAYLOAD
    (tmp_path / "f.bin").write_bytes(b"stale")
    download(f"{url}/f.bin", tmp_path / "f.bin", md5=MD5, progress=False)
    assert len(h.requests) == 1 and (tmp_path / "f.bin").read_bytes() == PAYLOAD


def test_http_error_is_one_line(http_server, tmp_path):
    url, _ = http_server
    with pytest.raises(DataError, match="HTTP 404") as info:
        download(f"{url}/missing", tmp_path / "x", progress=False)
    one_line(info)
    assert not (tmp_path / "x").exists()


def test_refused_connection_and_bad_url_are_data_errors(tmp_path):
    with socket.socket() as s:  # a port that nothing listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DataError, match=f"download of http://127.0.0.1:{port}/f failed") as info:
        download(f"http://127.0.0.1:{port}/f", tmp_path / "f", progress=False, timeout=5)
    one_line(info)
    with pytest.raises(DataError, match="expected an http\\(s\\) URL to download, got 'nope'"):
        download("nope", tmp_path / "f", progress=False)
