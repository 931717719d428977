"""The in-container runner, run for real against a local folder, then checked."""

import json
import os
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


MIN_ACKNOWLEDGED = 12  # per client, half of them appends (the runner alternates)


def _acknowledged(state: Path) -> int:
    """How many writes this runner acknowledged so far (0 before its history exists)."""
    try:
        lines = (state / "history.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return 0
    return sum(1 for line in lines if line.endswith("}") and '"type": "ok"' in line)


@pytest.fixture
def workload(tmp_path: Path):
    """Run two clients' runners on a shared folder until each acknowledged a few writes,
    stop them, return paths."""
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
    # Until every client has acknowledged a few writes of both kinds, not for a fixed second:
    # in CI these tests share two cores with the cluster, and a runner started late may have
    # appended no record yet (a test here failed once in CI; its output was cut).
    deadline = time.monotonic() + 60
    while not all(_acknowledged(s) >= MIN_ACKNOWLEDGED for s in states.values()):
        assert time.monotonic() < deadline, "runners acknowledged too few writes in 60 s"
        time.sleep(0.2)
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


def test_a_file_whose_read_blocks_is_reported_and_the_digest_goes_on(tmp_path: Path):
    files = tmp_path / "files" / "client-1"
    files.mkdir(parents=True)
    (files / "00000001.dat").write_bytes(b"kept")
    os.mkfifo(files / "00000003.dat")  # opening a FIFO with no writer blocks, like a lost chunk
    (files / "00000005.dat").write_bytes(b"also kept")
    began = time.monotonic()
    result = runner("digest", "--data", str(tmp_path), "--file-timeout", "0.5")
    assert time.monotonic() - began < 30
    assert result["blocked"] == ["files/client-1/00000003.dat"]
    assert "blocked" in result["files"]["files/client-1/00000003.dat"]["error"]
    assert result["files"]["files/client-1/00000005.dat"]["size"] == len(b"also kept")
    assert result["slow_reads"] == 0 and result["seconds"] >= 0.5  # the blocked read waited


def test_a_record_log_whose_read_blocks_fails_the_digest_naming_it(tmp_path: Path):
    (tmp_path / "logs").mkdir()
    os.mkfifo(tmp_path / "logs" / "client-1.log")
    result = runner("digest", "--data", str(tmp_path), "--file-timeout", "0.5")
    assert "client-1.log" in result["error"] and "blocked" in result["error"]


def test_a_command_that_blocks_prints_its_timeout_and_ends_on_time(tmp_path: Path):
    os.mkfifo(tmp_path / "canary.dat")  # reading the canary blocks: no writer ever comes
    began = time.monotonic()
    result = runner("canary", "--path", str(tmp_path / "canary.dat"), "--timeout", "1")
    assert result == {"error": "timed out after 1 s (file system blocked?)"}
    assert time.monotonic() - began < 30


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
