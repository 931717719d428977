"""Proxies and their registry: listeners, toxics, and the create/update/populate rules.

A :class:`Proxy` listens on ``listen`` and dials ``upstream`` for every client it accepts;
its toxics apply to new connections and to those already open. The
:class:`ProxyRegistry` owns all proxies by name and serialises changes to them. Changes
that need a listening socket bind it before anything is touched, so a failure (port in
use, unknown host) leaves the registry as it was: no half-created proxy, no half-applied
populate. Errors are :class:`ProxyError` subclasses that ``api.py`` maps to HTTP statuses.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mooseng.toxiproxy import log_event
from mooseng.toxiproxy.link import CHUNK_SIZE, Connection, format_address, split_host_port
from mooseng.toxiproxy.toxics import Toxic, parse_toxic, updated_toxic

log = logging.getLogger("mooseng.toxiproxy.proxy")

BACKLOG = 1024


class ProxyError(Exception):
    """A request the registry refuses; the subclass says why (``api.py`` maps it)."""


class InvalidInput(ProxyError):
    """Malformed or missing fields (400)."""


class NotFound(ProxyError):
    """No proxy or toxic by that name (404)."""


class AlreadyExists(ProxyError):
    """A proxy or toxic by that name exists already (409)."""


class ListenError(ProxyError):
    """The listen address cannot be bound or resolved (500, as Toxiproxy answers)."""


@dataclass(frozen=True)
class ProxySpec:
    """A proxy as requested: name, listen and upstream addresses, enabled."""

    name: str
    listen: str
    upstream: str
    enabled: bool = True


def _required_address(body: dict[str, Any], field: str, where: str) -> str:
    """The ``host:port`` string in ``body[field]`` (InvalidInput if missing or malformed)."""
    value = body.get(field)
    if value is None or value == "":
        raise InvalidInput(f"missing required field: {field}{where}")
    if not isinstance(value, str):
        raise InvalidInput(f"{field}{where} must be a string, got {value!r}")
    try:
        split_host_port(value)
    except ValueError as exc:
        raise InvalidInput(f"{field}{where}: {exc}") from None
    return value


def parse_proxy_spec(body: Any, where: str = "") -> ProxySpec:
    """A :class:`ProxySpec` from a create or populate body; ``where`` locates errors."""
    if not isinstance(body, dict):
        raise InvalidInput(f"bad request body{where}: expected a JSON object, got {body!r}")
    name = body.get("name")
    if name is None or name == "":
        raise InvalidInput(f"missing required field: name{where}")
    if not isinstance(name, str):
        raise InvalidInput(f"name{where} must be a string, got {name!r}")
    upstream = _required_address(body, "upstream", where)
    listen = _required_address(body, "listen", where)
    enabled = body.get("enabled")
    if enabled is None:
        enabled = True
    if not isinstance(enabled, bool):
        raise InvalidInput(f"enabled{where} must be true or false, got {enabled!r}")
    return ProxySpec(name=name, listen=listen, upstream=upstream, enabled=enabled)


async def resolve_listen(listen: str) -> tuple[socket.AddressFamily, str, int]:
    """(family, IP, port) to bind for ``listen``; an empty host means all IPv4 addresses."""
    try:
        host, port = split_host_port(listen)
    except ValueError as exc:
        raise InvalidInput(f"listen: {exc}") from None
    host = host or "0.0.0.0"
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        pass
    else:
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        return family, host, port
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(f"listen tcp {listen}: lookup {host}: {exc.strerror}") from None
    # IPv4 first, as Go's resolver does for a listen address ("localhost" -> 127.0.0.1).
    family, _, _, _, sockaddr = min(infos, key=lambda info: info[0] != socket.AF_INET)
    return socket.AddressFamily(family), str(sockaddr[0]), port


def bind_listener(family: socket.AddressFamily, host: str, port: int) -> socket.socket:
    """A non-blocking listening socket on (host, port) with SO_REUSEADDR (ListenError)."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        reason = (exc.strerror or str(exc)).lower()
        raise ListenError(f"listen tcp {format_address((host, port))}: bind: {reason}") from None
    return sock


