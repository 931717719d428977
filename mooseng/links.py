"""Which proxy carries which link: one Toxiproxy proxy per (node, master, port kind).

Every path from a node to a master passes through its own proxy on the ``toxiproxy``
service, so that an experiment can cut exactly one link (DESIGN 2.4). A proxy is named
``<source>><master>:<kind>``:

==========  ==========================================  ===========================
kind        what flows                                  who dials
==========  ==========================================  ===========================
``raft``    the agents' Raft (pysyncobj)                the master whose Raft address
                                                        sorts higher (pysyncobj's rule)
``api``     the local router's ``GET /leader`` and      every node's router
            ``GET /master`` checks of a master's agent
``ml``      a follower's metalogger stream              master routers
``cs``      mfschunkserver to mfsmaster                 chunkserver routers
``cl``      mfsmount, mfscli and the mfs* tools          client and master routers
``ack``     a follower's reply-barrier tap acknowledging master routers
            changes to the leader's barrier
            (``MOOSENG_BARRIER``; idle when it is off)
==========  ==========================================  ===========================

Ports on the proxy are ``base + 100*node_index + 10*master_index + kind_index`` with the
node index over masters, chunkservers and clients in that order, so ``client-2>master-1:cl``
is 20704 with the defaults. A node never proxies to itself. Not proxied: client to
chunkserver data (a Docker network action cuts it), and observers (Prometheus, the host).

Networks: Raft has a network of its own that only the masters and Toxiproxy join (compose
network ``raft``, internal), so no chunkserver or client can reach a Raft port, the agents'
or the proxies'. On it every member answers to ``<name>.<MOOSENG_RAFT_DOMAIN>`` (a compose
alias that only that network resolves): an agent binds its Raft listener to
``<node>.raft``, a ``raft`` proxy listens on ``toxiproxy.raft`` only and dials
``<master>.raft``. Every other kind stays on the shared network (proxies on all addresses,
upstreams by plain name). With ``MOOSENG_RAFT_DOMAIN`` empty, Raft shares that network too.

With ``MOOSENG_TOXIPROXY_HOST`` empty every link dials its master directly.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from mooseng import settings

KINDS = ("raft", "api", "ml", "cs", "cl", "ack")  # index = port offset: append only
KIND_PORT_SETTING = {
    "raft": "MOOSENG_RAFT_PORT",
    "api": "MOOSENG_API_PORT",
    "ml": "MOOSENG_MATOML_PORT",
    "cs": "MOOSENG_MATOCS_PORT",
    "cl": "MOOSENG_MATOCL_PORT",
    "ack": "MOOSENG_BARRIER_ACK_PORT",
}
# What each role's router dials (raft is the agents' own, between masters only).
ROLE_KINDS = {"master": ("api", "ml", "cl", "ack"), "chunkserver": ("api", "cs"), "client": ("api", "cl")}
# Kinds carried on the masters-only Raft network (names there: <name>.<MOOSENG_RAFT_DOMAIN>).
RAFT_NETWORK_KINDS = ("raft",)
ALL_ADDRESSES = "0.0.0.0"


@dataclass(frozen=True)
class Proxy:
    """One proxy: ``source`` reaches ``master``'s ``kind`` port through ``listen_port``."""

    source: str
    master: str
    kind: str
    listen_port: int
    upstream_port: int
    listen_host: str = ALL_ADDRESSES
    upstream_host: str = ""  # empty: the master's plain name

    @property
    def name(self) -> str:
        return proxy_name(self.source, self.master, self.kind)

    def toxiproxy_entry(self) -> dict[str, object]:
        """The proxy as Toxiproxy's ``/populate`` and config file take it."""
        return {"name": self.name, "listen": f"{self.listen_host}:{self.listen_port}",
                "upstream": f"{self.upstream_host or self.master}:{self.upstream_port}",
                "enabled": True}


def proxy_name(source: str, master: str, kind: str) -> str:
    """``client-2``, ``master-1``, ``cl`` -> ``client-2>master-1:cl``."""
    return f"{source}>{master}:{kind}"


