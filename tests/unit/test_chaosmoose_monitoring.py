"""chaosmoose.monitoring probes against a faked Prometheus HTTP API (requests_mock)."""

from __future__ import annotations

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosmoose.monitoring import probes
from chaosmoose.monitoring._prometheus import PrometheusError

URL = "http://prom.test:9090"
CONFIG = {"prometheus_url": URL}
RULES = {"status": "success", "data": {"groups": [{"rules": [
    {"name": "MooseNGChunkserverDown"}, {"name": "MooseNGNoLeader"}]}]}}


def vector(*samples: tuple[dict, str]) -> dict:
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": labels, "value": [1.0, value]} for labels, value in samples]}}


def alerts_body(*alerts: tuple[str, str, str]) -> dict:
    return {"status": "success", "data": {"alerts": [
        {"labels": {"alertname": name, "node": node}, "state": state, "activeAt": "t"}
        for name, state, node in alerts]}}


def test_value_of_an_aggregate(requests_mock):
    requests_mock.get(f"{URL}/api/v1/query", json=vector(({}, "1")))
    assert probes.prometheus_value("sum(mooseng_master_is_leader)", configuration=CONFIG) == 1.0
    assert requests_mock.last_request.qs["query"] == ["sum(mooseng_master_is_leader)"]


def test_value_refuses_several_series_and_reports_empty(requests_mock):
    requests_mock.get(f"{URL}/api/v1/query", json=vector(({"node": "a"}, "1"), ({"node": "b"}, "0")))
    with pytest.raises(ActivityFailed, match="returned 2 series; expected one"):
        probes.prometheus_value("up", configuration=CONFIG)
    requests_mock.get(f"{URL}/api/v1/query", json=vector())
    with pytest.raises(ActivityFailed, match="returned no series"):
        probes.prometheus_value("up", configuration=CONFIG)
    assert probes.prometheus_value("up", raise_on_empty=False, configuration=CONFIG) is None


def test_a_bad_query_fails_with_prometheus_reason(requests_mock):
    requests_mock.get(f"{URL}/api/v1/query", status_code=400, json={
        "status": "error", "errorType": "bad_data", "error": "parse error: unclosed left parenthesis"})
    with pytest.raises(PrometheusError, match=r"refused /api/v1/query for query 'sum\(': "
                                              "bad_data: parse error"):
        probes.prometheus_query("sum(", configuration=CONFIG)


def test_unreachable_prometheus_names_its_url():
    with pytest.raises(PrometheusError, match=r"Prometheus at http://127.0.0.1:9 unreachable: "
                                              "connection refused"):
        probes.alerts(configuration={"prometheus_url": "http://127.0.0.1:9"})


def test_bad_url_and_empty_query_fail_before_any_request(requests_mock):
    with pytest.raises(ActivityFailed, match="prometheus_url='prom:9090' is invalid"):
        probes.prometheus_query("up", configuration={"prometheus_url": "prom:9090"})
    with pytest.raises(ActivityFailed, match="expected a PromQL expression"):
        probes.prometheus_query("  ", configuration=CONFIG)
    assert not requests_mock.called


def test_targets_up_splits_up_and_down(requests_mock):
    requests_mock.get(f"{URL}/api/v1/targets", json={"status": "success", "data": {"activeTargets": [
        {"labels": {"job": "mooseng-chunkserver", "node": "chunkserver-1"}, "health": "up"},
        {"labels": {"job": "mooseng-chunkserver", "node": "chunkserver-2"}, "health": "down",
         "lastError": "dial tcp: lookup chunkserver-2: no such host"},
        {"labels": {"job": "mooseng-master", "node": "master-1"}, "health": "up"}]}})
    assert probes.targets_up("mooseng-master", configuration=CONFIG) == {"up": ["master-1"], "down": {}}
    with pytest.raises(ActivityFailed, match="chunkserver-2.*no such host"):
        probes.targets_up("mooseng-chunkserver", configuration=CONFIG)
    result = probes.targets_up("mooseng-chunkserver", raise_on_down=False, configuration=CONFIG)
    assert result["up"] == ["chunkserver-1"] and list(result["down"]) == ["chunkserver-2"]
    with pytest.raises(ActivityFailed, match="no active target in job 'typo'"):
        probes.targets_up("typo", configuration=CONFIG)


