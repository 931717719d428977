"""Strict mode and the exit codes of the real ``chaos run`` CLI (no cluster needed)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chaosmoose.controls import strict
from chaosmoose.ledger import Ledger

CHAOS = str(Path(sys.executable).parent / "chaos")
REPO = Path(__file__).resolve().parents[2]  # `chaos run` imports this checkout's chaosmoose
STRICT = {"name": "chaosmoose-strict",
          "provider": {"type": "python", "module": "chaosmoose.controls.strict",
                       # no evidence: a unit test must not read the lab's Prometheus or logs
                       "arguments": {"require_masters_reachable": False,
                                     "store_evidence": False}}}


def probe(name, func, args, tolerance=True):
    return {"type": "probe", "name": name, "tolerance": tolerance,
            "provider": {"type": "python", "module": "os.path", "func": func,
                         "arguments": args}}


def action(name, module, func, args=None):
    return {"type": "action", "name": name,
            "provider": {"type": "python", "module": module, "func": func,
                         "arguments": args or {}}}


def experiment(tmp_path, steady=True, failing_action=False, failing_rollback=False,
               with_strict=True, extra=None):
    exp = {
        "title": "t", "description": "d",
        "configuration": {"chaosmoose_run_dir": str(tmp_path / "run")},
        "steady-state-hypothesis": {"title": "h", "probes": [
            probe("exists", "exists", {"path": str(tmp_path if steady else tmp_path / "no")})]},
        "method": [action("fails", "os", "listdir", {"path": str(tmp_path / "nope")})
                   if failing_action else action("ok", "os", "getcwd")],
        "rollbacks": [action("rb", "os", "listdir", {"path": str(tmp_path / "nope")})
                      if failing_rollback else action("rb", "os", "getcwd")],
    }
    if with_strict:
        exp["controls"] = [STRICT]
    exp.update(extra or {})
    path = tmp_path / "exp.json"
    path.write_text(json.dumps(exp))
    return path


def chaos_run(tmp_path, path):
    journal = tmp_path / "journal.json"
    done = subprocess.run([CHAOS, "--no-log-file", "run", "--journal-path", str(journal),
                           str(path)], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120, check=False)
    return done.returncode, json.loads(journal.read_text()) if journal.exists() else None, done


@pytest.mark.parametrize("case, plain_exit, strict_exit", [
    ({}, 0, 0),
    ({"steady": False}, 0, 1),
    ({"failing_action": True}, 0, 1),
    ({"failing_rollback": True}, 0, 1),
])
def test_chaos_run_exit_codes_with_and_without_strict(tmp_path, case, plain_exit, strict_exit):
    code, journal, done = chaos_run(tmp_path, experiment(tmp_path, with_strict=False, **case))
    assert code == plain_exit, done.stderr[-2000:]
    code, journal, done = chaos_run(tmp_path, experiment(tmp_path, **case))
    assert code == strict_exit, done.stderr[-2000:]
    assert journal["deviated"] is False
    violations = journal["chaosmoose"]["strict"]["violations"]
    assert bool(violations) == bool(strict_exit)
    assert journal["status"] == ("failed" if strict_exit else "completed")


def test_preflight_rejects_unknown_master_and_touches_nothing(tmp_path):
    bad = action("kill", "chaosmoose.master.actions", "kill_master", {"target": "master-9"})
    path = experiment(tmp_path, extra={"method": [bad]})
    code, journal, done = chaos_run(tmp_path, path)
    assert code == 1
    assert journal["status"] == "interrupted" and journal["run"] == []
    assert "target='master-9' is not a configured master" in done.stderr + done.stdout
    assert Ledger(tmp_path / "run").faults() == []


def test_preflight_problems_cover_settings_targets_ledger_and_reachability(tmp_path,
                                                                            requests_mock):
    import requests

    cfg = {"chaosmoose_run_dir": str(tmp_path / "run"), "mooseng_http_timeout": 0.2,
           "who": "master-2"}
    exp = {"method": [action("k", "chaosmoose.master.actions", "kill_master",
                             {"target": "${who}"}),
                      action("s", "chaosmoose.master.actions", "switchover", {"to": "m-x"})]}
    for port in (9431, 9432, 9433):
        requests_mock.get(f"http://127.0.0.1:{port}/status",
                          exc=requests.exceptions.ConnectionError("Connection refused"))
    Ledger(tmp_path / "run").open("container.pause", {"service": "master-1"}, "old-run")
    problems = strict.preflight_problems(exp, cfg)
    assert not any("'master-2'" in p for p in problems)  # substituted and valid
    assert any("to='m-x' is not a configured master" in p for p in problems)
    assert any("1 open faults" in p and "chaosmoose cleanup" in p for p in problems)
    assert sum("unreachable: connection refused" in p for p in problems) == 3
    assert strict.preflight_problems(exp, {"mooseng_masters": "oops"}) == [
        ("mooseng_masters: entry 'oops' has no '=url' part; "
         "expected name=http://host:port[,name=http://host:port...]")]


def test_violations_read_the_journal():
    journal = {"status": "completed", "deviated": False,
               "steady_states": {"before": {"steady_state_met": False, "probes": [
                   {"activity": {"name": "cluster-healthy"}, "status": "succeeded",
                    "tolerance_met": False}]}},
               "run": [{"activity": {"name": "kill"}, "status": "failed",
                        "exception": ["Traceback", "ActivityFailed: boom\n"]}],
               "rollbacks": []}
    found = strict.violations(journal)
    assert found[0].startswith("steady state missed before the method (cluster-healthy)")
    assert "method activity 'kill' failed: ActivityFailed: boom" in found[1]
    strict.after_experiment_control({}, journal)
    assert journal["status"] == "failed"
    assert strict.violations(journal, fail_on_missed_steady_state=False,
                             fail_on_failed_activity=False) == []


def test_open_faults_of_this_run_are_healed_whatever_the_rollbacks_did(tmp_path):
    from chaosmoose import _families

    healed_targets = []

    def _undo(fault):
        healed_targets.append(fault["target"]["service"])
        return "healed"

    _families.register("tests.marker", undo={"test.marker": _undo})

    config = {"chaosmoose_run_dir": str(tmp_path / "run"), "chaosmoose_run_id": "run-a"}
    ledger = Ledger(tmp_path / "run")
    ledger.open("test.marker", {"service": "chunkserver-3"}, "run-a")
    ledger.open("test.marker", {"service": "chunkserver-1"}, "run-b")  # another run: untouched
    # Rollbacks were played but left this run's fault open: it is undone all the same.
    state = {"status": "completed", "rollbacks": [{"status": "succeeded",
                                                   "activity": {"name": "rb"}}],
             "deviated": False, "run": [], "steady_states": {}}
    strict.after_experiment_control({}, state, config)
    assert healed_targets == ["chunkserver-3"]
    assert [h["how"] for h in state["chaosmoose"]["strict"]["healed"]] == ["healed"]
    assert state["status"] == "completed"  # healing leftovers is not a violation by itself
    assert [f["target"]["service"] for f in ledger.open_faults()] == ["chunkserver-1"]
    # Turned off: faults stay for inspection.
    ledger.open("test.marker", {"service": "chunkserver-2"}, "run-a")
    strict.after_experiment_control({}, {"status": "failed", "run": [], "steady_states": {}},
                                    config, heal_open_faults=False)
    assert healed_targets == ["chunkserver-3"]


def test_preflight_rejects_chunkserver_targets_that_do_not_exist(tmp_path):
    cfg = {"chaosmoose_run_dir": str(tmp_path / "run")}
    exp = {"method": [
        action("k", "chaosmoose.chunkserver.actions", "kill_chunkserver", {"target": "cs-9"}),
        action("ok", "chaosmoose.chunkserver.actions", "kill_chunkserver", {"target": "random"}),
        action("c", "chaosmoose.chunkserver.actions", "corrupt_chunk",
               {"path": "f", "copy": "chunkserver-4"}),
        action("c2", "chaosmoose.chunkserver.actions", "corrupt_chunk",
               {"path": "f", "copy": "chunkserver-2"})]}
    problems = strict.preflight_problems(exp, cfg, require_masters_reachable=False)
    assert problems == [
        ("activity 'k': target='cs-9' is not a configured chunkserver; expected one of "
        "chunkserver-1, chunkserver-2, chunkserver-3, random"),
        ("activity 'c': copy='chunkserver-4' is not a configured chunkserver; expected one of "
        "chunkserver-1, chunkserver-2, chunkserver-3, first, random")]


ARGUMENT_CASES = [
    # (module, func, arguments, expected fragment of the one problem)
    ("chaosmoose.master.probes", "wait_for_leader", {"timeout": "soon"},
     "timeout='soon' is invalid; expected a number"),
    ("chaosmoose.master.actions", "kill_master", {"signal": "SIGKIL"},
     "signal='SIGKIL' is not supported; expected one of SIGKILL"),
    ("chaosmoose.chunkserver.actions", "kill_chunkserver", {"signal": "SIGKIL"},
     "signal='SIGKIL' is not supported"),
    ("chaosmoose.master.probes", "node_role", {"name": "master-9"},
     "name='master-9' is not a configured master"),
    ("chaosmoose.master.actions", "kill_master", {"tagret": "leader"},
     "unknown argument 'tagret'; expected one of target, signal"),
    ("chaosmoose.master.probes", "node_role", {}, "argument 'name' is missing"),
    ("chaosmoose.master.actions", "switchover", {"wait": "sometimes"},
     "wait='sometimes' is invalid; expected a boolean"),
    ("chaosmoose.chunkserver.probes", "chunk_copies", {"path": "f", "client": "client-9"},
     "client='client-9' is not a configured client"),
    ("chaosmoose.workload.actions", "tamper_with_acknowledged_writes", {"mode": "erase"},
     "mode='erase' is invalid; expected one of delete, corrupt"),
    ("chaosmoose.workload.probes", "clients_can_write", {"clients": "client-1,client-7"},
     "names client-7, not a configured client"),
    ("chaosmoose.monitoring.probes", "wait_for_alert", {"name": "X", "state": "fired"},
     "state='fired' is invalid; expected one of firing, pending, resolved"),
    ("chaosmoose.logs.probes", "log_lines", {"limit": [3]}, "limit=[3] is invalid"),
    ("chaosmoose.logs.probes", "log_lines", {"pattern": {"re": "x"}},
     "pattern={'re': 'x'} is invalid; expected a string"),
    ("chaosmoose.faults.probes", "open_faults", {"all_runs": "maybe"},
     "all_runs='maybe' is invalid; expected a boolean"),
    ("chaosmoose.master.actions", "kill_masterr", {}, "has no activity 'kill_masterr'"),
]


@pytest.mark.parametrize("module, func, args, expected", ARGUMENT_CASES)
def test_preflight_checks_every_activity_against_its_signature_and_choices(
        tmp_path, module, func, args, expected):
    exp = {"method": [action("the-step", module, func, args)]}
    problems = strict.preflight_problems(exp, {"chaosmoose_run_dir": str(tmp_path / "run")},
                                         require_masters_reachable=False)
    assert len(problems) == 1, problems
    assert problems[0].startswith("activity 'the-step': ") and expected in problems[0], problems


def test_preflight_accepts_what_the_activities_accept(tmp_path):
    good = [action("a", "chaosmoose.master.probes", "wait_for_leader",
                   {"timeout": "30", "exclude_faulted": "false"}),
            action("b", "chaosmoose.logs.probes", "log_lines", {"services": "master-1"}),
            action("c", "chaosmoose.monitoring.probes", "wait_for_value",
                   {"query": "up", "minimum": None, "maximum": 3}),
            action("d", "chaosmoose.master.actions", "kill_master",
                   {"target": "random-follower", "signal": "SIGTERM"})]
    assert strict.preflight_problems({"method": good},
                                     {"chaosmoose_run_dir": str(tmp_path / "run")},
                                     require_masters_reachable=False) == []


def test_real_chaos_run_refuses_a_misspelled_signal_before_any_fault(tmp_path):
    bad = action("kill", "chaosmoose.master.actions", "kill_master", {"signal": "SIGKIL"})
    code, journal, done = chaos_run(tmp_path, experiment(tmp_path, extra={"method": [bad]}))
    assert code == 1
    assert journal["status"] == "interrupted" and journal["run"] == []
    assert "activity 'kill': signal='SIGKIL' is not supported" in done.stderr + done.stdout
    assert Ledger(tmp_path / "run").faults() == []


# A harmless fault family for real `chaos run`s: a fault is a file, undone by removing it.
FAKE_FAULTS = '''
"""A fault that is a file in the run directory, recorded in the ledger like any other."""

import os
import signal
from pathlib import Path

from chaosmoose import _faults, _families, _settings
from chaosmoose.ledger import Ledger


def remove_flag(fault):
    Path(fault["target"]["file"]).unlink(missing_ok=True)
    return "removed"


_families.register("fakefaults", undo={"test.flag": remove_flag})


def inject(name="a", fail=False, configuration=None, secrets=None):
    folder = _settings.run_dir(configuration, secrets)
    flag = folder / f"{name}.flag"

    def apply():
        flag.write_text("on")
        if fail:
            raise RuntimeError("the fault could not be applied")

    _faults.inject(Ledger(folder), "test.flag", {"service": name, "file": str(flag)},
                   _settings.run_id(configuration, secrets), apply)
    return name


def signal_self(name="SIGTERM"):
    os.kill(os.getpid(), getattr(signal, name))
'''


def fake_experiment(tmp_path, method, rollbacks=(), strict_args=None, control_extra=None,
                    strategy="always"):
    (tmp_path / "fakefaults.py").write_text(FAKE_FAULTS)
    control = {"name": "chaosmoose-strict",
               "provider": {"type": "python", "module": "chaosmoose.controls.strict",
                            "arguments": {"require_masters_reachable": False,
                                          "store_evidence": False, **(strict_args or {})}},
               **(control_extra or {})}
    exp = {"title": "t", "description": "d",
           "configuration": {"chaosmoose_run_dir": str(tmp_path / "run"),
                             "chaosmoose_runs_dir": str(tmp_path / "runs")},
           "controls": [control],
           "steady-state-hypothesis": {"title": "h", "probes": [
               probe("exists", "exists", {"path": str(tmp_path)})]},
           "method": list(method), "rollbacks": list(rollbacks),
           "runtime": {"rollbacks": {"strategy": strategy}}}
    path = tmp_path / "exp.json"
    path.write_text(json.dumps(exp))
    return path


def chaos_run_fake(tmp_path, path):
    import os

    journal = tmp_path / "journal.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(tmp_path), str(REPO), os.environ.get("PYTHONPATH")) if p)}
    done = subprocess.run([CHAOS, "--no-log-file", "run", "--journal-path", str(journal),
                           str(path)], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=120, check=False)
    return done.returncode, json.loads(journal.read_text()) if journal.exists() else None, done


def flags(tmp_path):
    return sorted(p.name for p in (tmp_path / "run").glob("*.flag"))


@pytest.mark.parametrize("strict_args, control_extra, expected", [
    ({"fail_on_missed_steady_state": "maybe"}, {},
     "fail_on_missed_steady_state='maybe' is invalid; expected a boolean"),
    ({"heal_on_skipped_rollbacks": False}, {}, "unknown argument 'heal_on_skipped_rollbacks'"),
    ({"fail_on_failed_activty": False}, {}, "unknown argument 'fail_on_failed_activty'"),
    ({}, {"automatic": "no"}, "automatic='no' is invalid; expected true or false"),
    ({}, {"automatic": False},
     ("control 'chaosmoose-strict': automatic=false skips strict mode around every activity "
      "and the method; expected true or no automatic")),
    ({}, {"scope": "after"}, "scope='after' runs only half of strict mode"),
])
def test_chaos_run_rejects_bad_control_arguments_before_anything(tmp_path, strict_args,
                                                                  control_extra, expected):
    path = fake_experiment(tmp_path, [action("a", "fakefaults", "inject", {"name": "a"})],
                           strict_args=strict_args, control_extra=control_extra)
    code, journal, done = chaos_run_fake(tmp_path, path)
    assert code == 1, done.stderr[-2000:]
    assert expected in done.stderr + done.stdout
    assert journal is None or journal["run"] == []
    assert Ledger(tmp_path / "run").faults() == [] and flags(tmp_path) == []


def test_failed_injection_stops_the_method(tmp_path):
    path = fake_experiment(tmp_path, [
        action("a", "fakefaults", "inject", {"name": "a"}),
        action("b", "fakefaults", "inject", {"name": "b", "fail": True}),
        action("c", "fakefaults", "inject", {"name": "c"})])
    code, journal, done = chaos_run_fake(tmp_path, path)
    assert code == 1, done.stderr[-2000:]
    assert [r["activity"]["name"] for r in journal["run"]] == ["a", "b"]
    assert journal["chaosmoose"]["strict"]["stopped"] == {
        "reason": "method action 'b' failed", "not_started": ["c"]}
    assert {f["target"]["service"] for f in Ledger(tmp_path / "run").faults()} == {"a", "b"}
    assert Ledger(tmp_path / "run").open_faults() == [] and flags(tmp_path) == []


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_a_signal_stops_injecting_and_every_fault_is_healed(tmp_path, signame):
    path = fake_experiment(tmp_path, [
        action("a", "fakefaults", "inject", {"name": "a"}),
        action("signal", "fakefaults", "signal_self", {"name": signame}),
        action("b", "fakefaults", "inject", {"name": "b"})], strategy="default")
    code, journal, done = chaos_run_fake(tmp_path, path)
    assert code == 1, done.stderr[-2000:]
    assert "b" not in [r["activity"]["name"] for r in journal["run"]]
    assert journal["chaosmoose"]["strict"]["stopped"]["reason"] == f"{signame} received"
    assert [f["target"]["service"] for f in Ledger(tmp_path / "run").faults()] == ["a"]
    assert [h["service"] for h in journal["chaosmoose"]["strict"]["healed"]] == ["a"]
    assert Ledger(tmp_path / "run").open_faults() == [] and flags(tmp_path) == []


def test_faults_left_by_rollbacks_that_ran_are_healed(tmp_path):
    path = fake_experiment(
        tmp_path, [action("a", "fakefaults", "inject", {"name": "a"}),
                   action("b", "fakefaults", "inject", {"name": "b"})],
        rollbacks=[action("rb-does-not-heal", "os", "getcwd")])
    code, journal, done = chaos_run_fake(tmp_path, path)
    assert code == 0, done.stderr[-2000:]
    assert [r["status"] for r in journal["rollbacks"]] == ["succeeded"]
    assert sorted(h["service"] for h in journal["chaosmoose"]["strict"]["healed"]) == ["a", "b"]
    assert Ledger(tmp_path / "run").open_faults() == [] and flags(tmp_path) == []
