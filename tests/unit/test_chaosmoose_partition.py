"""The partition compiler and link selectors: pure functions, checked by their properties."""

from __future__ import annotations

import itertools

import pytest

from chaosmoose.network import _links, _partition
from chaosmoose.network._partition import ArgumentError, Topology, pair
from tests.unit.chaosmoose_fakes import lab_proxy_names

LAB = Topology(("master-1", "master-2", "master-3"),
               ("chunkserver-1", "chunkserver-2", "chunkserver-3"),
               ("client-1", "client-2", "client-3"))
MASTERS = list(LAB.masters)


def nodes(n: int) -> list[str]:
    return [f"n{i:02d}" for i in range(n)]


def connected_without(pairs: set, members: list[str], removed: str) -> list[set[str]]:
    """Components of the graph of ``members`` minus ``removed`` once ``pairs`` are cut."""
    left = [m for m in members if m != removed]
    components: list[set[str]] = []
    for node in left:
        if any(node in c for c in components):
            continue
        component, todo = {node}, [node]
        while todo:
            current = todo.pop()
            for other in left:
                if other not in component and pair(current, other) not in pairs:
                    component.add(other)
                    todo.append(other)
        components.append(component)
    return components


def test_isolate_cuts_the_node_from_every_other_one():
    assert _partition.isolate(["master-1"], MASTERS) == {pair("master-1", "master-2"),
                                                          pair("master-1", "master-3")}
    clients = LAB.expand("clients", "node")
    pairs = _partition.isolate(clients, LAB.expand("all", "nodes"))
    assert len(pairs) == 3 * 6 and not any(set(p) <= set(clients) for p in pairs)


def test_halves_split_sorted_nodes_first_floor_half_against_the_rest():
    assert _partition.halves(["master-3", "master-1", "master-2"]) == {
        pair("master-1", "master-2"), pair("master-1", "master-3")}
    four = nodes(4)
    assert _partition.sees(_partition.halves(four), four)["n00"] == ["n00", "n01"]
    assert _partition.halves(MASTERS, ["master-3"]) == {pair("master-3", "master-1"),
                                                         pair("master-3", "master-2")}


