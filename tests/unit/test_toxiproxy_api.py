"""Toxiproxy's HTTP contract, against our server and (when on PATH) the official one.

Every test in the first part runs twice through the ``server`` fixture: ``ours`` (the real
server in a background loop on 127.0.0.1:0) and ``official`` (``toxiproxy-server`` from
PATH, skipped with a visible reason when absent). Where we deliberately differ (stricter
validation, all-or-nothing populate, errors as JSON everywhere) the assertion is made for
``ours`` only and the difference is named. The second part covers our HTTP server's own
edges, the config file and the command line.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mooseng.toxiproxy import TOXIPROXY_VERSION
from mooseng.toxiproxy.__main__ import parse_args
from tests.unit.toxiproxy_helpers import (
    Api,
    EchoServer,
    OfficialToxiproxy,
    ToxiproxyThread,
    Upstream,
    connect,
    free_port,
    recv_exactly,
    recv_until_closed,
    split_address,
    toxiproxy_server,
    wait_for,
)

REPO = Path(__file__).resolve().parents[2]
Server = ToxiproxyThread | OfficialToxiproxy


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
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


def assert_error(response: Any, status: int, server: Server, contains: str = "") -> None:
    """``status``; for our server also the JSON error shape (and ``contains`` in it)."""
    assert response.status_code == status, response.text
    if server.kind == "ours":
        body = response.json()
        assert set(body) - {"proxies"} == {"error", "status"}, body  # populate adds proxies
        assert body["status"] == status
        assert isinstance(body["error"], str) and body["error"]
        assert contains in body["error"], body
    elif status not in (404, 405):  # the official 404/405 for a path or method are plain text
        assert response.json()["status"] == status


def refused(address: str) -> bool:
    """True when nothing accepts TCP connections on ``address``."""
    try:
        socket.create_connection(split_address(address), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def roundtrip(listen: str, payload: bytes = b"ping") -> bytes:
    """Send ``payload`` through a proxy to an echo upstream; what comes back."""
    with connect(listen) as client:
        client.sendall(payload)
        return recv_exactly(client, len(payload))


# --- the contract, on both servers ---------------------------------------------------------


def test_version_answers_like_toxiproxy(api: Api, server: Server) -> None:
    response = api.request("GET", "/version")
    assert response.status_code == 200
    assert isinstance(response.json()["version"], str)
    if server.kind == "ours":
        assert response.content == f'{{"version": "{TOXIPROXY_VERSION}"}}\n'.encode()


def test_create_show_list_and_proxy_traffic(api: Api, echo: EchoServer) -> None:
    created = api.create_proxy("redis", echo.address)
    assert created["name"] == "redis" and created["upstream"] == echo.address
    assert created["enabled"] is True and created["toxics"] == []
    host, port = split_address(created["listen"])
    assert host == "127.0.0.1" and port > 0  # the real bound port, not 0
    assert api.request("GET", "/proxies/redis").json() == created
    index = api.request("GET", "/proxies").json()
    assert index == {"redis": created}
    assert roundtrip(created["listen"], b"hello through the proxy") == b"hello through the proxy"


def test_enabled_defaults_to_true_and_disabled_proxy_does_not_listen(
        api: Api, echo: EchoServer) -> None:
    port = free_port()
    response = api.request("POST", "/proxies", {"name": "a", "listen": "127.0.0.1:0",
                                                "upstream": echo.address})
    assert response.status_code == 201 and response.json()["enabled"] is True
    off = api.create_proxy("b", echo.address, listen=f"127.0.0.1:{port}", enabled=False)
    assert off["enabled"] is False and off["listen"] == f"127.0.0.1:{port}"
    assert refused(f"127.0.0.1:{port}")


def test_duplicate_proxy_is_409(api: Api, server: Server, echo: EchoServer) -> None:
    api.create_proxy("dup", echo.address)
    response = api.request("POST", "/proxies", {"name": "dup", "listen": "127.0.0.1:0",
                                                "upstream": echo.address})
    assert_error(response, 409, server, "proxy already exists")
    assert len(api.request("GET", "/proxies").json()) == 1


def test_percent_encoded_names_with_gt_and_colon(api: Api, echo: EchoServer) -> None:
    name = "client-2>master-1:cl"
    api.create_proxy(name, echo.address)
    for path in ("/proxies/client-2%3Emaster-1%3Acl", "/proxies/client-2%3emaster-1%3acl",
                 "/proxies/client-2>master-1:cl"):
        response = api.request("GET", path)
        assert response.status_code == 200, path
        assert response.json()["name"] == name
    toxic = "master-3>master-1:raft"
    created = api.add_toxic(name, "latency", name=toxic, latency=1)
    assert created["name"] == toxic
    shown = api.request("GET", "/proxies/client-2%3Emaster-1%3Acl/toxics/"
                               "master-3%3Emaster-1%3Araft")
    assert shown.status_code == 200 and shown.json()["name"] == toxic
    assert api.request("DELETE", Api.path("proxies", name, "toxics", toxic)).status_code == 204
    assert api.request("DELETE", Api.path("proxies", name)).status_code == 204
    assert api.request("GET", "/proxies").json() == {}


def test_unknown_proxy_is_404_everywhere(api: Api, server: Server) -> None:
    for method, path, body in [("GET", "/proxies/nope", None),
                               ("POST", "/proxies/nope", {"enabled": False}),
                               ("DELETE", "/proxies/nope", None),
                               ("GET", "/proxies/nope/toxics", None),
                               ("POST", "/proxies/nope/toxics", {"type": "latency"}),
                               ("GET", "/proxies/nope/toxics/t", None),
                               ("DELETE", "/proxies/nope/toxics/t", None)]:
        assert_error(api.request(method, path, body), 404, server, "proxy not found")


def test_unknown_toxic_is_404(api: Api, server: Server, echo: EchoServer) -> None:
    api.create_proxy("p", echo.address)
    for method, body in [("GET", None), ("POST", {"attributes": {"latency": 1}}),
                         ("DELETE", None)]:
        assert_error(api.request(method, "/proxies/p/toxics/nope", body), 404, server,
                     "toxic not found")


def test_update_disable_closes_listener_and_connections_then_enable_listens_again(
        api: Api, upstream: Upstream) -> None:
    proxy = api.create_proxy("p", upstream.address)
    client = connect(proxy["listen"])
    server_side = upstream.accept()
    client.sendall(b"x")
    assert recv_exactly(server_side, 1) == b"x"
    response = api.request("POST", "/proxies/p", {"enabled": False})
    assert response.status_code == 200 and response.json()["enabled"] is False
    assert response.json()["listen"] == proxy["listen"]
    data, _ = recv_until_closed(client)  # the open connection is closed
    assert data == b""
    assert refused(proxy["listen"])
    response = api.request("POST", "/proxies/p", {"enabled": True})
    assert response.status_code == 200 and response.json()["enabled"] is True
    assert response.json()["listen"] == proxy["listen"]  # same port again
    client2 = connect(proxy["listen"])
    upstream.accept().sendall(b"back")
    assert recv_exactly(client2, 4) == b"back"
    client.close()
    client2.close()


def test_update_upstream_and_listen_with_patch(api: Api, echo: EchoServer,
                                              upstream: Upstream) -> None:
    api.create_proxy("p", upstream.address)
    port = free_port()
    response = api.request("PATCH", "/proxies/p", {"upstream": echo.address,
                                                   "listen": f"127.0.0.1:{port}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["upstream"] == echo.address and body["listen"] == f"127.0.0.1:{port}"
    assert roundtrip(body["listen"]) == b"ping"


def test_update_keeps_toxics(api: Api, echo: EchoServer, upstream: Upstream) -> None:
    api.create_proxy("p", upstream.address)
    api.add_toxic("p", "latency", latency=5)
    body = api.request("POST", "/proxies/p", {"upstream": echo.address}).json()
    assert [toxic["name"] for toxic in body["toxics"]] == ["latency_downstream"]


def test_delete_proxy_closes_listener_and_connections(api: Api, upstream: Upstream) -> None:
    proxy = api.create_proxy("p", upstream.address)
    client = connect(proxy["listen"])
    upstream.accept()
    assert api.request("DELETE", "/proxies/p").status_code == 204
    assert recv_until_closed(client)[0] == b""
    assert refused(proxy["listen"])
    assert api.request("GET", "/proxies/p").status_code == 404
    client.close()


def test_toxic_create_defaults_show_update_delete(api: Api, echo: EchoServer) -> None:
    api.create_proxy("p", echo.address)
    response = api.request("POST", "/proxies/p/toxics",
                           {"type": "latency", "attributes": {"latency": 10}})
    assert response.status_code == 200  # Toxiproxy answers 200, not 201, for a toxic
    toxic = response.json()
    assert toxic == {"attributes": {"latency": 10, "jitter": 0}, "name": "latency_downstream",
                     "type": "latency", "stream": "downstream", "toxicity": 1.0}
    up = api.add_toxic("p", "bandwidth", stream="upstream", rate=100)
    assert up["name"] == "bandwidth_upstream"
    listed = api.request("GET", "/proxies/p/toxics").json()
    assert [each["name"] for each in listed] == ["bandwidth_upstream", "latency_downstream"]
    assert api.request("GET", "/proxies/p/toxics/latency_downstream").json() == toxic
    updated = api.request("POST", "/proxies/p/toxics/latency_downstream",
                          {"attributes": {"jitter": 3}, "toxicity": 0.5})
    assert updated.status_code == 200
    assert updated.json()["attributes"] == {"latency": 10, "jitter": 3}  # merged
    assert updated.json()["toxicity"] == 0.5
    patched = api.request("PATCH", "/proxies/p/toxics/latency_downstream",
                          {"attributes": {"latency": 20}})
    assert patched.json()["attributes"] == {"latency": 20, "jitter": 3}
    assert patched.json()["toxicity"] == 0.5
    assert api.request("GET", "/proxies/p").json()["toxics"][1]["attributes"]["latency"] == 20
    assert api.request("DELETE", "/proxies/p/toxics/latency_downstream").status_code == 204
    assert api.request("DELETE", "/proxies/p/toxics/bandwidth_upstream").status_code == 204
    assert api.request("GET", "/proxies/p/toxics").json() == []


def test_duplicate_toxic_is_409_even_across_streams(api: Api, server: Server,
                                                    echo: EchoServer) -> None:
    api.create_proxy("p", echo.address)
    api.add_toxic("p", "latency", name="slow", latency=1)
    response = api.request("POST", "/proxies/p/toxics", {"name": "slow", "type": "timeout",
                                                         "stream": "upstream"})
    assert_error(response, 409, server, "toxic already exists")


def test_every_toxic_type_is_accepted(api: Api, echo: EchoServer) -> None:
    api.create_proxy("p", echo.address)
    for type_, attributes in [("latency", {"latency": 1, "jitter": 0}), ("bandwidth", {"rate": 1}),
                              ("slow_close", {"delay": 1}), ("timeout", {"timeout": 0}),
                              ("reset_peer", {"timeout": 1}),
                              ("slicer", {"average_size": 10, "size_variation": 1, "delay": 1}),
                              ("limit_data", {"bytes": 10})]:
        created = api.add_toxic("p", type_, **attributes)
        assert created["type"] == type_
        assert created["attributes"] == attributes
        api.remove_toxic("p", created["name"])


def test_populate_creates_keeps_and_replaces(api: Api, echo: EchoServer,
                                             upstream: Upstream) -> None:
    body = [{"name": "one", "listen": "127.0.0.1:0", "upstream": echo.address},
            {"name": "two", "listen": "127.0.0.1:0", "upstream": echo.address,
             "enabled": False}]
    response = api.request("POST", "/populate", body)
    assert response.status_code == 201, response.text
    proxies = {proxy["name"]: proxy for proxy in response.json()["proxies"]}
    assert proxies["one"]["enabled"] is True and proxies["two"]["enabled"] is False
    assert roundtrip(proxies["one"]["listen"]) == b"ping"
    # the same list with the real addresses again: proxies are kept, toxics and all
    api.add_toxic("one", "latency", latency=1)
    again = [{"name": "one", "listen": proxies["one"]["listen"], "upstream": echo.address}]
    kept = api.request("POST", "/populate", again).json()["proxies"][0]
    assert kept["listen"] == proxies["one"]["listen"] and len(kept["toxics"]) == 1
    # a different upstream replaces the proxy (a new proxy: its toxics are gone)
    changed = [{"name": "one", "listen": proxies["one"]["listen"], "upstream": upstream.address}]
    replaced = api.request("POST", "/populate", changed)
    assert replaced.status_code == 201, replaced.text
    proxy = replaced.json()["proxies"][0]
    assert proxy["upstream"] == upstream.address and proxy["toxics"] == []
    assert proxy["listen"] == proxies["one"]["listen"]
    with connect(proxy["listen"]) as client:
        upstream.accept().sendall(b"new")
        assert recv_exactly(client, 3) == b"new"


def test_populate_validates_everything_before_creating_anything(
        api: Api, server: Server, echo: EchoServer) -> None:
    body = [{"name": "good", "listen": "127.0.0.1:0", "upstream": echo.address},
            {"name": "bad", "listen": "127.0.0.1:0"}]
    response = api.request("POST", "/populate", body)
    assert response.status_code == 400
    assert "upstream" in response.json()["error"]
    assert api.request("GET", "/proxies").json() == {}


def test_populate_with_a_busy_port_creates_nothing(api: Api, server: Server,
                                                   echo: EchoServer) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        body = [{"name": "first", "listen": "127.0.0.1:0", "upstream": echo.address},
                {"name": "second", "listen": f"127.0.0.1:{port}", "upstream": echo.address}]
        response = api.request("POST", "/populate", body)
        assert response.status_code == 500
        assert "address already in use" in response.json()["error"]
        if server.kind == "ours":  # Toxiproxy keeps "first" (no rollback): our departure
            assert response.json()["proxies"] == []
            assert api.request("GET", "/proxies").json() == {}
        assert api.request("GET", "/version").status_code == 200


def test_reset_enables_all_and_removes_all_toxics(api: Api, echo: EchoServer) -> None:
    api.create_proxy("a", echo.address)
    api.create_proxy("b", echo.address)
    api.add_toxic("a", "latency", latency=100)
    api.add_toxic("b", "timeout", stream="upstream", timeout=0)
    assert api.request("POST", "/proxies/b", {"enabled": False}).status_code == 200
    response = api.request("POST", "/reset")
    assert response.status_code == 204 and response.content == b""
    proxies = api.request("GET", "/proxies").json()
    assert all(proxy["enabled"] and proxy["toxics"] == [] for proxy in proxies.values())
    assert roundtrip(proxies["b"]["listen"]) == b"ping"


def test_wrong_method_is_405(api: Api, server: Server) -> None:
    for method, path, allowed in [("PUT", "/proxies", {"GET", "POST"}),
                                  ("DELETE", "/version", {"GET"}),
                                  ("GET", "/reset", {"POST"}),
                                  ("PUT", "/proxies/x/toxics/y", {"GET", "POST", "PATCH",
                                                                  "DELETE"})]:
        response = api.request(method, path)
        assert_error(response, 405, server)
        if server.kind == "ours":
            assert set(response.headers["Allow"].split(", ")) == allowed


def test_unknown_path_is_404(api: Api, server: Server) -> None:
    assert_error(api.request("GET", "/nothing/here"), 404, server)
    assert_error(api.request("GET", "/proxies/"), 404, server)


def test_malformed_json_is_400(api: Api, server: Server, echo: EchoServer) -> None:
    api.create_proxy("p", echo.address)
    for path in ("/proxies", "/populate", "/proxies/p", "/proxies/p/toxics"):
        response = api.request("POST", path, data=b'{"name": ')
        assert_error(response, 400, server, "bad request body")
    assert api.request("GET", "/proxies").status_code == 200


def test_missing_fields_are_400(api: Api, server: Server, echo: EchoServer) -> None:
    assert_error(api.request("POST", "/proxies", {"listen": "127.0.0.1:0",
                                                  "upstream": echo.address}),
                 400, server, "missing required field: name")
    assert_error(api.request("POST", "/proxies", {"name": "x", "listen": "127.0.0.1:0"}),
                 400, server, "missing required field: upstream")
    assert api.request("GET", "/proxies").json() == {}


def test_unknown_toxic_type_and_bad_stream_are_400(api: Api, server: Server,
                                                   echo: EchoServer) -> None:
    api.create_proxy("p", echo.address)
    assert_error(api.request("POST", "/proxies/p/toxics", {"type": "explode"}), 400, server,
                 "invalid toxic type")
    assert_error(api.request("POST", "/proxies/p/toxics", {"type": "latency",
                                                           "stream": "sideways"}),
                 400, server, "stream was invalid")
    assert api.request("GET", "/proxies/p/toxics").json() == []


def test_listen_port_in_use_is_500_and_creates_nothing(api: Api, server: Server,
                                                       echo: EchoServer) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        response = api.request("POST", "/proxies", {"name": "p", "listen": f"127.0.0.1:{port}",
                                                    "upstream": echo.address})
        assert_error(response, 500, server, f"listen tcp 127.0.0.1:{port}: bind: "
                                            "address already in use")
        assert api.request("GET", "/proxies/p").status_code == 404
    created = api.create_proxy("p", echo.address)  # the server keeps serving, name is free
    assert roundtrip(created["listen"]) == b"ping"


def test_update_to_a_busy_port_is_500(api: Api, server: Server, echo: EchoServer) -> None:
    proxy = api.create_proxy("p", echo.address)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        response = api.request("POST", "/proxies/p", {"listen": f"127.0.0.1:{port}"})
        assert response.status_code == 500
        if server.kind == "ours":  # Toxiproxy leaves it stopped on the new address
            assert api.request("GET", "/proxies/p").json() == proxy
            assert roundtrip(proxy["listen"]) == b"ping"


def test_browsers_are_refused(api: Api) -> None:
    response = api.request("GET", "/proxies", headers={"User-Agent": "Mozilla/5.0"})
    assert response.status_code == 403


# --- our stricter validation (Toxiproxy accepts these: documented departures) --------------


@pytest.mark.parametrize("body, message", [
    ({"type": "latency", "attributes": {"latency": -5}}, "latency is -5 but must be >= 0"),
    ({"type": "latency", "attributes": {"latency": "slow"}}, "must be an integer"),
    ({"type": "latency", "toxicity": 1.5}, "toxicity is 1.5 but must be from 0 to 1"),
    ({"type": "latency", "toxicity": -0.1}, "toxicity is -0.1"),
    ({"type": "latency", "attributes": {"latencey": 5}}, "latency has no attribute latencey"),
    ({"type": "slicer", "attributes": {"average_size": 0}}, "average_size is 0"),
    ({"type": "slicer", "attributes": {"average_size": 5, "size_variation": 5}},
     "size_variation is 5 but must be < average_size"),
    ({"type": "bandwidth", "attributes": [1]}, "attributes must be a JSON object"),
])
def test_invalid_toxic_attributes_are_400(body: dict[str, Any], message: str,
                                          echo: EchoServer) -> None:
    with ToxiproxyThread() as server:
        api = Api(server.url)
        api.create_proxy("p", echo.address)
        response = api.request("POST", "/proxies/p/toxics", body)
        assert_error(response, 400, server, message)
        assert api.request("GET", "/proxies/p/toxics").json() == []
        api.add_toxic("p", "latency", name="ok", latency=1)
        update = api.request("POST", "/proxies/p/toxics/ok", {"attributes": {"latency": -1}})
        assert_error(update, 400, server, "must be >= 0")
        assert api.request("GET", "/proxies/p/toxics/ok").json()["attributes"]["latency"] == 1


@pytest.mark.parametrize("listen", ["nonsense", "127.0.0.1:99999", "127.0.0.1:http", "::1:80",
                                    "127.0.0.1"])
def test_malformed_listen_address_is_400(listen: str, echo: EchoServer) -> None:
    with ToxiproxyThread() as server:  # Toxiproxy answers 500 (net.Listen error)
        api = Api(server.url)
        response = api.request("POST", "/proxies", {"name": "p", "listen": listen,
                                                    "upstream": echo.address})
        assert_error(response, 400, server, "listen")
        assert api.request("GET", "/proxies").json() == {}


def test_listen_on_a_hostname_binds_its_ipv4_address(echo: EchoServer) -> None:
    with ToxiproxyThread() as server:
        api = Api(server.url)
        proxy = api.create_proxy("p", echo.address, listen="localhost:0")
        assert proxy["listen"].startswith("127.0.0.1:")
        assert roundtrip(proxy["listen"]) == b"ping"
        response = api.request("POST", "/proxies", {"name": "q", "listen": "no-such-host.invalid:0",
                                                    "upstream": echo.address})
        assert_error(response, 500, server, "lookup no-such-host.invalid")


def test_populate_rejects_repeated_names() -> None:
    with ToxiproxyThread() as server:
        api = Api(server.url)
        body = [{"name": "x", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"}] * 2
        assert_error(api.request("POST", "/populate", body), 400, server, "x repeated")
        assert_error(api.request("POST", "/populate", {"name": "x"}), 400, server,
                     "expected a JSON list")


# --- our HTTP server's edges ---------------------------------------------------------------


def raw_http(url: str, payload: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes to the API; everything it answers until it closes."""
    with connect(url.removeprefix("http://"), timeout=timeout) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        data, _ = recv_until_closed(sock)
        return data