@dataclass(frozen=True)
class Topology:
    """The lab's nodes and the proxy ports, from the settings."""

    masters: tuple[str, ...]
    chunkservers: tuple[str, ...]
    clients: tuple[str, ...]
    proxy_host: str
    base_port: int
    ports: Mapping[str, int]
    raft_domain: str = ""

    @classmethod
    def from_settings(cls, environ: Mapping[str, str] | None = None) -> Topology:
        def read(name: str) -> object:
            return settings.read(name, environ)

        return cls(
            masters=tuple(read("MOOSENG_MASTERS")),  # type: ignore[call-overload]
            chunkservers=tuple(read("MOOSENG_CHUNKSERVERS")),  # type: ignore[call-overload]
            clients=tuple(read("MOOSENG_CLIENTS")),  # type: ignore[call-overload]
            proxy_host=str(read("MOOSENG_TOXIPROXY_HOST")),
            base_port=int(read("MOOSENG_TOXIPROXY_BASE_PORT")),  # type: ignore[call-overload]
            ports={kind: int(read(key)) for kind, key in KIND_PORT_SETTING.items()},  # type: ignore[call-overload]
            raft_domain=str(read("MOOSENG_RAFT_DOMAIN")),
        )

    @property
    def nodes(self) -> tuple[str, ...]:
        return self.masters + self.chunkservers + self.clients

    def role_of(self, node: str) -> str:
        if node in self.masters:
            return "master"
        if node in self.chunkservers:
            return "chunkserver"
        if node in self.clients:
            return "client"
        raise ValueError(f"{node!r} is not a node of the lab (known: {', '.join(self.nodes)})")

    def raft_address(self, master: str) -> str:
        """The identity pysyncobj knows ``master`` by (never changes with the proxy)."""
        return f"{master}:{self.ports['raft']}"

    def on_kind_network(self, host: str, kind: str) -> str:
        """The name ``host`` answers to on the network that carries ``kind``: on the Raft
        network ``<host>.<raft_domain>``, elsewhere ``host`` itself. An IP address is kept
        as it is (it already names one network)."""
        if kind not in RAFT_NETWORK_KINDS or not self.raft_domain or not host or _is_ip(host):
            return host
        return f"{host}.{self.raft_domain}"

    def raft_bind_host(self, master: str) -> str | None:
        """Where ``master``'s agent binds its Raft listener: its name on the Raft network, or
        None (every address) when Raft shares the common network."""
        host = self.on_kind_network(master, "raft")
        return None if host == master else host

    def proxy_listen_host(self, kind: str) -> str:
        """Where the proxies of ``kind`` listen on the proxy host: only on its Raft-network
        name for Raft (no other container can reach them), on every address otherwise."""
        host = self.on_kind_network(self.proxy_host, kind)
        return ALL_ADDRESSES if host == self.proxy_host else host

    def raft_dialer(self, a: str, b: str) -> str:
        """Which of two masters opens their Raft connection: the higher address."""
        return a if self.raft_address(a) > self.raft_address(b) else b

    def port_of(self, source: str, master: str, kind: str) -> int:
        node_index = self.nodes.index(source)
        master_index = self.masters.index(master)
        if node_index >= 100 or master_index >= 10:
            raise ValueError("the port scheme allows 100 nodes and 10 masters")
        return self.base_port + 100 * node_index + 10 * master_index + KINDS.index(kind)

    def proxies(self) -> list[Proxy]:
        """Every proxy of the lab, in a stable order."""
        result = []
        for source in self.nodes:
            kinds = ROLE_KINDS[self.role_of(source)]
            for master in self.masters:
                if master == source:
                    continue
                wanted = list(kinds)
                if source in self.masters and self.raft_dialer(source, master) == source:
                    wanted.insert(0, "raft")
                for kind in wanted:
                    result.append(Proxy(source, master, kind, self.port_of(source, master, kind),
                                        self.ports[kind], self.proxy_listen_host(kind),
                                        self.on_kind_network(master, kind)))
        return result

    def dial(self, source: str, master: str, kind: str) -> tuple[str, int]:
        """Where ``source`` connects to reach ``master``'s ``kind`` port: its proxy, or the
        master itself (no proxy host configured, or the node is that master)."""
        if not self.proxy_host or source == master:
            return self.on_kind_network(master, kind), self.ports[kind]
        return self.on_kind_network(self.proxy_host, kind), self.port_of(source, master, kind)

    def toxiproxy_config(self) -> list[dict[str, object]]:
        """The proxy list that ``toxiproxy/proxies.json`` holds."""
        return [proxy.toxiproxy_entry() for proxy in self.proxies()]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return True