@pytest.mark.parametrize("n", range(3, 10))
def test_majorities_ring_every_node_sees_a_distinct_majority(n):
    members = nodes(n)
    pairs = _partition.majorities_ring(members)
    views = _partition.sees(pairs, members)
    assert all(len(view) > n // 2 for view in views.values()), views
    assert len({tuple(view) for view in views.values()}) == n, views
    for a, b in itertools.combinations(members, 2):  # links are undirected
        assert (b in views[a]) == (a in views[b])


def test_majorities_ring_of_three_masters_cuts_one_pair_and_the_middle_bridges():
    pairs = _partition.majorities_ring(["master-2", "master-3", "master-1"])
    assert pairs == {pair("master-1", "master-3")}
    assert _partition.sees(pairs, MASTERS)["master-2"] == MASTERS


@pytest.mark.parametrize("n", range(3, 9))
def test_bridge_leaves_two_halves_connected_only_through_the_bridge(n):
    members = nodes(n)
    middle = members[n // 2]
    pairs = _partition.bridge(middle, members)
    assert _partition.sees(pairs, members)[middle] == members
    halves = connected_without(pairs, members, middle)
    assert len(halves) == 2 and abs(len(halves[0]) - len(halves[1])) <= 1


def test_cut_takes_nodes_or_groups_on_each_side():
    leader_side = LAB.expand("master-1", "a")
    pairs = _partition.cut(leader_side, LAB.expand("chunkservers,client-1", "b"))
    assert len(pairs) == 4 and all("master-1" in p for p in pairs)
    assert _partition.cut(MASTERS, ["master-1"]) == {pair("master-1", "master-2"),
                                                     pair("master-1", "master-3")}


def test_roles_are_taken_from_the_resolution():
    assert LAB.expand("leader,clients", "node", {"leader": "master-2"}) == [
        "client-1", "client-2", "client-3", "master-2"]
    assert LAB.roles_in("leader", "masters", "follower, client-1") == ["leader", "follower"]
    with pytest.raises(ArgumentError, match="role 'leader' is not resolved"):
        LAB.expand("leader", "node")


@pytest.mark.parametrize("call, message", [
    (lambda: LAB.expand("master-9", "node"),
     ("node: unknown node 'master-9'; expected one of master-1, master-2, master-3, "
     "chunkserver-1")),
    (lambda: LAB.expand("", "nodes"), "nodes='' is empty"),
    (lambda: _partition.majorities_ring(["a", "b"]), "expected at least 3 nodes"),
    (lambda: _partition.isolate(["master-1"], ["master-1"]), "leaves no other node"),
    (lambda: _partition.isolate(["client-1"], MASTERS), "client-1 not among the partitioned"),
    (lambda: _partition.halves(MASTERS, MASTERS), "is every node"),
    (lambda: _partition.bridge("master-1", ["master-1", "master-2"]), "at least 2 other"),
    (lambda: _partition.cut(["a"], ["a"]), "cuts nothing"),
])
def test_bad_input_names_what_is_wrong_and_what_is_valid(call, message):
    with pytest.raises(ArgumentError, match=message.replace("(", r"\(")):
        call()


def test_unknown_node_error_lists_groups_and_roles_too():
    with pytest.raises(ArgumentError) as caught:
        LAB.expand(["client-1", "clients", "master-0"], "nodes")
    text = str(caught.value)
    assert "'master-0'" in text and "masters, chunkservers, clients, all" in text
    assert "leader, follower, random-follower" in text


def test_proxy_names_are_parsed_and_others_ignored():
    links = _links.links_of(["master-3>master-1:raft", "prometheus", "a>b", "x>x:cl",
                             "client-2>master-1:cl"])
    assert [(link.src, link.dst, link.kind) for link in links] == [
        ("client-2", "master-1", "cl"), ("master-3", "master-1", "raft")]


@pytest.mark.parametrize("selector, expected", [
    ("client-2>masters", {f"client-2>master-{i}:{k}" for i in (1, 2, 3) for k in ("api", "cl")}),
    ("client-2>master-1:cl", {"client-2>master-1:cl"}),
    ("master-1>*", {f"master-1>master-{i}:{k}" for i in (2, 3) for k in ("api", "ml", "cl")}),
    ("master-1<>master-2:raft", {"master-2>master-1:raft"}),
    ("masters<>masters:raft", {"master-2>master-1:raft", "master-3>master-1:raft",
                               "master-3>master-2:raft"}),
    ("*>master-2:cs", {f"chunkserver-{i}>master-2:cs" for i in (1, 2, 3)}),
    ("chunkserver-3>master-2:cs, client-1>master-3:api",
     {"chunkserver-3>master-2:cs", "client-1>master-3:api"}),
    (["leader>follower:ml"], {"master-1>master-3:ml"}),
])
def test_link_selectors_pick_proxies(selector, expected):
    links = _links.links_of(lab_proxy_names())
    chosen = _links.match(_links.parse_selector(selector, LAB), links, LAB,
                          {"leader": "master-1", "follower": "master-3"})
    assert {link.proxy for link in chosen} == expected


def test_star_picks_every_link_and_pairs_pick_both_directions():
    links = _links.links_of(lab_proxy_names())
    assert len(_links.match(_links.parse_selector("*", LAB), links, LAB)) == len(links)
    between = _links.between({pair("master-1", "master-2")}, links)
    assert {link.proxy for link in between} == {
        "master-2>master-1:raft", *(f"master-1>master-2:{k}" for k in ("api", "ml", "cl")),
        *(f"master-2>master-1:{k}" for k in ("api", "ml", "cl"))}


@pytest.mark.parametrize("selector, message", [
    ("client-9>masters", "link 'client-9>masters': unknown node 'client-9'"),
    ("master-1", "link 'master-1' is invalid; expected src>dst"),
    ("master-1>", "is invalid"),
    ("a>b>c", "is invalid"),
    ("master-1>master-2:", "is invalid"),
    (42, "link=42 is invalid"),
])
def test_bad_selectors_are_refused(selector, message):
    with pytest.raises(ArgumentError, match=message):
        _links.parse_selector(selector, LAB)


def test_a_selector_item_that_matches_nothing_fails_naming_it():
    links = _links.links_of(lab_proxy_names())
    with pytest.raises(ArgumentError, match=r"link 'client-1>clients' matches none of the "
                                            r"\d+ proxied links"):
        _links.match(_links.parse_selector("client-1>masters,client-1>clients", LAB), links,
                     LAB)
