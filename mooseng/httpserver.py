"""The HTTP server of the agents' API and the exporters: the stdlib threaded server, bounded.

The stdlib defaults let a burst or a few bad clients starve the routers' ``/leader``
checks (their timeout is 1 s): a listen backlog of 5 (SYN retransmits of 1 s and more
once it overflows), no read timeout (a half-sent request holds a thread forever), one new
thread per connection without limit, and HTML error pages from the parser. Here:

- the listen backlog is ``LISTEN_BACKLOG`` (the kernel caps it at ``net.core.somaxconn``);
- at most ``max_threads`` connections are served at once; further ones wait in the backlog
  (accepted as soon as a slot frees), so a flood costs a bounded number of threads;
- a request (line, headers and body) must arrive within ``request_timeout`` seconds of the
  connection or of the previous answer (a keep-alive connection idles that long at most):
  a reaper shuts the socket down past the deadline, however slowly the bytes trickle in;
  each socket operation (also writing to a client that does not read) has the same timeout;
- errors raised by the stdlib parser (bad request line, oversized line or headers, unknown
  method) are answered in JSON like every other error, and close the connection.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("mooseng.http")

LISTEN_BACKLOG = 1024
MAX_THREADS = 128
REQUEST_TIMEOUT_S = 2.0
REAP_INTERVAL_S = 0.1


class BoundedHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with a deep backlog, a cap on handler threads and a deadline for
    each request to arrive (see the module docstring)."""

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = LISTEN_BACKLOG

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 max_threads: int = MAX_THREADS, request_timeout: float = REQUEST_TIMEOUT_S) -> None:
        if max_threads < 1 or request_timeout <= 0:
            raise ValueError("max_threads must be >= 1 and request_timeout > 0")
        self.max_threads = max_threads
        self.request_timeout = request_timeout
        self._slots = threading.BoundedSemaphore(max_threads)
        self._deadlines: dict[socket.socket, float] = {}
        self._deadline_lock = threading.Lock()
        self._closing = threading.Event()
        super().__init__(address, handler)
        self._reaper = threading.Thread(target=self._reap, name="http-reaper", daemon=True)
        self._reaper.start()

    # ---------------------------------------------------------------- thread cap
    def process_request(self, request: Any, client_address: Any) -> None:
        """Wait for a free slot (the backlog holds further connections), then serve the
        connection in its own thread."""
        while not self._slots.acquire(timeout=0.2):
            if self._closing.is_set():
                self.shutdown_request(request)
                return
        self.watch(request)  # the first request must arrive in time
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.unwatch(request)
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.unwatch(request)
            self._slots.release()

    def busy_threads(self) -> int:
        """Connections being served now."""
        return self.max_threads - self._slots._value  # type: ignore[attr-defined]

    # -------------------------------------------------------------- read deadline
    def watch(self, sock: socket.socket) -> None:
        """The next request on ``sock`` must have arrived within request_timeout from now."""
        with self._deadline_lock:
            self._deadlines[sock] = time.monotonic() + self.request_timeout

    def unwatch(self, sock: socket.socket) -> None:
        """The request on ``sock`` has arrived (or the connection ended)."""
        with self._deadline_lock:
            self._deadlines.pop(sock, None)

    def _reap(self) -> None:
        while not self._closing.wait(REAP_INTERVAL_S):
            now = time.monotonic()
            with self._deadline_lock:
                late = [s for s, at in self._deadlines.items() if at <= now]
                for sock in late:
                    del self._deadlines[sock]
            for sock in late:
                try:
                    peer = sock.getpeername()[0]
                except OSError:
                    peer = "?"
                log.debug("event=http_request_timeout peer=%s timeout_s=%s", peer,
                          self.request_timeout)
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # the handler's read returns at once
                except OSError:
                    pass

    def shutdown(self) -> None:
        self._closing.set()
        super().shutdown()


class JsonHandler(BaseHTTPRequestHandler):
    """Base request handler: HTTP/1.1, per-socket timeout, JSON errors, request deadline.

    Subclasses set ``node`` (named in every JSON body) and implement ``do_*`` methods; each
    must call :meth:`request_arrived` once the request (with its body) is read."""

    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT_S  # every socket operation; the server's reaper bounds the total
    node: str = ""
    server: BoundedHTTPServer

    def handle_one_request(self) -> None:
        if isinstance(self.server, BoundedHTTPServer):
            self.server.watch(self.connection)
        super().handle_one_request()

    def request_arrived(self) -> None:
        """Stop the request deadline: the handler now works on a complete request."""
        if isinstance(self.server, BoundedHTTPServer):
            self.server.unwatch(self.connection)

    def error_body(self, message: str) -> bytes:
        """The JSON body of every error: ``{"node": ..., "error": message}``."""
        return json.dumps({"node": self.node, "error": message}).encode() + b"\n"

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors of the stdlib parser (bad request line, line or headers too long, unsupported
        method) in the same JSON shape as every other error; the connection closes, since the
        rest of what the client sent cannot be trusted to be a request."""
        try:
            reason = HTTPStatus(code).phrase
        except ValueError:
            reason = ""
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # an unparsable line: answer with a status line
            self.request_version = "HTTP/1.0"
        body = self.error_body(message or reason)
        log.debug("event=http_error peer=%s status=%s error=%r", self.client_address[0], code,
                  message or reason)
        try:
            self.send_response(code, reason)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if getattr(self, "command", None) != "HEAD":
                self.wfile.write(body)
        except OSError:
            pass
