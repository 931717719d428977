"""Master probes and actions against faked agent APIs (requests_mock) and Docker (autospec)."""

import re

import pytest
import requests
from chaoslib.exceptions import ActivityFailed

from chaosmoose.ledger import Ledger
from chaosmoose.master import actions, probes
from tests.unit import chaosmoose_fakes as fakes
from tests.unit.chaosmoose_fakes import MASTERS, mock_masters

config = fakes.config  # fixture
fake_docker = fakes.fake_docker  # fixture



def ledger_of(config):
    return Ledger(config["chaosmoose_run_dir"])


def test_leader_is_the_one_serving_master(requests_mock, config):
    mock_masters(requests_mock, leader="master-2", epoch=5)
    assert probes.leader(configuration=config) == {"name": "master-2", "epoch": 5,
                                                   "url": MASTERS["master-2"]}
    assert probes.leader_name(configuration=config) == "master-2"


def test_no_leader_raises_or_returns_none(requests_mock, config):
    mock_masters(requests_mock, leader=None)
    with pytest.raises(ActivityFailed, match="no master answers 200 on /leader"):
        probes.leader(configuration=config)
    assert probes.leader(raise_on_no_leader=False, configuration=config)["name"] is None


def test_two_serving_masters_is_never_a_leader(requests_mock, config):
    mock_masters(requests_mock, roles={"master-1": "leader", "master-3": "leader"})
    with pytest.raises(ActivityFailed, match="2 masters answer 200 on /leader"):
        probes.leader(configuration=config)


def test_unreachable_master_message_names_it_and_its_url(requests_mock, config):
    mock_masters(requests_mock, down=("master-2",))
    with pytest.raises(ActivityFailed) as info:
        probes.node_role("master-2", configuration=config)
    assert str(info.value) == ("master-2 API at http://127.0.0.1:9432 unreachable: "
                               "connection refused")


def test_timeout_message(requests_mock, config):
    requests_mock.get(MASTERS["master-1"] + "/status", exc=requests.exceptions.ConnectTimeout)
    with pytest.raises(ActivityFailed, match=r"master-1 API at .* no answer within 0.5 s"):
        probes.node_role("master-1", configuration=config)


def test_node_role_rejects_unknown_names(config):
    with pytest.raises(ActivityFailed, match="'master-9' is not configured"):
        probes.node_role("master-9", configuration=config)


def test_agreement(requests_mock, config):
    mock_masters(requests_mock)
    assert probes.masters_agree_on_leader(configuration=config) is True
    requests_mock.get(MASTERS["master-3"] + "/status", json={
        "node": "master-3", "role": "follower", "lease": {"holder": "master-3"}})
    with pytest.raises(ActivityFailed, match="master-3 says master-3"):
        probes.masters_agree_on_leader(configuration=config)
    assert probes.masters_agree_on_leader(raise_on_disagreement=False,
                                          configuration=config) is False


def test_agreement_tolerates_one_unreachable_master_but_not_two(requests_mock, config):
    mock_masters(requests_mock, down=("master-3",))
    assert probes.masters_agree_on_leader(configuration=config) is True
    mock_masters(requests_mock, down=("master-2", "master-3"))
    with pytest.raises(ActivityFailed, match="only 1 masters reachable"):
        probes.masters_agree_on_leader(configuration=config)


def test_quorum_needs_a_majority(requests_mock, config):
    mock_masters(requests_mock, down=("master-3",))
    assert probes.has_quorum(configuration=config) is True
    mock_masters(requests_mock, down=("master-2", "master-3"))
    with pytest.raises(ActivityFailed, match="1 of 3 masters report Raft quorum.*at least 2"):
        probes.has_quorum(configuration=config)


def test_cluster_healthy_checks_chunkserver_count_and_matrix(requests_mock, config):
    mock_masters(requests_mock)
    assert probes.cluster_healthy(configuration=config) is True
    with pytest.raises(ActivityFailed, match="3 chunkservers connected to master-1 but "
                                             "expected 4"):
        probes.cluster_healthy(expected_chunkservers=4, configuration=config)
    mock_masters(requests_mock, cluster={"chunkservers": [{}, {}, {}], "chunks": {
        "missing": 2, "endangered": 0, "undergoal": 1}})
    assert probes.cluster_healthy(raise_on_unhealthy=False, configuration=config) is False
    with pytest.raises(ActivityFailed, match="2 chunks missing but expected 0; 1 chunks "
                                             "undergoal"):
        probes.cluster_healthy(configuration=config)
    mock_masters(requests_mock, cluster={"chunkservers": None, "chunks": None,
                                         "chunks_error": "mfscli: no master"})
    with pytest.raises(ActivityFailed, match="chunkservers unknown \\(mfscli: no master\\)"):
        probes.cluster_healthy(configuration=config)


