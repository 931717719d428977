"""The crash window: which lost writes a kill or pause of the leader can explain."""

from __future__ import annotations

from chaosmoose.workload import lossbound

KINDS = ("container.kill", "container.pause")
KILL = {"id": "k1", "kind": "container.kill", "role": "leader", "t": 100.0,
        "applied_t": 100.4, "target": {"service": "master-3"}}


def op(invoked: float, acked: float, seq: int = 1) -> dict:
    return {"client": "client-1", "seq": seq, "f": "append", "invoked_t": invoked,
            "acked_t": acked}


def test_a_write_acknowledged_while_the_kill_was_on_its_way_is_inside():
    """The CI case: invoked 15 ms, acknowledged 27 ms after the kill began, lost."""
    result = lossbound.judge_crashes([KILL], KINDS, [op(100.015, 100.027)])
    assert result["valid"] is True and result["outside"] == 0 and result["lost"] == 1
    (window,) = result["windows"]
    assert window["leader"] == "master-3" and window["window_s"] == 0.4


def test_writes_well_before_the_kill_or_invoked_after_it_are_outside():
    early = op(99.0, 99.01, seq=1)                      # long acknowledged: had reached followers
    late = op(100.5, 103.0, seq=2)                      # invoked once the leader was dead
    just_before = op(99.9, 100.0 - lossbound.IN_FLIGHT_S + 0.01, seq=3)  # in flight
    result = lossbound.judge_crashes([KILL], KINDS, [early, late, just_before])
    assert result["valid"] is False and result["outside"] == 2
    assert {o["seq"] for o in result["outside_ops"]} == {1, 2}
    assert "outside every crash window (1 crashes" in result["problems"][0]


def test_only_applied_faults_of_the_leader_and_of_the_given_kinds_open_a_window():
    follower = {**KILL, "id": "f", "role": "follower"}
    unapplied = {**KILL, "id": "u", "applied_t": None}
    partition = {**KILL, "id": "p", "kind": "network.partition"}
    assert lossbound.crash_windows([follower, unapplied, partition], KINDS) == []
    result = lossbound.judge_crashes([follower], KINDS, [op(100.015, 100.027)])
    assert result["outside"] == 1  # no crash of the leader explains a lost write


def test_no_loss_is_valid_with_or_without_a_crash():
    assert lossbound.judge_crashes([], KINDS, [])["valid"] is True
    assert lossbound.judge_crashes([KILL], KINDS, [])["valid"] is True
