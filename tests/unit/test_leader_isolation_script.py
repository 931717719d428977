"""scripts/leader_isolation.py and scripts/iptables_cut.py: the parts that need no cluster."""

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import iptables_cut
import leader_isolation as li

from chaosmoose.network._links import links_of
from chaosmoose.workload.checker import check


def epoch(node, number, served, freezes=(), fenced=None, stepped=None):
    return {"epoch": number, "node": node, "served_from": served,
            "freezes": [{"frozen_at": f, "thawed_at": t} for f, t in freezes],
            "fenced_at": fenced, "stepped_down_at": stepped, "reason": None}


def creation(client, seq, invoked, acked):
    return [{"t": invoked, "type": "invoke", "f": "write-file", "seq": seq, "client": client},
            {"t": acked, "type": "ok", "f": "write-file", "seq": seq, "client": client}]


# ------------------------------------------------------------------------ pure figures


def test_freeze_setting_reads_freeze_after_from_the_timing():
    on = {"timing": {"ttl": 1.5, "freeze_after": 0.4}}
    off = {"timing": {"ttl": 1.5, "freeze_after": None}}
    assert li.freeze_setting({"m1": on, "m2": on})["freeze_on_contact_loss"] is True
    assert li.freeze_setting({"m1": off, "m2": off})["freeze_on_contact_loss"] is False
    mixed = li.freeze_setting({"m1": on, "m2": off, "m3": None})
    assert mixed["freeze_on_contact_loss"] is None
    assert mixed["per_master"] == {"m1": True, "m2": False, "m3": None}


def test_watch_summary_finds_double_leaders_and_the_handover():
    samples = [(99.9, {"m1": 200, "m2": 503, "m3": 503}),
               (100.0, {"m1": 200, "m2": 503, "m3": 503}),
               (100.5, {"m1": 503, "m2": 503, "m3": 503}),
               (101.5, {"m1": 503, "m2": 200, "m3": 503}),
               (101.6, {"m1": 200, "m2": 200, "m3": 0})]
    summary = li.summarize_watch(samples, 100.0, "m1")
    assert summary["double_leader_samples"] == 1
    assert summary["double_leaders"] == [{"t": 101.6, "serving": ["m1", "m2"]}]
    assert summary["old_last_200_s"] == pytest.approx(1.6)
    assert (summary["leader_seen"], summary["leader_seen_s"]) == ("m2", 1.5)
    assert summary["leaderless_s"] == pytest.approx(1.0)
    assert li.summarize_watch([], None, "m1")["leader_seen_s"] is None


def test_round_figures_for_a_frozen_then_fenced_leader():
    serving = {"m1": [epoch("m1", 2, 50.0, stepped=60.0),
                      {**epoch("m1", 3, 60.5, freezes=[(100.45, None)], fenced=101.3),
                       "diverged_changes": 2}],
               "m2": [epoch("m2", 4, 101.8)], "m3": []}
    histories = {"c1": creation("c1", 1, 99.0, 101.9)      # invoked before the cut
                 + creation("c1", 3, 100.2, 101.7)         # acknowledged before new serves
                 + creation("c1", 5, 101.0, 102.4),
                 "c2": creation("c2", 1, 102.0, 103.0)}
    figures = li.round_figures(serving, "m1", 100.0, 110.0, histories, clients=2)
    assert figures["old_epoch"] == 3 and figures["new_epoch"] == 4
    assert figures["diverged_changes"] == 2
    assert figures["new_leader"] == "m2"
    assert figures["frozen_s"] == pytest.approx(0.45)
    assert figures["fenced_s"] == pytest.approx(1.3)
    assert (figures["old_stopped_s"], figures["old_stopped_by"]) == (pytest.approx(0.45),
                                                                     "frozen")
    assert figures["new_serving_s"] == pytest.approx(1.8)
    assert figures["gap_s"] == pytest.approx(1.35)
    assert figures["first_write_s"] == pytest.approx(2.4)
    assert figures["all_clients_s"] == pytest.approx(3.0)
    some = li.round_figures(serving, "m1", 100.0, 110.0, {"c1": histories["c1"]}, clients=2)
    assert some["first_write_s"] == pytest.approx(2.4) and some["all_clients_s"] is None


