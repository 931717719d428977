"""Toxiproxy's HTTP API on a small HTTP/1.1 server over asyncio streams.

Routes, methods, status codes and bodies follow Toxiproxy 2.x (``api.go``): JSON bodies,
201 for a created or populated proxy, 200 for a created toxic, 204 for delete and reset.
Every error is JSON ``{"error": "...", "status": N}``: 400 for bad input, 404 for an
unknown proxy, toxic or path, 405 (with ``Allow``) for a wrong method, 409 for a
duplicate name, 500 when a listener cannot be bound. A request never gets a traceback:
an unexpected error is logged here and answered with a fixed 500.

Path segments are percent-decoded one by one, so names such as ``client-2>master-1:cl``
work whether a client encodes ``>`` and ``:`` or not (and ``/`` inside a name works as
``%2F``). Requests from browsers (User-Agent ``Mozilla/...``) are refused with 403, as
Toxiproxy does, so a web page cannot drive the unauthenticated API.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from mooseng import __version__ as mooseng_version
from mooseng.toxiproxy import SERVER_NAME, TOXIPROXY_VERSION, log_event
from mooseng.toxiproxy.link import format_address
from mooseng.toxiproxy.proxy import (
    AlreadyExists,
    InvalidInput,
    ListenError,
    NotFound,
    ProxyError,
    ProxyRegistry,
)
from mooseng.toxiproxy.toxics import ToxicError

log = logging.getLogger("mooseng.toxiproxy.api")

MAX_HEAD = 64 * 1024
MAX_BODY = 4 * 1024 * 1024
IDLE_TIMEOUT = 60.0
READ_TIMEOUT = 15.0

STATUS_OF_ERROR: tuple[tuple[type[Exception], int], ...] = (
    (InvalidInput, 400),
    (ToxicError, 400),
    (NotFound, 404),
    (AlreadyExists, 409),
    (ListenError, 500),
    (ProxyError, 500),
)


class HttpError(Exception):
    """An error answered as ``{"error": message, "status": status}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class Request:
    """One parsed HTTP request."""

    method: str
    target: str
    version: str
    headers: dict[str, str]
    body: bytes = b""
    segments: list[str] = field(default_factory=list)

    @property
    def keep_alive(self) -> bool:
        """Whether the connection stays open after the response."""
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection

    def json(self) -> Any:
        """The body as JSON (InvalidInput saying why it is not)."""
        if not self.body.strip():
            raise InvalidInput("bad request body: EOF (a JSON body is required)")
        try:
            return json.loads(self.body.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise InvalidInput(f"bad request body: {exc}") from None


def _reject_constant(name: str) -> Any:
    """``json.loads`` hook: NaN and Infinity are not JSON."""
    raise ValueError(f"{name} is not valid JSON")


@dataclass
class Response:
    """A status with an optional JSON body (or preformatted ``raw`` bytes)."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None

    def encode(self, keep_alive: bool, version: str = "HTTP/1.1") -> bytes:
        """The response bytes; 204 carries neither body nor length. An HTTP/1.0 client
        that asked for keep-alive is told it got it."""
        reason = HTTPStatus(self.status).phrase
        lines = [f"HTTP/1.1 {self.status} {reason}", f"Server: {SERVER_NAME}/{mooseng_version}"]
        payload = b""
        if self.status != 204:
            if self.raw is not None:
                payload = self.raw
            else:
                payload = json.dumps(self.body, separators=(",", ":")).encode()
                if self.status >= 400:
                    payload += b"\n"
            lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
        lines += [f"{key}: {value}" for key, value in self.headers.items()]
        if not keep_alive:
            lines.append("Connection: close")
        elif version == "HTTP/1.0":
            lines.append("Connection: keep-alive")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """The JSON error shape every failure uses."""
    return Response(status, {"error": message, "status": status}, dict(headers or {}))


Handler = Callable[..., Awaitable[Response]]


class ApiServer:
    """The HTTP API over a :class:`ProxyRegistry`; ``start`` binds, ``close`` stops all."""

    def __init__(self, registry: ProxyRegistry) -> None:
        self.registry = registry
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()
        # (path pattern, {method: handler}); "*" matches one non-empty segment.
        self._routes: list[tuple[tuple[str, ...], dict[str, Handler]]] = [
            (("version",), {"GET": self.version}),
            (("reset",), {"POST": self.reset}),
            (("populate",), {"POST": self.populate}),
            (("proxies",), {"GET": self.proxy_index, "POST": self.proxy_create}),
            (("proxies", "*"), {"GET": self.proxy_show, "POST": self.proxy_update,
                                "PATCH": self.proxy_update, "DELETE": self.proxy_delete}),
            (("proxies", "*", "toxics"), {"GET": self.toxic_index, "POST": self.toxic_create}),
            (("proxies", "*", "toxics", "*"), {"GET": self.toxic_show, "POST": self.toxic_update,
                                               "PATCH": self.toxic_update,
                                               "DELETE": self.toxic_delete}),
        ]

    async def start(self, host: str, port: int) -> None:
        """Listen for API clients on (host, port) with SO_REUSEADDR (OSError if it fails)."""
        self._server = await asyncio.start_server(self._accept, host, port, limit=MAX_HEAD,
                                                  reuse_address=True)
        log_event(log, logging.INFO, "api_listening", address=self.address,
                  version=TOXIPROXY_VERSION)

    @property
    def address(self) -> str:
        """``host:port`` of the first listening socket."""
        if self._server is None or not self._server.sockets:
            return ""
        return format_address(self._server.sockets[0].getsockname())

    @property
    def url(self) -> str:
        """``http://host:port`` of the API."""
        return f"http://{self.address}"

    async def close(self) -> None:
        """Stop listening, drop API clients, stop every proxy."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._clients):
            task.cancel()
        if self._clients:
            await asyncio.wait(list(self._clients), timeout=2.0)
        await self.registry.close()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Listener callback: serve the API client in its own task."""
        task = asyncio.get_running_loop().create_task(self._serve(reader, writer))
        self._clients.add(task)
        task.add_done_callback(self._clients.discard)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer requests on one connection until it closes, errs or idles out."""
        peer = format_address(writer.get_extra_info("peername"))
        try:
            while True:
                try:
                    request = await asyncio.wait_for(_read_request(reader, writer), IDLE_TIMEOUT)
                except TimeoutError:
                    break
                except HttpError as exc:
                    writer.write(error_response(exc.status, exc.message).encode(False))
                    await writer.drain()
                    log_event(log, logging.INFO, "http_bad_request", peer=peer,
                              status=exc.status, error=exc.message)
                    break
                if request is None:
                    break
                started = time.monotonic()
                response = await self.dispatch(request, peer)
                keep_alive = request.keep_alive
                writer.write(response.encode(keep_alive, request.version))
                await writer.drain()
                level = logging.DEBUG if request.method == "GET" else logging.INFO
                error = response.body.get("error") if isinstance(response.body, dict) else None
                log_event(log, level, "http", peer=peer, method=request.method,
                          path=request.target, status=response.status, error=error,
                          ms=f"{(time.monotonic() - started) * 1000:.1f}")
                if not keep_alive:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            writer.transport.abort()
            raise
        except Exception:  # the server must outlive any one client
            log.exception("%s", f"peer={peer} event=http_connection_error")
        finally:
            writer.transport.close()

    async def dispatch(self, request: Request, peer: str = "") -> Response:
        """Route ``request`` to its handler and map every error to the JSON error shape."""
        try:
            if request.headers.get("user-agent", "").startswith("Mozilla/"):
                return error_response(403, "User agent not allowed")
            handler, args = self._route(request)
            return await handler(request, *args)
        except HttpError as exc:
            return error_response(exc.status, exc.message, exc.headers)
        except (ProxyError, ToxicError) as exc:
            return self._error_of(exc)
        except Exception:  # never a traceback to the client
            log.exception("%s", f"peer={peer} event=api_error method={request.method} "
                                f"path={request.target}")
            return error_response(500, "internal server error (see the server log)")

    @staticmethod
    def _error_of(exc: ProxyError | ToxicError) -> Response:
        """The error response for a refused request, status by the error's kind."""
        status = next(code for kind, code in STATUS_OF_ERROR if isinstance(exc, kind))
        return error_response(status, str(exc))

    def _route(self, request: Request) -> tuple[Handler, list[str]]:
        """The handler and path arguments for ``request`` (HttpError 404/405)."""
        segments = request.segments
        for pattern, methods in self._routes:
            if len(pattern) != len(segments):
                continue
            args = []
            for part, segment in zip(pattern, segments, strict=True):
                if part == "*" and segment:
                    args.append(segment)
                elif part != segment:
                    break
            else:
                if request.method not in methods:
                    allow = ", ".join(methods)
                    raise HttpError(405, f"method {request.method} not allowed on "
                                         f"{request.target} (allowed: {allow})", {"Allow": allow})
                return methods[request.method], args
        raise HttpError(404, f"not found: {request.target}")

    async def version(self, request: Request) -> Response:
        """GET /version: ``{"version": "2.x.y"}`` byte for byte as Toxiproxy >= 2.7."""
        return Response(200, raw=f'{{"version": "{TOXIPROXY_VERSION}"}}\n'.encode())

    async def reset(self, request: Request) -> Response:
        """POST /reset: enable every proxy, remove every toxic."""
        await self.registry.reset()
        return Response(204)

    async def populate(self, request: Request) -> Response:
        """POST /populate: create or replace a list of proxies, all or nothing.

        An error body also carries ``"proxies": []``, as Toxiproxy's carries the proxies
        it did create (here there are none: nothing is half-applied).
        """
        try:
            proxies = await self.registry.populate(request.json())
        except (ProxyError, ToxicError) as exc:
            response = self._error_of(exc)
            response.body["proxies"] = []
            return response
        return Response(201, {"proxies": [proxy.to_json() for proxy in proxies]})

    async def proxy_index(self, request: Request) -> Response:
        """GET /proxies: every proxy by name."""
        return Response(200, {name: proxy.to_json()
                              for name, proxy in self.registry.proxies.items()})

    async def proxy_create(self, request: Request) -> Response:
        """POST /proxies: create a proxy (201)."""
        proxy = await self.registry.create(request.json())
        return Response(201, proxy.to_json())

    async def proxy_show(self, request: Request, name: str) -> Response:
        """GET /proxies/{proxy}."""
        return Response(200, self.registry.get(name).to_json())

    async def proxy_update(self, request: Request, name: str) -> Response:
        """POST|PATCH /proxies/{proxy}: change listen, upstream or enabled."""
        self.registry.get(name)
        proxy = await self.registry.update(name, request.json())
        return Response(200, proxy.to_json())

    async def proxy_delete(self, request: Request, name: str) -> Response:
        """DELETE /proxies/{proxy}."""
        await self.registry.delete(name)
        return Response(204)

    async def toxic_index(self, request: Request, name: str) -> Response:
        """GET /proxies/{proxy}/toxics."""
        proxy = self.registry.get(name)
        return Response(200, [toxic.to_json() for toxic in proxy.toxic_list()])

    async def toxic_create(self, request: Request, name: str) -> Response:
        """POST /proxies/{proxy}/toxics: add a toxic (200, as Toxiproxy answers)."""
        proxy = self.registry.get(name)
        return Response(200, proxy.add_toxic(request.json()).to_json())

    async def toxic_show(self, request: Request, name: str, toxic: str) -> Response:
        """GET /proxies/{proxy}/toxics/{toxic}."""
        return Response(200, self.registry.get(name).get_toxic(toxic).to_json())

    async def toxic_update(self, request: Request, name: str, toxic: str) -> Response:
        """POST|PATCH /proxies/{proxy}/toxics/{toxic}: change attributes or toxicity."""
        proxy = self.registry.get(name)
        proxy.get_toxic(toxic)
        return Response(200, proxy.update_toxic(toxic, request.json()).to_json())

    async def toxic_delete(self, request: Request, name: str, toxic: str) -> Response:
        """DELETE /proxies/{proxy}/toxics/{toxic}."""
        self.registry.get(name).remove_toxic(toxic)
        return Response(204)


def _path_segments(target: str) -> list[str]:
    """The percent-decoded segments of a request target's path (HttpError 400)."""
    path = target if target.startswith("/") else (urlsplit(target).path or "/")
    path = path.split("?", 1)[0].split("#", 1)[0]
    try:
        return [unquote_to_bytes(part).decode("utf-8") for part in path.split("/")[1:]]
    except UnicodeDecodeError:
        raise HttpError(400, f"path {target!r} is not UTF-8 after percent-decoding") from None


async def _read_request(reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> Request | None:
    """The next request on the connection, or None at a clean end (HttpError if bad)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise HttpError(400, "incomplete request head") from None
        return None
    except asyncio.LimitOverrunError:
        raise HttpError(431, f"request head larger than {MAX_HEAD} bytes") from None
    lines = head.decode("latin-1").lstrip("\r\n").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HttpError(400, f"malformed request line: {lines[0][:200]!r}")
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise HttpError(400, f"malformed header line: {line[:200]!r}")
        key = name.lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    request = Request(method=method, target=target, version=version, headers=headers,
                      segments=_path_segments(target))
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    length_text = headers.get("content-length")
    if not chunked and length_text is None:
        return request
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    request.body = await asyncio.wait_for(
        _read_chunked(reader) if chunked else _read_sized(reader, length_text or ""),
        READ_TIMEOUT)
    return request


async def _read_sized(reader: asyncio.StreamReader, length_text: str) -> bytes:
    """A body of ``Content-Length`` bytes (HttpError 400/413)."""
    if not length_text.isdigit():
        raise HttpError(400, f"invalid Content-Length {length_text!r}")
    length = int(length_text)
    if length > MAX_BODY:
        raise HttpError(413, f"request body of {length} bytes exceeds {MAX_BODY}")
    return await reader.readexactly(length)


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    """A ``Transfer-Encoding: chunked`` body (HttpError 400/413)."""
    body = bytearray()
    while True:
        size_line = (await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise HttpError(400, f"invalid chunk size {size_line[:20]!r}") from None
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass  # trailers
            return bytes(body)
        if len(body) + size > MAX_BODY:
            raise HttpError(413, f"request body exceeds {MAX_BODY} bytes")
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise HttpError(400, "chunk not followed by CRLF")
