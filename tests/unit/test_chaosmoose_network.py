"""Network faults: the Toxiproxy client, partitions and link toxics through the ledger, their
undo, probes, and the preflight of network arguments (Toxiproxy faked with requests_mock)."""

from __future__ import annotations

import pytest
import requests
from chaoslib.exceptions import ActivityFailed

from chaosmoose import _faults, cli
from chaosmoose.controls import strict
from chaosmoose.ledger import Ledger
from chaosmoose.network import _toxiproxy, actions, probes
from tests.unit import chaosmoose_fakes as fakes
from tests.unit.chaosmoose_fakes import TOXIPROXY, FakeToxiproxy, mock_masters

config = fakes.config  # fixture


@pytest.fixture
def toxiproxy(requests_mock):
    return FakeToxiproxy(requests_mock)


def ledger_of(config):
    return Ledger(config["chaosmoose_run_dir"])


# --- the client -------------------------------------------------------------------------


def test_client_lists_proxies_with_toxics_and_bounds_every_request(toxiproxy, requests_mock):
    server = _toxiproxy.Toxiproxy(TOXIPROXY + "/")
    toxic = server.add_toxic("client-2>master-1:cl", "t1", "latency", "upstream", 0.5,
                             {"latency": 100, "jitter": 0})
    assert toxic.proxy == "client-2>master-1:cl" and toxic.toxicity == 0.5
    proxies = server.proxies()
    assert proxies["client-2>master-1:cl"].toxics[0].attributes == {"latency": 100, "jitter": 0}
    assert proxies["prometheus"].enabled
    assert server.version() == "2.5.0"
    assert all(r.timeout == (3.0, 3.0) for r in requests_mock.request_history)
    assert requests_mock.request_history[0].url.endswith("/proxies/client-2%3Emaster-1%3Acl/toxics")


def test_client_errors_name_proxy_toxic_and_the_servers_reason(toxiproxy, requests_mock):
    server = _toxiproxy.Toxiproxy(TOXIPROXY)
    server.add_toxic("master-2>master-1:raft", "t1", "timeout", "upstream", 1.0, {"timeout": 0})
    with pytest.raises(ActivityFailed, match=(
            r"Toxiproxy at http://127.0.0.1:8474 refused adding toxic 't1' \(timeout, upstream\) "
            r"to proxy 'master-2>master-1:raft' with HTTP 409: toxic already exists; "
            r"expected HTTP 200 or 201")):
        server.add_toxic("master-2>master-1:raft", "t1", "timeout", "upstream", 1.0,
                         {"timeout": 0})
    assert server.remove_toxic("master-2>master-1:raft", "t1") is True
    assert server.remove_toxic("master-2>master-1:raft", "t1") is False  # 404: already gone
    assert server.remove_toxic("no-such-proxy", "t1") is False
    requests_mock.get(TOXIPROXY + "/proxies",
                      exc=requests.exceptions.ConnectionError("Connection refused"))
    with pytest.raises(_toxiproxy.ToxiproxyError, match="Toxiproxy at http://127.0.0.1:8474 "
                                                        "unreachable while listing proxies: "
                                                        "connection refused"):
        server.proxies()


def test_client_url_comes_from_settings(monkeypatch):
    monkeypatch.setenv("CHAOSMOOSE_TOXIPROXY_URL", "http://toxiproxy:8474/")
    assert _toxiproxy.client().url == "http://toxiproxy:8474"
    assert _toxiproxy.client({"toxiproxy_url": "http://h:1"}).url == "http://h:1"
    with pytest.raises(ActivityFailed, match="toxiproxy_url='toxiproxy:8474' is invalid; "
                                             "expected http://host:port"):
        _toxiproxy.client({"toxiproxy_url": "toxiproxy:8474"})


# --- partitions ---------------------------------------------------------------------------