def _same_address(sock: socket.socket, host: str, port: int) -> bool:
    """True when listening ``sock`` is bound to exactly (host, port)."""
    bound = sock.getsockname()
    try:
        return (ipaddress.ip_address(str(bound[0]).split("%")[0])
                == ipaddress.ip_address(host.split("%")[0]) and bound[1] == port)
    except ValueError:
        return False


class Proxy:
    """One proxy: its listener, its toxics and its open connections."""

    def __init__(self, name: str, listen: str, upstream: str) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.toxics: dict[str, Toxic] = {}
        self.connections: set[Connection] = set()
        self.sock: socket.socket | None = None
        self._server: asyncio.Server | None = None
        self._seq = itertools.count(1)

    def to_json(self) -> dict[str, Any]:
        """The proxy as Toxiproxy's API renders it, toxics included."""
        return {"name": self.name, "listen": self.listen, "upstream": self.upstream,
                "enabled": self.enabled, "toxics": [toxic.to_json() for toxic in self.toxic_list()]}

    def toxic_list(self) -> list[Toxic]:
        """Toxics as Toxiproxy lists them: upstream ones, then downstream, each by age."""
        return sorted(self.toxics.values(),
                      key=lambda toxic: (toxic.stream != "upstream", toxic.seq))

    async def start(self, sock: socket.socket) -> None:
        """Serve clients on the bound listening ``sock`` (the proxy owns it from now on)."""
        try:
            self._server = await asyncio.start_server(self._accept, sock=sock, limit=CHUNK_SIZE,
                                                      backlog=BACKLOG)
        except OSError as exc:
            sock.close()
            raise ListenError(f"listen tcp {self.listen}: {exc}") from None
        self.sock = sock
        self.listen = format_address(sock.getsockname())
        self.enabled = True
        log_event(log, logging.INFO, "proxy_listening", proxy=self.name, listen=self.listen,
                  upstream=self.upstream)

    def stop(self, reason: str) -> None:
        """Close the listener and every open connection (``reason`` goes to their logs)."""
        if self._server is not None:
            self._server.close()
            self._server = None
            self.sock = None
        for connection in list(self.connections):
            connection.abort(reason)
        if self.enabled:
            log_event(log, logging.INFO, "proxy_stopped", proxy=self.name, listen=self.listen,
                      reason=reason, connections=len(self.connections))
        self.enabled = False

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Listener callback: run the new client's connection in its own task."""
        if not self.enabled:
            writer.transport.abort()
            return
        connection = Connection(self.name, split_host_port(self.upstream), reader, writer,
                                self.toxic_list(), self.connections.discard)
        self.connections.add(connection)
        connection.start()

    def get_toxic(self, name: str) -> Toxic:
        """The toxic called ``name`` (NotFound)."""
        if name not in self.toxics:
            raise NotFound(f"toxic not found: {name!r} on proxy {self.name!r}")
        return self.toxics[name]

    def add_toxic(self, body: Any) -> Toxic:
        """Add a toxic from a create body; it applies to open connections at once."""
        toxic = parse_toxic(body, next(self._seq))
        if toxic.name in self.toxics:
            raise AlreadyExists(f"toxic already exists: {toxic.name!r} on proxy {self.name!r}")
        self.toxics[toxic.name] = toxic
        for connection in self.connections:
            connection.add_toxic(toxic)
        log_event(log, logging.INFO, "toxic_added", proxy=self.name, toxic=toxic.name,
                  type=toxic.type, stream=toxic.stream, toxicity=toxic.toxicity,
                  attributes=",".join(f"{k}:{v}" for k, v in toxic.attributes.items()),
                  connections=len(self.connections))
        return toxic

    def update_toxic(self, name: str, body: Any) -> Toxic:
        """Change a toxic's attributes/toxicity; open connections take the change."""
        toxic = updated_toxic(self.get_toxic(name), body)
        self.toxics[name] = toxic
        for connection in self.connections:
            connection.update_toxic(toxic)
        log_event(log, logging.INFO, "toxic_updated", proxy=self.name, toxic=name,
                  toxicity=toxic.toxicity,
                  attributes=",".join(f"{k}:{v}" for k, v in toxic.attributes.items()))
        return toxic

    def remove_toxic(self, name: str) -> None:
        """Remove a toxic; data it holds on open connections flows on."""
        toxic = self.get_toxic(name)
        del self.toxics[name]
        for connection in self.connections:
            connection.remove_toxic(toxic)
        log_event(log, logging.INFO, "toxic_removed", proxy=self.name, toxic=name,
                  connections=len(self.connections))

    def reset_toxics(self) -> None:
        """Remove every toxic."""
        for name in list(self.toxics):
            self.remove_toxic(name)


