"""Each toxic's effect on the bytes of a real TCP stream through the proxy.

Every test opens a client and takes the upstream's end of the same connection, so it can
watch both directions. Toxics are added after the connection is up (they must reach open
connections) unless the test says otherwise. Timing assertions are lower bounds with
generous upper bounds, so a loaded 2-core machine does not make them flaky. Tests run
against our server and, when ``toxiproxy-server`` is on PATH, the official one; where the
two differ on purpose the test says so.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from tests.unit.toxiproxy_helpers import (
    Api,
    OfficialToxiproxy,
    ToxiproxyThread,
    Upstream,
    connect,
    established,
    recv_exactly,
    recv_until_closed,
    toxiproxy_server,
    wait_for,
)

Server = ToxiproxyThread | OfficialToxiproxy
SLACK = 3.0  # upper bound added to every expected duration


@pytest.fixture(params=["ours", "official"])
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    yield from toxiproxy_server(request.param)


@pytest.fixture
def api(server: Server) -> Api:
    return Api(server.url)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    up = Upstream()
    yield up
    up.close()


@pytest.fixture
def pair(api: Api, upstream: Upstream) -> Iterator[tuple[socket.socket, socket.socket]]:
    """An established (client, server) pair through proxy ``p``."""
    api.create_proxy("p", upstream.address)
    client, server = established(api, upstream, "p")
    yield client, server
    client.close()
    server.close()


def timed_recv(sock: socket.socket, size: int) -> tuple[bytes, float]:
    """``size`` bytes and the seconds it took to get them."""
    started = time.monotonic()
    data = recv_exactly(sock, size)
    return data, time.monotonic() - started


def assert_silent(sock: socket.socket, seconds: float) -> None:
    """Nothing arrives on ``sock`` for ``seconds`` and it is not closed."""
    sock.settimeout(seconds)
    try:
        data = sock.recv(100)
    except TimeoutError:
        return
    finally:
        sock.settimeout(5.0)
    raise AssertionError(f"expected silence, got {data!r}")


def assert_closed(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """``sock`` reaches EOF (or a reset) within ``timeout``; the bytes before it."""
    sock.settimeout(timeout)
    data, error = recv_until_closed(sock)
    assert error is None or isinstance(error, ConnectionResetError), error
    return data


# --- latency -------------------------------------------------------------------------------


def test_latency_delays_only_its_stream(api: Api, pair: tuple[socket.socket, socket.socket]
                                        ) -> None:
    client, server = pair
    api.add_toxic("p", "latency", latency=1000)
    server.sendall(b"down")
    data, took = timed_recv(client, 4)
    assert data == b"down" and 1.0 <= took < 1.0 + SLACK
    client.sendall(b"up")  # the upstream stream has no toxic: far under the 1 s it would take
    data, took = timed_recv(server, 2)
    assert data == b"up" and took < 0.8


def test_latency_upstream_stream(api: Api, pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    api.add_toxic("p", "latency", stream="upstream", latency=1000, jitter=20)
    client.sendall(b"req")
    data, took = timed_recv(server, 3)
    assert data == b"req" and 0.98 <= took < 1.0 + SLACK
    server.sendall(b"resp")
    data, took = timed_recv(client, 4)
    assert data == b"resp" and took < 0.8


def test_latency_delays_each_chunk_from_its_own_arrival(
        api: Api, pair: tuple[socket.socket, socket.socket]) -> None:
    """Ten writes 30 ms apart through a 300 ms latency take ~0.57 s, not 10 x 0.3 s."""
    client, server = pair
    api.add_toxic("p", "latency", latency=300)
    started = time.monotonic()
    for index in range(10):
        server.sendall(bytes([index]))
        time.sleep(0.03)
    data = recv_exactly(client, 10)
    took = time.monotonic() - started
    assert data == bytes(range(10))
    assert 0.57 <= took < 1.5


def test_two_latency_toxics_add_up(api: Api, pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    api.add_toxic("p", "latency", name="a", latency=200)
    api.add_toxic("p", "latency", name="b", latency=200)
    server.sendall(b"x")
    _, took = timed_recv(client, 1)
    assert 0.4 <= took < 0.4 + SLACK


def test_removing_latency_releases_waiting_data(
        api: Api, pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    api.add_toxic("p", "latency", latency=10_000)
    server.sendall(b"held")
    time.sleep(0.2)
    api.remove_toxic("p", "latency_downstream")
    data, took = timed_recv(client, 4)
    assert data == b"held" and took < SLACK


def test_latency_applies_to_new_connections(api: Api, upstream: Upstream) -> None:
    proxy = api.create_proxy("p", upstream.address)
    api.add_toxic("p", "latency", stream="upstream", latency=250)
    with connect(proxy["listen"]) as client:
        server = upstream.accept()
        client.sendall(b"hi")
        data, took = timed_recv(server, 2)
        assert data == b"hi" and 0.25 <= took < 0.25 + SLACK


# --- bandwidth -----------------------------------------------------------------------------


def test_bandwidth_limits_the_rate_within_20_percent(
        api: Api, pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    api.add_toxic("p", "bandwidth", rate=200)  # KB/s
    payload = bytes(range(256)) * 940  # 240,640 bytes: about 1.2 s at 200 KB/s
    started = time.monotonic()
    server.sendall(payload)
    data = recv_exactly(client, len(payload))
    took = time.monotonic() - started
    assert data == payload
    rate_kb = len(payload) / took / 1000
    assert 160 <= rate_kb <= 240, f"{rate_kb:.0f} KB/s in {took:.2f} s"


def test_bandwidth_upstream_leaves_downstream_alone(
        api: Api, pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    api.add_toxic("p", "bandwidth", stream="upstream", rate=10)
    payload = b"z" * 200_000
    started = time.monotonic()
    server.sendall(payload)
    assert recv_exactly(client, len(payload)) == payload
    assert time.monotonic() - started < 2.0  # 20 s at the upstream's 10 KB/s


# --- slow_close ----------------------------------------------------------------------------


def test_slow_close_delays_the_close_not_the_data(
        api: Api, pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    api.add_toxic("p", "slow_close", delay=1000)
    server.sendall(b"bye")
    data, took = timed_recv(client, 3)
    assert data == b"bye" and took < 0.8
    started = time.monotonic()
    server.close()
    assert assert_closed(client) == b""
    assert 1.0 <= time.monotonic() - started < 1.0 + SLACK


# --- timeout -------------------------------------------------------------------------------


def test_timeout_zero_stalls_the_open_connection_until_removed(
        api: Api, server: Server, pair: tuple[socket.socket, socket.socket]) -> None:
    client, server_side = pair
    api.add_toxic("p", "timeout", timeout=0)
    server_side.sendall(b"during the cut")
    assert_silent(client, 0.5)
    client.sendall(b"up still open")  # the upstream stream has no toxic
    assert recv_exactly(server_side, 13) == b"up still open"
    api.remove_toxic("p", "timeout_downstream")
    if server.kind == "official":  # Toxiproxy drops the data and closes on removal
        assert assert_closed(client) == b""
        return
    # ours held the bytes: the stream resumes intact, and new bytes follow
    assert recv_exactly(client, 14) == b"during the cut"
    server_side.sendall(b"after")
    assert recv_exactly(client, 5) == b"after"


def test_timeout_zero_on_both_streams_is_a_partition_for_new_connections_too(
        api: Api, upstream: Upstream, server: Server) -> None:
    proxy = api.create_proxy("p", upstream.address)
    api.add_toxic("p", "timeout", stream="upstream", timeout=0)
    api.add_toxic("p", "timeout", stream="downstream", timeout=0)
    client = connect(proxy["listen"])
    server_side = upstream.accept()  # TCP connects; nothing crosses
    client.sendall(b"ping")
    server_side.sendall(b"pong")
    assert_silent(server_side, 0.4)
    assert_silent(client, 0.1)
    response = api.request("POST", "/reset")
    assert response.status_code == 204
    if server.kind == "ours":
        assert recv_exactly(server_side, 4) == b"ping"
        assert recv_exactly(client, 4) == b"pong"
    client.close()
    server_side.close()


def test_close_during_a_partition_goes_through(
        api: Api, pair: tuple[socket.socket, socket.socket]) -> None:
    """A client that gives up during the cut does not leave the upstream hanging."""
    client, server_side = pair
    api.add_toxic("p", "timeout", stream="upstream", timeout=0)
    api.add_toxic("p", "timeout", stream="downstream", timeout=0)
    client.sendall(b"lost")
    client.close()
    assert assert_closed(server_side) == b""  # the held bytes are dropped, the FIN passes


def test_timeout_with_delay_closes_the_connection(
        api: Api, pair: tuple[socket.socket, socket.socket]) -> None:
    client, server_side = pair
    started = time.monotonic()
    api.add_toxic("p", "timeout", timeout=300)
    server_side.sendall(b"dropped")
    assert assert_closed(client) == b""
    assert 0.28 <= time.monotonic() - started < 0.3 + SLACK
    assert assert_closed(server_side) == b""


# --- reset_peer ----------------------------------------------------------------------------


def expect_reset(sock: socket.socket) -> None:
    """Reading ``sock`` ends in ECONNRESET (not a clean EOF)."""
    with pytest.raises(ConnectionResetError):
        while sock.recv(100):
            pass


def test_reset_peer_resets_on_traffic(api: Api, upstream: Upstream) -> None:
    proxy = api.create_proxy("p", upstream.address)
    api.add_toxic("p", "reset_peer", stream="upstream", timeout=0)
    with connect(proxy["listen"]) as client, upstream.accept() as server_side:
        client.sendall(b"request")
        expect_reset(client)
        expect_reset(server_side)


def test_reset_peer_after_timeout(api: Api, upstream: Upstream) -> None:
    proxy = api.create_proxy("p", upstream.address)
    api.add_toxic("p", "reset_peer", timeout=250)
    with connect(proxy["listen"]) as client, upstream.accept() as server_side:
        started = time.monotonic()
        server_side.sendall(b"response")
        expect_reset(client)
        assert 0.25 <= time.monotonic() - started < 0.25 + SLACK


def test_reset_peer_added_to_an_open_connection_resets_it(
        api: Api, pair: tuple[socket.socket, socket.socket], server: Server) -> None:
    if server.kind == "official":
        pytest.skip("Toxiproxy sets SO_LINGER 0 only on links that start with the toxic, "
                    "so an open connection gets a FIN (our departure: always an RST)")
    client, _ = pair
    api.add_toxic("p", "reset_peer", stream="upstream", timeout=0)
    client.sendall(b"request")
    expect_reset(client)


# --- slicer --------------------------------------------------------------------------------


def test_slicer_splits_a_write_into_several_reads(
        api: Api, pair: tuple[socket.socket, socket.socket]) -> None:
    client, server_side = pair
    api.add_toxic("p", "slicer", average_size=10, size_variation=4, delay=20_000)
    payload = bytes(range(100))
    server_side.sendall(payload)
    reads = []
    while sum(map(len, reads)) < len(payload):
        reads.append(client.recv(1000))
        assert reads[-1], "EOF"
    assert b"".join(reads) == payload
    assert len(reads) >= 4, [len(read) for read in reads]
    assert min(map(len, reads)) <= 14


# --- limit_data ----------------------------------------------------------------------------


def test_limit_data_closes_after_n_bytes(api: Api, pair: tuple[socket.socket, socket.socket]
                                         ) -> None:
    client, server_side = pair
    api.add_toxic("p", "limit_data", bytes=100)
    payload = bytes(range(256)) * 2
    server_side.sendall(payload[:60])
    assert recv_exactly(client, 60) == payload[:60]
    server_side.sendall(payload[60:])
    assert assert_closed(client) == payload[60:100]
    assert assert_closed(server_side) == b""


def test_limit_data_upstream(api: Api, pair: tuple[socket.socket, socket.socket]) -> None:
    client, server_side = pair
    api.add_toxic("p", "limit_data", stream="upstream", bytes=5)
    client.sendall(b"0123456789")
    assert assert_closed(server_side) == b"01234"


# --- toxicity ------------------------------------------------------------------------------


def test_toxicity_zero_never_applies(api: Api, upstream: Upstream) -> None:
    proxy = api.create_proxy("p", upstream.address)
    api.add_toxic("p", "timeout", stream="upstream", timeout=0, toxicity=0.0)
    api.add_toxic("p", "timeout", stream="downstream", timeout=0, toxicity=0.0)
    for index in range(20):
        with connect(proxy["listen"]) as client, upstream.accept() as server_side:
            client.sendall(bytes([index]))
            assert recv_exactly(server_side, 1) == bytes([index])
            server_side.sendall(b"k")
            assert recv_exactly(client, 1) == b"k"


def test_toxicity_update_reaches_open_connections(
        api: Api, pair: tuple[socket.socket, socket.socket]) -> None:
    client, server_side = pair
    api.add_toxic("p", "timeout", timeout=0, toxicity=0.0)
    server_side.sendall(b"a")
    assert recv_exactly(client, 1) == b"a"
    response = api.request("POST", "/proxies/p/toxics/timeout_downstream", {"toxicity": 1.0})
    assert response.status_code == 200
    server_side.sendall(b"b")
    assert_silent(client, 0.4)


# --- connections ---------------------------------------------------------------------------


def test_unreachable_upstream_closes_the_client(api: Api) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{closed.getsockname()[1]}"
    proxy = api.create_proxy("p", dead)
    with connect(proxy["listen"]) as client:
        assert assert_closed(client) == b""


def test_half_close_is_passed_on(pair: tuple[socket.socket, socket.socket],
                                 server: Server) -> None:
    if server.kind == "official":
        pytest.skip("Toxiproxy closes both directions on the first EOF (our departure)")
    client, server_side = pair
    client.sendall(b"request")
    client.shutdown(socket.SHUT_WR)
    assert assert_closed(server_side) == b"request"  # EOF reached the upstream ...
    server_side.sendall(b"late response")  # ... which can still answer
    assert recv_exactly(client, 13) == b"late response"
    server_side.close()
    assert assert_closed(client) == b""


def test_a_held_stream_pushes_back_instead_of_buffering(
        api: Api, pair: tuple[socket.socket, socket.socket], server: Server) -> None:
    if server.kind == "official":
        pytest.skip("Toxiproxy reads and drops during a timeout (our departure: we hold)")
    client, server_side = pair
    api.add_toxic("p", "timeout", timeout=0)
    server_side.settimeout(1.0)
    sent = 0
    block = b"x" * 65536
    with pytest.raises(TimeoutError):
        for _ in range(1024):  # 64 MiB at most
            sent += server_side.send(block)
    assert sent < 32 * 1024 * 1024  # kernel buffers plus our bounded queue, not everything
    api.remove_toxic("p", "timeout_downstream")
    client.settimeout(10.0)
    assert recv_exactly(client, sent) == b"x" * sent


def test_connections_are_released_when_closed(api: Api, upstream: Upstream,
                                              server: Server) -> None:
    if server.kind == "official":
        pytest.skip("looks into our registry")
    assert isinstance(server, ToxiproxyThread) and server.registry is not None
    proxy = api.create_proxy("p", upstream.address)
    for _ in range(5):
        with connect(proxy["listen"]) as client, upstream.accept() as server_side:
            client.sendall(b"x")
            assert recv_exactly(server_side, 1) == b"x"
    registry = server.registry
    assert wait_for(lambda: not registry.proxies["p"].connections)
