"""Upstream name resolution with a short cache, one lookup per name at a time, and a bound.

Every new connection through a proxy dials its upstream by name. Resolving per connection
goes through asyncio's default thread pool (a handful of threads): when a name stops
resolving quickly (a stopped container: Docker's DNS forwards the unknown name to the host's
resolvers, which may wait seconds), a burst of connections to it (routers check every
250 ms) fills the pool, and lookups of every other, healthy upstream queue behind them. In
the lab that hid a new leader from the routers for two minutes after the old one was
killed. Here each name has at most one lookup in flight, a caller waits for it at most
``timeout`` seconds, and answers, good or bad, are reused for ``ttl`` seconds.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time

TTL_S = 1.0
TIMEOUT_S = 0.5


class UpstreamResolver:
    """Resolve upstream host names for the proxies' dials (IPv4 first, like the listeners)."""

    def __init__(self, ttl: float = TTL_S, timeout: float = TIMEOUT_S) -> None:
        self.ttl = ttl
        self.timeout = timeout
        self._cache: dict[str, tuple[float, str | None, str]] = {}
        self._lookups: dict[str, asyncio.Future[str]] = {}

    async def resolve(self, host: str) -> str:
        """An address for ``host``; ``OSError`` naming it when it does not resolve in time."""
        try:
            ipaddress.ip_address(host)
            return host
        except ValueError:
            pass
        now = time.monotonic()
        cached = self._cache.get(host)
        if cached is not None and now < cached[0]:
            if cached[1] is None:
                raise OSError(f"cannot resolve {host}: {cached[2]} (cached)")
            return cached[1]
        lookup = self._lookups.get(host)
        if lookup is None:
            lookup = asyncio.ensure_future(self._lookup(host))
            self._lookups[host] = lookup
            lookup.add_done_callback(lambda done, name=host: self._settle(name, done))
        try:
            return await asyncio.wait_for(asyncio.shield(lookup), self.timeout)
        except TimeoutError:
            self._cache[host] = (time.monotonic() + self.ttl, None, "lookup still running")
            raise OSError(f"cannot resolve {host}: no answer within {self.timeout:g} s") from None

    async def _lookup(self, host: str) -> str:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        infos.sort(key=lambda info: info[0] != socket.AF_INET)
        return str(infos[0][4][0])

    def _settle(self, host: str, done: asyncio.Future[str]) -> None:
        self._lookups.pop(host, None)
        if done.cancelled():
            return
        error = done.exception()
        if error is None:
            self._cache[host] = (time.monotonic() + self.ttl, done.result(), "")
        else:
            self._cache[host] = (time.monotonic() + self.ttl, None, str(error) or type(error).__name__)


RESOLVER = UpstreamResolver()
