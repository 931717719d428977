"""Network faults through Toxiproxy: partitions by name and toxics on links, and their undo.

Every link of the cluster passes through its own proxy named ``<src>><dst>:<kind>``; the
list is read from the server (``GET /proxies``) each time. Nodes are configured names
(``master-1``), groups (``masters``, ``chunkservers``, ``clients``, ``all``) or roles
(``leader``, ``follower``, ``random-follower``) resolved through the master agents when the
action fires. Links are selected as described in ``chaosmoose.network._links``
(``client-2>masters``, ``master-1>*``, ``leader<>follower:raft``, a proxy name, ``*``).

A partition cuts every link of every cut node pair, both directions and every kind, with
a ``timeout`` toxic of timeout 0 on both streams (data stops, connections stay open; a
disabled proxy would refuse connections instead, which is not a partition). Every fault
is written to the run's ledger, with each proxy and toxic name it will create, before the
first toxic exists; a failure half-way undoes what was applied; ``heal`` (and ``chaosmoose
cleanup``) delete exactly the recorded toxics. ``duration`` > 0 heals the fault itself
after that many seconds.
"""

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosmoose import _faults, _settings
from chaosmoose.ledger import Ledger, new_id
from chaosmoose.master import _cluster
from chaosmoose.network import _family, _links, _partition, _plan, _toxiproxy
from chaosmoose.network._partition import ArgumentError, Topology

__all__ = [
    "add_latency",
    "blackhole",
    "bridge",
    "cut",
    "heal",
    "isolate",
    "limit_bandwidth",
    "limit_data",
    "partition_halves",
    "partition_majorities_ring",
    "reset_peer",
    "slice",
]

logger = logging.getLogger("chaostoolkit")

APPLY_THREADS = 8


def _inject(kind: str, service: str, links: list[_links.Link], toxic: _plan.ToxicSpec,
            server: _toxiproxy.Toxiproxy, duration: float, configuration: Configuration,
            secrets: Secrets, **details: Any) -> dict:
    """Record the fault with every toxic it will create, create them, heal after ``duration``."""
    fault_id = new_id()
    toxics = [{"proxy": link.proxy, "name": f"chaosmoose-{fault_id}-{toxic.type}-{stream}",
               "stream": stream} for link in links for stream in toxic.streams]
    target = {"service": service, "url": server.url, "toxics": toxics}

    def add(item: dict) -> None:
        server.add_toxic(item["proxy"], item["name"], toxic.type, item["stream"],
                         toxic.toxicity, toxic.attributes)

    def apply() -> None:
        # In parallel, so that a partition of many links is in place at nearly one instant
        # (one after the other, 28 toxics took up to a second on a loaded 2-core machine).
        with ThreadPoolExecutor(max_workers=APPLY_THREADS) as pool:
            for done in [pool.submit(add, item) for item in toxics]:
                done.result()  # the first failure raises; inject() then removes them all

    ledger = Ledger(_settings.run_dir(configuration, secrets))
    fault = _faults.inject(ledger, kind, target, _settings.run_id(configuration, secrets), apply,
                           fault_id=fault_id, toxic=toxic.as_dict(), configuration=configuration,
                           secrets=secrets, **details)
    logger.info("%s: %s (%d toxics on %d proxies)", kind, service, len(toxics), len(links))
    result: dict[str, Any] = {"fault": fault["id"], "proxies": [link.proxy for link in links],
                              "toxics": len(toxics)}
    if duration > 0:
        time.sleep(duration)
        result["healed"] = _faults.undo(ledger, fault)
        result["held_s"] = duration
    return result


def _cut_off_masters(pairs: Any, nodes: list[str], masters: tuple[str, ...],
                    roles: dict[str, str]) -> list[dict[str, Any]]:
    """Masters the partition leaves without a majority of masters in direct reach, with the
    role each had when it was cut (``{"service", "role"}``): the ledger's generic record of
    masters a fault took out of service (master probes such as ``wait_for_leader`` and
    ``faulted_masters_rejoined`` read it whatever the fault family)."""
    majority = len(masters) // 2 + 1
    seen = _partition.sees(pairs, [*nodes, *(m for m in masters if m not in nodes)])
    role_of = {name: role for role, name in roles.items() if role in ("leader", "follower")}
    return [{"service": m, "role": role_of.get(m)} for m in masters
            if m in seen and sum(1 for n in seen[m] if n in masters) < majority]


