"""Run a game-day plan: one ``chaos run`` per step, a live view, halts that heal.

A halt comes from a signal (Ctrl-C, SIGTERM, SIGHUP) or from a halt condition of the plan
(``chaosmoose.gameday.watch``). Either way the running ``chaos run`` is stopped, every
fault still open in the session's ledgers is undone, later runs do not start and the
session report says why. The child is stopped gently first so its rollbacks run: a
condition or Ctrl-C sends it SIGINT (Chaos Toolkit interrupts the method; game-day runs use
``--rollback-strategy always`` so rollbacks still play), waits ``int_grace`` s, then SIGTERM
to its process group, waits ``term_grace`` s, then SIGKILL to the group; SIGTERM and SIGHUP
to the session start at the SIGTERM rung (whoever sent it wants the session gone soon).
Signal handlers only note the halt; the main loop does the stopping and healing.

The plan's blast radius (``chaosmoose.gameday.radius``) is checked when the session is
created, before its folder exists: a plan whose experiments would take more down at once
than it allows is refused. Each run gets the limits in its environment
(``CHAOSMOOSE_MAX_MASTERS_DOWN``, ``CHAOSMOOSE_MAX_CHUNKSERVERS_DOWN``), so the fault guard
refuses any fault beyond them, and the watcher halts the session when the open faults of
the session's ledgers exceed them. The live view (``chaosmoose.gameday.live``) is a
dashboard on a terminal and plain lines elsewhere. At the end the session draws its
timeline (``gameday-timeline.svg``, see ``chaosmoose.gameday.timeline``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chaosmoose import _faults
from chaosmoose.gameday import live, radius, timeline, watch
from chaosmoose.gameday.plan import Plan, Step
from chaosmoose.gameday.score import run_score
from chaosmoose.ledger import Ledger, ledgers_under
from chaosmoose.report import collect, render

__all__: list[str] = []  # not an activity module

ACTIVITY = re.compile(r"(Action|Probe|Rollback): (.*)$")
NOTES = "notes.md"
HALT_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")
WORKLOAD_KIND = "workload.runner"  # the observer, not a fault: detection starts at a fault
Reader = Callable[[float], "watch.Reading"]


@dataclass
class StepResult:
    """What one step did."""

    step: Step
    run_dir: Path
    exit_code: int | None
    verdict: str
    seconds: float
    score: float | None  # None: halted, not scored
    check: dict[str, Any] | None = None
    recovery: list[tuple[str, float]] = field(default_factory=list)
    healed: list[dict[str, Any]] = field(default_factory=list)
    detection_s: float | None = None
    parts: dict[str, Any] = field(default_factory=dict)  # the score's factors and why
    started: float = 0.0   # wall clock (Unix time) when its chaos run started
    ended: float = 0.0     # ... and when it was over (stopped, healed)
    leader_changes: list[tuple[float, str]] = field(default_factory=list)  # watcher's view


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
                 say: Callable[[str], None] | None = None,
                 reader: Callable[[Path], Reader] | None = None, watch_interval: float = 1.0,
                 int_grace: float = 60.0, term_grace: float = 30.0,
                 view: live.View | None = None, plain: bool = False) -> None:
        """Check the plan's blast radius (PlanError before anything exists), then create
        the session folder. Lines go to ``view``; else to ``say``; else to the dashboard on a
        terminal, plain lines elsewhere or with ``plain``."""
        radius.check_plan(plan, os.environ)
        self.plan = plan
        self.offline = offline
        self.chaos = chaos
        if view is None:
            view = live.PlainView(say) if say is not None else live.make_view(plain)
        self.view = view
        self.say = view.say
        self.started = time.time()
        stamp = datetime.fromtimestamp(self.started, UTC).strftime("%Y%m%dT%H%M%SZ")
        self.dir = runs_root / f"gameday-{stamp}"
        self.dir.mkdir(parents=True, exist_ok=False)
        (self.dir / NOTES).write_text(f"# Observer notes: {plan.title}\n\n"
                                      "Add one with `chaosmoose gameday note \"...\"`.\n\n")
        self.results: list[StepResult] = []
        self.halt_reason: str | None = None    # "Ctrl-C", "SIGTERM", "halt condition: ..."
        self.halt_signal: int | None = None    # the signal that halted, if one did
        self.halted_at: float | None = None    # wall clock of the first halt
        self.healed: list[dict[str, Any]] = []  # what the halt undid, over the session
        self.int_grace, self.term_grace = int_grace, term_grace
        self.watch_interval = watch_interval
        needs_alerts = plan.targets.get("detection_s") is not None
        if reader is None:
            def reader(run_dir: Path) -> Reader:
                return watch.cluster_reader(plan.halts, lambda: run_dir, needs_alerts,
                                            ledgers=lambda: ledgers_under(self.dir, run_dir),
                                            live=self.view.live)
        self._reader = reader
        self._child: subprocess.Popen | None = None
        self._watcher: watch.Watcher | None = None
        self._step_label = ""          # what the live view says runs now
        self._activity = ""
        self._run_began: float | None = None  # monotonic start of the current run
        self._announced = False
        self._trapped = False

    @property
    def halted(self) -> bool:
        """True once a signal or a halt condition stopped the session."""
        return self.halt_reason is not None

    def halt(self, reason: str, signum: int | None = None) -> None:
        """Ask the session to halt; safe from a signal handler or another thread (it only
        notes; the main loop stops the child and heals). The first reason is kept; a later
        SIGTERM/SIGHUP still hurries a gentle stop along."""
        if self.halt_reason is None:
            self.halt_reason = reason
            self.halted_at = time.time()
        if signum is not None and (self.halt_signal in (None, signal.SIGINT)):
            self.halt_signal = signum

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.halt("Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name, signum)

    @contextmanager
    def halt_on_signals(self) -> Iterator[None]:
        """Within: SIGINT, SIGTERM and SIGHUP halt the session instead of killing it.
        Re-entrant; only the main thread can install handlers (elsewhere a no-op)."""
        if self._trapped or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {}
        for name in HALT_SIGNALS:
            number = getattr(signal, name, None)
            if number is not None:
                previous[number] = signal.signal(number, self._on_signal)
        self._trapped = True
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler if handler is not None else signal.SIG_DFL)
            self._trapped = False

    def _announce(self) -> None:
        if self.halted and not self._announced:
            self._announced = True
            self.say(f"\n==> halting ({self.halt_reason}): stopping the running experiment, "
                     "then undoing every open fault of this session")

    def live_state(self) -> live.LiveState:
        """What the live view shows now (called by its redraw thread too)."""
        watcher = self._watcher  # the main thread may drop it between runs
        latest = watcher.latest if watcher is not None else None
        run_s = None if self._run_began is None else time.monotonic() - self._run_began
        done = tuple(f"{r.step.index} {r.step.name} {r.verdict}"
                     + ("" if r.score is None else f" {r.score:.0f}") for r in self.results)
        return live.LiveState(
            self.plan.title, self._step_label, self._activity,
            latest.serving if latest else None, latest.gaps if latest else None,
            latest.faults if latest else None, time.time() - self.started, run_s,
            self.halt_reason, float(self.plan.targets.get("write_gap_grace_s") or 5.0), done)

    def run(self) -> list[StepResult]:
        """Run every step (until halted or, with stop_on_failure, a failure)."""
        self.view.start(self.live_state)
        try:
            results = self._run_all()
        finally:
            self.view.stop()
        self.write_timeline()
        return results

    def write_timeline(self) -> Path:
        """Draw the session's timeline into gameday-timeline.svg; return its path."""
        path = self.dir / timeline.SVG_FILE
        path.write_text(timeline.svg(timeline.build(self)))
        return path

    def _run_all(self) -> list[StepResult]:
        with self.halt_on_signals():
            total = len(self.plan.steps)
            self.say(f"==> game day '{self.plan.title}': {total} runs; session {self.dir}")
            self.say(f"    observers: chaosmoose gameday note --session {self.dir} \"what you saw\"")
            for halt in self.plan.halts:
                self.say(f"    halts when: {halt.describe()}")
            self.say("    blast radius: at most " + ", ".join(
                f"{value} {key.removeprefix('max_').removesuffix('_down')} down at once"
                for key, value in self.plan.blast_radius.items()))
            for step in self.plan.steps:
                if self.halted:
                    break
                result = self._run_step(step, total)
                self.results.append(result)
                lost = watch.lost_sentence(self.plan.halts, result.check)
                if lost and not self.halted:
                    self.halt(f"halt condition: {lost}")
                if self.plan.stop_on_failure and result.verdict != "PASSED" and not self.halted:
                    self.say("==> stop_on_failure: ending the session")
                    break
                if step is not self.plan.steps[-1] and not self.halted:
                    self._pause(self.plan.pause_between)
            if self.halted:
                self._announce()
                self.healed += self.heal_session()
        return self.results

    def _pause(self, seconds: float) -> None:
        self._step_label = f"(pause of {seconds:g} s before the next run)"
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.halted:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def _run_step(self, step: Step, total: int) -> StepResult:
        run_dir = self.dir / f"{step.index:02d}-{slug(step.name)}"
        run_dir.mkdir(parents=True)
        output = run_dir / "chaos-output.log"
        # the plan's limits reach the fault guard of every activity of the run
        env = dict(os.environ, CHAOSMOOSE_RUN_DIR=str(run_dir),
                   **radius.limits_env(self.plan.blast_radius))
        env.pop("CHAOSMOOSE_RUN_ID", None)
        self.say(f"[{step.index}/{total}] {step.name}: chaos run {step.path.name}")
        began, started = time.monotonic(), time.time()
        self._step_label, self._activity, self._run_began = (
            f"[{step.index}/{total}] {step.name}", "starting chaos run", began)
        judge = watch.Judge(self.plan.halts, self.plan.blast_radius)
        watcher = None
        if self._reader is not None:
            watcher = watch.Watcher(judge, self._reader(run_dir),
                                    lambda why: self.halt(f"halt condition: {why}"),
                                    interval=self.watch_interval)
        self._watcher = watcher
        with open(output, "w") as sink:
            self._child = subprocess.Popen(
                [self.chaos, "--log-file", str(run_dir / "chaostoolkit.log"), "run",
                 "--rollback-strategy", "always",
                 "--journal-path", str(run_dir / "journal.json"), str(step.path)],
                stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True)
            if watcher is not None:
                watcher.start()
            try:
                last_shown = ""
                while self._child.poll() is None:
                    time.sleep(0.2 if self.halted else 0.5)
                    current = _last_activity(output)
                    if current and current != last_shown:
                        self.say(f"    {time.monotonic() - began:5.1f} s  {current}")
                        last_shown = self._activity = current
                    if self.halted and self._child.poll() is None:
                        self._announce()
                        self._stop_child()
                code = self._child.returncode
            finally:
                if watcher is not None:
                    watcher.stop()
                if self._child.poll() is None:  # an exception in the loop: never orphan it
                    _signal_group(self._child, signal.SIGKILL)
                    self._child.wait()
        self._child = None
        stopped = self.halted  # a halt after the run ended does not make it halted
        self._activity = "healing open faults" if stopped else "writing the run's report"
        healed = self._heal(run_dir) if stopped else []
        self.healed += healed
        seconds = time.monotonic() - began
        result = self._summarize(step, run_dir, code, seconds, healed, stopped)
        result.started, result.ended = started, started + seconds
        if watcher is not None:
            result.leader_changes = list(watcher.leader_changes)
        self._step_label, self._activity, self._run_began = "", "", None
        self._watcher = None
        result.detection_s = judge.detection_s(_first_fault_applied(run_dir))
        result.score, result.parts = run_score(result.verdict, result.check, result.recovery,
                                               result.detection_s, self.plan.targets)
        lost = (result.check or {}).get("lost")
        shown = "not scored" if result.score is None else f"score {result.score:.0f}"
        self.say(f"    => {result.verdict} in {seconds:.1f} s, {shown}"
                 f"{'' if lost is None else f', lost writes {lost}'}"
                 f"{f', healed {len(healed)} faults' if healed else ''}")
        return result

    def _stop_child(self) -> None:
        """Stop the running child: SIGINT (unless a SIGTERM/SIGHUP asked for haste), then
        SIGTERM to its process group, then SIGKILL to the group; each rung waits its grace."""
        child = self._child
        assert child is not None
        rungs = [(signal.SIGINT, self.int_grace), (signal.SIGTERM, self.term_grace),
                 (signal.SIGKILL, 10.0)]
        for number, grace in rungs:
            if child.poll() is not None:
                break
            hasty = self.halt_signal in (signal.SIGTERM, signal.SIGHUP)
            if number == signal.SIGINT and hasty:
                continue
            self.say(f"    sending {number.name} to the experiment (pid {child.pid})")
            _signal_group(child, number, group=number != signal.SIGINT)
            deadline = time.monotonic() + grace
            while child.poll() is None and time.monotonic() < deadline:
                if number == signal.SIGINT and self.halt_signal in (signal.SIGTERM,
                                                                    signal.SIGHUP):
                    break  # a SIGTERM came while waiting politely: hurry up
                time.sleep(0.1)
            if child.poll() is None and number != signal.SIGKILL:
                self.say(f"    the experiment did not stop within {grace:g} s of {number.name}")
        child.wait()
        _signal_group(child, signal.SIGKILL)  # leftovers of its process group (its helpers)

    def heal_session(self) -> list[dict[str, Any]]:
        """Undo every fault still open in any ledger of this session's runs."""
        results = []
        for ledger in ledgers_under(self.dir):
            results += self._heal(ledger.run_dir)
        return results

    def _heal(self, run_dir: Path) -> list[dict[str, Any]]:
        results = _faults.undo_open(Ledger(run_dir))
        for item in results:
            state = f"undone ({item['how']})" if item["undone"] else f"FAILED: {item['error']}"
            self.say(f"    heal {item['kind']} on {item['service']}: {state}")
        return results

    def _summarize(self, step: Step, run_dir: Path, code: int | None, seconds: float,
                   healed: list[dict[str, Any]], stopped: bool) -> StepResult:
        if not (run_dir / "journal.json").exists():
            verdict = "HALTED" if stopped else f"NO JOURNAL (exit {code})"
            return StepResult(step, run_dir, code, verdict, seconds, None, healed=healed)
        run = collect.load_run(run_dir)
        from chaosmoose.logs._collector import read_window
        from chaosmoose.monitoring._prometheus import range_query
        from chaosmoose.report import evidence

        # The evidence the run stored at its end; live (unless offline) only where missing.
        evidence.fill_run(run, offline=self.offline, query_range=range_query, read=read_window)
        (run_dir / "report.md").write_text(render.markdown(run))
        (run_dir / "report.html").write_text(render.html_page(run))
        verdict = "HALTED" if stopped else render.verdict(run)
        if code not in (0, None) and verdict == "PASSED":
            verdict = f"FAILED (exit {code})"
        return StepResult(step, run_dir, code, verdict, seconds, None, run.check,
                          collect.recovery(run), healed)


