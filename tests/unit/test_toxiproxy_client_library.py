"""A published Toxiproxy client nobody here wrote drives our server.

``toxiproxy-python`` (PyPI, import name ``toxiproxy``) is the test: it builds its own
URLs (names unquoted in paths, so ``requests`` percent-encodes ``>``), parses our JSON
into its own objects and maps our status codes to its exceptions (404 NotFound, 409
ProxyExists, 400 InvalidToxic). Its API address is class-level state, set per test.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from toxiproxy.api import APIConsumer
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists
from toxiproxy.server import Toxiproxy

from tests.unit.toxiproxy_helpers import (
    EchoServer,
    ToxiproxyThread,
    connect,
    recv_exactly,
    split_address,
)


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def client() -> Iterator[Toxiproxy]:
    saved = (APIConsumer.host, APIConsumer.port)
    with ToxiproxyThread() as server:
        toxiproxy = Toxiproxy()
        toxiproxy.update_api_consumer(*split_address(server.url.removeprefix("http://")))
        yield toxiproxy
    APIConsumer.host, APIConsumer.port = saved


def echo_time(listen: str) -> float:
    """Seconds for one round trip of a few bytes through the proxy at ``listen``."""
    with connect(listen) as sock:
        started = time.monotonic()
        sock.sendall(b"ping")
        assert recv_exactly(sock, 4) == b"ping"
        return time.monotonic() - started


def test_create_add_and_remove_a_toxic_reset(client: Toxiproxy, echo: EchoServer) -> None:
    assert client.running()
    assert b'"version"' in client.version()
    proxy = client.create(upstream=echo.address, name="client-2>master-1:cl")
    assert proxy.enabled is True and proxy.listen.startswith("127.0.0.1:")
    assert echo_time(proxy.listen) < 0.25
    assert set(client.proxies()) == {"client-2>master-1:cl"}

    proxy.add_toxic(type="latency", attributes={"latency": 300})
    toxics = proxy.toxics()
    assert set(toxics) == {"latency_downstream"}
    assert toxics["latency_downstream"].attributes == {"latency": 300, "jitter": 0}
    assert echo_time(proxy.listen) >= 0.3
    assert proxy.destroy_toxic("latency_downstream")
    assert proxy.toxics() == {}
    assert echo_time(proxy.listen) < 0.25

    proxy.add_toxic(type="timeout", stream="upstream", name="cut", attributes={"timeout": 0})
    assert proxy.get_toxic("cut").stream == "upstream"
    with proxy.down(), pytest.raises(ConnectionRefusedError):
        socket.create_connection(split_address(proxy.listen), timeout=2).close()
    assert client.reset()
    again = client.get_proxy("client-2>master-1:cl")
    assert again is not None and again.enabled is True
    assert again.toxics() == {}
    assert echo_time(again.listen) < 0.25


def test_status_codes_become_the_library_exceptions(client: Toxiproxy, echo: EchoServer) -> None:
    proxy = client.create(upstream=echo.address, name="p")
    with pytest.raises(ProxyExists):  # the library checks first ...
        client.create(upstream=echo.address, name="p")
    with pytest.raises(ProxyExists):  # ... and maps our 409 when asked directly
        APIConsumer.post("/proxies", json={"name": "p", "upstream": echo.address,
                                           "listen": "127.0.0.1:0"})
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="no_such_toxic")
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="latency", attributes={"latency": -1})
    assert client.get_proxy("nope") is None
    assert proxy.destroy()
    with pytest.raises(NotFound):
        proxy.destroy()


def test_populate_and_destroy_all(client: Toxiproxy, echo: EchoServer) -> None:
    created = client.populate([{"name": "a", "upstream": echo.address, "listen": "127.0.0.1:0"},
                               {"name": "b", "upstream": echo.address, "listen": "127.0.0.1:0"}])
    assert sorted(proxy.name for proxy in created) == ["a", "b"]
    assert all(echo_time(proxy.listen) < 0.25 for proxy in created)
    client.destroy_all()
    assert client.proxies() == {}
