"""The HTTP API against a real server on 127.0.0.1:0 with fake state."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator

import pytest

from mooseng.api import ApiContext, ApiServer, ClusterProbe, bearer_token
from tests.unit.fakes import FakeClock, FakeDaemons, FakeStore, make_ha, report

TOKEN = "t0ken"


class NoProbe(ClusterProbe):
    def read(self, leader):  # type: ignore[override]
        return {"chunkservers": [{"address": "10.0.0.5:9422", "id": 1, "labels": "A", "chunks": 3,
                                  "used_bytes": 25874712345, "total_bytes": 100}],
                "chunks": {"missing": 0, "endangered": 0, "undergoal": 1, "stable": 2, "overgoal": 0,
                           "pending_deletion": 0}}


@pytest.fixture()
def cluster():
    clock = FakeClock()
    store = FakeStore(clock)
    daemons = FakeDaemons(version=77)
    ha = make_ha("master-1", store, clock, daemons)
    ha.run_cycle()
    ha.run_cycle()
    return clock, store, ha


def serve(ha, store, clock, token: str = TOKEN) -> Iterator[int]:
    ctx = ApiContext("master-1", ha, store, token=token, probe=NoProbe(), clock=clock.time)
    server = ApiServer(ctx, host="127.0.0.1", port=0)
    server.start()
    try:
        yield server.port
    finally:
        server.stop()


@pytest.fixture()
def port(cluster):
    clock, store, ha = cluster
    yield from serve(ha, store, clock)


def call(port: int, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request(method, path, body=body, headers=headers or {})
    answer = conn.getresponse()
    data = answer.read()
    conn.close()
    return answer.status, data


def metric_samples(text: str) -> dict[str, float]:
    """{'name{labels}': value} of a /metrics exposition."""
    return {key: float(value) for key, _, value in
            (line.rpartition(" ") for line in text.splitlines() if line and line[0] != "#")}


def test_leader_probes(port: int) -> None:
    status, body = call(port, "GET", "/leader")
    assert status == 200
    assert json.loads(body)["reason"] == "holds lease epoch 1 and mfsmaster accepts clients"
    status, body = call(port, "HEAD", "/leader")
    assert status == 200 and body == b""
    assert call(port, "GET", "/health")[0] == 200
    assert call(port, "GET", "/replica")[0] == 503


def test_follower_probes(cluster) -> None:
    clock, store, _ = cluster
    follower = make_ha("master-2", store, clock, FakeDaemons(version=77))
    follower.run_cycle()
    follower.run_cycle()
    for port in serve(follower, store, clock):
        assert call(port, "GET", "/leader")[0] == 503
        assert call(port, "HEAD", "/leader")[0] == 503
        assert call(port, "GET", "/route")[0] == 503
        status, body = call(port, "GET", "/replica")
        assert status == 200 and json.loads(body)["lag"] == 0


def test_status_cluster_metrics(port: int) -> None:
    status, body = call(port, "GET", "/status")
    data = json.loads(body)
    assert status == 200 and data["node"] == "master-1" and data["role"] == "leader"
    assert data["lease"]["holder"] == "master-1" and data["raft"]["term"] == 3
    assert data["last_decision"] == "no action: I am master-1, the leader with the lease"
    assert data["timing"] == {"ttl": 2.0, "loop_wait": 0.5, "retry_timeout": 0.5, "safety_margin": 0.5,
                              "freeze_after": 0.4, "contact_check_interval": 0.05}
    assert (data["frozen"], data["frozen_since"], data["freezes"], data["thaws"]) == (False, None, 0, 0)
    assert (data["start_version"], data["diverged_changes"]) == (77, None)
    [served] = data["serving_history"]
    assert (served["epoch"], served["node"], served["freezes"], served["fenced_at"]) == (
        1, "master-1", [], None)
    status, body = call(port, "GET", "/cluster")
    data = json.loads(body)
    assert status == 200 and data["leader"] == "master-1" and data["chunks"]["undergoal"] == 1
    status, body = call(port, "GET", "/metrics")
    got = metric_samples(body.decode())
    assert status == 200
    for series, value in (("mooseng_master_is_leader", 1), ("mooseng_lease_epoch", 1),
                          ("mooseng_raft_term", 3), ('mooseng_daemon_up{daemon="mfsmaster"}', 1),
                          ('mooseng_chunks{state="undergoal"}', 1),
                          ('mooseng_chunkserver_disk_total_bytes{chunkserver="10.0.0.5:9422"}', 100),
                          ("mooseng_promotion_duration_seconds", 1.5),
                          ("mooseng_metadata_version", 77), ("mooseng_chunkservers_connected", 1),
                          ("mooseng_master_frozen", 0), ("mooseng_master_freezes_total", 0),
                          # full precision: %g once rounded byte counts to 6 digits
                          ('mooseng_chunkserver_disk_used_bytes{chunkserver="10.0.0.5:9422"}',
                           25874712345)):
        assert got.get(series) == value, series


def test_switchover_errors(port: int) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert call(port, "POST", "/switchover", b'{"to": "master-2"}')[0] == 401
    assert call(port, "POST", "/switchover", b'{"to": "master-2"}',
                {"Authorization": "Bearer nope"})[0] == 401
    status, body = call(port, "POST", "/switchover", b"{not json", auth)
    assert status == 400 and json.loads(body)["error"].startswith("malformed JSON")
    assert call(port, "POST", "/switchover", b"[1]", auth)[0] == 400
    assert call(port, "POST", "/switchover", b'{"to": "master-9"}', auth)[0] == 404
    assert call(port, "POST", "/switchover", b'{"to": "master-2"}', auth)[0] == 409
    assert call(port, "GET", "/nope")[0] == 404
    assert call(port, "GET", "/health")[0] == 200  # still serving


def test_switchover_accepted(cluster) -> None:
    clock, store, ha = cluster
    report(store, "master-2", 77)
    for port in serve(ha, store, clock):
        status, body = call(port, "POST", "/switchover", b'{"to": "master-2"}',
                            {"Authorization": f"Bearer {TOKEN}"})
        assert status == 202
        assert json.loads(body) == {"node": "master-1", "accepted": True, "from": "master-1",
                                    "to": "master-2"}
        assert store.get_intent().to_node == "master-2"


def test_switchover_without_token_configured(cluster) -> None:
    clock, store, ha = cluster
    for port in serve(ha, store, clock, token=""):
        status, body = call(port, "POST", "/switchover", b"{}", {"Authorization": "Bearer x"})
        assert status == 403 and json.loads(body)["error"] == "no MOOSENG_API_TOKEN configured"


def test_leader_is_503_while_mfsmaster_is_frozen(cluster) -> None:
    clock, store, ha = cluster
    store.cut_followers()
    clock.advance(0.45)
    assert ha.check_contact().startswith("froze mfsmaster")
    for port in serve(ha, store, clock):
        status, body = call(port, "GET", "/leader")
        assert status == 503
        assert json.loads(body)["reason"] == ("holds lease epoch 1 but mfsmaster is frozen "
                                              "(no follower contact)")
        assert call(port, "HEAD", "/leader")[0] == 503
        # The routers' check keeps sessions on a frozen holder (it thaws or is killed).
        status, body = call(port, "GET", "/route")
        assert status == 200
        assert json.loads(body)["reason"] == ("holds lease epoch 1; mfsmaster is frozen (no "
                                              "follower contact): sessions wait here")
        data = json.loads(call(port, "GET", "/status")[1])
        assert (data["frozen"], data["frozen_since"], data["freezes"], data["thaws"]) == (
            True, clock.now, 1, 0)
        assert data["follower_contact_age"] == 0.45
        assert data["serving_history"][-1]["freezes"] == [{"frozen_at": clock.now, "thawed_at": None}]
        got = metric_samples(call(port, "GET", "/metrics")[1].decode())
        for series, value in (("mooseng_master_frozen", 1), ("mooseng_master_freezes_total", 1),
                              ("mooseng_master_is_leader", 0)):
            assert got.get(series) == value, series


def raw(port: int, data: bytes, timeout: float = 5.0) -> tuple[int, dict[str, str], dict, bool]:
    """Send raw bytes; return (status, headers, JSON body, whether the server then closed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        reply = sock.makefile("rb")
        status_line = reply.readline()
        status = int(status_line.split()[1])
        headers = {}
        while (line := reply.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = reply.read(int(headers.get("content-length", 0)))
        sock.settimeout(0.5)  # a kept-alive connection stays open longer than that
        try:
            closed = sock.recv(1) == b""
        except TimeoutError:
            closed = False
        return status, headers, json.loads(body) if body else {}, closed


def test_wrong_method_on_a_known_path_is_405_with_allow(port: int) -> None:
    status, headers, body, _ = raw(port, b"POST /status HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    assert (status, headers["allow"]) == (405, "GET, HEAD")
    assert body == {"node": "master-1", "error": "POST is not allowed on /status; use GET or HEAD"}
    status, headers, _, _ = raw(port, b"GET /switchover HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (status, headers["allow"]) == (405, "POST")
    for method in (b"PUT", b"DELETE", b"PATCH", b"OPTIONS"):
        assert raw(port, method + b" /leader HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")[0] == 405
    assert raw(port, b"DELETE /nope HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 404


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"FROB /status HTTP/1.1\r\nHost: x\r\n\r\n", 501),  # unknown method
    (b"GARBAGE\r\n\r\n", 400),  # bad request line
    (b"GET /status HTTP/7.1\r\n\r\n", 505),
    (b"GET /status HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 431),  # oversized header
    (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414),
])
def test_parser_errors_are_json_and_close_the_connection(port: int, request_bytes: bytes,
                                                         status: int) -> None:
    got, headers, body, closed = raw(port, request_bytes)
    assert got == status and headers["content-type"] == "application/json"
    assert body["node"] == "master-1" and body["error"]
    assert closed and headers["connection"] == "close"


@pytest.mark.parametrize(("length", "status", "error"), [
    (b"abc", 400, "Content-Length 'abc' is not a non-negative integer"),
    (b"-5", 400, "Content-Length '-5' is not a non-negative integer"),
    (b"999999", 413, "body of 999999 bytes is larger than 65536 bytes"),
])
def test_bad_content_length_is_refused_and_closes(port: int, length: bytes, status: int,
                                                  error: str) -> None:
    got, _, body, closed = raw(port, b"POST /switchover HTTP/1.1\r\nHost: x\r\nContent-Length: "
                               + length + b"\r\n\r\n{}")
    assert (got, body["error"], closed) == (status, error, True)


def test_chunked_body_is_read(cluster) -> None:
    clock, store, ha = cluster
    report(store, "master-2", 77)
    report(store, "master-3", 77)
    for port in serve(ha, store, clock):
        body = b'{"to": "master-3"}'
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        status, _, answer, _ = raw(port, b"POST /switchover HTTP/1.1\r\nHost: x\r\nAuthorization: "
                                   b"bearer " + TOKEN.encode() + b"\r\nTransfer-Encoding: chunked"
                                   b"\r\n\r\n" + chunked)
        assert (status, answer["to"]) == (202, "master-3")  # not the default pick, master-2
        assert store.get_intent().to_node == "master-3"


@pytest.mark.parametrize(("headers", "body", "status"), [
    (b"Transfer-Encoding: gzip\r\n", b"", 501),
    (b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", b"0\r\n\r\n", 400),
    (b"Transfer-Encoding: chunked\r\n", b"zz\r\n", 400),
    (b"Transfer-Encoding: chunked\r\n", b"20000\r\n" + b"x" * 10, 413),
    (b"Content-Length: 2\r\nContent-Length: 3\r\n", b"{}", 400),
])
def test_untrusted_body_framing_is_refused(port: int, headers: bytes, body: bytes, status: int) -> None:
    got, _, answer, closed = raw(port, b"POST /switchover HTTP/1.1\r\nHost: x\r\n" + headers
                                 + b"\r\n" + body)
    assert (got, closed) == (status, True) and answer["error"]


def test_deeply_nested_json_is_a_400_without_traceback(port: int) -> None:
    body = b"[" * 40000
    status, _, answer, _ = raw(port, b"POST /switchover HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                               + TOKEN.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    assert (status, answer["error"]) == (400, "malformed JSON: nested too deeply")


def test_keep_alive_continues_after_a_good_request(port: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    for _ in range(3):
        conn.request("GET", "/health")
        assert conn.getresponse().read() and True
    conn.request("POST", "/status", body=b"{}")
    answer = conn.getresponse()
    assert answer.status == 405 and answer.getheader("Allow") == "GET, HEAD"
    answer.read()
    conn.request("GET", "/health")  # the body was consumed: the connection is still usable
    assert conn.getresponse().status == 200
    conn.close()


def test_bearer_scheme_is_case_insensitive() -> None:
    assert bearer_token("bearer abc") == bearer_token("BEARER  abc ") == "abc"
    assert bearer_token("Basic abc") == bearer_token("Bearerabc") == ""


def test_route_follows_the_lease_and_is_503_once_the_frozen_holder_is_fenced(cluster) -> None:
    clock, store, ha = cluster
    for port in serve(ha, store, clock):
        status, body = call(port, "GET", "/route")
        assert status == 200
        assert json.loads(body)["reason"] == "holds lease epoch 1 and mfsmaster accepts clients"
        store.cut_followers()
        store.failing = True
        clock.advance(0.45)
        assert ha.check_contact().startswith("froze mfsmaster")
        assert call(port, "GET", "/route")[0] == 200
        clock.advance(1.5)  # past ttl - safety margin without a renewal: fenced
        assert ha.check_fence().startswith("self-fenced")
        status, body = call(port, "GET", "/route")
        assert status == 503 and json.loads(body)["reason"].startswith("not the leader")