def test_round_figures_without_failover_or_history():
    serving = {"m1": [epoch("m1", 3, 60.0)], "m2": "m2 /status unreadable"}
    figures = li.round_figures(serving, "m1", 100.0, 110.0)
    assert figures["frozen_s"] is None and figures["new_leader"] is None
    assert figures["old_stopped_by"] == "open"
    assert "figures_error" in li.round_figures(serving, "m2", 100.0, 110.0)
    assert "no epoch serving" in li.round_figures({"m1": []}, "m1", 100.0, 110.0)[
        "figures_error"]


def checker_report(files_lost=False, unknown=False):
    history = (creation("client-1", 1, 1.0, 1.1)
               + [{"t": 2.0, "type": "invoke", "f": "append", "seq": 2, "client": "client-1",
                   "data": "aa"},
                  {"t": 2.1, "type": "ok", "f": "append", "seq": 2, "client": "client-1"}])
    for rec in history:
        if rec["f"] == "write-file":
            rec.update(path="files/client-1/00000001.dat", sha256="sum1")
    files = {} if files_lost else {"files/client-1/00000001.dat": {"sha256": "sum1"}}
    digests: dict[str, Any] = {"client-1": {"files": files,
                                            "records": {"client-1": {"2": "intact"}}}}
    if unknown:
        digests["client-2"] = RuntimeError("exec failed")
    return check({"client-1": history}, digests)


def test_write_counts_split_lost_files_and_appends():
    counts = li.write_counts(checker_report(files_lost=True))
    assert (counts["lost"], counts["lost_files"], counts["lost_appends"]) == (1, 1, 0)
    assert counts["acknowledged"] == 2 and counts["valid"] is False
    unknown = li.write_counts(checker_report(unknown=True))
    assert (unknown["lost"], unknown["lost_files"], unknown["lost_appends"]) == (-1, -1, -1)
    crashed = li.write_counts({"valid": "unknown", "lost": -1, "corrupt": -1, "error": "boom"})
    assert crashed["lost_files"] == -1 and crashed["error"] == "boom"


def good_round(number=1, **changes):
    record = {"round": number, "leader": "m1", "new_leader": "m2", "frozen_s": 0.45,
              "diverged_changes": 0,
              "fenced_s": 1.3, "old_stopped_s": 0.45, "new_serving_s": 1.8, "gap_s": 1.35,
              "first_write_s": 2.4, "all_clients_s": 3.0, "leader_seen_s": 1.85,
              "writes": {"acknowledged": 100, "lost": 0, "lost_files": 0, "lost_appends": 0,
                         "corrupt": 0},
              "overlap": {"valid": True, "overlaps": 0, "acknowledged_in_overlaps": 0},
              "watch": {"double_leader_samples": 0}}
    record.update(changes)
    record["problems"] = li.round_problems(record, 0)
    return record


def test_round_problems():
    assert good_round()["problems"] == []
    lost = good_round(writes={"lost": 2, "lost_files": 0, "lost_appends": 2, "corrupt": 0})
    assert lost["problems"] == [("2 acknowledged writes lost (0 file creations, 2 appends); "
                                 "at most 0 allowed")]
    assert li.round_problems(lost, 2) == []
    unknown = good_round(overlap={"overlaps": -1}, writes={"lost": -1, "corrupt": -1,
                                                           "error": "reader failed"})
    assert unknown["problems"] == ["lost writes unknown (reader failed)", "corrupt writes: -1",
                                   "leader overlap verdict unknown"]
    bad = good_round(error="Timeout: waited", watch={"double_leader_samples": 3},
                     overlap={"overlaps": 1, "overlap_s": 0.5, "acknowledged_in_overlaps": 4})
    assert bad["problems"] == ["error: Timeout: waited",
                               "1 leader overlaps (0.5 s, 4 acknowledged writes inside)",
                               "two masters answered /leader 200 at once in 3 samples"]
    assert "writes not checked" in li.round_problems({"overlap": {"overlaps": 0}}, 0)