def test_isolating_the_leader_records_every_toxic_before_applying_both_streams(
        toxiproxy, requests_mock, config):
    mock_masters(requests_mock, leader="master-2")
    seen_open = []
    toxiproxy.before_add = lambda proxy: seen_open.append(len(ledger_of(config).open_faults()))
    result = actions.isolate(node="leader", configuration=config)
    assert result["roles"] == {"leader": "master-2"}
    assert result["pairs"] == [["master-1", "master-2"], ["master-2", "master-3"]]
    assert result["sees"]["master-2"] == ["master-2"]
    (fault,) = ledger_of(config).open_faults()
    assert seen_open and set(seen_open) == {1}  # on disk before the first toxic
    assert fault["kind"] == "network.partition" and fault["id"] == result["fault"]
    recorded = sorted((t["proxy"], t["name"]) for t in fault["target"]["toxics"])
    assert recorded == toxiproxy.toxics()
    assert all(name.startswith(f"chaosmoose-{fault['id']}-timeout-") for _, name in recorded)
    proxies = {p for p, _ in recorded}
    assert proxies == {"master-2>master-1:raft", "master-3>master-2:raft",
                       *(f"{a}>{b}:{k}" for a, b in [("master-1", "master-2"),
                                                      ("master-2", "master-1"),
                                                      ("master-2", "master-3"),
                                                      ("master-3", "master-2")]
                         for k in ("api", "ml", "cl"))}
    for proxy in proxies:
        toxics = toxiproxy.proxies[proxy]["toxics"]
        assert sorted(t["stream"] for t in toxics) == ["downstream", "upstream"]
        assert all(t["type"] == "timeout" and t["attributes"] == {"timeout": 0}
                   and t["toxicity"] == 1.0 for t in toxics)
    assert all(body["enabled"] for body in toxiproxy.proxies.values())  # never disabled


def test_heal_deletes_exactly_the_recorded_toxics_and_is_idempotent(toxiproxy, config):
    foreign = _toxiproxy.Toxiproxy(TOXIPROXY)
    foreign.add_toxic("client-1>master-1:cl", "someone-else", "latency", "downstream", 1.0,
                      {"latency": 5, "jitter": 0})
    actions.partition_majorities_ring(configuration=config)
    actions.add_latency("client-2>masters", latency_ms=200, configuration=config)
    assert len(toxiproxy.toxics()) == 1 + 2 * 7 + 2 * 6
    result = actions.heal(configuration=config)
    assert [r["undone"] for r in result["faults"]] == [True, True]
    assert toxiproxy.toxics() == [("client-1>master-1:cl", "someone-else")]
    assert ledger_of(config).open_faults() == []
    assert actions.heal(configuration=config) == {"faults": [], "strays": []}


def test_undo_counts_toxics_already_gone_as_healed(toxiproxy, config):
    result = actions.cut(a="master-1", b="master-3", configuration=config)
    ledger = ledger_of(config)
    (fault,) = ledger.open_faults()
    first = fault["target"]["toxics"][0]
    toxiproxy.proxies[first["proxy"]]["toxics"] = [  # healed behind our back
        t for t in toxiproxy.proxies[first["proxy"]]["toxics"] if t["name"] != first["name"]]
    how = _faults.undo(ledger, fault)
    assert how == f"removed {result['toxics'] - 1} toxics (1 already gone)"
    assert _faults.undo(ledger, fault) == f"already healed ({result['toxics']} toxics were gone)"


def test_a_failure_half_way_undoes_what_was_applied(toxiproxy, config):
    toxiproxy.fail_add_after = 3
    with pytest.raises(ActivityFailed) as caught:
        actions.isolate(node="master-1", configuration=config)
    message = str(caught.value)
    assert message.startswith("network.partition on isolate master-1~master-2, "
                              "master-1~master-3 failed: Toxiproxy at http://127.0.0.1:8474 "
                              "refused adding toxic 'chaosmoose-")
    assert "with HTTP 500: listener exploded" in message
    assert toxiproxy.toxics() == []
    assert ledger_of(config).open_faults() == []
    (fault,) = ledger_of(config).faults()
    assert fault["how"] == "removed 3 toxics (25 already gone)"


