"""What a network activity will do, checked before anything is touched.

For every activity of ``chaosmoose.network`` there is a function here of the same name
taking the same arguments (plus the :class:`Topology`): it validates them and returns a
request the activity then carries out. The strict control's preflight calls the same
function with the experiment's arguments (see ``_family.py``), so an experiment is
rejected for exactly the reasons the activity would fail on, before the run starts.
Roles (``leader``, ...) are checked by name here and resolved by the activity when it fires.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chaosmoose import _settings
from chaosmoose._settings import Configuration, Secrets
from chaosmoose.network import _links, _partition
from chaosmoose.network._partition import ArgumentError, Pair, Topology

__all__: list[str] = []  # not an activity module

STREAMS = {"both": ("upstream", "downstream"), "upstream": ("upstream",),
           "downstream": ("downstream",)}


def topology(configuration: Configuration = None, secrets: Secrets = None) -> Topology:
    """The configured masters, chunkservers and clients."""
    return Topology(tuple(_settings.masters(configuration, secrets)),
                    tuple(_settings.chunkservers(configuration, secrets)),
                    tuple(_settings.clients(configuration, secrets)))


def streams_of(stream: Any) -> tuple[str, ...]:
    """``both``, ``upstream`` (dialer to dialed) or ``downstream`` into Toxiproxy streams."""
    if stream not in STREAMS:
        raise ArgumentError(f"stream={stream!r} is invalid; expected one of "
                            f"{', '.join(STREAMS)}")
    return STREAMS[stream]


def toxicity_of(toxicity: Any) -> float:
    """A probability in 0..1."""
    value = _settings.parse_float("toxicity", toxicity, minimum=None)
    if not 0.0 <= value <= 1.0:
        raise ArgumentError(f"toxicity={toxicity!r} is invalid; expected a number between 0 "
                            "and 1")
    return value


def whole(argument: str, value: Any, minimum: int = 0) -> int:
    """A whole number at least ``minimum`` (the message names the argument)."""
    return _settings.parse_int(argument, value, minimum=minimum)


def duration_of(duration: Any) -> float:
    """Seconds to keep the fault before healing it (0: until a rollback heals it)."""
    return _settings.parse_float("duration", duration)


@dataclass(frozen=True)
class ToxicSpec:
    """A Toxiproxy toxic to put on each chosen stream of each chosen proxy."""

    type: str
    attributes: dict[str, int]
    streams: tuple[str, ...]
    toxicity: float = 1.0

    def as_dict(self) -> dict[str, Any]:
        """JSON form for the ledger and results."""
        return {"type": self.type, "attributes": dict(self.attributes),
                "streams": list(self.streams), "toxicity": self.toxicity}


PARTITION_TOXIC = ToxicSpec("timeout", {"timeout": 0}, STREAMS["both"], 1.0)


@dataclass(frozen=True)
class ToxicRequest:
    """A toxic on the links a selector picks."""

    link: str
    selectors: list[_links.Selector]
    toxic: ToxicSpec
    duration: float

    def roles(self) -> list[str]:
        """Roles the selector names, to resolve when the action fires."""
        return _links.roles_in(self.selectors)


@dataclass(frozen=True)
class PartitionRequest:
    """A named partition over some nodes (roles still unresolved)."""

    kind: str
    specs: dict[str, Any] = field(default_factory=dict)
    duration: float = 0.0
    link_kinds: tuple[str, ...] = ()  # empty: every kind of link between a cut pair

    def roles(self, topo: Topology) -> list[str]:
        """Roles the partition names, to resolve when the action fires."""
        return topo.roles_in(*(v for v in self.specs.values() if v not in ("", None)))

    def compile(self, topo: Topology,
                roles: Mapping[str, str] | None = None) -> tuple[set[Pair], list[str]]:
        """The pairs to cut and the nodes partitioned, with roles resolved by ``roles``."""
        specs = self.specs
        if self.kind == "cut":
            side_a = topo.expand(specs["a"], "a", roles)
            side_b = topo.expand(specs["b"], "b", roles)
            return _partition.cut(side_a, side_b), sorted(set(side_a) | set(side_b))
        nodes = topo.expand(specs["nodes"], "nodes", roles)
        if self.kind == "isolate":
            return _partition.isolate(topo.expand(specs["node"], "node", roles), nodes), nodes
        if self.kind == "halves":
            minority = (topo.expand(specs["minority"], "minority", roles)
                        if specs.get("minority") not in ("", None) else [])
            return _partition.halves(nodes, minority), nodes
        if self.kind == "majorities_ring":
            return _partition.majorities_ring(nodes), nodes
        node = topo.expand(specs["node"], "node", roles)
        if len(node) != 1:
            raise ArgumentError(f"node={specs['node']!r} is {len(node)} nodes "
                                f"({', '.join(node)}); expected one bridge node")
        return _partition.bridge(node[0], nodes), nodes


LINK_KINDS = ("raft", "api", "ml", "cs", "cl", "ack")


def link_kinds_of(kinds: Any) -> tuple[str, ...]:
    """``"raft,ml"`` or ``["raft"]`` into a tuple of link kinds; empty means every kind."""
    if kinds in ("", None):
        return ()
    items = kinds.split(",") if isinstance(kinds, str) else kinds
    if not isinstance(items, list | tuple):
        raise ArgumentError(f"kinds={kinds!r} is not a comma-separated string or a list; "
                            f"expected some of {', '.join(LINK_KINDS)}")
    found = tuple(str(item).strip() for item in items if str(item).strip())
    unknown = [k for k in found if k not in LINK_KINDS]
    if unknown:
        raise ArgumentError(f"kinds={kinds!r} names unknown link kinds {', '.join(unknown)}; "
                            f"expected some of {', '.join(LINK_KINDS)}")
    return found


def _partition_request(kind: str, topo: Topology, duration: Any, kinds: Any = "",
                       **specs: Any) -> PartitionRequest:
    """Check the node arguments (names, groups, roles) and, when no role is named, compile."""
    for argument, spec in specs.items():
        if argument == "minority" and spec in ("", None):
            continue
        for item in _partition.split_spec(spec, argument):
            topo.check_token(item, argument)
    request = PartitionRequest(kind, specs, duration_of(duration), link_kinds_of(kinds))
    if not request.roles(topo):
        request.compile(topo)  # structural errors (too few nodes, node outside nodes) now
    return request


def isolate(topo: Topology, node: Any, nodes: Any, duration: Any,
            kinds: Any = "") -> PartitionRequest:
    """Check ``isolate``'s arguments."""
    return _partition_request("isolate", topo, duration, kinds, node=node, nodes=nodes)


