"""What the fake API servers (``deepl_server``, ``openai_server``) share: a threaded HTTP server
on 127.0.0.1 with an ephemeral port, run in a thread by a context manager, and a request
handler that answers JSON and keeps quiet.

    class FakeThing(LocalServer):
        def __init__(self):
            super().__init__(self._handler_class())   # a JSONHandler subclass

    with FakeThing() as server:
        client.base_url = server.origin
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LocalServer:
    """A server on 127.0.0.1:<free port>; ``start``/``stop`` or ``with``. ``_lock`` guards the
    subclass's records, which handler threads write."""

    def __init__(self, handler_class: type[BaseHTTPRequestHandler]):
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
        # Handler threads never hold up shutdown: a client may keep its connection open.
        self._httpd.daemon_threads = True
        # A short poll keeps stop() (one per test) fast.
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    @property
    def origin(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class JSONHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 (keep-alive, as the clients' connection pools expect), no access log."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def send_json(self, status: int, obj, headers: dict | None = None) -> None:
        body = json.dumps(obj).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)
