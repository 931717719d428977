"""The leader-overlap checker (pure) and the no_leader_overlap probe (faked agent APIs)."""

import json
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosmoose.ledger import Ledger
from chaosmoose.master import overlap, probes
from chaosmoose.workload import _clients
from chaosmoose.workload.checker import UNKNOWN
from tests.unit import chaosmoose_fakes as fakes
from tests.unit.chaosmoose_fakes import MASTERS, status_body

config = fakes.config  # fixture


def epoch(node, number, served, freezes=(), fenced=None, stepped=None, reason=None):
    """A folded serving-history entry as /status lists it."""
    return {"epoch": number, "node": node, "served_from": served,
            "freezes": [{"frozen_at": f, "thawed_at": t} for f, t in freezes],
            "fenced_at": fenced, "stepped_down_at": stepped, "reason": reason}


def write(client, seq, invoked, acked=None, late_ok=None, f="write-file"):
    """A client's records for one write: invoke, then ok (or info, then a late ok)."""
    records = [{"t": invoked, "type": "invoke", "f": f, "seq": seq, "client": client,
                "path": f"files/{client}/{seq:08d}.dat"}]
    if acked is not None:
        records.append({"t": acked, "type": "ok", "f": f, "seq": seq, "client": client})
    if late_ok is not None:
        records.append({"t": invoked + 5, "type": "info", "f": f, "seq": seq, "client": client})
        records.append({"t": late_ok, "type": "info", "f": f, "seq": seq, "client": client,
                        "late": True, "late_outcome": "ok"})
    return records


# --------------------------------------------------------------------- the pure checker


def test_a_clean_handover_has_no_overlap_and_reports_the_gap():
    serving = {"master-1": [epoch("master-1", 3, 100.0, stepped=110.0)],
               "master-2": [epoch("master-2", 4, 111.0)], "master-3": []}
    result = overlap.check(serving, now=120.0, since=95.0)
    assert result["valid"] is True and result["overlaps"] == 0
    (change,) = result["leader_changes"]
    assert change["old"] == {"node": "master-1", "epoch": 3}
    assert change["new"] == {"node": "master-2", "epoch": 4}
    assert change["old_stopped_by"] == "stepped_down" and change["gap_s"] == 1.0
    assert result["epochs"][1]["stopped_by"] == "open"


def test_frozen_then_fenced_old_leader_whose_freeze_precedes_the_new_one_does_not_overlap():
    old = {**epoch("master-1", 3, 100.0, freezes=[(110.4, None)], fenced=111.5),
           "diverged_changes": 0}
    serving = {"master-1": [old], "master-2": [epoch("master-2", 4, 111.0)], "master-3": []}
    ops = {"client-1": write("client-1", 1, 110.9, acked=111.3)}
    result = overlap.check(serving, ops, now=120.0, since=95.0)
    assert result["valid"] is True and result["overlaps"] == 0
    assert result["acknowledged_in_overlaps"] == 0
    (change,) = result["leader_changes"]
    assert (change["old_stopped_at"], change["old_stopped_by"]) == (110.4, "frozen")
    assert change["old_frozen_at"] == 110.4 and change["old_fenced_at"] == 111.5
    assert change["new_served_from"] == 111.0 and change["gap_s"] == pytest.approx(0.6)
    assert change["old_diverged_changes"] == 0


def test_an_old_leader_fenced_after_the_new_one_served_overlaps():
    serving = {"master-1": [epoch("master-1", 3, 100.0, fenced=112.0)],
               "master-2": [epoch("master-2", 4, 111.0)], "master-3": []}
    result = overlap.check(serving, now=120.0, since=95.0)
    assert result["valid"] is False
    assert result["overlaps"] == 1 and result["overlap_s"] == 1.0
    (detail,) = result["details"]
    assert detail["old"]["node"] == "master-1" and detail["new"]["node"] == "master-2"
    assert (detail["from"], detail["to"]) == (111.0, 112.0)
    assert result["acknowledged_in_overlaps"] == 0 and result["operations"] is None
    assert result["leader_changes"][0]["gap_s"] == -1.0