def test_summary_and_markdown_table():
    rounds = [good_round(1), good_round(2, frozen_s=0.55, first_write_s=3.4),
              good_round(3, frozen_s=None, writes={"acknowledged": 90, "lost": 1,
                                                   "lost_files": 1, "lost_appends": 0,
                                                   "corrupt": 0})]
    summary = li.summarize(rounds)
    assert summary["rounds"] == 3 and summary["failed_rounds"] == 1
    assert summary["acknowledged"] == 290 and summary["lost_files"] == 1
    assert summary["frozen_rounds"] == 2
    assert summary["frozen_s"] == {"p50": 0.5, "p95": 0.55, "max": 0.55}
    assert summary["first_write_s"]["max"] == 3.4
    text = li.markdown(rounds, summary)
    lines = text.splitlines()
    assert lines[0].startswith("| round | leader | new leader | frozen s |")
    assert lines[2] == ("| 1 | m1 | m2 | 0.45 | 1.30 | 1.80 | 1.35 | 2.40 | 3.00 | 100 | 0 | "
                        "0 | 0 | 0 | 0 | 0 | ok |")
    assert "| 3 | m1 | m2 | - |" in text and "1 acknowledged writes lost" in text
    assert "| frozen | 0.50 | 0.55 | 0.55 |" in text
    assert "3 rounds, 1 failed; 290 writes acknowledged, lost 1 file creations" in text
    unknown = li.summarize([good_round(1), good_round(2, overlap={"overlaps": -1})])
    assert unknown["overlaps"] == -1
    assert li.summarize([])["rounds"] == 0
    assert "round=1 leader=m1->m2 frozen=0.45" in li.one_line(rounds[0])


def test_arguments_are_checked():
    args = li.parse_args([])
    assert (args.rounds, args.hold, args.method, args.variant, args.max_lost) == \
        (10, 8.0, "toxiproxy", "full", 0)
    assert args.interval == 0.01 and not args.no_freeze_baseline
    with pytest.raises(SystemExit):
        li.parse_args(["--hold", "0"])
    with pytest.raises(SystemExit):
        li.parse_args(["--method", "tc"])


def test_ctrl_c_is_held_until_cleanup_is_done():
    done = []
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when started in the background
    with pytest.raises(KeyboardInterrupt), li.ctrl_c_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        done.append("cleanup finished")
    assert done == ["cleanup finished"]
    assert signal.getsignal(signal.SIGINT) is before  # the handler it found is back


def test_leader_watch_samples_every_master(requests_mock):
    masters = {"m1": "http://127.0.0.1:9431", "m2": "http://127.0.0.1:9432"}
    requests_mock.get("http://127.0.0.1:9431/leader", status_code=200, json={})
    requests_mock.get("http://127.0.0.1:9432/leader", status_code=503, json={})
    watch = li.LeaderWatch(masters, 0.01)
    watch.start()
    time.sleep(0.1)
    samples = watch.stop()
    assert samples and samples[0][1] == {"m1": 200, "m2": 503}


# ------------------------------------------------------------------------- the round


class FakeCut:
    def __init__(self, fail_with=None):
        self.fail_with, self.calls = fail_with, []

    def apply(self):
        self.calls.append("apply")
        if self.fail_with:
            raise self.fail_with
        return {"toxics": 28}

    def heal(self):
        self.calls.append("heal")
        return {}


class FakeWatch:
    def __init__(self, masters, step):
        pass

    def start(self):
        pass

    def stop(self):
        return []