def _partition_fault(request: _plan.PartitionRequest, topology: Topology,
                     configuration: Configuration, secrets: Secrets) -> dict:
    """Resolve roles, compile the partition, cut the links of every cut pair."""
    server = _toxiproxy.client(configuration, secrets)
    links = _links.links_of(server.proxies())
    roles = _cluster.resolve_roles(request.roles(topology), configuration, secrets)
    pairs, nodes = request.compile(topology, roles)
    chosen = [link for link in _links.between(pairs, links)
              if not request.link_kinds or link.kind in request.link_kinds]
    cut_pairs = _partition.as_lists(pairs)
    described = ", ".join(f"{a}~{b}" for a, b in cut_pairs)
    if not chosen:
        raise ArgumentError(f"{request.kind} ({described}) joins no proxied link among "
                            f"{len(links)}; expected at least one proxy to cut")
    linked = {link.pair for link in chosen}
    result = _inject(_family.PARTITION_KIND, f"{request.kind} {described}", chosen,
                     _plan.PARTITION_TOXIC, server, request.duration, configuration, secrets,
                     partition=request.kind, arguments=request.specs, roles=roles,
                     nodes=nodes, pairs=cut_pairs,
                     cut_off=_cut_off_masters(pairs, nodes, topology.masters, roles))
    return {"partition": request.kind, "nodes": nodes, "roles": roles, "pairs": cut_pairs,
            "unlinked": [p for p in cut_pairs if frozenset(p) not in linked],
            "sees": _partition.sees(pairs, nodes), **result}


def _toxic_fault(request: _plan.ToxicRequest, topology: Topology,
                 configuration: Configuration, secrets: Secrets) -> dict:
    """Resolve roles, pick the links, put the toxic on each chosen stream of each."""
    server = _toxiproxy.client(configuration, secrets)
    links = _links.links_of(server.proxies())
    roles = _cluster.resolve_roles(request.roles(), configuration, secrets)
    chosen = _links.match(request.selectors, links, topology, roles)
    result = _inject(_family.TOXIC_KIND, f"{request.toxic.type} on {request.link}", chosen,
                     request.toxic, server, request.duration, configuration, secrets,
                     link=request.link, roles=roles)
    return {"link": request.link, "roles": roles, "toxic": request.toxic.as_dict(), **result}


def isolate(node: str = "leader", nodes: str = "masters", kinds: str = "",
            duration: float = 0.0, configuration: Configuration = None,
            secrets: Secrets = None) -> dict:
    """Partition ``node`` away from every other node of ``nodes``.

    ``node`` is a node, a group or a role (``leader``, ``follower``, ``random-follower``,
    resolved now); ``nodes`` is the set partitioned (comma-separated names and groups,
    default the masters: isolating a master from ``masters`` leaves its chunkserver and
    client links up; use ``all`` for those too); ``kinds`` limits the cut to some link
    kinds (comma-separated ``raft``, ``api``, ``ml``, ``cs``, ``cl``; empty: all). Returns ``{"partition", "nodes", "roles",
    "pairs", "unlinked", "sees", "fault", "proxies", "toxics"}``. Fails before touching
    anything on an unknown node or a node outside ``nodes``.
    """
    topology = _plan.topology(configuration, secrets)
    request = _plan.isolate(topology, node, nodes, duration, kinds)
    return _partition_fault(request, topology, configuration, secrets)