def test_duration_heals_the_fault_itself(toxiproxy, config, monkeypatch):
    slept = []
    monkeypatch.setattr(actions.time, "sleep", slept.append)
    result = actions.bridge(node="master-2", duration=5, configuration=config)
    assert slept == [5.0] and result["healed"].startswith("removed")
    assert result["pairs"] == [["master-1", "master-3"]]
    assert toxiproxy.toxics() == [] and ledger_of(config).open_faults() == []


def test_partition_over_all_nodes_reports_pairs_without_a_proxied_link(toxiproxy, config):
    result = actions.isolate(node="client-1", nodes="all", configuration=config)
    assert ["chunkserver-1", "client-1"] in result["unlinked"]
    assert {p.split(">")[0] for p in result["proxies"]} == {"client-1"}
    assert len(result["proxies"]) == 6


def test_halves_with_an_explicit_minority(toxiproxy, requests_mock, config):
    mock_masters(requests_mock, leader="master-3")
    result = actions.partition_halves(minority="leader", configuration=config)
    assert result["pairs"] == [["master-1", "master-3"], ["master-2", "master-3"]]


# --- link toxics --------------------------------------------------------------------------


@pytest.mark.parametrize("call, type_, attributes", [
    (lambda c: actions.add_latency("client-2>master-1:cl", 300, 20, configuration=c),
     "latency", {"latency": 300, "jitter": 20}),
    (lambda c: actions.limit_bandwidth("client-2>master-1:cl", 16, configuration=c),
     "bandwidth", {"rate": 16}),
    (lambda c: actions.reset_peer("client-2>master-1:cl", 100, configuration=c),
     "reset_peer", {"timeout": 100}),
    (lambda c: actions.slice("client-2>master-1:cl", 100, 10, 50, configuration=c),
     "slicer", {"average_size": 100, "size_variation": 10, "delay": 50}),
    (lambda c: actions.limit_data("client-2>master-1:cl", 1024, configuration=c),
     "limit_data", {"bytes": 1024}),
    (lambda c: actions.blackhole("client-2>master-1:cl", 0, configuration=c),
     "timeout", {"timeout": 0}),
])
def test_link_toxics_carry_their_attributes(toxiproxy, config, call, type_, attributes):
    result = call(config)
    assert result["proxies"] == ["client-2>master-1:cl"] and result["toxics"] == 2
    toxics = toxiproxy.proxies["client-2>master-1:cl"]["toxics"]
    assert {(t["type"], t["stream"]) for t in toxics} == {(type_, "upstream"),
                                                          (type_, "downstream")}
    assert all(t["attributes"] == attributes for t in toxics)
    (fault,) = ledger_of(config).open_faults()
    assert fault["kind"] == "network.toxic" and fault["link"] == "client-2>master-1:cl"


def test_one_stream_and_toxicity(toxiproxy, config):
    actions.add_latency("master-1>*", 50, stream="downstream", toxicity=0.25,
                        configuration=config)
    toxics = [t for body in toxiproxy.proxies.values() for t in body["toxics"]]
    assert len(toxics) == 6
    assert {(t["stream"], t["toxicity"]) for t in toxics} == {("downstream", 0.25)}


@pytest.mark.parametrize("call, message", [
    (lambda c: actions.add_latency("client-2>masters", -5, configuration=c),
     "latency_ms=-5 is invalid; expected a whole number >= 0"),
    (lambda c: actions.add_latency("client-2>masters", 5, toxicity=1.5, configuration=c),
     "toxicity=1.5 is invalid; expected a number between 0 and 1"),
    (lambda c: actions.add_latency("client-2>masters", 5, stream="sideways", configuration=c),
     "stream='sideways' is invalid; expected one of both, upstream, downstream"),
    (lambda c: actions.add_latency("client-9>masters", 5, configuration=c),
     "link 'client-9>masters': unknown node 'client-9'"),
    (lambda c: actions.limit_bandwidth("*", 0, configuration=c),
     "rate_kbps=0 is invalid; expected a whole number >= 1"),
    (lambda c: actions.slice("*", 10, 10, configuration=c),
     "size_variation=10 is invalid; expected less than average_size"),
    (lambda c: actions.isolate("master-9", configuration=c), "node: unknown node 'master-9'"),
    (lambda c: actions.reset_peer(configuration=c), "link='' is empty; expected src>dst"),
    (lambda c: actions.partition_majorities_ring("master-1,master-2", configuration=c),
     "expected at least 3 nodes"),
    (lambda c: actions.bridge("masters", configuration=c), "expected one bridge node"),
    (lambda c: actions.cut("master-1", "master-1", configuration=c), "cuts nothing"),
    (lambda c: actions.isolate("master-1", duration=-1, configuration=c),
     "duration=-1 is invalid"),
])
def test_bad_arguments_fail_before_anything_is_touched(requests_mock, config, call, message):
    with pytest.raises(ActivityFailed, match=message):
        call(config)
    assert requests_mock.request_history == []
    assert ledger_of(config).faults() == []