def _signal_group(child: subprocess.Popen, number: int, group: bool = True) -> None:
    """Send ``number`` to the child's process group (it leads its own session), or to the
    child alone; a child already gone is fine."""
    try:
        if group:
            os.killpg(child.pid, number)
        else:
            child.send_signal(number)
    except (ProcessLookupError, PermissionError):
        pass


def _first_fault_applied(run_dir: Path) -> float | None:
    """When the run's first fault (not its workload) was in place."""
    times = [f.get("applied_t") or f.get("t") for f in Ledger(run_dir).faults()
             if f["kind"] != WORKLOAD_KIND]
    return min((t for t in times if isinstance(t, (int, float))), default=None)


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
    from chaosmoose.gameday.score import session_score

    return {"title": session.plan.title, "dir": str(session.dir), "halted": session.halted,
            "halt_reason": session.halt_reason, "healed": session.healed,
            "halts": [h.describe() for h in session.plan.halts],
            "targets": session.plan.targets, "blast_radius": session.plan.blast_radius,
            "started": session.started, "halted_at": session.halted_at,
            "score": session_score([r.score for r in session.results]),
            "runs": [
                {"index": r.step.index, "name": r.step.name, "experiment": str(r.step.path),
                 "verdict": r.verdict, "seconds": round(r.seconds, 1), "score": r.score,
                 "score_parts": r.parts, "detection_s": r.detection_s,
                 "lost": (r.check or {}).get("lost"), "exit_code": r.exit_code,
                 "healed": r.healed, "started": r.started, "ended": r.ended,
                 "leader_changes": [{"t": t, "leader": name} for t, name in r.leader_changes]}
                for r in session.results]}


def write_summary(session: Session) -> Path:
    """Write gameday.json; return its path."""
    path = session.dir / "gameday.json"
    path.write_text(json.dumps(summary(session), indent=2) + "\n")
    return path


def chaos_binary() -> str:
    """The ``chaos`` next to this Python (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "chaos"
    return str(beside) if beside.exists() else "chaos"
