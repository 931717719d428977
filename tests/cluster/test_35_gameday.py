"""Game days on the real cluster: a plan runs with notes and one report; Ctrl-C halts the
session and every fault it injected is undone."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from chaosmoose.ledger import Ledger, ledgers_under
from tests.cluster.conftest import REPO, wait_for

pytestmark = pytest.mark.cluster

CHAOSMOOSE = str(REPO / ".venv" / "bin" / "chaosmoose")


def plan(tmp_path: Path, *experiments: str, extra: str = "") -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text("title: test game day\npause_between: 1\n" + extra + "experiments:\n" + "".join(
        f"  - {REPO / 'experiments' / name}.json\n" for name in experiments))
    return path


# How long MooseFS takes to notice a corrupted copy is its own business (a chunkserver
# re-reads a block from disk only after it went idle: 10 to 40 s measured in CI), so the
# plan's recovery target is set above the probe's own timeout: a passing run that lost
# nothing must then score exactly 100, whatever MooseFS's timing that day.
PATIENT_TARGETS = "targets:\n  recovery_s: 120\n"


def session_dir(runs: Path) -> Path:
    return wait_for("the session folder", lambda: next(iter(sorted(runs.glob("gameday-*"))), None),
                    timeout=30, interval=0.2)


def test_a_plan_runs_with_observer_notes_into_one_report(tmp_path, cluster):
    runs = tmp_path / "runs"
    game = subprocess.Popen([CHAOSMOOSE, "gameday", "run", str(plan(tmp_path, "chunk-corruption",
                                                              extra=PATIENT_TARGETS)),
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
    # the session report links the run's reports and draws the session in one picture
    assert "[html](<01-chunk-corruption/report.html>), [md](<01-chunk-corruption/report.md>)" in md
    assert "Blast radius: at most 1 masters and 1 chunkservers down at once." in md
    svg = (session / "gameday-timeline.svg").read_text()
    assert 'class="passed"' in svg and 'href="01-chunk-corruption/report.html"' in svg
    assert 'class="fault"' in svg, "the corrupted copy is a fault window on the run's bar"
    assert svg in (session / "gameday.html").read_text()


def test_a_plan_beyond_its_blast_radius_is_refused_before_anything_runs(tmp_path, cluster):
    """No master may go down in this plan, and leader-loss kills one: exit 2, no session,
    the leader untouched."""
    runs = tmp_path / "runs"
    path = tmp_path / "plan.yaml"
    path.write_text("title: too much\nblast_radius: {max_masters_down: 0}\nexperiments:\n"
                    f"  - {REPO / 'experiments' / 'leader-loss.json'}\n")
    leader = cluster.leader()
    game = subprocess.run([CHAOSMOOSE, "gameday", "run", str(path), "--runs-dir", str(runs)],
                          cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=120, check=False)
    print(game.stdout)
    assert game.returncode == 2, game.stdout
    assert "activity 'kill-the-leader'" in game.stdout
    assert "expected at most 0 (blast_radius.max_masters_down of the plan)" in game.stdout
    assert not runs.exists() or not list(runs.glob("gameday-*"))
    assert cluster.leader() == leader


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
    # unpaused; a master paused beyond its lease needs a moment to be a healthy follower
    service = victim["target"]["service"]
    wait_for(f"{service} healthy again", lambda: cluster.health(service) == "healthy", 90)
    assert "HALTED" in (session / "gameday.md").read_text()
    cluster.wait_healthy(timeout=180)
    from chaosmoose.master.probes import cluster_healthy

    cluster_healthy(timeout=120)


def long_pause_plan(tmp_path: Path, halt: str = "") -> Path:
    """A plan of the leader-pause experiment with the leader frozen for 60 s (far beyond its
    lease), then a second run that must never start."""
    import json

    experiment = json.loads((REPO / "experiments" / "leader-pause.json").read_text())
    experiment["configuration"]["leader_pause_seconds"] = 60
    experiment["configuration"]["leader_watch_seconds"] = 10
    (tmp_path / "long-pause.json").write_text(json.dumps(experiment, indent=2))
    path = tmp_path / "plan.yaml"
    path.write_text("title: halting game day\npause_between: 1\n" + halt
                    + "experiments:\n  - long-pause.json\n  - long-pause.json\n")
    return path


def paused(run: Path) -> bool:
    return (run / "faults.jsonl").exists() and any(
        f["kind"] == "container.pause" for f in Ledger(run).faults())


def test_a_halt_condition_stops_the_session_and_says_why(tmp_path, cluster):
    runs = tmp_path / "runs"
    # a client without an acknowledged write for 2 s: a paused leader costs every client
    # about 5 s (README, failover figures), so this condition must fire within the first run
    plan = long_pause_plan(tmp_path, "halt:\n  - {when: write_gap, above: 2}\n")
    began = time.monotonic()
    game = subprocess.run([CHAOSMOOSE, "gameday", "run", str(plan), "--runs-dir", str(runs)],
                          cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=180, check=False)
    print(game.stdout)
    assert game.returncode == 3, game.stdout
    assert time.monotonic() - began < 120, "the halt must cut the 60 s pause short"
    session = next(iter(runs.glob("gameday-*")))
    first = session / "01-long-pause"
    assert paused(first), "the leader was paused"
    assert all(ledger.open_faults() == [] for ledger in ledgers_under(session))
    assert not (session / "02-long-pause").exists() and "[2/2]" not in game.stdout
    md = (session / "gameday.md").read_text()
    assert "**HALTED: halt condition: " in md and "has had no acknowledged write for" in md
    assert "| 1 | long-pause | HALTED |" in md and "halted, not scored" in md
    assert "data loss" not in md
    cluster.wait_healthy(timeout=180)
    from chaosmoose.master.probes import cluster_healthy

    cluster_healthy(timeout=120)


def test_sigterm_halts_the_session_heals_and_writes_the_report(tmp_path, cluster):
    runs = tmp_path / "runs"
    game = subprocess.Popen([CHAOSMOOSE, "gameday", "run", str(long_pause_plan(tmp_path)),
                             "--runs-dir", str(runs)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    session = session_dir(runs)
    first = session / "01-long-pause"
    wait_for("the leader pause", lambda: paused(first), timeout=120, interval=0.2)
    victim = next(f for f in Ledger(first).faults() if f["kind"] == "container.pause")
    time.sleep(1)
    game.send_signal(signal.SIGTERM)
    out, _ = game.communicate(timeout=90)
    print(out)
    assert game.returncode == 128 + signal.SIGTERM, out
    assert "sending SIGTERM to the experiment" in out and "[2/2]" not in out
    assert all(ledger.open_faults() == [] for ledger in ledgers_under(session))
    # unpaused; a master paused beyond its lease needs a moment to be a healthy follower
    service = victim["target"]["service"]
    wait_for(f"{service} healthy again", lambda: cluster.health(service) == "healthy", 90)
    assert "**HALTED: SIGTERM;" in (session / "gameday.md").read_text()
    assert (session / "gameday.html").exists() and (session / "gameday.json").exists()
    cluster.wait_healthy(timeout=180)
    from chaosmoose.master.probes import cluster_healthy

    cluster_healthy(timeout=120)
