"""Test helpers for the Toxiproxy-compatible server: real servers on 127.0.0.1.

- :class:`ToxiproxyThread` runs the real server (registry + HTTP API) on an ephemeral
  port in a background event loop (aiosmtpd's controller pattern): ``start()`` waits
  until it listens and re-raises any start-up error in the calling thread.
- :class:`OfficialToxiproxy` runs ``toxiproxy-server`` from PATH the same way, so the
  contract tests can run against both (``toxiproxy_server`` picks one by name).
- :class:`Upstream` is a listening socket whose accepted connections a test takes with
  ``accept()``, to drive both ends of a proxied connection; :class:`EchoServer` echoes.
- :class:`Api` is a tiny JSON client on ``requests`` that quotes names in paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from typing import Any, Self
from urllib.parse import quote

import requests

from mooseng.toxiproxy.api import ApiServer
from mooseng.toxiproxy.proxy import ProxyRegistry

START_TIMEOUT = 10.0


class ToxiproxyThread:
    """The real server in a background thread's event loop, API on 127.0.0.1:<port>."""

    kind = "ours"

    def __init__(self, config: list[Any] | None = None, host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.config = config or []
        self.host = host
        self.port = port
        self.registry: ProxyRegistry | None = None
        self.api: ApiServer | None = None
        self.config_failures: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` of the API."""
        assert self.api is not None, "server not started"
        return self.api.url

    def start(self) -> ToxiproxyThread:
        """Start the loop thread, wait until the API listens; re-raise start-up errors."""
        self._thread = threading.Thread(target=self._run, name="toxiproxy-test-server",
                                        daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise TimeoutError(f"toxiproxy test server did not start in {START_TIMEOUT} s")
        if self._error is not None:
            self._thread.join(START_TIMEOUT)
            raise self._error
        return self

    def _run(self) -> None:
        """Thread body: run the loop until ``stop``."""
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._start())
        except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
            self._error = exc
            self._ready.set()
            self._loop.close()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    async def _start(self) -> None:
        """Load the config and start the API (in the loop thread)."""
        self.registry = ProxyRegistry()
        self.config_failures = await self.registry.load(self.config)
        self.api = ApiServer(self.registry)
        await self.api.start(self.host, self.port)

    def call(self, coroutine: Any, timeout: float = 10.0) -> Any:
        """Run ``coroutine`` in the server's loop and return its result."""
        assert self._loop is not None
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result(timeout)

    def stop(self) -> None:
        """Close the API and every proxy, stop the loop, join the thread."""
        if self._loop is None or self._thread is None or not self._thread.is_alive():
            return
        if self.api is not None:
            with contextlib.suppress(Exception):
                self.call(self.api.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(START_TIMEOUT)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class OfficialToxiproxy:
    """``toxiproxy-server`` from PATH as a subprocess on a free loopback port."""

    kind = "official"

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` of the API."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OfficialToxiproxy:
        """Start it and wait until ``GET /version`` answers."""
        self.process = subprocess.Popen(
            [self.binary, "-host", "127.0.0.1", "-port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.url + "/version", timeout=1).ok:
                    return self
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.binary} exited with {self.process.returncode}")
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"{self.binary} did not answer in {START_TIMEOUT} s")

    def stop(self) -> None:
        """Terminate the subprocess."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def toxiproxy_server(kind: str) -> Iterator[ToxiproxyThread | OfficialToxiproxy]:
    """Fixture body: our server, or the official one (skipped when not on PATH)."""
    import pytest

    if kind == "official":
        binary = shutil.which("toxiproxy-server")
        if binary is None:
            pytest.skip("toxiproxy-server not on PATH")
        server: ToxiproxyThread | OfficialToxiproxy = OfficialToxiproxy(binary).start()
    else:
        server = ToxiproxyThread().start()
    try:
        yield server
    finally:
        server.stop()


def free_port() -> int:
    """A loopback port free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def split_address(address: str) -> tuple[str, int]:
    """(host, port) of ``host:port``."""
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


class Upstream:
    """A listening socket on 127.0.0.1; the test accepts the proxy's connections itself."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self._accepted: list[socket.socket] = []

    def accept(self, timeout: float = 5.0) -> socket.socket:
        """The next connection the proxy dialled (socket with a 5 s timeout)."""
        self.sock.settimeout(timeout)
        conn, _ = self.sock.accept()
        conn.settimeout(5.0)
        self._accepted.append(conn)
        return conn

    def close(self) -> None:
        """Close the listener and every accepted connection."""
        for conn in self._accepted:
            conn.close()
        self.sock.close()


class EchoServer:
    """Echoes every byte back, one thread per connection, on 127.0.0.1."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        """Accept until closed."""
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        """Echo one connection until EOF, then close."""
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with conn:
            try:
                while data := conn.recv(65536):
                    conn.sendall(data)
            except OSError:
                pass

    def close(self) -> None:
        """Stop accepting (open echo threads end with their connections)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


class Api:
    """JSON calls to a Toxiproxy API; names are percent-encoded in paths."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()

    @staticmethod
    def path(*parts: str) -> str:
        """``/a/b`` with each part percent-encoded (``>`` and ``:`` too)."""
        return "".join("/" + quote(part, safe="") for part in parts)

    def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> requests.Response:
        """One request; ``body`` is sent as JSON when not None."""
        if body is not None:
            kwargs["json"] = body
        return self.session.request(method, self.url + path, timeout=10, **kwargs)

    def create_proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0",
                     enabled: bool = True) -> dict[str, Any]:
        """POST /proxies; the created proxy (asserts 201)."""
        response = self.request("POST", "/proxies", {"name": name, "listen": listen,
                                                     "upstream": upstream, "enabled": enabled})
        assert response.status_code == 201, response.text
        return response.json()

    def add_toxic(self, proxy: str, type_: str, stream: str = "downstream",
                  name: str | None = None, toxicity: float = 1.0,
                  **attributes: int) -> dict[str, Any]:
        """POST /proxies/{proxy}/toxics; the created toxic (asserts 200)."""
        body: dict[str, Any] = {"type": type_, "stream": stream, "toxicity": toxicity,
                                "attributes": attributes}
        if name is not None:
            body["name"] = name
        response = self.request("POST", self.path("proxies", proxy, "toxics"), body)
        assert response.status_code == 200, response.text
        return response.json()

    def remove_toxic(self, proxy: str, name: str) -> None:
        """DELETE /proxies/{proxy}/toxics/{name} (asserts 204)."""
        response = self.request("DELETE", self.path("proxies", proxy, "toxics", name))
        assert response.status_code == 204, response.text


def connect(address: str, timeout: float = 5.0) -> socket.socket:
    """A client socket connected to ``host:port`` with TCP_NODELAY and a timeout."""
    sock = socket.create_connection(split_address(address), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    """``size`` bytes from ``sock`` (AssertionError on early EOF)."""
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, f"EOF after {len(data)} of {size} bytes"
        data += chunk
    return bytes(data)


def recv_until_closed(sock: socket.socket) -> tuple[bytes, BaseException | None]:
    """Everything until EOF or an error: (data, the error or None)."""
    data = bytearray()
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except OSError as exc:
        return bytes(data), exc
    return bytes(data), None


def established(api: Api, upstream: Upstream, proxy: str) -> tuple[socket.socket, socket.socket]:
    """A (client, server) socket pair through ``proxy``, checked with a byte each way."""
    listen = api.request("GET", api.path("proxies", proxy)).json()["listen"]
    client = connect(listen)
    server = upstream.accept()
    client.sendall(b"?")
    assert recv_exactly(server, 1) == b"?"
    server.sendall(b"!")
    assert recv_exactly(client, 1) == b"!"
    return client, server


def wait_for(condition: Any, timeout: float = 5.0, interval: float = 0.01) -> bool:
    """Poll ``condition()`` until true or ``timeout``; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return bool(value)
        time.sleep(interval)