def partition_halves(topo: Topology, nodes: Any, minority: Any,
                     duration: Any) -> PartitionRequest:
    """Check ``partition_halves``'s arguments."""
    return _partition_request("halves", topo, duration, nodes=nodes, minority=minority)


def partition_majorities_ring(topo: Topology, nodes: Any, duration: Any) -> PartitionRequest:
    """Check ``partition_majorities_ring``'s arguments."""
    return _partition_request("majorities_ring", topo, duration, nodes=nodes)


def bridge(topo: Topology, node: Any, nodes: Any, duration: Any) -> PartitionRequest:
    """Check ``bridge``'s arguments."""
    return _partition_request("bridge", topo, duration, node=node, nodes=nodes)


def cut(topo: Topology, a: Any, b: Any, duration: Any, kinds: Any = "") -> PartitionRequest:
    """Check ``cut``'s arguments."""
    return _partition_request("cut", topo, duration, kinds, a=a, b=b)


def _toxic_request(topo: Topology, link: Any, toxic: ToxicSpec,
                   duration: Any) -> ToxicRequest:
    selectors = _links.parse_selector(link, topo)
    text = link if isinstance(link, str) else ",".join(map(str, link))
    return ToxicRequest(text, selectors, toxic, duration_of(duration))


def add_latency(topo: Topology, link: Any, latency_ms: Any, jitter_ms: Any, stream: Any,
                toxicity: Any, duration: Any) -> ToxicRequest:
    """Check ``add_latency``'s arguments."""
    toxic = ToxicSpec("latency", {"latency": whole("latency_ms", latency_ms),
                                  "jitter": whole("jitter_ms", jitter_ms)},
                      streams_of(stream), toxicity_of(toxicity))
    return _toxic_request(topo, link, toxic, duration)


def limit_bandwidth(topo: Topology, link: Any, rate_kbps: Any, stream: Any, toxicity: Any,
                    duration: Any) -> ToxicRequest:
    """Check ``limit_bandwidth``'s arguments."""
    toxic = ToxicSpec("bandwidth", {"rate": whole("rate_kbps", rate_kbps, minimum=1)},
                      streams_of(stream), toxicity_of(toxicity))
    return _toxic_request(topo, link, toxic, duration)


def reset_peer(topo: Topology, link: Any, timeout_ms: Any, stream: Any, toxicity: Any,
               duration: Any) -> ToxicRequest:
    """Check ``reset_peer``'s arguments."""
    toxic = ToxicSpec("reset_peer", {"timeout": whole("timeout_ms", timeout_ms)},
                      streams_of(stream), toxicity_of(toxicity))
    return _toxic_request(topo, link, toxic, duration)


def slice(topo: Topology, link: Any, average_size: Any, size_variation: Any,
          delay_us: Any, stream: Any, toxicity: Any, duration: Any) -> ToxicRequest:
    """Check ``slice``'s arguments."""
    average = whole("average_size", average_size, minimum=1)
    variation = whole("size_variation", size_variation)
    if variation >= average:
        raise ArgumentError(f"size_variation={size_variation!r} is invalid; expected less "
                            f"than average_size ({average})")
    toxic = ToxicSpec("slicer", {"average_size": average, "size_variation": variation,
                                 "delay": whole("delay_us", delay_us)},
                      streams_of(stream), toxicity_of(toxicity))
    return _toxic_request(topo, link, toxic, duration)


def limit_data(topo: Topology, link: Any, bytes: Any, stream: Any,
               toxicity: Any, duration: Any) -> ToxicRequest:
    """Check ``limit_data``'s arguments."""
    toxic = ToxicSpec("limit_data", {"bytes": whole("bytes", bytes)}, streams_of(stream),
                      toxicity_of(toxicity))
    return _toxic_request(topo, link, toxic, duration)


def blackhole(topo: Topology, link: Any, timeout_ms: Any, stream: Any, toxicity: Any,
              duration: Any) -> ToxicRequest:
    """Check ``blackhole``'s arguments."""
    toxic = ToxicSpec("timeout", {"timeout": whole("timeout_ms", timeout_ms)},
                      streams_of(stream), toxicity_of(toxicity))
    return _toxic_request(topo, link, toxic, duration)


def heal(topo: Topology, all_runs: Any, remove_strays: Any) -> tuple[bool, bool]:
    """Check ``heal``'s arguments."""
    return (_settings.parse_bool("all_runs", all_runs),
            _settings.parse_bool("remove_strays", remove_strays))


def link_state(topo: Topology, link: Any) -> list[_links.Selector]:
    """Check ``link_state``'s arguments."""
    return _links.parse_selector(link, topo)