def test_acknowledged_writes_inside_an_overlap_are_reported():
    serving = {"master-1": [epoch("master-1", 3, 100.0, fenced=112.0)],
               "master-2": [epoch("master-2", 4, 111.0)], "master-3": []}
    ops = {"client-1": write("client-1", 1, 109.0, acked=110.0)          # before: not inside
                       + write("client-1", 2, 110.8, acked=111.2)        # straddles the start
                       + write("client-1", 3, 111.4, acked=111.6, f="append"),
           "client-2": write("client-2", 1, 105.0, late_ok=113.0)        # late ok spans it
                       + write("client-2", 2, 111.5)                     # never acknowledged
                       + write("client-2", 3, 112.5, acked=112.6)}       # after: not inside
    result = overlap.check(serving, ops, now=120.0, since=95.0)
    assert result["valid"] is False and result["acknowledged_in_overlaps"] == 3
    inside = {(o["client"], o["seq"]) for o in result["details"][0]["operations"]}
    assert inside == {("client-1", 2), ("client-1", 3), ("client-2", 1)}
    assert [o["late"] for o in result["details"][0]["operations"]
            if o["client"] == "client-2"] == [True]
    assert result["operations"] == {"clients": 2, "acknowledged": 5}


def test_thaw_intervals_serve_again_and_can_overlap():
    thawed = epoch("master-1", 3, 100.0, freezes=[(105.0, 106.0), (110.0, None)], fenced=112.0)
    assert [(i.start, i.end, i.ended_by) for i in overlap.serving_intervals(thawed, 120.0)] == \
        [(100.0, 105.0, "frozen"), (106.0, 110.0, "frozen")]
    result = overlap.check({"master-1": [thawed], "master-2": [epoch("master-2", 4, 107.0)]},
                           now=120.0, since=95.0)
    assert result["overlaps"] == 1 and result["details"][0]["from"] == 107.0
    assert result["details"][0]["to"] == 110.0
    result = overlap.check({"master-1": [thawed], "master-2": [epoch("master-2", 4, 111.0)]},
                           now=120.0, since=95.0)
    assert result["valid"] is True  # frozen from 110 on, fenced while frozen


def test_a_thaw_before_the_new_leader_and_a_freeze_after_it_overlap():
    thawed = epoch("master-1", 3, 100.0, freezes=[(105.0, 108.0), (111.5, None)], fenced=113.0)
    result = overlap.check({"master-1": [thawed], "master-2": [epoch("master-2", 4, 111.0)]},
                           now=120.0, since=95.0)
    assert result["valid"] is False and result["overlap_s"] == 0.5


def test_open_epochs_serve_until_now():
    serving = {"master-1": [epoch("master-1", 3, 100.0)],
               "master-2": [epoch("master-2", 4, 110.0)]}
    result = overlap.check(serving, now=120.0, since=95.0)
    assert result["valid"] is False and result["overlap_s"] == 10.0
    assert result["details"][0]["old"]["ended_by"] == "open"
    frozen_now = {"master-1": [epoch("master-1", 3, 100.0, freezes=[(109.0, None)])],
                  "master-2": [epoch("master-2", 4, 110.0)]}
    result = overlap.check(frozen_now, now=120.0, since=95.0)
    assert result["valid"] is True
    assert result["leader_changes"][0]["old_stopped_by"] == "frozen"


def test_one_epoch_number_on_two_nodes_is_an_overlap():
    serving = {"master-1": [epoch("master-1", 4, 100.0, stepped=105.0)],
               "master-2": [epoch("master-2", 4, 104.0, stepped=106.0)]}
    assert overlap.check(serving, now=120.0, since=95.0)["overlaps"] == 1


