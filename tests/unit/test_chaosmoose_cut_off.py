"""Masters a partition leaves without a majority count as faulted for the master probes."""

from __future__ import annotations

from chaosmoose.ledger import Ledger
from chaosmoose.master import _cluster
from chaosmoose.network import _partition
from chaosmoose.network.actions import _cut_off_masters

MASTERS = ("master-1", "master-2", "master-3")


def _pairs(*cuts: tuple[str, str]) -> set:
    return {_partition.pair(a, b) for a, b in cuts}


def test_an_isolated_leader_is_cut_off_with_its_role():
    pairs = _pairs(("master-1", "master-2"), ("master-1", "master-3"))
    cut = _cut_off_masters(pairs, list(MASTERS), MASTERS, {"leader": "master-1"})
    assert cut == [{"service": "master-1", "role": "leader"}]


def test_a_ring_cuts_nobody_off_and_a_raft_free_client_cut_neither():
    ring = _pairs(("master-1", "master-3"))
    assert _cut_off_masters(ring, list(MASTERS), MASTERS, {}) == []
    client_cut = _pairs(("client-1", "master-1"), ("client-1", "master-2"))
    assert _cut_off_masters(client_cut, ["client-1", *MASTERS], MASTERS, {}) == []


def test_faulted_masters_lists_cut_off_masters_except_for_container_rollbacks(tmp_path):
    config = {"chaosmoose_run_dir": str(tmp_path), "chaosmoose_run_id": "r1"}
    ledger = Ledger(tmp_path)
    ledger.open("network.partition", {"service": "isolate master-1~master-2, master-1~master-3"},
                "r1", cut_off=[{"service": "master-1", "role": "leader"}])
    ledger.open("container.kill", {"service": "master-2"}, "r1", role="follower")
    found = _cluster.faulted_masters(config)
    assert [(f["target"]["service"], f.get("role")) for f in found] == [
        ("master-1", "leader"), ("master-2", "follower")]
    only_containers = _cluster.faulted_masters(config, cut_off=False)
    assert [f["target"]["service"] for f in only_containers] == ["master-2"]


def test_partition_kinds_are_checked_before_anything_happens():
    from chaosmoose.network import _plan
    from chaosmoose.network._partition import ArgumentError

    assert _plan.link_kinds_of("") == ()
    assert _plan.link_kinds_of("raft, ml") == ("raft", "ml")
    assert _plan.link_kinds_of(["raft"]) == ("raft",)
    for bad in ("smoke", "raft,smoke", 7):
        try:
            _plan.link_kinds_of(bad)
        except ArgumentError as exc:
            assert "kinds=" in str(exc)
        else:
            raise AssertionError(f"kinds={bad!r} accepted")
