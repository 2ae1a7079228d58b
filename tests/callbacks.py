"""A completion-callback receiver on loopback, answering with a scripted list of statuses."""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tests.bbscerts import Certs


@dataclass
class Receiver:
    url: str
    statuses: list[int]
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@contextmanager
def callback_receiver(
    statuses: list[int], delay: float = 0.0, tls: Certs | None = None
) -> Iterator[Receiver]:
    """Answers the n-th request with ``statuses[n]`` (the last one repeats), ``delay`` seconds
    after it arrived. With ``tls``: https with its server certificate, and a client certificate
    signed by its CA required (mutual TLS, as Cloud Controller's callback endpoint)."""
    receiver = Receiver(url="", statuses=statuses)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            n = len(receiver.requests) - 1
            status = receiver.statuses[min(n, len(receiver.statuses) - 1)]
            time.sleep(delay)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    class QuietServer(http.server.ThreadingHTTPServer):
        def handle_error(self, request: object, client_address: object) -> None:
            pass  # a refused TLS handshake is what some tests expect

    server = QuietServer(("127.0.0.1", 0), Handler)
    scheme = "http"
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tls.ca))
        context.load_cert_chain(tls.server_cert, tls.server_key)
        context.verify_mode = ssl.CERT_REQUIRED
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    receiver.url = f"{scheme}://127.0.0.1:{server.server_address[1]}/callback"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def unused_loopback_url() -> str:
    """A URL on loopback where nothing listens (the port was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/callback"
