"""Issue 13, item 7: Raft is reachable from the masters only.

The agents' Raft listeners and the ``raft`` proxies sit on the internal network
``<project>_raft`` that only the masters and Toxiproxy join (mooseng/links.py). From a
chunkserver or a client no Raft port answers: not the agents' (by name or by their Raft
address), not the proxies' (by name or by Toxiproxy's Raft address), and the ``.raft``
names do not resolve. From a master they do, and everything else still runs on the shared
network (the cluster fixture found every service healthy and one leader).
"""

from __future__ import annotations

import json
import shlex

import pytest
import requests

from mooseng import links
from tests.cluster.conftest import CHUNKSERVERS, CLIENTS, MASTERS

pytestmark = pytest.mark.cluster

TOXIPROXY = "http://127.0.0.1:8474"
PROBE = r"""
import json, socket, sys
result = {}
for host, port in json.loads(sys.argv[1]):
    try:
        socket.create_connection((host, port), timeout=2).close()
        result[f"{host}:{port}"] = "open"
    except OSError as exc:
        result[f"{host}:{port}"] = type(exc).__name__
print(json.dumps(result))
"""


def reach(cluster, service: str, targets: list[tuple[str, int]]) -> dict[str, str]:
    """``host:port`` -> "open" or the connect error's name, as seen from ``service``."""
    script = f"python3 -c {shlex.quote(PROBE)} {shlex.quote(json.dumps(targets))}"
    return json.loads(cluster.sh(service, script, timeout=120).out)


def raft_address(cluster, service: str) -> str:
    container = cluster.container(service)
    container.reload()
    networks = container.attrs["NetworkSettings"]["Networks"]
    name = f"{cluster.project}_raft"
    assert name in networks, f"{service} is not on {name}: {sorted(networks)}"
    return networks[name]["IPAddress"]


@pytest.fixture(scope="module")
def raft_ports() -> list[int]:
    proxies = requests.get(f"{TOXIPROXY}/proxies", timeout=5).json()
    ports = sorted(int(p["listen"].rsplit(":", 1)[1]) for name, p in proxies.items()
                   if name.endswith(":raft"))
    assert len(ports) == 3, proxies.keys()
    return ports


def test_no_chunkserver_or_client_reaches_any_raft_port(cluster, raft_ports):
    topology = links.Topology.from_settings({})
    raft_port = topology.ports["raft"]
    proxy_raft_ip = raft_address(cluster, "toxiproxy")
    targets = [(m, raft_port) for m in MASTERS]
    targets += [(raft_address(cluster, m), raft_port) for m in MASTERS]
    targets += [(f"{m}.raft", raft_port) for m in MASTERS]
    targets += [("toxiproxy", p) for p in raft_ports]
    targets += [(proxy_raft_ip, p) for p in raft_ports]
    targets += [("toxiproxy.raft", p) for p in raft_ports]
    for service in (CHUNKSERVERS[0], CLIENTS[0]):
        kind = "cs" if service in CHUNKSERVERS else "cl"
        control = topology.dial(service, "master-1", kind)
        seen = reach(cluster, service, [*targets, control])
        assert seen.pop(f"{control[0]}:{control[1]}") == "open", \
            f"{service} cannot reach its own proxy {control}: the probe itself is broken"
        opened = sorted(t for t, state in seen.items() if state == "open")
        assert opened == [], f"{service} reaches Raft ports it must not: {opened}"


def test_masters_reach_raft_through_the_raft_network(cluster, raft_ports):
    seen = reach(cluster, "master-3", [("toxiproxy.raft", p) for p in raft_ports]
                 + [("master-1.raft", 9440)])
    assert set(seen.values()) == {"open"}, seen


def test_agents_listen_for_raft_on_their_raft_address_only(cluster):
    for master in MASTERS:
        address = raft_address(cluster, master)
        listeners = cluster.sh(master, "ss -Hltn").out.split()
        raft = sorted(entry for entry in listeners if entry.endswith(":9440"))
        assert raft == [f"{address}:9440"], f"{master} listens for Raft on {raft}"
        on_raft_network = sorted(e for e in listeners if e.startswith(f"{address}:"))
        assert on_raft_network == [f"{address}:9440"], \
            f"{master} binds {on_raft_network} on its Raft address (only 9440 belongs there)"