def test_only_the_window_is_judged():
    serving = {"master-1": [epoch("master-1", 3, 10.0, fenced=22.0),
                            epoch("master-1", 5, 30.0, stepped=40.0)],
               "master-2": [epoch("master-2", 4, 20.0, stepped=29.0),
                            epoch("master-2", 6, 41.0)]}
    old = overlap.check(serving, now=50.0, since=5.0)
    assert old["overlaps"] == 1
    recent = overlap.check(serving, now=50.0, since=25.0)
    assert recent["valid"] is True and recent["overlaps"] == 0
    assert [e["epoch"] for e in recent["epochs"]] == [4, 5, 6]
    assert [c["new"]["epoch"] for c in recent["leader_changes"]] == [5, 6]


def test_a_missing_master_known_to_have_served_gives_unknown_with_negative_counts():
    serving = {"master-1": [epoch("master-1", 3, 100.0, stepped=110.0)],
               "master-2": [epoch("master-2", 4, 111.0)],
               "master-3": "master-3 API at http://127.0.0.1:9433 unreachable: connection refused"}
    result = overlap.check(serving, now=120.0, since=95.0, may_have_served=["master-3"])
    assert result["valid"] == UNKNOWN
    assert result["overlaps"] == -1 and result["acknowledged_in_overlaps"] == -1
    assert result["overlaps_seen"] == 0
    assert "master-3 has no history" in result["unknown_because"][0]
    assert result["masters"]["master-3"] == "missing"


def test_a_missing_master_with_every_epoch_accounted_for_does_not_block_the_verdict():
    serving = {"master-1": [epoch("master-1", 3, 100.0, stepped=110.0)],
               "master-2": [epoch("master-2", 4, 111.0)], "master-3": "unreachable"}
    result = overlap.check(serving, now=120.0, since=105.0, lease_epoch=4)
    assert result["valid"] is True and result["missing"] == {"master-3": "unreachable"}


def test_a_missing_master_with_an_unaccounted_epoch_or_an_uncovered_start_gives_unknown():
    serving = {"master-1": [epoch("master-1", 3, 100.0, stepped=110.0)],
               "master-2": [epoch("master-2", 5, 111.0)], "master-3": "unreachable"}
    result = overlap.check(serving, now=120.0, since=105.0)
    assert result["valid"] == UNKNOWN and result["unaccounted_epochs"] == [4]
    assert "lease epochs 4 are served by no other master" in result["unknown_because"][0]
    serving["master-2"] = [epoch("master-2", 4, 111.0)]
    result = overlap.check(serving, now=120.0, since=105.0, lease_epoch=6)
    assert result["valid"] == UNKNOWN and result["unaccounted_epochs"] == [5, 6]
    assert overlap.check(serving, now=120.0, since=105.0)["valid"] is True
    assert overlap.check(serving, now=120.0, since=95.0)["valid"] == UNKNOWN  # before epoch 3


def test_false_beats_unknown():
    serving = {"master-1": [epoch("master-1", 3, 100.0, fenced=112.0)],
               "master-2": [epoch("master-2", 4, 111.0)], "master-3": "unreachable"}
    result = overlap.check(serving, now=120.0, since=95.0, may_have_served=["master-3"])
    assert result["valid"] is False and result["overlaps"] == 1


def test_a_crashing_checker_gives_unknown():
    result = overlap.check({"master-1": [{"epoch": "three", "served_from": 1.0}]}, now=2.0)
    assert result["valid"] == UNKNOWN and result["overlaps"] == -1
    assert "checker crashed" in result["error"]


# --------------------------------------------------------------------------- the probe


def mock_status(requests_mock, histories, holder="master-2", epoch_now=4, down=()):
    import requests

    for name, url in MASTERS.items():
        if name in down:
            requests_mock.get(url + "/status",
                              exc=requests.exceptions.ConnectionError("Connection refused"))
            continue
        body = status_body(name, "leader" if name == holder else "follower", holder, epoch_now)
        body["serving_history"] = histories.get(name, [])
        requests_mock.get(url + "/status", json=body)