@pytest.fixture
def offline_round(monkeypatch, tmp_path):
    """run_round with every cluster call faked; returns (cut, calls)."""
    monkeypatch.chdir(tmp_path)
    calls: list[str] = []
    cut = FakeCut()
    monkeypatch.setattr(li, "steady", lambda masters: "m1")
    monkeypatch.setattr(li, "rejoined", lambda masters, old: "m2")
    monkeypatch.setattr(li, "writes_everywhere", lambda config, since: {"c1": since + 1})
    monkeypatch.setattr(li, "LeaderWatch", FakeWatch)
    monkeypatch.setattr(li, "make_cut", lambda *a: cut)
    monkeypatch.setattr(li, "start_workload", lambda **kw: calls.append("start"))
    monkeypatch.setattr(li, "stop_workload", lambda **kw: calls.append("stop"))
    monkeypatch.setattr(li._clients, "load_state", lambda config, secrets: {"stopped": False})
    monkeypatch.setattr(li, "evaluate", lambda record, *a: calls.append("evaluate"))
    return cut, calls


def round_args(**changes):
    args = li.parse_args(["--hold", "0.01", "--settle", "0", "--recover-timeout", "1"])
    vars(args).update(changes)
    return args


def test_a_round_cuts_holds_heals_and_stops_its_workload(offline_round):
    cut, calls = offline_round
    record = li.run_round(1, round_args(), "run", {"m1": "u1", "m2": "u2"}, "mooseng")
    assert "error" not in record and record["leader"] == "m1"
    assert record["leader_after"] == "m2" and record["cut"] == {"toxics": 28}
    assert cut.calls == ["apply", "heal", "heal"]  # healed, then healed again in teardown
    assert calls == ["start", "stop", "evaluate"]
    assert record["run_dir"] == "runs/run/round-01"


def test_a_failed_cut_is_recorded_and_still_healed(offline_round):
    cut, calls = offline_round
    cut.fail_with = RuntimeError("nsenter: permission denied")
    record = li.run_round(2, round_args(), "run", {"m1": "u1", "m2": "u2"}, "mooseng")
    assert record["error"] == "RuntimeError: nsenter: permission denied"
    assert cut.calls == ["apply", "heal"] and calls == ["start", "stop", "evaluate"]


def test_ctrl_c_during_a_round_heals_and_stops_before_leaving(offline_round):
    cut, calls = offline_round
    cut.fail_with = KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        li.run_round(3, round_args(), "run", {"m1": "u1", "m2": "u2"}, "mooseng")
    assert cut.calls == ["apply", "heal"] and calls == ["start", "stop"]


def test_toxiproxy_cut_isolates_every_link_or_only_raft(monkeypatch):
    seen = []
    monkeypatch.setattr(li, "isolate", lambda **kw: seen.append(kw) or
                        {"fault": "f1", "proxies": ["a", "b"], "toxics": 4})
    config = {"chaosmoose_run_dir": "runs/x"}
    assert li.ToxiproxyCut("master-2", "full", config).apply() == {"fault": "f1", "proxies": 2,
                                                                   "toxics": 4}
    li.ToxiproxyCut("master-2", "raft-only", config).apply()
    assert seen == [{"node": "master-2", "nodes": "masters", "kinds": "", "configuration": config},
                    {"node": "master-2", "nodes": "masters", "kinds": "raft",
                     "configuration": config}]


# ---------------------------------------------------------------------------- iptables

PROXIES = ["master-1>master-2:api", "master-1>master-2:ml", "master-2>master-1:raft",
           "master-2>master-1:cl", "master-3>master-1:raft", "master-3>master-2:raft",
           "client-1>master-1:cl"]
PORTS = {"master-1>master-2:api": 20011, "master-1>master-2:ml": 20012,
         "master-2>master-1:raft": 20100, "master-2>master-1:cl": 20104,
         "master-3>master-1:raft": 20200, "master-3>master-2:raft": 20210,
         "client-1>master-1:cl": 20604}
PIDS = {"master-1": 101, "master-2": 102, "master-3": 103}
ADDRESSES = {"master-1": ["10.0.0.1"], "master-2": ["10.0.0.2"], "master-3": ["10.0.0.3"]}


