"""Leader router and MooseFS config rendering."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from pathlib import Path

from mooseng import links, mfsconfig, router


def _topology(proxy_host: str = "toxiproxy") -> links.Topology:
    return links.Topology.from_settings({"MOOSENG_TOXIPROXY_HOST": proxy_host})


def test_router_binds_own_address_and_checks_leader_through_its_api_proxies(monkeypatch):
    monkeypatch.delenv("MOOSENG_ROUTER_CS_PORT", raising=False)
    body = router.haproxy_config("172.20.0.5", "chunkserver-2", "chunkserver", _topology(), 300)
    assert "bind 172.20.0.5:9520" in body
    assert body.count("option httpchk GET /route") == 1
    # chunkserver-2 is node 4: its link to master-2 is 20000 + 400 + 10 + kind
    assert "server master-2 toxiproxy:20411 check" in body           # api
    assert "server master-2 toxiproxy:20413 track leader-check/master-2" in body  # cs
    assert "listen metaloggers" not in body and "listen clients" not in body
    assert "on-marked-down shutdown-sessions" in body
    # all three masters sit behind one Toxiproxy address: the resolver must not drop two
    assert "resolve-opts allow-dup-ip" in body
    assert "bind 127." not in body
    # a dead leader's address must not hold a new session for seconds
    assert "option redispatch 1" in body and "timeout connect 300ms" in body
    # its notices go to stderr once each: a log target would print every one twice
    assert not [line for line in body.splitlines() if line.split()[:1] == ["log"]]


def test_without_a_proxy_host_the_router_dials_masters_directly():
    body = router.haproxy_config("172.20.0.5", "client-1", "client", _topology(""), 300)
    assert "server master-1 master-1:9430 check" in body
    assert "server master-1 master-1:9421 track leader-check/master-1" in body
    assert "toxiproxy" not in body


def test_metaloggers_follow_the_running_mfsmaster_and_a_master_reaches_itself_directly():
    body = router.haproxy_config("172.20.0.5", "master-2", "master", _topology(), 300)
    checks = body.split("backend master-check", 1)[1].split("listen", 1)[0]
    assert "option httpchk GET /master" in checks
    assert "server master-2 master-2:9430 check" in checks
    assert "server master-1 toxiproxy:20101 check" in checks
    section = body.split("listen metaloggers", 1)[1].split("listen", 1)[0]
    assert "bind 172.20.0.5:9519" in section
    assert "server master-1 toxiproxy:20102 track master-check/master-1" in section
    assert "server master-2 master-2:9419 track master-check/master-2" in section
    assert "listen chunkservers" not in body


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


def _url(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_wait_until_routable_needs_a_listening_router_and_a_leader():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]
    follower, leader = _leader_api(503), _leader_api(200)
    try:
        began = time.monotonic()
        assert router.wait_until_routable("127.0.0.1", port, [_url(leader)],
                                          check_ms=100, timeout=5)
        assert 0.2 <= time.monotonic() - began < 3  # waited for two router checks
        # Only followers: not routable.
        assert not router.wait_until_routable("127.0.0.1", port, [_url(follower)],
                                              check_ms=100, timeout=0.5)
        listener.close()
        # A leader but no router listening: not routable.
        assert not router.wait_until_routable("127.0.0.1", port, [_url(leader)],
                                              check_ms=100, timeout=0.5)
    finally:
        follower.shutdown()
        leader.shutdown()


def test_client_path_listeners_hold_new_connections_while_no_master_is_routable():
    holds = {"clients": 900, "chunkservers": 5000}
    body = router.haproxy_config("172.20.0.5", "master-2", "master", _topology(), 250,
                                 holds=holds)
    assert f"lua-load {router.ROUTER_LUA}" in body.split("resolvers", 1)[0]
    clients = body.split("listen clients", 1)[1].split("listen", 1)[0]
    # the action yields while it waits: the inspect delay must outlast it
    assert "tcp-request inspect-delay 1400ms" in clients
    assert "tcp-request content lua.mooseng_hold 900" in clients
    metaloggers = body.split("listen metaloggers", 1)[1].split("listen", 1)[0]
    assert "mooseng_hold" not in metaloggers and "inspect-delay" not in metaloggers
    chunkservers = router.haproxy_config("172.20.0.5", "chunkserver-1", "chunkserver",
                                         _topology(), 250, holds=holds)
    # HAProxy's 4 s default would abort a 5 s hold
    assert "tune.lua.session-timeout 6000ms" in chunkservers.split("resolvers", 1)[0]
    assert "tcp-request inspect-delay 5500ms" in chunkservers
    assert "tcp-request content lua.mooseng_hold 5000" in chunkservers
    # a hold for a listener this container does not serve loads no Lua
    assert "lua" not in router.haproxy_config("172.20.0.5", "chunkserver-1", "chunkserver",
                                              _topology(), 250, holds={"clients": 900})
    # the action the config names is the one the Lua file registers, polling nbsrv
    assert 'core.register_action("mooseng_hold", { "tcp-req" }' in router.HOLD_LUA
    assert "txn.f:nbsrv(listener) == 0 and waited < left" in router.HOLD_LUA


def test_hold_zero_leaves_lua_out_of_the_router():
    body = router.haproxy_config("172.20.0.5", "client-1", "client", _topology(), 250,
                                 holds={"clients": 0})
    assert "lua" not in body and "inspect-delay" not in body


def test_write_config_writes_the_lua_file_only_when_holding(tmp_path, monkeypatch):
    monkeypatch.setattr(router, "ROUTER_CFG", tmp_path / "haproxy.cfg")
    monkeypatch.setattr(router, "ROUTER_LUA", tmp_path / "router-hold.lua")
    monkeypatch.setenv("MOOSENG_ROUTER_HOLD_MS", "500")
    monkeypatch.setenv("MOOSENG_ROUTER_CS_HOLD_MS", "0")
    router.write_config("172.20.0.5", "client-1", "client")
    assert (tmp_path / "router-hold.lua").read_text() == router.HOLD_LUA
    body = (tmp_path / "haproxy.cfg").read_text()
    assert f"lua-load {tmp_path / 'router-hold.lua'}" in body and "mooseng_hold 500" in body
    (tmp_path / "router-hold.lua").unlink()
    # a chunkserver reads its own setting: 0 there means no hold, whatever the clients'
    router.write_config("172.20.0.5", "chunkserver-1", "chunkserver")
    assert not (tmp_path / "router-hold.lua").exists()
    assert "lua" not in (tmp_path / "haproxy.cfg").read_text()