def open_run(config, at):
    """A ledger entry of this run at time ``at`` (the run's start)."""
    ledger = Ledger(config["chaosmoose_run_dir"])
    fault = ledger.open("container.kill", {"service": "master-1"}, "run-1")
    records = [json.loads(line) for line in ledger.path.read_text().splitlines()]
    records[0]["t"] = at
    ledger.path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return fault


def test_probe_before_anything_in_the_run_is_vacuously_valid(requests_mock, config):
    mock_status(requests_mock, {"master-1": [epoch("master-1", 3, 100.0, fenced=112.0)],
                                "master-2": [epoch("master-2", 4, 111.0)]})
    result = probes.no_leader_overlap(configuration=config)
    assert result["valid"] is True and result["overlaps"] == 0 and "note" in result


def test_probe_reports_an_overlap_in_the_run_window_and_saves_it(requests_mock, config):
    open_run(config, 105.0)
    mock_status(requests_mock, {"master-1": [epoch("master-1", 3, 100.0, fenced=112.0)],
                                "master-2": [epoch("master-2", 4, 111.0)]})
    with pytest.raises(ActivityFailed, match=r"1 leader overlaps \(1.000 s in all; first: "
                                             r"master-1 epoch 3 served 1.000 s after master-2"):
        probes.no_leader_overlap(configuration=config)
    result = probes.no_leader_overlap(raise_on_overlap=False, configuration=config)
    assert result["valid"] is False and result["overlaps"] == 1
    assert result["window"]["from"] == 105.0
    assert result["window"]["source"] == "the run's first ledger entry"
    saved = json.loads((Path(config["chaosmoose_run_dir"]) / "leader-overlap.json")
                       .read_text())
    assert saved["overlaps"] == 1 and saved["run"] == "run-1"


def test_probe_reads_the_stopped_workload_histories(requests_mock, config):
    state = {"run": "run-1", "data_rel": "chaosmoose/run-1", "stopped": True,
             "clients": {"client-1": {"container": "id-client-1", "state_dir": "/tmp/x"}}}
    _clients.save_state(state, config, None)
    folder = _clients.state_file(config, None).parent
    records = ([{"t": 104.0, "type": "start", "f": "workload", "client": "client-1"}]
               + write("client-1", 1, 111.2, acked=111.4))
    (folder / "client-1.history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    mock_status(requests_mock, {"master-1": [epoch("master-1", 3, 100.0, fenced=112.0)],
                                "master-2": [epoch("master-2", 4, 111.0)]})
    result = probes.no_leader_overlap(raise_on_overlap=False, configuration=config)
    assert result["window"]["source"] == "the workload's start"
    assert result["acknowledged_in_overlaps"] == 1


def test_probe_is_unknown_when_the_lease_holder_cannot_be_read(requests_mock, config):
    open_run(config, 105.0)
    mock_status(requests_mock, {"master-1": [epoch("master-1", 3, 100.0, stepped=110.0)],
                                "master-3": []}, holder="master-2", down=("master-2",))
    result = probes.no_leader_overlap(configuration=config)
    assert result["valid"] == UNKNOWN and result["overlaps"] == -1
    assert "master-2 has no history" in result["unknown_because"][0]
    with pytest.raises(ActivityFailed, match="leader overlap verdict unknown: master-2"):
        probes.no_leader_overlap(raise_on_unknown=True, configuration=config)


def test_probe_counts_an_agent_without_serving_history_as_missing(requests_mock, config):
    mock_status(requests_mock, {"master-1": [epoch("master-1", 3, 100.0)]}, holder="master-1",
                epoch_now=3)
    body = status_body("master-3", "follower", "master-1", 3)  # no serving_history
    requests_mock.get(MASTERS["master-3"] + "/status", json=body)
    result = probes.no_leader_overlap(since=101.0, configuration=config)
    assert result["valid"] is True  # epoch 3 covers the window and is the lease epoch
    assert "without a serving_history list" in result["missing"]["master-3"]
    assert result["window"]["source"] == "the since argument"