def test_iptables_plan_cuts_direct_and_proxied_paths_on_the_dialer_side():
    rules = iptables_cut.plan("master-1", ["master-2", "master-3"], PIDS, ADDRESSES,
                              ["10.0.0.9"], links_of(PROXIES), PORTS)
    direct = [r for r in rules if "10.0.0.9" not in r.match]
    assert {(r.node, r.chain, r.match) for r in direct} == {
        ("master-1", "OUTPUT", ("-d", "10.0.0.2")), ("master-1", "INPUT", ("-s", "10.0.0.2")),
        ("master-1", "OUTPUT", ("-d", "10.0.0.3")), ("master-1", "INPUT", ("-s", "10.0.0.3"))}
    proxied = {(r.node, r.chain, r.match[-1]) for r in rules if "10.0.0.9" in r.match}
    assert proxied == {(node, chain, str(port)) for node, port in
                       (("master-1", 20011), ("master-1", 20012), ("master-2", 20100),
                        ("master-2", 20104), ("master-3", 20200))
                       for chain in ("OUTPUT", "INPUT")}
    assert rules[0].command("-I") == ["nsenter", "-t", "101", "-n", "iptables", "-w", "-I",
                                      "OUTPUT", "-d", "10.0.0.2", "-j", "DROP"]
    outbound = next(r for r in rules if r.node == "master-2" and r.chain == "OUTPUT")
    assert outbound.match == ("-d", "10.0.0.9", "-p", "tcp", "--dport", "20104")


def test_iptables_plan_raft_only_keeps_the_other_paths():
    rules = iptables_cut.plan("master-1", ["master-2", "master-3"], PIDS, ADDRESSES,
                              ["10.0.0.9"], links_of(PROXIES), PORTS, raft_only=True)
    assert {r.match[-1] for r in rules if "10.0.0.9" in r.match} == {"20100", "20200"}
    assert all(r.match[-1] == "9440" for r in rules if "10.0.0.9" not in r.match)
    assert len(rules) == 8 + 4


def test_iptables_cut_records_first_inserts_and_removes_exactly_its_rules(monkeypatch,
                                                                          tmp_path):
    commands: list[list[str]] = []
    monkeypatch.setattr(iptables_cut, "run", commands.append)
    rules = iptables_cut.plan("master-1", ["master-2"], PIDS, ADDRESSES, [], [], {})
    cut = iptables_cut.IptablesCut(rules, tmp_path / "round" / "iptables-rules.json")
    assert cut.apply()["rules"] == 2
    recorded = json.loads((tmp_path / "round" / "iptables-rules.json").read_text())
    assert [iptables_cut.Rule.from_dict(r) for r in recorded] == rules
    cut.heal()
    cut.heal()  # idempotent
    assert [c[6] for c in commands] == ["-I", "-I", "-D", "-D"]
    assert commands[2][7:] == commands[1][7:]  # newest first
    commands.clear()
    assert iptables_cut.remove_recorded(tmp_path / "round" / "iptables-rules.json") == []
    assert [c[6] for c in commands] == ["-D", "-D"]


def test_iptables_cut_failing_half_way_removes_what_it_inserted(monkeypatch, tmp_path):
    commands: list[list[str]] = []

    def run(command):
        if len(commands) == 1 and command[6] == "-I":
            raise RuntimeError("iptables: No chain/target/match by that name")
        commands.append(command)

    monkeypatch.setattr(iptables_cut, "run", run)
    rules = iptables_cut.plan("master-1", ["master-2"], PIDS, ADDRESSES, [], [], {})
    cut = iptables_cut.IptablesCut(rules, tmp_path / "rules.json")
    with pytest.raises(RuntimeError, match="No chain"):
        cut.apply()
    assert [c[6] for c in commands] == ["-I", "-D"] and cut.inserted == []


def test_container_addresses_and_ports():
    class Container:
        def __init__(self) -> None:
            self.attrs = {"NetworkSettings": {"Networks": {"a": {"IPAddress": "10.0.0.2"},
                                                           "b": {"IPAddress": ""}}}}

    assert iptables_cut.container_addresses(Container()) == ["10.0.0.2"]
    assert iptables_cut.port_of("0.0.0.0:20011") == 20011
    assert iptables_cut.port_of("master-1:9440") == 9440
