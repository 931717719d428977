"""Strict mode and the exit codes of the real ``chaos run`` CLI (no cluster needed)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chaosmoose.controls import strict
from chaosmoose.ledger import Ledger

CHAOS = str(Path(sys.executable).parent / "chaos")
STRICT = {"name": "chaosmoose-strict",
          "provider": {"type": "python", "module": "chaosmoose.controls.strict",
                       "arguments": {"require_masters_reachable": False}}}


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


def test_skipped_rollbacks_are_healed_from_the_ledger(tmp_path):
    from chaosmoose import _faults

    healed_targets = []

    @_faults.undoer("test.marker")
    def _undo(fault):
        healed_targets.append(fault["target"]["service"])
        return "healed"

    config = {"chaosmoose_run_dir": str(tmp_path / "run"), "chaosmoose_run_id": "run-a"}
    ledger = Ledger(tmp_path / "run")
    ledger.open("test.marker", {"service": "chunkserver-3"}, "run-a")
    ledger.open("test.marker", {"service": "chunkserver-1"}, "run-b")  # another run: untouched
    # Rollbacks were played: nothing to do.
    assert strict.heal_skipped_rollbacks({"status": "completed", "rollbacks": [{"status": "x"}]},
                                         config) == []
    assert healed_targets == []
    # No rollback played (status failed): this run's open fault is undone.
    state = {"status": "failed", "rollbacks": [], "deviated": True, "run": [],
             "steady_states": {}}
    strict.after_experiment_control({}, state, config)
    assert healed_targets == ["chunkserver-3"]
    assert [h["how"] for h in state["chaosmoose"]["strict"]["healed"]] == ["healed"]
    assert [f["target"]["service"] for f in ledger.open_faults()] == ["chunkserver-1"]
    # Turned off: faults stay for inspection.
    ledger.open("test.marker", {"service": "chunkserver-2"}, "run-a")
    strict.after_experiment_control({}, {"status": "failed", "run": [], "steady_states": {}},
                                    config, heal_on_skipped_rollbacks=False)
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
