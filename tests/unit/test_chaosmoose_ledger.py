"""The fault ledger: written before the fault, replayed after a crash, healed by one undo path."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosmoose import _families, _faults
from chaosmoose.ledger import Ledger


@pytest.fixture
def ledger(tmp_path):
    return Ledger(tmp_path / "run")


def test_open_then_close_replays_to_undone(ledger):
    fault = ledger.open("container.pause", {"service": "master-1"}, "r1", role="leader")
    assert [f["id"] for f in ledger.open_faults()] == [fault["id"]]
    assert ledger.open_faults()[0]["role"] == "leader"
    ledger.close(fault["id"], "unpaused")
    assert ledger.open_faults() == []
    (done,) = ledger.faults()
    assert done["state"] == "undone" and done["how"] == "unpaused"


def test_filters_by_run_and_kind(ledger):
    ledger.open("container.kill", {"service": "master-1"}, "r1")
    ledger.open("container.pause", {"service": "master-2"}, "r2")
    assert len(ledger.open_faults(run="r1")) == 1
    assert len(ledger.open_faults(kinds=["container.pause"])) == 1
    assert len(ledger.open_faults()) == 2


def test_torn_last_line_is_skipped_and_next_append_starts_fresh(ledger):
    fault = ledger.open("container.kill", {"service": "master-1"}, "r1")
    with open(ledger.path, "ab") as f:
        f.write(b'{"event": "undone", "id": "' + fault["id"].encode())  # crash mid-write
    assert len(ledger.open_faults()) == 1
    ledger.close(fault["id"], "started")
    assert ledger.open_faults() == []


def test_entry_survives_sigkill_right_after_open(tmp_path):
    """The fault is on disk before it is applied: a SIGKILL right after leaves it open."""
    script = textwrap.dedent(f"""
        import os, signal
        from chaosmoose.ledger import Ledger
        Ledger({str(tmp_path / 'run')!r}).open("container.pause", {{"service": "master-2"}}, "r9")
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", script], check=False)
    assert done.returncode == -signal.SIGKILL
    (fault,) = Ledger(tmp_path / "run").open_faults()
    assert fault["target"]["service"] == "master-2" and fault["run"] == "r9"