def test_a_selector_matching_no_proxy_fails_before_the_ledger(toxiproxy, config):
    with pytest.raises(ActivityFailed, match="link 'client-1>clients' matches none"):
        actions.add_latency("client-1>clients", 10, configuration=config)
    assert ledger_of(config).faults() == []


def test_unresolvable_leader_fails_before_the_ledger(toxiproxy, requests_mock, config):
    mock_masters(requests_mock, leader=None)
    with pytest.raises(ActivityFailed, match="no master answers 200 on /leader"):
        actions.isolate(node="leader", configuration=config)
    assert ledger_of(config).faults() == [] and toxiproxy.toxics() == []


def test_cleanup_heals_network_faults_from_the_ledger_alone(toxiproxy, config, capsys):
    actions.isolate(node="master-3", configuration=config)
    assert cli.main(["cleanup", "--run-dir", config["chaosmoose_run_dir"]]) == 0
    out = capsys.readouterr().out
    assert "undone network.partition on isolate master-1~master-3, master-2~master-3 (run " \
           "run-1): removed 28 toxics" in out
    assert toxiproxy.toxics() == []


def test_heal_can_remove_stray_chaosmoose_toxics(toxiproxy, config):
    server = _toxiproxy.Toxiproxy(TOXIPROXY)
    server.add_toxic("client-1>master-1:cl", "chaosmoose-lost-timeout-upstream", "timeout",
                     "upstream", 1.0, {"timeout": 0})
    server.add_toxic("client-1>master-1:cl", "manual", "latency", "upstream", 1.0,
                     {"latency": 1, "jitter": 0})
    result = actions.heal(remove_strays=True, configuration=config)
    assert result["strays"] == [{"proxy": "client-1>master-1:cl",
                                 "name": "chaosmoose-lost-timeout-upstream"}]
    assert toxiproxy.toxics() == [("client-1>master-1:cl", "manual")]


# --- probes -------------------------------------------------------------------------------


def test_probes_see_toxics_partitions_and_link_states(toxiproxy, config):
    assert probes.active_toxics(configuration=config) == []
    assert probes.no_toxics_active(configuration=config) is True
    assert probes.partition_healed(configuration=config) is True
    assert probes.proxies_reachable(configuration=config) is True
    actions.add_latency("client-1>master-1:cl", 10, configuration=config)
    assert probes.partition_healed(configuration=config) is True  # latency is no partition
    assert probes.no_toxics_active(raise_on_active=False, configuration=config) is False
    with pytest.raises(ActivityFailed, match=r"2 toxics active \(latency chaosmoose-"):
        probes.no_toxics_active(configuration=config)
    actions.cut("master-1", "master-2", configuration=config)
    assert probes.partition_healed(raise_on_partition=False, configuration=config) is False
    with pytest.raises(ActivityFailed, match="partition fault .* is open in the ledger"):
        probes.partition_healed(configuration=config)
    states = {s["proxy"]: s["state"] for s in probes.link_state("master-1<>*",
                                                                configuration=config)}
    assert states["master-2>master-1:raft"] == "cut"
    assert states["master-1>master-3:api"] == "clean"
    (latency,) = probes.link_state("client-1>master-1:cl", configuration=config)
    assert latency["state"] == "degraded" and latency["toxics"][0]["type"] == "latency"
    assert len(probes.active_toxics(configuration=config)) == 2 + 2 * 7
    actions.heal(configuration=config)
    assert probes.partition_healed(configuration=config) is True


