"""Upstream resolution: cached, one lookup per name, bounded wait, failures cached too."""

from __future__ import annotations

import asyncio
import socket

import pytest

from mooseng.toxiproxy.resolver import UpstreamResolver


def test_a_slow_name_does_not_hold_up_the_others_and_is_looked_up_once(monkeypatch):
    calls: list[str] = []

    async def fake_getaddrinfo(host, port, type=0):
        calls.append(host)
        if host == "dead":
            await asyncio.sleep(5)  # a name Docker's DNS forwards to an unreachable resolver
        return [(socket.AF_INET, socket.SOCK_STREAM, 0, "", ("10.0.0.7", 0))]

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        monkeypatch.setattr(loop, "getaddrinfo", fake_getaddrinfo)
        resolver = UpstreamResolver(ttl=1.0, timeout=0.1)
        dead = [asyncio.ensure_future(resolver.resolve("dead")) for _ in range(20)]
        assert await resolver.resolve("alive") == "10.0.0.7"
        for task in dead:
            with pytest.raises(OSError, match="dead"):
                await task
        with pytest.raises(OSError, match="cached"):
            await resolver.resolve("dead")  # no new lookup within the ttl
        assert await resolver.resolve("alive") == "10.0.0.7"  # cached
        assert calls.count("dead") == 1 and calls.count("alive") == 1
        assert await resolver.resolve("127.0.0.1") == "127.0.0.1"  # literals pass through
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()

    asyncio.run(scenario())