def test_records_are_fsynced(ledger, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    ledger.open("container.kill", {"service": "master-1"}, "r1")
    assert len(synced) >= 2  # the file, and the directory of a new file


def test_undo_open_heals_newest_first_and_keeps_failures_open(ledger, monkeypatch):
    calls = []
    monkeypatch.setitem(_families.UNDO, "test.ok", lambda f: calls.append(f["id"]) or "healed")

    def broken(fault):
        raise RuntimeError("daemon said no")

    monkeypatch.setitem(_families.UNDO, "test.broken", broken)
    first = ledger.open("test.ok", {"service": "a"}, "r1")
    second = ledger.open("test.ok", {"service": "b"}, "r1")
    bad = ledger.open("test.broken", {"service": "c"}, "r1")
    results = _faults.undo_open(ledger)
    assert calls == [second["id"], first["id"]]
    assert [r["undone"] for r in results] == [False, True, True]
    (still,) = ledger.open_faults()
    assert still["id"] == bad["id"]
    assert "daemon said no" in still["undo_errors"][0]


def test_unknown_kind_cannot_be_undone_and_stays_open(ledger):
    ledger.open("nosuch.kind", {"service": "raft-1-2"}, "r1")
    (result,) = _faults.undo_open(ledger)
    assert not result["undone"] and "cannot undo" in result["error"]
    assert len(ledger.open_faults()) == 1


def test_inject_records_before_apply_and_undoes_a_failed_apply(ledger, monkeypatch):
    seen = []
    monkeypatch.setitem(_families.UNDO, "test.ok", lambda f: "healed")

    def apply():
        seen.append(len(ledger.open_faults()))
        raise RuntimeError("409 container not running")

    with pytest.raises(ActivityFailed, match="test.ok on m1 failed: 409 container not running"):
        _faults.inject(ledger, "test.ok", {"service": "m1"}, "r1", apply)
    assert seen == [1]  # the ledger held the fault while it was being applied
    assert ledger.open_faults() == []


def leave_runs(root):
    """Open faults as a killed `make experiment` and a killed game-day run leave them."""
    Ledger(root / "runs" / "leader-pause-20261129T061538Z").open(
        "container.pause", {"service": "master-2"}, "make-run")
    Ledger(root / "runs" / "gameday-20261129T0600Z" / "01-follower-loss").open(
        "container.kill", {"service": "master-3"}, "gameday-run")


def test_open_faults_probe_and_preflight_read_every_run_under_runs(tmp_path, monkeypatch):
    from chaosmoose.controls import strict
    from chaosmoose.faults import probes

    monkeypatch.chdir(tmp_path)
    for env in ("CHAOSMOOSE_RUN_DIR", "CHAOSMOOSE_RUNS_DIR", "CHAOSMOOSE_RUN_ID"):
        monkeypatch.delenv(env, raising=False)
    leave_runs(tmp_path)
    assert probes.open_faults() == 2
    assert probes.open_faults(all_runs=False) == 0  # this run (runs/current) opened nothing
    (problem,) = strict.preflight_problems({}, require_masters_reachable=False)
    assert problem.startswith("2 open faults (container.kill on master-3 (run dir "
                              "runs/gameday-20261129T0600Z/01-follower-loss, run gameday-run")
    assert ("container.pause on master-2 (run dir runs/leader-pause-20261129T061538Z, "
            "run make-run, since ") in problem
    # another runs directory is a setting
    assert probes.open_faults(configuration={"chaosmoose_runs_dir": "elsewhere"}) == 0


def test_undo_all_faults_with_all_runs_heals_every_run(tmp_path, monkeypatch):
    from chaosmoose import _families
    from chaosmoose.faults import actions

    healed = []
    _families.register("tests.everyrun", undo={"container.kill-test": lambda f: "ok"})
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CHAOSMOOSE_RUNS_DIR", raising=False)
    for name in ("a", "b/c"):
        Ledger(tmp_path / "runs" / name).open("container.kill-test", {"service": name}, "x")
    healed = actions.undo_all_faults(all_runs=True,
                                     configuration={"chaosmoose_run_dir": str(tmp_path / "r")})
    assert sorted(h["service"] for h in healed) == ["a", "b/c"]


def test_malformed_records_are_skipped_and_reported(ledger):
    ledger.open("container.pause", {"service": "master-1"}, "r1")
    with ledger.path.open("a") as f:
        f.write('{"event": "open", "id": "x", "kind": "container.kill", "target": "m"}\n')
        f.write('{"event": "undone", "id": [1]}\n')
    assert len(ledger.open_faults()) == 1
    assert [p.split(" line ")[1] for p in ledger.problems] == [
        "2 (open x) has target 'm'; expected an object such as {\"service\": ...}; skipped",
        "3 (undone) has id [1]; expected a non-empty string; skipped"]


def test_open_records_with_a_bad_service_or_cut_off_are_skipped_and_reported(ledger):
    """A service that is not a name would break every reader (the blast-radius guard)."""
    import json

    ledger.open("container.pause", {"service": "master-1"}, "r1")
    bad = [({"service": ["a"]}, None), ({}, 5), ({}, [{"service": "master-2"}, "master-3"]),
           ({}, [{"service": {"name": "master-2"}}])]
    with ledger.path.open("a") as f:
        for number, (target, cut_off) in enumerate([*bad, ({}, None)]):
            f.write(json.dumps({"event": "open", "id": f"f{number}", "kind": "network.partition",
                                "target": target, "cut_off": cut_off}) + "\n")
    assert [f["id"] for f in ledger.open_faults()][1:] == ["f4"]
    cut = '{"service": "master-1", "role": "leader"}'
    item = f"an object with a service name such as {cut}"
    assert [p.split(" line ")[1].removesuffix("; skipped") for p in ledger.problems] == [
        "2 (open f0) has target service ['a']; expected a service name such as master-1",
        f"3 (open f1) has cut_off 5; expected a list such as [{cut}]",
        f"4 (open f2) has cut_off item 'master-3'; expected {item}",
        f"5 (open f3) has cut_off item {{'service': {{'name': 'master-2'}}}}; expected {item}"]