def test_proxies_reachable_reports_unreachable_disabled_and_unnamed(requests_mock, config):
    requests_mock.get(TOXIPROXY + "/proxies",
                      exc=requests.exceptions.ConnectionError("Connection refused"))
    assert probes.proxies_reachable(raise_on_unreachable=False, configuration=config) is False
    with pytest.raises(ActivityFailed, match="unreachable while listing proxies"):
        probes.proxies_reachable(configuration=config)
    fake = FakeToxiproxy(requests_mock, names=["prometheus"])
    with pytest.raises(ActivityFailed, match="none named <src>><dst>:<kind>"):
        probes.proxies_reachable(configuration=config)
    fake = FakeToxiproxy(requests_mock)
    fake.proxies["client-1>master-1:cl"]["enabled"] = False
    with pytest.raises(ActivityFailed, match=r"1 proxies are disabled \(client-1>master-1:cl\)"):
        probes.proxies_reachable(configuration=config)


# --- preflight ----------------------------------------------------------------------------


def network(name, func, args, kind="actions"):
    return {"type": "action" if kind == "actions" else "probe", "name": name,
            "provider": {"type": "python", "module": f"chaosmoose.network.{kind}",
                         "func": func, "arguments": args}}


def test_preflight_checks_network_arguments_with_the_activities_defaults(config):
    experiment = {
        "method": [
            network("iso", "isolate", {"node": "master-9"}),
            network("ring", "partition_majorities_ring", {"nodes": "master-1,master-2"}),
            network("lat", "add_latency", {"link": "client-2>masters", "latency_ms": -1}),
            network("tox", "reset_peer", {"link": "${link}", "toxicity": 2}),
            network("ok-leader", "isolate", {}),
            network("ok-bridge", "bridge", {"node": "follower", "nodes": "masters"}),
            network("ok-cut", "cut", {"a": "clients", "b": "leader"}),
            network("state", "link_state", {"link": "nobody>masters"}, kind="probes"),
            network("typo", "add_latency", {"link": "*", "latency": 5}),
        ],
        "rollbacks": [network("heal", "heal", {"all_runs": "maybe"})],
    }
    cfg = {**config, "link": "chunkserver-3>master-2:cs"}
    problems = strict.preflight_problems(experiment, cfg, require_masters_reachable=False)
    assert problems == [
        ("activity 'iso': node: unknown node 'master-9'; expected one of master-1, master-2, "
        "master-3, chunkserver-1, chunkserver-2, chunkserver-3, client-1, client-2, client-3, "
        "masters, chunkservers, clients, all, leader, follower, random-follower"),
        ("activity 'ring': majorities ring over master-1, master-2: expected at least 3 nodes "
        "(with fewer, two nodes always see the same majority)"),
        "activity 'lat': latency_ms=-1 is invalid; expected a whole number >= 0",
        "activity 'tox': toxicity=2 is invalid; expected a number between 0 and 1",
        ("activity 'state': link 'nobody>masters': unknown node 'nobody'; expected one of "
        "master-1, master-2, master-3, chunkserver-1, chunkserver-2, chunkserver-3, client-1, "
        "client-2, client-3, masters, chunkservers, clients, all, leader, follower, "
        "random-follower"),
        ("activity 'typo': unknown argument 'latency'; expected one of link, latency_ms, "
         "jitter_ms, stream, toxicity, duration"),
        "activity 'heal': all_runs='maybe' is invalid; expected a boolean (true/false)",
    ]
    assert ledger_of(config).faults() == []


def test_chaos_run_preflight_rejects_a_partition_naming_an_unknown_node(tmp_path):
    from tests.unit.test_chaosmoose_strict import chaos_run, experiment

    bad = network("isolate", "isolate", {"node": "master-7"})
    code, journal, done = chaos_run(tmp_path, experiment(tmp_path, extra={"method": [bad]}))
    assert code == 1
    assert journal["status"] == "interrupted" and journal["run"] == []
    assert "node: unknown node 'master-7'" in done.stderr + done.stdout
