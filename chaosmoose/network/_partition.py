"""Named partitions compiled into the undirected node pairs to cut (pure functions).

A partition is a set of pairs ``frozenset({a, b})``: every link between ``a`` and ``b``, in
either direction and of every kind, is cut. Names and groups are expanded by a
:class:`Topology` (the configured masters, chunkservers and clients); roles such as
``leader`` are resolved by the caller at run time and passed in as ``roles``.

- :func:`isolate`: some nodes from every other node of the set;
- :func:`halves`: the sorted set split into the first ``floor(n/2)`` and the rest (or an
  explicit minority against the rest);
- :func:`majorities_ring`: every node still sees a majority, and no two nodes see the same
  majority (3 nodes: the first and last are cut, the middle one bridges);
- :func:`bridge`: the others split into two halves that only ``node`` connects;
- :func:`cut`: every node of one side from every node of the other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from chaoslib.exceptions import ActivityFailed

__all__: list[str] = []  # not an activity module

Pair = frozenset[str]

GROUPS = ("masters", "chunkservers", "clients", "all")
ROLES = ("leader", "follower", "random-follower")
KINDS = ("isolate", "halves", "majorities_ring", "bridge", "cut")


class ArgumentError(ActivityFailed):
    """An argument of a network activity is invalid (raised before anything is touched)."""


def split_spec(spec: str | Iterable[str], argument: str) -> list[str]:
    """``"master-1, clients"`` or ``["master-1", "clients"]`` into its non-empty items."""
    if isinstance(spec, str):
        items = [item.strip() for item in spec.split(",")]
    elif isinstance(spec, (list, tuple)):
        items = [str(item).strip() for item in spec]
    else:
        raise ArgumentError(f"{argument}={spec!r} is invalid; expected node names or groups "
                            "(a comma-separated string or a list)")
    items = [item for item in items if item]
    if not items:
        raise ArgumentError(f"{argument}={spec!r} is empty; expected at least one node or group")
    return items


@dataclass(frozen=True)
class Topology:
    """The nodes a partition may name, by group, in configured order."""

    masters: tuple[str, ...]
    chunkservers: tuple[str, ...] = ()
    clients: tuple[str, ...] = ()

    @property
    def nodes(self) -> tuple[str, ...]:
        """Every node: masters, chunkservers, clients."""
        return self.masters + self.chunkservers + self.clients

    def group(self, name: str) -> tuple[str, ...] | None:
        """The nodes of group ``name``; None when it is not a group."""
        return {"masters": self.masters, "chunkservers": self.chunkservers,
                "clients": self.clients, "all": self.nodes}.get(name)

    def valid_tokens(self, roles: bool = True) -> list[str]:
        """What a node argument may say: node names, groups, and roles."""
        return [*self.nodes, *GROUPS, *(ROLES if roles else ())]

    def check_token(self, token: str, argument: str) -> None:
        """Fail unless ``token`` is a node name, a group or a role."""
        if token not in self.nodes and token not in GROUPS and token not in ROLES:
            raise ArgumentError(f"{argument}: unknown node {token!r}; expected one of "
                                f"{', '.join(self.valid_tokens())}")

    def expand(self, spec: str | Iterable[str], argument: str,
               roles: Mapping[str, str] | None = None) -> list[str]:
        """The node names ``spec`` stands for, sorted and unique.

        Groups expand to their members; a role takes its resolution from ``roles``. An
        unknown item (or an unresolved role) raises ``ArgumentError`` naming the argument,
        the item and the valid ones.
        """
        found: set[str] = set()
        for item in split_spec(spec, argument):
            self.check_token(item, argument)
            members = self.group(item)
            if members is not None:
                found.update(members)
            elif item in ROLES:
                if not roles or item not in roles:
                    raise ArgumentError(f"{argument}: role {item!r} is not resolved; expected "
                                        "it resolved to a master at run time")
                found.add(roles[item])
            else:
                found.add(item)
        return sorted(found)

    def roles_in(self, *specs: str | Iterable[str]) -> list[str]:
        """The roles named in ``specs`` (to resolve at run time), in ROLES order."""
        named: set[str] = set()
        for spec in specs:
            if isinstance(spec, str):
                named.update(item.strip() for item in spec.split(","))
            elif isinstance(spec, (list, tuple)):
                named.update(str(item).strip() for item in spec)
        return [role for role in ROLES if role in named]


def pair(a: str, b: str) -> Pair:
    """The undirected pair {a, b}."""
    return frozenset((a, b))


def cut(side_a: Sequence[str], side_b: Sequence[str]) -> set[Pair]:
    """Every pair with one node on each side (a node on both sides is not cut from itself)."""
    pairs = {pair(a, b) for a in side_a for b in side_b if a != b}
    if not pairs:
        raise ArgumentError(f"cut between {', '.join(side_a) or '(none)'} and "
                            f"{', '.join(side_b) or '(none)'} cuts nothing; expected two "
                            "different nodes")
    return pairs


def _within(chosen: Sequence[str], nodes: Sequence[str], argument: str) -> None:
    outside = [n for n in chosen if n not in nodes]
    if outside:
        raise ArgumentError(f"{argument}: {', '.join(outside)} not among the partitioned "
                            f"nodes ({', '.join(nodes)}); expected a subset of nodes")


def isolate(node: Sequence[str], nodes: Sequence[str]) -> set[Pair]:
    """Cut ``node`` (one or more nodes) from every other node of ``nodes``."""
    _within(node, nodes, "node")
    rest = [n for n in nodes if n not in node]
    if not rest:
        raise ArgumentError(f"isolating {', '.join(node)} leaves no other node among "
                            f"{', '.join(nodes)}; expected at least one other")
    return cut(node, rest)


def halves(nodes: Sequence[str], minority: Sequence[str] = ()) -> set[Pair]:
    """Split sorted ``nodes`` into the first ``floor(n/2)`` and the rest (or ``minority``
    against the rest) and cut every pair across."""
    ordered = sorted(nodes)
    if len(ordered) < 2:
        raise ArgumentError(f"halves of {', '.join(ordered) or '(none)'}: expected at least "
                            "2 nodes")
    if minority:
        _within(minority, ordered, "minority")
        side = sorted(minority)
    else:
        side = ordered[:len(ordered) // 2]
    rest = [n for n in ordered if n not in side]
    if not rest:
        raise ArgumentError(f"minority {', '.join(side)} is every node; expected a proper "
                            "subset")
    return cut(side, rest)


def majorities_ring(nodes: Sequence[str]) -> set[Pair]:
    """Every node sees a majority and no two see the same one.

    The sorted nodes sit on a ring; each keeps its links to the ``k`` nearest on either
    side, ``k`` the smallest with ``2k + 1`` a majority, and the other pairs are cut. With
    3 nodes that window is the whole ring, so the ring is opened instead: the first and
    last are cut and the middle one, seeing both, bridges.
    """
    ordered = sorted(nodes)
    n = len(ordered)
    if n < 3:
        raise ArgumentError(f"majorities ring over {', '.join(ordered) or '(none)'}: expected "
                            "at least 3 nodes (with fewer, two nodes always see the same "
                            "majority)")
    if n == 3:
        return {pair(ordered[0], ordered[2])}
    majority = n // 2 + 1
    reach = majority // 2  # the smallest k with 2k + 1 >= majority
    pairs = set()
    for i in range(n):
        for j in range(i + 1, n):
            distance = min(j - i, n - (j - i))
            if distance > reach:
                pairs.add(pair(ordered[i], ordered[j]))
    return pairs


def bridge(node: str, nodes: Sequence[str]) -> set[Pair]:
    """Split the others (sorted) into two halves that only ``node`` connects."""
    _within([node], nodes, "node")
    others = sorted(n for n in nodes if n != node)
    if len(others) < 2:
        raise ArgumentError(f"bridge through {node} needs at least 2 other nodes; got "
                            f"{', '.join(others) or 'none'}")
    first = others[:len(others) // 2]
    return cut(first, others[len(others) // 2:])


def sees(pairs: Iterable[Pair], nodes: Sequence[str]) -> dict[str, list[str]]:
    """Which nodes each node still reaches directly (itself included) once ``pairs`` are cut."""
    cut_pairs = set(pairs)
    return {a: [b for b in nodes if a == b or pair(a, b) not in cut_pairs] for a in nodes}


def as_lists(pairs: Iterable[Pair]) -> list[list[str]]:
    """Pairs as sorted ``[a, b]`` lists, sorted (for the ledger and results)."""
    return sorted(sorted(p) for p in pairs)
