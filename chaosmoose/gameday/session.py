"""Run a game-day plan: one ``chaos run`` per step, a live view, Ctrl-C halts and heals."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaosmoose import _faults
from chaosmoose.gameday.plan import Plan, Step
from chaosmoose.gameday.score import run_score
from chaosmoose.ledger import Ledger
from chaosmoose.report import collect, render

__all__: list[str] = []  # not an activity module

ACTIVITY = re.compile(r"(Action|Probe|Rollback): (.*)$")
NOTES = "notes.md"


@dataclass
class StepResult:
    """What one step did."""

    step: Step
    run_dir: Path
    exit_code: int | None
    verdict: str
    seconds: float
    score: float
    check: dict[str, Any] | None = None
    recovery: list[tuple[str, float]] = field(default_factory=list)
    healed: list[dict[str, Any]] = field(default_factory=list)


def slug(text: str) -> str:
    """A folder-safe name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "experiment"


def add_note(session_dir: Path, text: str, now: float | None = None) -> str:
    """Append a timestamped observer note to the session's notes file; return the line."""
    stamp = datetime.fromtimestamp(now or time.time(), UTC).strftime("%H:%M:%S")
    line = f"- {stamp} {text.strip()}"
    with open(session_dir / NOTES, "a", encoding="utf-8") as f:
        f.write(line + "\n")
    return line


def read_notes(session_dir: Path) -> list[str]:
    """The observer notes (lines starting with "- HH:MM:SS")."""
    path = session_dir / NOTES
    if not path.exists():
        return []
    return [line for line in path.read_text().splitlines() if re.match(r"^- \d\d:\d\d:\d\d ", line)]