def test_cluster_healthy_waits_saying_what_it_waits_for(requests_mock, config, monkeypatch,
                                                        caplog):
    mock_masters(requests_mock)
    healthy = {"chunkservers": [{}, {}, {}], "chunks": {"missing": 0, "undergoal": 0}}
    under = {"chunkservers": [{}, {}, {}], "chunks": {"missing": 0, "undergoal": 7}}
    requests_mock.get(MASTERS["master-1"] + "/cluster",
                      [{"json": under}, {"json": under}, {"json": healthy}])
    monkeypatch.setattr(probes.time, "sleep", lambda seconds: None)
    with caplog.at_level("INFO", logger="chaostoolkit"):
        assert probes.cluster_healthy(timeout=60, configuration=config) is True
    lines = [r.getMessage() for r in caplog.records if "event=cluster_" in r.getMessage()]
    # One line for the first look (the unchanged second look says nothing), one at the end.
    assert len(lines) == 2
    assert "event=cluster_unhealthy" in lines[0] and "7 chunks undergoal" in lines[0]
    assert lines[1].startswith("event=cluster_healthy waited=")


def test_cluster_healthy_rejects_malformed_arguments(config):
    with pytest.raises(ActivityFailed, match="expected_chunkservers='three'"):
        probes.cluster_healthy(expected_chunkservers="three", configuration=config)


def test_kill_leader_records_then_kills_and_rollback_restarts_that_node(
        requests_mock, config, fake_docker):
    mock_masters(requests_mock, leader="master-2", epoch=4)
    hit = actions.kill_master(target="leader", configuration=config)
    assert hit["master"] == "master-2" and hit["role"] == "leader" and hit["epoch"] == 4
    victim = fake_docker.containers["master-2"]
    victim.kill.assert_called_once_with(signal="SIGKILL")
    (fault,) = ledger_of(config).open_faults()
    assert fault["target"]["service"] == "master-2" and fault["role"] == "leader"

    # the cluster moves on: master-1 leads now; the rollback must restart master-2 anyway
    mock_masters(requests_mock, leader="master-1", epoch=5, down=("master-2",))
    assert probes.leader_differs_from_faulted(configuration=config) is True
    assert probes.wait_for_leader(timeout=1, configuration=config)["name"] == "master-1"
    done = actions.restart_killed(configuration=config)
    assert done == [{"master": "master-2", "kind": "container.kill", "how": "started"}]
    victim.start.assert_called_once()
    assert ledger_of(config).open_faults() == []
    fake_docker.containers["master-1"].start.assert_not_called()


def test_same_leader_again_is_reported(requests_mock, config, fake_docker):
    mock_masters(requests_mock, leader="master-1")
    actions.stop_master(target="leader", timeout=1, configuration=config)
    with pytest.raises(ActivityFailed, match="master-1 is leader again"):
        probes.leader_differs_from_faulted(configuration=config)


def test_wait_for_leader_excludes_the_faulted_master(requests_mock, config, fake_docker):
    mock_masters(requests_mock, leader="master-1")
    actions.kill_master(target="leader", configuration=config)
    with pytest.raises(ActivityFailed, match="no new leader within 0.3 s.*other than master-1"):
        probes.wait_for_leader(timeout=0.3, configuration=config)


def test_follower_targets(requests_mock, config, fake_docker):
    mock_masters(requests_mock, leader="master-1")
    assert actions.pause_master(target="follower", configuration=config)["master"] == "master-2"
    # master-2 is paused already: a second master down needs the blast radius raised
    hit = actions.kill_master(target="random-follower",
                              configuration={**config, "max_masters_down": 2})
    assert hit["master"] in ("master-2", "master-3") and hit["role"] == "follower"


def test_pause_with_duration_resumes_and_closes_the_fault(requests_mock, config, fake_docker):
    mock_masters(requests_mock, leader="master-3")
    hit = actions.pause_master(target="leader", duration=0.05, configuration=config)
    assert hit["resumed"] == "unpaused"
    container = fake_docker.containers["master-3"]
    container.pause.assert_called_once()
    container.unpause.assert_called_once()
    assert ledger_of(config).open_faults() == []


def test_unpause_paused_rollback(requests_mock, config, fake_docker):
    mock_masters(requests_mock, leader="master-3")
    actions.pause_master(target="leader", configuration=config)
    assert fake_docker.containers["master-3"].status == "paused"
    assert actions.unpause_paused(configuration=config)[0]["how"] == "unpaused"
    assert fake_docker.containers["master-3"].status == "running"


@pytest.mark.parametrize("target", ["master-9", "", "the-leader"])
def test_bad_target_fails_before_touching_anything(requests_mock, config, fake_docker, target):
    with pytest.raises(ActivityFailed, match="expected one of leader, follower"):
        actions.kill_master(target=target, configuration=config)
    assert not requests_mock.called
    assert ledger_of(config).faults() == []
    assert not any(c.kill.called for c in fake_docker.containers.values())