def test_http_10_request_like_the_healthcheck_script() -> None:
    with ToxiproxyThread() as server:
        answer = raw_http(server.url, b"GET /proxies HTTP/1.0\r\nHost: localhost\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Connection: close" in answer and answer.endswith(b"{}")


def test_http_10_keep_alive_is_confirmed() -> None:
    with ToxiproxyThread() as server, connect(server.url.removeprefix("http://")) as sock:
        for _ in range(2):
            sock.sendall(b"GET /version HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            answer = sock.recv(4096)
            assert answer.startswith(b"HTTP/1.1 200 OK") and b"Connection: keep-alive" in answer


def test_keep_alive_chunked_body_and_expect_continue() -> None:
    with ToxiproxyThread() as server:
        body = json.dumps({"name": "p", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:1"})
        chunked = f"{len(body[:10]):x}\r\n{body[:10]}\r\n{len(body[10:]):x}\r\n{body[10:]}\r\n0\r\n\r\n"
        payload = (b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n"
                   b"POST /proxies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                   b"Expect: 100-continue\r\n\r\n" + chunked.encode()
                   + b"GET /proxies/p HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = raw_http(server.url, payload)
        assert answer.count(b"HTTP/1.1 200 OK") == 2
        assert b"HTTP/1.1 100 Continue" in answer and b"HTTP/1.1 201 Created" in answer


@pytest.mark.parametrize("payload, status", [
    (b"GARBAGE\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\nbad header line\r\n\r\n", b"400"),
    (b"POST /proxies HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", b"413"),
    (b"POST /proxies HTTP/1.1\r\nContent-Length: -1\r\n\r\n", b"400"),
    (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", b"431"),
    (b"GET /proxies/%ff HTTP/1.1\r\n\r\n", b"400"),
    (b"POST /proxies HTTP/1.1\r\nContent-Length: 3\r\n\r\nNaN", b"400"),
    (b"POST /populate HTTP/1.1\r\nContent-Length: 4000\r\n\r\n" + b"[" * 4000, b"400"),
])
def test_garbage_gets_a_json_error_and_the_server_keeps_serving(payload: bytes,
                                                                status: bytes) -> None:
    with ToxiproxyThread() as server:
        answer = raw_http(server.url, payload)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 " + status), answer[:200]
        assert json.loads(body)["status"] == int(status)
        assert b"Traceback" not in answer
        assert Api(server.url).request("GET", "/version").status_code == 200


def test_unexpected_error_is_a_fixed_500_without_traceback(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with ToxiproxyThread() as server:
        def explode(self: Any) -> Any:
            raise RuntimeError("secret internals")
        monkeypatch.setattr("mooseng.toxiproxy.proxy.Proxy.to_json", explode)
        api = Api(server.url)
        api.request("POST", "/proxies", {"name": "p", "listen": "127.0.0.1:0",
                                         "upstream": "127.0.0.1:1"})
        response = api.request("GET", "/proxies")
        assert response.status_code == 500
        assert response.json() == {"error": "internal server error (see the server log)",
                                   "status": 500}
        assert api.request("GET", "/version").status_code == 200


# --- config file, command line, restart ----------------------------------------------------


def test_config_entry_that_cannot_listen_is_skipped_others_start(echo: EchoServer) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        config = [{"name": "a", "listen": "127.0.0.1:0", "upstream": echo.address},
                  {"name": "busy", "listen": f"127.0.0.1:{port}", "upstream": echo.address},
                  {"name": "no-upstream", "listen": "127.0.0.1:0"},
                  {"name": "c", "listen": "127.0.0.1:0", "upstream": echo.address,
                   "enabled": False}]
        with ToxiproxyThread(config=config) as server:
            proxies = Api(server.url).request("GET", "/proxies").json()
            assert sorted(proxies) == ["a", "c"]
            assert len(server.config_failures) == 2
            assert "address already in use" in server.config_failures[0]
            assert roundtrip(proxies["a"]["listen"]) == b"ping"


def test_command_line_takes_go_style_and_gnu_style_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    args = parse_args(["-host=0.0.0.0", "-config=/etc/toxiproxy/proxies.json"])
    assert (args.host, args.port, args.config) == ("0.0.0.0", 8474, "/etc/toxiproxy/proxies.json")
    args = parse_args(["--host", "127.0.0.1", "--port", "9000", "-port=9001"])
    assert (args.host, args.port) == ("127.0.0.1", 9001)
    monkeypatch.setenv("TOXIPROXY_HOST", "10.0.0.1")
    monkeypatch.setenv("TOXIPROXY_PORT", "8555")
    monkeypatch.setenv("TOXIPROXY_CONFIG", "/tmp/p.json")
    args = parse_args([])
    assert (args.host, args.port, args.config) == ("10.0.0.1", 8555, "/tmp/p.json")
    assert parse_args(["-host", "h"]).host == "h"


def start_process(config: Path, api_port: int, env_only: bool = False) -> subprocess.Popen[bytes]:
    """``python3 -m mooseng.toxiproxy`` on ``api_port`` with ``config``."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    if env_only:
        env.update(TOXIPROXY_HOST="127.0.0.1", TOXIPROXY_PORT=str(api_port),
                   TOXIPROXY_CONFIG=str(config))
        argv: list[str] = []
    else:
        argv = ["-host=127.0.0.1", f"-port={api_port}", f"-config={config}"]
    return subprocess.Popen([sys.executable, "-m", "mooseng.toxiproxy", *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_malformed_config_exits_non_zero(tmp_path: Path) -> None:
    for content in ("{not json", '{"name": "a"}'):
        config = tmp_path / "proxies.json"
        config.write_text(content)
        process = start_process(config, free_port())
        _, stderr = process.communicate(timeout=20)
        assert process.returncode == 1
        assert b"event=config_unreadable" in stderr
    process = start_process(tmp_path / "missing.json", free_port())
    assert process.wait(timeout=20) == 1


def test_restart_with_the_same_config_brings_listeners_back_at_once(
        tmp_path: Path, echo: EchoServer) -> None:
    ports = [free_port() for _ in range(3)]
    config = tmp_path / "proxies.json"
    config.write_text(json.dumps([{"name": f"n>master-{i}:cl", "listen": f"127.0.0.1:{port}",
                                   "upstream": echo.address} for i, port in enumerate(ports)]))
    api_port = free_port()
    for env_only in (False, True):
        process = start_process(config, api_port, env_only=env_only)
        try:
            assert wait_for(lambda: _answers(api_port), timeout=20), "API did not come up"
            started = time.monotonic()
            # listeners are bound before the API answers; traffic leaves TIME_WAIT behind
            for port in ports:
                assert roundtrip(f"127.0.0.1:{port}") == b"ping"
            assert time.monotonic() - started < 1.0
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=20)
        assert process.returncode == 0, stderr.decode()
        assert b"event=proxy_listening proxy=n>master-0:cl" in stderr
        assert b"event=shutdown" in stderr


def _answers(api_port: int) -> bool:
    """True when the API on ``api_port`` answers GET /version."""
    try:
        return Api(f"http://127.0.0.1:{api_port}").request("GET", "/version").ok
    except OSError:
        return False
