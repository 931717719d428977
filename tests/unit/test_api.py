"""The HTTP API against a real server on 127.0.0.1:0 with fake state."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import pytest

from mooseng.api import ApiContext, ApiServer, ClusterProbe
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
        status, body = call(port, "GET", "/replica")
        assert status == 200 and json.loads(body)["lag"] == 0


def test_status_cluster_metrics(port: int) -> None:
    status, body = call(port, "GET", "/status")
    data = json.loads(body)
    assert status == 200 and data["node"] == "master-1" and data["role"] == "leader"
    assert data["lease"]["holder"] == "master-1" and data["raft"]["term"] == 3
    assert data["last_decision"] == "no action: I am master-1, the leader with the lease"
    assert data["timing"] == {"ttl": 2.0, "loop_wait": 0.5, "retry_timeout": 0.5, "safety_margin": 0.5}
    status, body = call(port, "GET", "/cluster")
    data = json.loads(body)
    assert status == 200 and data["leader"] == "master-1" and data["chunks"]["undergoal"] == 1
    status, body = call(port, "GET", "/metrics")
    text = body.decode()
    assert status == 200
    for line in ("mooseng_master_is_leader 1", "mooseng_lease_epoch 1", "mooseng_raft_term 3",
                 'mooseng_daemon_up{daemon="mfsmaster"} 1', 'mooseng_chunks{state="undergoal"} 1',
                 'mooseng_chunkserver_disk_total_bytes{chunkserver="10.0.0.5:9422"} 100',
                 "mooseng_promotion_duration_seconds 1.5", "mooseng_metadata_version 77",
                 "mooseng_chunkservers_connected 1",
                 # full precision: %g once rounded byte counts to 6 digits
                 'mooseng_chunkserver_disk_used_bytes{chunkserver="10.0.0.5:9422"} 25874712345'):
        assert line in text.splitlines(), line


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