def test_unreachable_masters_fail_before_the_ledger(requests_mock, config, fake_docker):
    mock_masters(requests_mock, down=tuple(MASTERS))
    with pytest.raises(ActivityFailed, match="no master answers 200 on /leader"):
        actions.kill_master(target="leader", configuration=config)
    assert ledger_of(config).faults() == []


def test_malformed_configuration_fails_before_anything(requests_mock, config, fake_docker):
    bad = dict(config, mooseng_masters="master-1:9431")
    with pytest.raises(ActivityFailed, match="has no '=url' part"):
        actions.kill_master(target="leader", configuration=bad)
    with pytest.raises(ActivityFailed, match="signal='SIGFOO' is not supported"):
        actions.kill_master(signal="SIGFOO", configuration=config)
    assert not requests_mock.called and ledger_of(config).faults() == []


def test_missing_container_fails_without_a_ledger_entry(requests_mock, config, fake_docker):
    mock_masters(requests_mock, leader="master-1")
    del fake_docker.containers["master-1"]
    with pytest.raises(ActivityFailed, match="no container for service master-1 in compose "
                                             "project mooseng"):
        actions.kill_master(configuration=config)
    assert ledger_of(config).faults() == []


def test_failed_docker_call_is_undone_and_reported(requests_mock, config, fake_docker):
    import docker

    mock_masters(requests_mock, leader="master-1")
    victim = fake_docker.containers["master-1"]
    victim.pause.side_effect = docker.errors.APIError("409 Conflict: already paused")
    with pytest.raises(ActivityFailed, match="container.pause on master-1 failed: 409"):
        actions.pause_master(configuration=config)
    (fault,) = ledger_of(config).faults()
    assert fault["state"] == "undone"


def test_container_found_by_labels_of_the_configured_project(requests_mock, config, fake_docker):
    mock_masters(requests_mock, leader="master-1")
    with pytest.raises(ActivityFailed, match="compose project other"):
        actions.kill_master(configuration=dict(config, docker_project="other"))
    call = fake_docker.client.containers.list.call_args
    assert "com.docker.compose.project=other" in call.kwargs["filters"]["label"]
    assert "com.docker.compose.service=master-1" in call.kwargs["filters"]["label"]


def test_rejoined_probe(requests_mock, config, fake_docker):
    assert probes.faulted_masters_rejoined(timeout=0, configuration=config) is True
    mock_masters(requests_mock, leader="master-1")
    actions.kill_master(configuration=config)
    actions.restart_killed(configuration=config)
    mock_masters(requests_mock, leader="master-2", roles={"master-1": "promoting"})
    with pytest.raises(ActivityFailed, match="master-1 role promoting"):
        probes.faulted_masters_rejoined(timeout=0, configuration=config)
    mock_masters(requests_mock, leader="master-2")
    assert probes.faulted_masters_rejoined(timeout=0, configuration=config) is True


def test_switchover(requests_mock, config, fake_docker):
    mock_masters(requests_mock, leader="master-1")
    with pytest.raises(ActivityFailed, match="needs a token"):
        actions.switchover(to="master-2", configuration=config)
    with pytest.raises(ActivityFailed, match="'master-7' is not a configured master"):
        actions.switchover(to="master-7", configuration=config)
    secrets = {"mooseng": {"mooseng_api_token": "t0k"}}
    post = requests_mock.post(MASTERS["master-1"] + "/switchover", status_code=409,
                              json={"node": "master-1", "error": "master-2 lags"})
    with pytest.raises(ActivityFailed, match="master-1 refused switchover with HTTP 409: "
                                             "master-2 lags"):
        actions.switchover(to="master-2", configuration=config, secrets=secrets)
    assert post.last_request.headers["Authorization"] == "Bearer t0k"
    assert post.last_request.json() == {"to": "master-2"}
    requests_mock.post(MASTERS["master-1"] + "/switchover", status_code=202,
                       json={"accepted": True, "from": "master-1", "to": "master-2"})
    got = actions.switchover(to="master-2", wait=False, configuration=config, secrets=secrets)
    assert got == {"from": "master-1", "to": "master-2", "accepted": True}


def test_watch_leaders_records_overlaps_and_stale_epochs(requests_mock, config):
    mock_masters(requests_mock, leader="master-1", epoch=3)
    clean = probes.watch_leaders(duration=0.1, interval=0.05, configuration=config)
    assert clean["second_leader_served"] is False and clean["rounds"] >= 1
    assert probes.no_second_leader_served(configuration=config) is True
    requests_mock.get(MASTERS["master-2"] + "/leader", status_code=200,
                      json={"node": "master-2", "epoch": 2})
    dirty = probes.watch_leaders(duration=0.1, interval=0.05, configuration=config)
    assert dirty["overlaps"] and dirty["max_serving_at_once"] == 2 and dirty["stale"]
    with pytest.raises(ActivityFailed, match=re.escape("a second leader served")):
        probes.no_second_leader_served(configuration=config)
