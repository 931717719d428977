"""Game days on the real cluster: a plan runs with notes and one report; Ctrl-C halts the
session and every fault it injected is undone."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from chaosmoose.ledger import Ledger
from tests.cluster.conftest import REPO, wait_for

pytestmark = pytest.mark.cluster

CHAOSMOOSE = str(REPO / ".venv" / "bin" / "chaosmoose")


def plan(tmp_path: Path, *experiments: str) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text("title: test game day\npause_between: 1\nexperiments:\n" + "".join(
        f"  - {REPO / 'experiments' / name}.json\n" for name in experiments))
    return path


def session_dir(runs: Path) -> Path:
    return wait_for("the session folder", lambda: next(iter(sorted(runs.glob("gameday-*"))), None),
                    timeout=30, interval=0.2)


def test_a_plan_runs_with_observer_notes_into_one_report(tmp_path, cluster):
    runs = tmp_path / "runs"
    game = subprocess.Popen([CHAOSMOOSE, "gameday", "run", str(plan(tmp_path, "chunk-corruption")),
                             "--runs-dir", str(runs)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    session = session_dir(runs)
    subprocess.run([CHAOSMOOSE, "gameday", "note", "--runs-dir", str(runs), "saw", "a", "CRC",
                    "error"], cwd=REPO, check=True, timeout=30)
    out, _ = game.communicate(timeout=300)
    print(out)
    assert game.returncode == 0, out
    assert "[1/1] chunk-corruption" in out and "probe damage-detected-and-never-served" in out
    md = (session / "gameday.md").read_text()
    assert "**Resilience score: 100 / 100**" in md
    assert "| 1 | chunk-corruption | PASSED |" in md
    assert " saw a CRC error" in md
    assert (session / "01-chunk-corruption" / "report.html").read_text().count("<polyline") >= 5


def test_ctrl_c_halts_the_session_and_undoes_every_fault(tmp_path, cluster):
    runs = tmp_path / "runs"
    game = subprocess.Popen([CHAOSMOOSE, "gameday", "run",
                             str(plan(tmp_path, "chunkserver-loss", "follower-loss")),
                             "--runs-dir", str(runs)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    session = session_dir(runs)
    first = session / "01-chunkserver-loss"

    def killed():
        return (first / "faults.jsonl").exists() and any(
            f["kind"] == "container.kill" for f in Ledger(first).faults())
    wait_for("the chunkserver kill", killed, timeout=120, interval=0.2)
    victim = next(f for f in Ledger(first).faults() if f["kind"] == "container.kill")
    time.sleep(1)
    game.send_signal(signal.SIGINT)
    out, _ = game.communicate(timeout=180)
    print(out)
    assert game.returncode == 130, out
    assert "halting" in out and "[2/2]" not in out
    assert Ledger(first).open_faults() == []
    assert cluster.health(victim["target"]["service"]) in ("starting", "healthy")
    assert "HALTED" in (session / "gameday.md").read_text()
    cluster.wait_healthy(timeout=180)
    from chaosmoose.master.probes import cluster_healthy

    cluster_healthy(timeout=120)