class Session:
    """One game day: runs the plan's steps in order."""

    def __init__(self, plan: Plan, runs_root: Path, chaos: str, offline: bool = False,
                 say: Callable[[str], None] = print) -> None:
        self.plan = plan
        self.offline = offline
        self.chaos = chaos
        self.say = say
        self.started = time.time()
        stamp = datetime.fromtimestamp(self.started, UTC).strftime("%Y%m%dT%H%M%SZ")
        self.dir = runs_root / f"gameday-{stamp}"
        self.dir.mkdir(parents=True, exist_ok=False)
        (self.dir / NOTES).write_text(f"# Observer notes: {plan.title}\n\n"
                                      "Add one with `chaosmoose gameday note \"...\"`.\n\n")
        self.results: list[StepResult] = []
        self.halted = False
        self._child: subprocess.Popen | None = None

    def _on_sigint(self, signum: int, _frame: object) -> None:
        if not self.halted:
            self.say("\n==> halting: stopping the running experiment, then undoing its faults")
        self.halted = True
        if self._child is not None and self._child.poll() is None:
            try:
                self._child.send_signal(signal.SIGINT)
            except OSError:
                pass

    def run(self) -> list[StepResult]:
        """Run every step (until halted or, with stop_on_failure, a failure)."""
        previous = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            total = len(self.plan.steps)
            self.say(f"==> game day '{self.plan.title}': {total} runs; session {self.dir}")
            self.say(f"    observers: chaosmoose gameday note --session {self.dir} \"what you saw\"")
            for step in self.plan.steps:
                if self.halted:
                    break
                result = self._run_step(step, total)
                self.results.append(result)
                if self.plan.stop_on_failure and result.verdict != "PASSED" and not self.halted:
                    self.say("==> stop_on_failure: ending the session")
                    break
                if step is not self.plan.steps[-1] and not self.halted:
                    self._pause(self.plan.pause_between)
        finally:
            signal.signal(signal.SIGINT, previous)
        return self.results

    def _pause(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.halted:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def _run_step(self, step: Step, total: int) -> StepResult:
        run_dir = self.dir / f"{step.index:02d}-{slug(step.name)}"
        run_dir.mkdir(parents=True)
        output = run_dir / "chaos-output.log"
        env = dict(os.environ, CHAOSMOOSE_RUN_DIR=str(run_dir))
        env.pop("CHAOSMOOSE_RUN_ID", None)
        self.say(f"[{step.index}/{total}] {step.name}: chaos run {step.path.name}")
        began = time.monotonic()
        with open(output, "w") as sink:
            self._child = subprocess.Popen(
                [self.chaos, "--log-file", str(run_dir / "chaostoolkit.log"), "run",
                 "--journal-path", str(run_dir / "journal.json"), str(step.path)],
                stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            last_shown = ""
            while self._child.poll() is None:
                time.sleep(0.5)
                current = _last_activity(output)
                if current and current != last_shown:
                    self.say(f"    {time.monotonic() - began:5.1f} s  {current}")
                    last_shown = current
                if self.halted and self._child.poll() is None:
                    self._wait_or_kill(60)
            code = self._child.returncode
        self._child = None
        healed = self._heal(run_dir) if self.halted else []
        seconds = time.monotonic() - began
        result = self._summarize(step, run_dir, code, seconds, healed)
        lost = (result.check or {}).get("lost")
        self.say(f"    => {result.verdict} in {seconds:.1f} s, score {result.score:.0f}"
                 f"{'' if lost is None else f', lost writes {lost}'}"
                 f"{f', healed {len(healed)} faults' if healed else ''}")
        return result

    def _wait_or_kill(self, seconds: float) -> None:
        assert self._child is not None
        try:
            self._child.wait(seconds)
        except subprocess.TimeoutExpired:
            self.say("    the experiment did not stop within 60 s of Ctrl-C; killing it")
            self._child.kill()
            self._child.wait()

    def _heal(self, run_dir: Path) -> list[dict[str, Any]]:
        results = _faults.undo_open(Ledger(run_dir))
        for item in results:
            state = f"undone ({item['how']})" if item["undone"] else f"FAILED: {item['error']}"
            self.say(f"    heal {item['kind']} on {item['service']}: {state}")
        return results

    def _summarize(self, step: Step, run_dir: Path, code: int | None, seconds: float,
                   healed: list[dict[str, Any]]) -> StepResult:
        if not (run_dir / "journal.json").exists():
            verdict = "HALTED" if self.halted else f"NO JOURNAL (exit {code})"
            return StepResult(step, run_dir, code, verdict, seconds, 0.0, healed=healed)
        run = collect.load_run(run_dir)
        if not self.offline:
            from chaosmoose.logs._collector import read_window
            from chaosmoose.monitoring._prometheus import range_query

            collect.add_series(run, range_query)
            collect.add_logs(run, read_window)
        (run_dir / "report.md").write_text(render.markdown(run))
        (run_dir / "report.html").write_text(render.html_page(run))
        verdict = "HALTED" if self.halted else render.verdict(run)
        if code not in (0, None) and verdict == "PASSED":
            verdict = f"FAILED (exit {code})"
        score = run_score(verdict == "PASSED", run.check)
        return StepResult(step, run_dir, code, verdict, seconds, score, run.check,
                          collect.recovery(run), healed)


def _last_activity(output: Path) -> str:
    """The newest "Action: ..." / "Probe: ..." line chaos printed."""
    try:
        text = output.read_text(errors="replace")[-4000:]
    except OSError:
        return ""
    for line in reversed(text.splitlines()):
        match = ACTIVITY.search(line)
        if match:
            return f"{match.group(1).lower()} {match.group(2).strip()}"
    return ""


def summary(session: Session) -> dict[str, Any]:
    """The session as JSON (written next to the reports)."""
    return {"title": session.plan.title, "dir": str(session.dir), "halted": session.halted,
            "started": session.started, "runs": [
                {"index": r.step.index, "name": r.step.name, "experiment": str(r.step.path),
                 "verdict": r.verdict, "seconds": round(r.seconds, 1), "score": r.score,
                 "lost": (r.check or {}).get("lost"), "exit_code": r.exit_code,
                 "healed": r.healed} for r in session.results]}


def write_summary(session: Session) -> Path:
    """Write gameday.json; return its path."""
    path = session.dir / "gameday.json"
    path.write_text(json.dumps(summary(session), indent=2) + "\n")
    return path


def chaos_binary() -> str:
    """The ``chaos`` next to this Python (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "chaos"
    return str(beside) if beside.exists() else "chaos"
