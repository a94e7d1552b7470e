"""Shared fixtures for the data tests: a loopback HTTP server with Range support, writers of the
official MNIST and CIFAR-10 file formats (following their published layouts), and the location
of the real datasets."""

import http.server
import pickle
import threading
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

# /work/main/tests/data/conftest.py -> /work/shared/data (the repository's ../shared/data)
SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck"]


class Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``files``; honours ``Range: bytes=N-`` unless ``honour_range`` is False.

    Each test gets a fresh subclass with its own state (see the ``http_server`` fixture).
    """

    files: ClassVar[dict[str, bytes]] = {}
    requests: ClassVar[list[dict]] = []
    drop_after: ClassVar[dict[str, int]] = {}  # path -> bytes to send before dropping (once)
    honour_range = True
    wrong_range_start = False  # answer 206 but from byte 0 (a broken server)

    def log_message(self, *args):
        pass

    def do_GET(self):
        type(self).requests.append({"path": self.path, "range": self.headers.get("Range")})
        data = self.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and self.honour_range:
            start = 0 if self.wrong_range_start else int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = self.drop_after.pop(self.path, None)
        if cut is not None:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.connection.shutdown(2)  # the client sees a short read
            return
        self.wfile.write(body)


@pytest.fixture
def http_server():
    """Serve ``Handler.files`` on 127.0.0.1 (a free port); yields the base URL and the handler
    class, whose ``files`` the test fills and whose ``requests`` it inspects."""
    handler = type("H", (Handler,), {"files": {}, "requests": [], "drop_after": {}})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file as LeCun's page specifies it: 0, 0, type 0x08, ndim, big-endian uint32
    sizes, then the unsigned bytes in row-major order."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(s).to_bytes(4, "big") for s in array.shape)
    return header + np.asarray(array, np.uint8).tobytes()


def cifar_planes(images: np.ndarray) -> np.ndarray:
    """(N, 32, 32, 3) -> (N, 3072): the red plane row-major, then green, then blue."""
    return images.transpose(0, 3, 1, 2).reshape(len(images), 3072)


def write_cifar(root: Path, batches: dict, fmt: str, names=CIFAR_NAMES) -> Path:
    """Write ``{batch name: (images, labels)}`` in an official CIFAR-10 layout under ``root``."""
    if fmt == "python":
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True)
        for name, (x, y) in batches.items():
            with open(folder / name, "wb") as f:
                pickle.dump({b"batch_label": name.encode(), b"labels": [int(v) for v in y],
                             b"data": cifar_planes(x),
                             b"filenames": [b"%d.png" % i for i in range(len(y))]}, f, 2)
        with open(folder / "batches.meta", "wb") as f:
            pickle.dump({b"label_names": [n.encode() for n in names],
                         b"num_cases_per_batch": 10000, b"num_vis": 3072}, f, 2)
    else:
        folder = root / "cifar-10-batches-bin"
        folder.mkdir(parents=True)
        for name, (x, y) in batches.items():
            records = np.concatenate([np.asarray(y, np.uint8)[:, None], cifar_planes(x)], axis=1)
            records.tofile(folder / f"{name}.bin")
        (folder / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
    return folder


def cifar_batches(n: int = 7, seed: int = 0) -> dict:
    """Random ``{batch name: (images (n, 32, 32, 3), labels (n,))}`` for the six batches."""
    rng = np.random.default_rng(seed)
    return {b: (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n))
            for b in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]}
