"""A loopback HTTP server with Range support for the downloader tests."""

import http.server
import threading
from pathlib import Path
from typing import ClassVar

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


class Handler(http.server.BaseHTTPRequestHandler):
    # each test gets a fresh subclass with its own dicts (see the http_server fixture)
    files: ClassVar[dict[str, bytes]] = {}
    requests: ClassVar[list[dict]] = []
    drop_after: ClassVar[dict[str, int]] = {}  # path -> bytes to send before dropping (once)
    honour_range = True

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
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
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
    """Serve ``Handler.files`` on 127.0.0.1; yields the base URL and the handler class."""
    handler = type("H", (Handler,), {"files": {}, "requests": [], "drop_after": {},
                                     "honour_range": True})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
