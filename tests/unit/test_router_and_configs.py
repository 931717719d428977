"""Leader router and MooseFS config rendering."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from pathlib import Path

from mooseng import mfsconfig, router


def test_router_binds_own_address_and_checks_leader_on_every_master(monkeypatch):
    monkeypatch.delenv("MOOSENG_ROUTER_CS_PORT", raising=False)
    body = router.haproxy_config("172.20.0.5", ["master-1", "master-2", "master-3"], 9430, 300)
    assert "bind 172.20.0.5:9520" in body
    assert body.count("option httpchk GET /leader") == 1
    assert "server master-2 master-2:9421 track chunkservers/master-2" in body
    assert "listen metaloggers" not in body
    assert "server master-2 master-2:9420 check port 9430" in body
    assert "on-marked-down shutdown-sessions" in body
    assert "bind 127." not in body
    # a dead leader's address must not hold a new session for seconds
    assert "option redispatch 1" in body and "timeout connect 300ms" in body


def test_metaloggers_follow_the_running_mfsmaster_by_tcp_check():
    body = router.haproxy_config("172.20.0.5", ["master-1", "master-2"], 9430, 300,
                                 metaloggers=True)
    section = body.split("listen metaloggers", 1)[1]
    assert "bind 172.20.0.5:9519" in section
    assert "server master-1 master-1:9419 check" in section
    assert "httpchk" not in section and "track" not in section


def test_chunkserver_announces_real_address_and_dials_router(monkeypatch):
    monkeypatch.setenv("MOOSENG_CS_LABELS", "B")
    values = mfsconfig.chunkserver_values(mfsconfig.Layout(Path("/d")), "10.0.0.2", "10.0.0.2")
    assert values["CSSERV_LISTEN_HOST"] == "10.0.0.2"
    assert values["MASTER_HOST"] == "10.0.0.2" and values["MASTER_PORT"] == 9520
    assert values["LABELS"] == "B"
    assert values["DATA_PATH"] == Path("/d/mfs")


def test_chunkserver_without_labels_has_no_labels_key(monkeypatch):
    monkeypatch.setenv("MOOSENG_CS_LABELS", "")
    values = mfsconfig.chunkserver_values(mfsconfig.Layout(Path("/d")), "a", "a")
    assert "LABELS" not in values


def test_render_is_key_equals_value_lines():
    assert mfsconfig.render({"A": 1, "B": "x"}) == "A = 1\nB = x\n"


def test_seed_never_overwrites_existing_metadata(tmp_path, monkeypatch):
    layout = mfsconfig.Layout(tmp_path)
    (tmp_path / "mfs").mkdir()
    (tmp_path / "mfs" / "changelog_ml.0.mfs").write_text("41: x\n")
    empty = tmp_path / "empty"
    empty.write_bytes(b"MFSM NEW")
    monkeypatch.setattr(mfsconfig, "EMPTY_METADATA", empty)
    assert mfsconfig.seed_empty_metadata(layout) is False
    assert not (tmp_path / "mfs" / "metadata.mfs").exists()
    (tmp_path / "mfs" / "changelog_ml.0.mfs").unlink()
    assert mfsconfig.seed_empty_metadata(layout) is True
    assert (tmp_path / "mfs" / "metadata.mfs").read_bytes() == b"MFSM NEW"


def _leader_api(status: int):
    """A local HTTP server answering GET /leader with ``status`` (stands in for an agent)."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status if self.path == "/leader" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_wait_until_routable_needs_a_listening_router_and_a_leader():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    follower, leader = _leader_api(503), _leader_api(200)
    try:
        began = time.monotonic()
        assert router.wait_until_routable("127.0.0.1", port, ["127.0.0.1"],
                                          leader.server_address[1], check_ms=100, timeout=5)
        assert 0.2 <= time.monotonic() - began < 3  # waited for two router checks
        # Only followers: not routable.
        assert not router.wait_until_routable("127.0.0.1", port, ["127.0.0.1"],
                                              follower.server_address[1], check_ms=100, timeout=0.5)
        listener.close()
        # A leader but no router listening: not routable.
        assert not router.wait_until_routable("127.0.0.1", port, ["127.0.0.1"],
                                              leader.server_address[1], check_ms=100, timeout=0.5)
    finally:
        follower.shutdown()
        leader.shutdown()
