"""Raft on a network of its own (issue 13, item 7): only masters and Toxiproxy join it, the
agents bind Raft there only, and an agent whose Raft address is missing stops at start."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import yaml

from mooseng import agent, links, roles
from mooseng.dcs.raft import RaftBindError, RaftStore, local_address

REPO = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def networks_of(service: dict) -> dict[str, dict]:
    nets = service.get("networks") or {}
    if isinstance(nets, list):
        return {name: {} for name in nets}
    return {name: (value or {}) for name, value in nets.items()}


def test_only_masters_and_toxiproxy_join_the_raft_network_and_it_is_internal():
    topology = links.Topology.from_settings({})
    file = compose()
    assert file["networks"]["raft"].get("internal") is True
    members = {name for name, service in file["services"].items()
               if "raft" in networks_of(service)}
    assert members == {*topology.masters, topology.proxy_host}
    for name in (*topology.chunkservers, *topology.clients, "prometheus", "logs", "grafana"):
        assert "raft" not in networks_of(file["services"][name]), name


def test_raft_network_aliases_are_the_names_the_proxy_plan_uses():
    """The aliases on the raft network are exactly what links.py binds, listens on and dials."""
    topology = links.Topology.from_settings({})
    services = compose()["services"]
    for name in (*topology.masters, topology.proxy_host):
        nets = networks_of(services[name])
        assert "mooseng" in nets, f"{name} must stay on the shared network too"
        assert nets["raft"].get("aliases") == [topology.on_kind_network(name, "raft")], name
    assert topology.raft_bind_host("master-1") == "master-1.raft"
    assert topology.proxy_listen_host("raft") == "toxiproxy.raft"


def test_agent_binds_raft_to_its_raft_network_address(monkeypatch):
    monkeypatch.delenv("MOOSENG_RAFT_DOMAIN", raising=False)
    asked = []
    assert agent.raft_bind("master-2", lambda host: asked.append(host) or "172.30.0.3") == "172.30.0.3"
    assert asked == ["master-2.raft"]
    monkeypatch.setenv("MOOSENG_RAFT_DOMAIN", "")
    assert agent.raft_bind("master-2", lambda host: pytest.fail("nothing to resolve")) is None


def test_a_raft_host_that_does_not_resolve_stops_the_agent_instead_of_binding_everywhere():
    def unresolvable(host: str) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    slept = []
    with pytest.raises(RaftBindError, match=r"^the Raft listen host master-1\.raft does not "
                                            r"resolve after 2 s .*network raft"):
        local_address("master-1.raft", wait=2, interval=0.5, resolve=unresolvable,
                      sleep=lambda s: (slept.append(s), time.sleep(0.01)))
    assert slept  # retried before giving up


def test_a_raft_host_that_is_not_this_containers_address_is_refused():
    assert local_address("localhost", resolve=lambda host: ["127.0.0.1"]) == "127.0.0.1"
    with pytest.raises(RaftBindError, match=r"resolves to 192\.0\.2\.7, none of them this "
                                            r"container's own"):
        local_address("master-1.raft", resolve=lambda host: ["192.0.2.7"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_store_listens_only_on_its_bind_address(tmp_path: Path):
    port = free_port()
    store = RaftStore("n1", ["n1"], addresses={"n1": f"127.0.0.1:{port}"}, password="secret",
                      journal_dir=tmp_path, bind_host="127.0.0.1")
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        with pytest.raises(ConnectionRefusedError):  # another local address: nothing listens
            socket.create_connection(("127.0.0.2", port), timeout=1)
    finally:
        store.close()


def test_store_that_cannot_bind_raises_instead_of_retrying_silently(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        began = time.monotonic()
        with pytest.raises(RaftBindError, match=rf"could not bind 127\.0\.0\.1:{port} within 1 s"):
            RaftStore("n1", ["n1"], addresses={"n1": f"127.0.0.1:{port}"}, password="secret",
                      journal_dir=tmp_path, bind_host="127.0.0.1", bind_timeout=1.0)
        assert time.monotonic() - began < 5


def test_own_address_is_the_default_routes_not_the_raft_networks(monkeypatch):
    """A master's name has a hosts line per network; MooseFS and the router must get the
    shared network's address, the one with the default route (the Raft network has none)."""
    monkeypatch.setattr(roles, "_routed_address", lambda: "172.20.0.5")
    monkeypatch.setattr(socket, "gethostbyname_ex",
                        lambda name: (name, [], ["172.30.0.5", "172.20.0.5"]))
    assert roles.own_address("master-1") == "172.20.0.5"
    monkeypatch.setattr(roles, "_routed_address", lambda: None)
    monkeypatch.setattr(socket, "gethostbyname_ex",
                        lambda name: (name, [], ["127.0.1.1", "172.20.0.5"]))
    assert roles.own_address("master-1") == "172.20.0.5"
    monkeypatch.setattr(socket, "gethostbyname_ex", lambda name: (name, [], ["127.0.1.1"]))
    with pytest.raises(OSError, match="master-1 has no routable address"):
        roles.own_address("master-1")
