"""The blast-radius guard: no fault may take more masters or chunkservers down at once than
the settings allow, counting what every run's ledger holds open."""

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosmoose.chunkserver import actions as cs_actions
from chaosmoose.ledger import Ledger
from chaosmoose.master import actions as master_actions
from tests.unit import chaosmoose_fakes as fakes
from tests.unit.chaosmoose_fakes import mock_masters

config = fakes.config  # fixture
fake_docker = fakes.fake_docker  # fixture


def test_a_second_master_down_is_refused_before_it_is_recorded(requests_mock, config,
                                                              fake_docker):
    mock_masters(requests_mock, leader="master-1")
    master_actions.kill_master(target="master-1", configuration=config)
    mock_masters(requests_mock, leader="master-2", down=("master-1",))
    with pytest.raises(ActivityFailed, match=(
            r"^blast radius: container.pause on master-2 would leave 2 masters down at once "
            r"\(master-1, master-2; already down: master-1 by container.kill on master-1 "
            r"\(run dir .*run, run run-1, since .*\)\); expected at most 1 "
            r"\(max_masters_down\): raise max_masters_down")):
        master_actions.pause_master(target="leader", configuration=config)
    fake_docker.containers["master-2"].pause.assert_not_called()
    assert [f["target"]["service"] for f in Ledger(config["chaosmoose_run_dir"]).faults()] \
        == ["master-1"]
    # an experiment that means to break quorum says so
    master_actions.pause_master(target="leader",
                                configuration={**config, "max_masters_down": 2})
    fake_docker.containers["master-2"].pause.assert_called_once()


def test_chunkservers_down_count_faults_open_in_other_runs(config, fake_docker, monkeypatch):
    monkeypatch.chdir(config["chaosmoose_run_dir"].rsplit("/", 1)[0])
    Ledger("runs/chunkserver-loss-20261129T0600Z").open(
        "container.kill", {"project": "mooseng", "service": "chunkserver-3",
                           "container": "id-chunkserver-3"}, "killed-run")
    with pytest.raises(ActivityFailed, match=(
            r"would leave 2 chunkservers down at once \(chunkserver-1, chunkserver-3; "
            r"already down: chunkserver-3 by container.kill on chunkserver-3 \(run dir "
            r"runs/chunkserver-loss-20261129T0600Z, run killed-run")):
        cs_actions.kill_chunkserver(target="chunkserver-1", configuration=config)
    fake_docker.containers["chunkserver-1"].kill.assert_not_called()
    # a fault that takes nothing down is not limited; the same service again is not a second
    cs_actions.kill_chunkserver(target="chunkserver-1",
                                configuration={**config, "max_chunkservers_down": "2"})
    with pytest.raises(ActivityFailed, match="max_chunkservers_down='lots' is invalid"):
        cs_actions.kill_chunkserver(target="chunkserver-2",
                                    configuration={**config, "max_chunkservers_down": "lots"})


def test_masters_a_partition_cut_off_count_as_down(requests_mock, config, fake_docker):
    Ledger(config["chaosmoose_run_dir"]).open(
        "network.partition", {"service": "isolate master-1", "url": "http://x", "toxics": []},
        "run-1", cut_off=[{"service": "master-1", "role": "leader"}])
    mock_masters(requests_mock, leader="master-2")
    with pytest.raises(ActivityFailed, match="would leave 2 masters down at once "
                                             r"\(master-1, master-2; already down: master-1 "
                                             "by network.partition"):
        master_actions.kill_master(target="leader", configuration=config)
    # a chunkserver is another group
    cs_actions.kill_chunkserver(target="chunkserver-1", configuration=config)


def test_cutting_two_masters_apart_cuts_off_nobody():
    """A cut between master-1 and master-3 leaves each with master-2: a majority."""
    from chaosmoose.network import _partition
    from chaosmoose.network.actions import _cut_off_masters

    masters = ("master-1", "master-2", "master-3")
    pairs = {_partition.pair("master-1", "master-3")}
    assert _cut_off_masters(pairs, ["master-1", "master-3"], masters, {}) == []


@pytest.mark.parametrize("bad", [
    {"target": {"service": ["master-2"]}},
    {"target": {"service": "isolate"}, "cut_off": 5},
    {"target": {"service": "isolate"}, "cut_off": [{"service": ["master-2"]}]},
])
def test_a_malformed_open_record_in_any_ledger_never_blocks_faults_or_cleanup(
        bad, requests_mock, config, fake_docker, monkeypatch, caplog):
    """One bad record is skipped and named; the guard and cleanup go on without it."""
    import json

    from chaosmoose import _faults

    monkeypatch.chdir(config["chaosmoose_run_dir"].rsplit("/", 1)[0])
    other = Ledger("runs/hand-edited")
    other.run_dir.mkdir(parents=True)
    other.path.write_text(json.dumps({"event": "open", "id": "bad1", "kind": "container.kill",
                                      "run": "r0", **bad}) + "\n")
    mock_masters(requests_mock, leader="master-1")
    master_actions.kill_master(target="master-1", configuration=config)
    fake_docker.containers["master-1"].kill.assert_called_once()
    assert "runs/hand-edited/faults.jsonl line 1 (open bad1)" in caplog.text
    assert [r["undone"] for r in _faults.undo_open(other)] == []
    assert other.problems and "(open bad1)" in other.problems[0]
