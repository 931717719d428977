"""Links of the cluster, read from proxy names, and link selectors (pure functions).

Every link passes through its own proxy named ``<src>><dst>:<kind>`` (``client-2>master-1:cl``:
client-2 dials master-1's client port). The proxy list is read from the server, never
written down here; a name that does not parse is ignored.

A link selector is one or more items separated by commas (or a list of items):

- ``src>dst`` or ``src>dst:kind``: links dialed by ``src`` towards ``dst``;
- ``a<>b`` or ``a<>b:kind``: links between ``a`` and ``b`` in either direction;
- ``*``: every link.

Each side is a node, a group (``masters``, ``chunkservers``, ``clients``, ``all``), a role
resolved at run time (``leader``, ``follower``, ``random-follower``) or ``*``; ``kind`` is
a link kind (``raft``, ``api``, ``ml``, ``cs``, ``cl``, ...) or ``*``. A proxy name is a
selector of exactly that proxy. Examples: ``client-2>masters``, ``master-1>*``,
``leader<>follower:raft``, ``chunkserver-3>master-2:cs``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from chaosmoose.network._partition import ROLES, ArgumentError, Pair, Topology, pair

__all__: list[str] = []  # not an activity module

NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
PROXY_NAME = re.compile(rf"^(?P<src>{NAME})>(?P<dst>{NAME}):(?P<kind>{NAME})$")
KIND = re.compile(rf"^(?:{NAME}|\*)$")
SYNTAX = "expected src>dst[:kind], a<>b[:kind] or * (sides: node, group, role or *)"


@dataclass(frozen=True, order=True)
class Link:
    """One proxied link: the proxy's name, who dials, who is dialed, what flows."""

    proxy: str
    src: str
    dst: str
    kind: str

    @property
    def pair(self) -> Pair:
        """The undirected node pair the link joins."""
        return pair(self.src, self.dst)


def parse_proxy_name(name: str) -> Link | None:
    """``master-2>master-1:ml`` into a Link; None when the name does not follow the scheme."""
    match = PROXY_NAME.match(name)
    if match is None or match["src"] == match["dst"]:
        return None
    return Link(name, match["src"], match["dst"], match["kind"])


def links_of(names: Iterable[str]) -> list[Link]:
    """The links among proxy ``names`` (names that do not parse are left out), sorted."""
    return sorted(link for link in map(parse_proxy_name, names) if link is not None)


@dataclass(frozen=True)
class Selector:
    """One item of a link selector."""

    text: str
    src: str
    dst: str
    kind: str
    either_way: bool


def _items(link: str | Iterable[str]) -> list[str]:
    if isinstance(link, str):
        items = [item.strip() for item in link.split(",")]
    elif isinstance(link, (list, tuple)):
        items = [str(item).strip() for item in link]
    else:
        raise ArgumentError(f"link={link!r} is invalid; {SYNTAX}")
    items = [item for item in items if item]
    if not items:
        raise ArgumentError(f"link={link!r} is empty; {SYNTAX}")
    return items


def parse_selector(link: str | Iterable[str], topology: Topology,
                   argument: str = "link") -> list[Selector]:
    """Parse and check a link selector; unknown nodes or bad syntax raise ArgumentError."""
    selectors = []
    for item in _items(link):
        if item == "*":
            selectors.append(Selector(item, "*", "*", "*", False))
            continue
        body, colon, kind = item.rpartition(":")
        if not colon:
            body, kind = item, "*"
        either_way = "<>" in body
        src, sep, dst = body.partition("<>" if either_way else ">")
        src, dst = src.strip(), dst.strip()
        if not sep or not src or not dst or any(c in src + dst for c in "<>") \
                or not KIND.match(kind):
            raise ArgumentError(f"{argument} {item!r} is invalid; {SYNTAX}")
        for side in (src, dst):
            if side != "*":
                topology.check_token(side, f"{argument} {item!r}")
        selectors.append(Selector(item, src, dst, kind, either_way))
    return selectors


def roles_in(selectors: Iterable[Selector]) -> list[str]:
    """The roles the selectors name (to resolve at run time)."""
    named = {side for s in selectors for side in (s.src, s.dst)}
    return [role for role in ROLES if role in named]


def match(selectors: Iterable[Selector], links: Iterable[Link], topology: Topology,
          roles: Mapping[str, str] | None = None) -> list[Link]:
    """The links the selectors pick, sorted; an item that picks none raises ArgumentError."""
    links = list(links)
    chosen: set[Link] = set()
    for selector in selectors:
        srcs = None if selector.src == "*" else set(
            topology.expand(selector.src, f"link {selector.text!r}", roles))
        dsts = None if selector.dst == "*" else set(
            topology.expand(selector.dst, f"link {selector.text!r}", roles))

        def fits(nodes: set[str] | None, node: str) -> bool:
            return nodes is None or node in nodes

        picked = [
            link for link in links
            if selector.kind in ("*", link.kind)
            and ((fits(srcs, link.src) and fits(dsts, link.dst))
                 or (selector.either_way and fits(srcs, link.dst) and fits(dsts, link.src)))
        ]
        if not picked:
            resolved = ""
            if roles and any(side in roles for side in (selector.src, selector.dst)):
                resolved = " (" + ", ".join(f"{r}={n}" for r, n in roles.items()) + ")"
            example = f"; proxies are named like {links[0].proxy}" if links else ""
            raise ArgumentError(f"link {selector.text!r}{resolved} matches none of the "
                                f"{len(links)} proxied links{example}; expected at least one")
        chosen.update(picked)
    return sorted(chosen)


def between(pairs: Iterable[Pair], links: Iterable[Link]) -> list[Link]:
    """The links joining any of the undirected ``pairs`` (both directions, every kind)."""
    wanted = set(pairs)
    return sorted(link for link in links if link.pair in wanted)