class ProxyRegistry:
    """All proxies by name; every change that may touch a listener is serialised."""

    def __init__(self) -> None:
        self.proxies: dict[str, Proxy] = {}
        self._lock = asyncio.Lock()

    def get(self, name: str) -> Proxy:
        """The proxy called ``name`` (NotFound)."""
        if name not in self.proxies:
            raise NotFound(f"proxy not found: {name!r}")
        return self.proxies[name]

    async def _open(self, listen: str, releasing: Iterable[Proxy] = (),
                    taken: set[int] | None = None) -> socket.socket:
        """A listening socket for ``listen``. When a proxy in ``releasing`` (about to stop)
        listens on exactly that address, its socket is shared (dup) instead of re-bound."""
        family, host, port = await resolve_listen(listen)
        taken = set() if taken is None else taken
        if port != 0:
            for proxy in releasing:
                if (proxy.sock is not None and id(proxy) not in taken
                        and _same_address(proxy.sock, host, port)):
                    taken.add(id(proxy))
                    return proxy.sock.dup()
        return bind_listener(family, host, port)

    async def _differs(self, proxy: Proxy, listen: str, upstream: str) -> bool:
        """True when ``listen``/``upstream`` name other addresses than ``proxy`` uses."""
        if upstream != proxy.upstream:
            return True
        if listen == proxy.listen:
            return False
        try:
            _, new_host, new_port = await resolve_listen(listen)
            _, old_host, old_port = await resolve_listen(proxy.listen)
        except ProxyError:
            return True
        return (new_port != old_port
                or ipaddress.ip_address(new_host.split("%")[0])
                != ipaddress.ip_address(old_host.split("%")[0]))

    async def create(self, body: Any) -> Proxy:
        """Create (and, if enabled, start) a proxy from a create body."""
        spec = parse_proxy_spec(body)
        async with self._lock:
            if spec.name in self.proxies:
                raise AlreadyExists(f"proxy already exists: {spec.name!r}")
            proxy = Proxy(spec.name, spec.listen, spec.upstream)
            if spec.enabled:
                await proxy.start(await self._open(spec.listen))
            self.proxies[spec.name] = proxy
            log_event(log, logging.INFO, "proxy_created", proxy=proxy.name, listen=proxy.listen,
                      upstream=proxy.upstream, enabled=proxy.enabled)
            return proxy

    async def update(self, name: str, body: Any) -> Proxy:
        """Change listen/upstream/enabled of a proxy. A new address drops its connections
        and keeps its toxics; if the new listener cannot be bound nothing changes."""
        if not isinstance(body, dict):
            raise InvalidInput(f"bad request body: expected a JSON object, got {body!r}")
        async with self._lock:
            proxy = self.get(name)
            merged = {"name": name, "listen": proxy.listen, "upstream": proxy.upstream,
                      "enabled": proxy.enabled}
            merged.update({key: body[key] for key in ("listen", "upstream", "enabled")
                           if body.get(key) is not None})
            spec = parse_proxy_spec(merged)
            if await self._differs(proxy, spec.listen, spec.upstream):
                sock = await self._open(spec.listen, [proxy]) if spec.enabled else None
                proxy.stop("proxy address changed")
                proxy.listen, proxy.upstream = spec.listen, spec.upstream
                if sock is not None:
                    await proxy.start(sock)
            elif spec.enabled and not proxy.enabled:
                await proxy.start(await self._open(proxy.listen))
            elif not spec.enabled and proxy.enabled:
                proxy.stop("proxy disabled")
            return proxy

    async def delete(self, name: str) -> None:
        """Stop and forget a proxy."""
        async with self._lock:
            proxy = self.get(name)
            proxy.stop("proxy deleted")
            del self.proxies[name]
            log_event(log, logging.INFO, "proxy_deleted", proxy=name)

    async def populate(self, body: Any) -> list[Proxy]:
        """Create or replace a list of proxies, all or nothing.

        As in Toxiproxy, a proxy whose listen and upstream match the request is kept as it
        is (toxics and all); one that differs is replaced by a new proxy. Every listener is
        bound before any proxy is stopped or created, so a bad entry or a busy port
        changes nothing.
        """
        if not isinstance(body, list):
            raise InvalidInput(f"bad request body: expected a JSON list of proxies, got "
                               f"{type(body).__name__}")
        specs = [parse_proxy_spec(item, f" at proxy {index + 1}")
                 for index, item in enumerate(body)]
        names = [spec.name for spec in specs]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise InvalidInput(f"proxy names must be unique in one populate: "
                               f"{', '.join(duplicates)} repeated")
        async with self._lock:
            plan: list[tuple[ProxySpec, Proxy | None, bool]] = []
            for spec in specs:
                existing = self.proxies.get(spec.name)
                keep = existing is not None and not await self._differs(
                    existing, spec.listen, spec.upstream)
                plan.append((spec, existing, keep))
            replaced = [existing for _, existing, keep in plan if existing and not keep]
            sockets: dict[str, socket.socket] = {}
            taken: set[int] = set()
            try:
                for spec, _, keep in plan:
                    if not keep and spec.enabled:
                        sockets[spec.name] = await self._open(spec.listen, replaced, taken)
            except ProxyError:
                for sock in sockets.values():
                    sock.close()
                raise
            for proxy in replaced:
                proxy.stop("proxy replaced by populate")
            result = []
            for spec, existing, keep in plan:
                if keep and existing is not None:
                    result.append(existing)
                    continue
                proxy = Proxy(spec.name, spec.listen, spec.upstream)
                if spec.name in sockets:
                    await proxy.start(sockets[spec.name])
                self.proxies[spec.name] = proxy
                result.append(proxy)
            log_event(log, logging.INFO, "populated", proxies=len(result),
                      replaced=len(replaced), kept=sum(keep for _, _, keep in plan))
            return result

    async def reset(self) -> None:
        """Enable every proxy and remove every toxic (ListenError lists what failed)."""
        async with self._lock:
            failures = []
            for proxy in self.proxies.values():
                if not proxy.enabled:
                    try:
                        await proxy.start(await self._open(proxy.listen))
                    except ProxyError as exc:
                        failures.append(f"{proxy.name}: {exc}")
                proxy.reset_toxics()
            log_event(log, logging.INFO, "reset", proxies=len(self.proxies),
                      failed=len(failures))
            if failures:
                raise ListenError("; ".join(failures))

    async def load(self, entries: list[Any]) -> list[str]:
        """Create the proxies of a config file one by one; a failing entry is logged and
        skipped. Returns the failures."""
        failures = []
        for index, entry in enumerate(entries):
            try:
                await self.create(entry)
            except ProxyError as exc:
                name = entry.get("name") if isinstance(entry, dict) else None
                failures.append(f"proxy {index + 1} ({name}): {exc}")
                log_event(log, logging.WARNING, "config_proxy_failed", index=index + 1,
                          proxy=name, error=str(exc))
        return failures

    async def close(self) -> None:
        """Stop every proxy and wait briefly for their connections to finish."""
        async with self._lock:
            tasks = []
            for proxy in self.proxies.values():
                tasks += [connection.task for connection in proxy.connections
                          if connection.task is not None]
                proxy.stop("server shutting down")
            if tasks:
                await asyncio.wait(tasks, timeout=2.0)