def test_no_alert_firing_ignores_pending_and_listed_alerts(requests_mock):
    requests_mock.get(f"{URL}/api/v1/alerts", json=alerts_body(
        ("MooseNGChunksMissing", "pending", ""), ("MooseNGMasterDown", "firing", "master-2")))
    with pytest.raises(ActivityFailed, match=r"alerts firing: MooseNGMasterDown\(master-2\)"):
        probes.no_alert_firing(configuration=CONFIG)
    assert probes.no_alert_firing(ignore=["MooseNGMasterDown"], configuration=CONFIG) is True
    assert probes.no_alert_firing(raise_on_alert=False, configuration=CONFIG) is False


def test_wait_for_alert_follows_the_alert_through_its_states(requests_mock, monkeypatch):
    monkeypatch.setattr(probes.time, "sleep", lambda s: None)
    requests_mock.get(f"{URL}/api/v1/rules", json=RULES)
    requests_mock.get(f"{URL}/api/v1/alerts", [
        {"json": alerts_body()},
        {"json": alerts_body(("MooseNGChunkserverDown", "pending", "chunkserver-3"))},
        {"json": alerts_body(("MooseNGChunkserverDown", "firing", "chunkserver-2"))},
        {"json": alerts_body(("MooseNGChunkserverDown", "firing", "chunkserver-3"))},
    ])
    result = probes.wait_for_alert("MooseNGChunkserverDown", node="chunkserver-3", timeout=60,
                                   configuration=CONFIG)
    assert result["ok"] and result["state"] == "firing"
    assert len([r for r in requests_mock.request_history if r.path == "/api/v1/alerts"]) == 4


def test_wait_for_alert_times_out_with_what_it_saw(requests_mock):
    requests_mock.get(f"{URL}/api/v1/rules", json=RULES)
    requests_mock.get(f"{URL}/api/v1/alerts",
                      json=alerts_body(("MooseNGNoLeader", "pending", "")))
    with pytest.raises(ActivityFailed, match=r"did not reach firing within 0 s \(now: \['pending'\]\)"):
        probes.wait_for_alert("MooseNGNoLeader", timeout=0, configuration=CONFIG)
    assert probes.wait_for_alert("MooseNGNoLeader", state="pending", timeout=0,
                                 configuration=CONFIG)["ok"]


def test_wait_for_alert_rejects_unknown_names_and_states(requests_mock):
    requests_mock.get(f"{URL}/api/v1/rules", json=RULES)
    with pytest.raises(ActivityFailed, match="no alert rule named 'MooseNGTypo'; Prometheus knows: "
                                             "MooseNGChunkserverDown, MooseNGNoLeader"):
        probes.wait_for_alert("MooseNGTypo", configuration=CONFIG)
    with pytest.raises(ActivityFailed, match="state='gone' is invalid"):
        probes.wait_for_alert("MooseNGNoLeader", state="gone", configuration=CONFIG)


def test_wait_for_value_returns_once_inside_the_bounds(requests_mock, monkeypatch):
    monkeypatch.setattr(probes.time, "sleep", lambda s: None)
    requests_mock.get(f"{URL}/api/v1/query", [{"json": vector()}, {"json": vector(({}, "0"))},
                                              {"json": vector(({}, "1"))}])
    result = probes.wait_for_value("sum(mooseng_master_is_leader)", minimum=1, maximum=1,
                                   timeout=60, configuration=CONFIG)
    assert result["ok"] and result["value"] == 1.0
    with pytest.raises(ActivityFailed, match="needs minimum, maximum or both"):
        probes.wait_for_value("up", configuration=CONFIG)
