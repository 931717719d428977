"""The in-container runner, run for real against a local folder, then checked."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chaosmoose.workload.checker import check

RUNNER = [sys.executable, "-m", "chaosmoose.workload.runner"]


def runner(*args: str) -> dict:
    done = subprocess.run([*RUNNER, *args], capture_output=True, text=True, timeout=90,
                          check=False)
    return json.loads(done.stdout.strip().splitlines()[-1])


def read_history(state: Path) -> list[dict]:
    return [json.loads(line) for line in (state / "history.jsonl").read_text().splitlines()]


@pytest.fixture
def workload(tmp_path: Path):
    """Run two clients' runners on a shared folder for ~1 s, stop them, return paths."""
    data, states = tmp_path / "mnt", {}
    procs = []
    for client in ("client-1", "client-2"):
        states[client] = tmp_path / f"state-{client}"
        procs.append(subprocess.Popen([*RUNNER, "run", "--client", client, "--data", str(data),
                                       "--state", str(states[client]), "--interval", "0.02",
                                       "--size", "64"]))
    deadline = time.monotonic() + 10
    while not all((s / "runner.pid").exists() for s in states.values()):
        assert time.monotonic() < deadline, "runners did not start"
        time.sleep(0.05)
    time.sleep(1.0)
    for client, state in states.items():
        assert runner("status", "--state", str(state))["running"] is True
        # A generous grace: in CI this runs beside the nine-container cluster on two cores,
        # where an fsync'ed history line once took longer than the default 10 s.
        assert runner("stop", "--state", str(state), "--timeout", "60")["how"] == "terminated"
    for proc in procs:
        assert proc.wait(timeout=10) == 0
    return data, states


def test_history_records_invoke_and_ok_for_every_operation(workload):
    _, states = workload
    history = read_history(states["client-1"])
    assert history[0]["type"] == "start" and history[-1]["type"] == "end"
    kinds = {r["type"] for r in history}
    assert {"invoke", "ok"} <= kinds and "fail" not in kinds
    invokes = [r for r in history if r["type"] == "invoke"]
    assert {r["f"] for r in invokes} == {"write-file", "append"}
    assert all(r["client"] == "client-1" and "t" in r for r in history)


def test_untouched_workload_checks_intact(workload):
    data, states = workload
    histories = {c: read_history(s) for c, s in states.items()}
    digest = runner("digest", "--data", str(data))
    result = check(histories, {"reader-a": digest, "reader-b": digest})
    assert result["valid"] is True and result["lost"] == 0 and result["corrupt"] == 0
    assert result["acknowledged"] == result["intact"] > 10
    assert result["unavailability"]["longest_s"] < 1.0


@pytest.mark.parametrize("mode, verdict", [("delete", "lost"), ("corrupt", "corrupt")])
def test_tampered_acknowledged_file_is_reported(workload, mode, verdict):
    data, states = workload
    histories = {c: read_history(s) for c, s in states.items()}
    victim = next(r["path"] for r in histories["client-2"]
                  if r["type"] == "ok" and r["f"] == "write-file")
    assert runner("tamper", "--data", str(data), "--path", victim, "--mode", mode)["tampered"]
    result = check(histories, {"reader": runner("digest", "--data", str(data))})
    assert result["valid"] is False and result[verdict] == 1
    assert result["examples"][0]["path"] == victim


def test_altered_record_line_is_corrupt(workload):
    data, states = workload
    log = data / "logs" / "client-1.log"
    lines = log.read_text().splitlines()
    rec = json.loads(lines[0])
    rec["data"] = "ff" + rec["data"][2:]
    log.write_text("\n".join([json.dumps(rec), *lines[1:]]) + "\n")
    histories = {c: read_history(s) for c, s in states.items()}
    result = check(histories, {"reader": runner("digest", "--data", str(data))})
    assert result["corrupt"] == 1 and result["valid"] is False


def test_write_check_and_canary(tmp_path: Path):
    assert runner("write-check", "--data", str(tmp_path), "--client", "c1")["ok"] is True
    canary = str(tmp_path / "sub" / "canary.dat")
    written = runner("canary", "--path", canary, "--write")
    assert runner("canary", "--path", canary) == written
    assert "error" in runner("canary", "--path", str(tmp_path / "missing"))


def test_stop_without_runner_is_harmless(tmp_path: Path):
    assert runner("stop", "--state", str(tmp_path))["how"] == "not started"
    (tmp_path / "runner.pid").write_text("999999")
    assert runner("stop", "--state", str(tmp_path))["how"] == "not running"


def test_runner_imports_only_the_standard_library():
    code = ("import sys; import chaosmoose.workload.runner, chaosmoose.workload.checker, "
            "chaosmoose.ledger; bad = [m for m in ('requests', 'docker', 'chaoslib') "
            "if m in sys.modules]; print(bad)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]"