def partition_halves(nodes: str = "masters", minority: str = "", duration: float = 0.0,
                     configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Split ``nodes`` in two and cut every link across.

    The sorted nodes split into the first floor(n/2) and the rest; ``minority`` (nodes,
    groups or roles) picks the smaller side explicitly, e.g. ``leader`` for an old leader
    alone against the majority. Returns what ``isolate`` returns.
    """
    topology = _plan.topology(configuration, secrets)
    request = _plan.partition_halves(topology, nodes, minority, duration)
    return _partition_fault(request, topology, configuration, secrets)


def partition_majorities_ring(nodes: str = "masters", duration: float = 0.0,
                              configuration: Configuration = None,
                              secrets: Secrets = None) -> dict:
    """Cut links so that every node sees a majority but no two see the same majority.

    With the three masters, the first and last are cut and the middle one bridges. Needs
    at least 3 nodes. ``sees`` in the result lists each node's view. Returns what
    ``isolate`` returns.
    """
    topology = _plan.topology(configuration, secrets)
    request = _plan.partition_majorities_ring(topology, nodes, duration)
    return _partition_fault(request, topology, configuration, secrets)


def bridge(node: str = "leader", nodes: str = "masters", duration: float = 0.0,
           configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Split the other ``nodes`` into two halves connected only through ``node``.

    ``node`` is one node or a role resolved now. Returns what ``isolate`` returns.
    """
    topology = _plan.topology(configuration, secrets)
    request = _plan.bridge(topology, node, nodes, duration)
    return _partition_fault(request, topology, configuration, secrets)


def cut(a: str = "leader", b: str = "follower", kinds: str = "", duration: float = 0.0,
        configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Cut every link between ``a`` and ``b`` (each a node, group or role), both ways.

    ``cut(a="clients", b="leader")`` cuts every client from the current leader;
    ``kinds="raft"`` cuts only those links' Raft traffic. Returns what ``isolate`` returns.
    """
    topology = _plan.topology(configuration, secrets)
    request = _plan.cut(topology, a, b, duration, kinds)
    return _partition_fault(request, topology, configuration, secrets)


def add_latency(link: str = "", latency_ms: int = 500, jitter_ms: int = 0,
                stream: str = "both", toxicity: float = 1.0, duration: float = 0.0,
                configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Delay data on the selected links by ``latency_ms`` (+/- ``jitter_ms``) milliseconds.

    ``link`` selects proxies (``client-2>masters``, ``master-1>*``, a proxy name, ``*``
    for every link; no default, so a forgotten link fails instead of hitting everything);
    ``stream`` is ``both``, ``upstream`` (dialer to dialed) or ``downstream``;
    ``toxicity`` is the probability that a connection is affected. Returns ``{"link",
    "roles", "toxic", "fault", "proxies", "toxics"}``; fails before touching anything on a
    bad argument, and when the selector matches no proxy.
    """
    topology = _plan.topology(configuration, secrets)
    request = _plan.add_latency(topology, link, latency_ms, jitter_ms, stream, toxicity,
                                duration)
    return _toxic_fault(request, topology, configuration, secrets)


def limit_bandwidth(link: str = "", rate_kbps: int = 64, stream: str = "both",
                    toxicity: float = 1.0, duration: float = 0.0,
                    configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Limit the selected links to ``rate_kbps`` kilobytes per second (Toxiproxy's rate).

    Returns what ``add_latency`` returns.
    """
    topology = _plan.topology(configuration, secrets)
    request = _plan.limit_bandwidth(topology, link, rate_kbps, stream, toxicity, duration)
    return _toxic_fault(request, topology, configuration, secrets)


def reset_peer(link: str = "", timeout_ms: int = 0, stream: str = "both",
               toxicity: float = 1.0, duration: float = 0.0,
               configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Reset connections on the selected links (TCP RST) after ``timeout_ms`` milliseconds.

    With 0, connections are reset as soon as data arrives. Returns what ``add_latency``
    returns.
    """
    topology = _plan.topology(configuration, secrets)
    request = _plan.reset_peer(topology, link, timeout_ms, stream, toxicity, duration)
    return _toxic_fault(request, topology, configuration, secrets)


def slice(link: str = "", average_size: int = 64, size_variation: int = 32,
          delay_us: int = 100, stream: str = "both", toxicity: float = 1.0,
          duration: float = 0.0, configuration: Configuration = None,
          secrets: Secrets = None) -> dict:
    """Slice data on the selected links into small packets with a delay between them.

    Packets average ``average_size`` bytes (+/- ``size_variation``, which must be smaller)
    sent ``delay_us`` microseconds apart. Returns what ``add_latency`` returns.
    """
    topology = _plan.topology(configuration, secrets)
    request = _plan.slice(topology, link, average_size, size_variation, delay_us, stream,
                          toxicity, duration)
    return _toxic_fault(request, topology, configuration, secrets)


def limit_data(link: str = "", bytes: int = 0, stream: str = "both",
               toxicity: float = 1.0, duration: float = 0.0,
               configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Close each connection on the selected links once ``bytes`` bytes went through.

    Returns what ``add_latency`` returns.
    """
    topology = _plan.topology(configuration, secrets)
    request = _plan.limit_data(topology, link, bytes, stream, toxicity, duration)
    return _toxic_fault(request, topology, configuration, secrets)


def blackhole(link: str = "", timeout_ms: int = 0, stream: str = "both",
              toxicity: float = 1.0, duration: float = 0.0,
              configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Stop data on the selected links (a one-way partition with ``stream``).

    Data is dropped; with ``timeout_ms`` > 0 each connection is closed after that long,
    with 0 it stays open until healed. Returns what ``add_latency`` returns.
    """
    topology = _plan.topology(configuration, secrets)
    request = _plan.blackhole(topology, link, timeout_ms, stream, toxicity, duration)
    return _toxic_fault(request, topology, configuration, secrets)


def heal(all_runs: bool = True, remove_strays: bool = False,
         configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Undo every open network fault of the ledger (partitions and link toxics).

    By default every run's (the links are shared); with ``all_runs`` false only this
    run's. With ``remove_strays`` it also deletes any toxic named ``chaosmoose-*`` still on
    the server (left by a lost ledger). Returns ``{"faults": [...], "strays": [...]}``;
    fails when a fault could not be undone (it stays open; run again or ``chaosmoose
    cleanup``).
    """
    topology = _plan.topology(configuration, secrets)
    every, strays = _plan.heal(topology, all_runs, remove_strays)
    ledger = Ledger(_settings.run_dir(configuration, secrets))
    run = None if every else _settings.run_id(configuration, secrets)
    results = _faults.undo_open(ledger, run=run, kinds=list(_family.KINDS))
    removed = []
    if strays:
        server = _toxiproxy.client(configuration, secrets)
        for proxy in server.proxies().values():
            for toxic in proxy.toxics:
                if toxic.name.startswith(_family.TOXIC_PREFIX) and \
                        server.remove_toxic(proxy.name, toxic.name):
                    removed.append({"proxy": proxy.name, "name": toxic.name})
    failed = [r["error"] for r in results if not r["undone"]]
    if failed:
        raise ActivityFailed("; ".join(failed))
    return {"faults": results, "strays": removed}
