"""Gather what a report shows from a run directory and the live lab.

A run directory is what ``make experiment`` (or ``chaos run`` with ``CHAOSMOOSE_RUN_DIR``)
leaves: ``journal.json``, the fault ledger ``faults.jsonl``, ``workload/*/check.json``, the
clients' histories ``workload/*/<client>.history.jsonl`` (copied by ``stop_workload``) and,
when ``no_leader_overlap`` ran, its leader changes in ``leader-overlap.json``.
Prometheus series and log lines of the run's time window come from the evidence stored in
``evidence/`` at the end of the run (``chaosmoose.report.evidence``), else from the lab; if
neither has them the report says so instead of failing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ActivityFailed

from chaosmoose.ledger import Ledger

__all__: list[str] = []  # not an activity module

# (title, PromQL) drawn over the run's window; each is one series.
SERIES = (
    ("masters serving as leader", "sum(mooseng_master_is_leader)"),
    ("chunkservers registered with the leader", "max(mooseng_chunkservers_connected)"),
    ("chunks missing", 'max(mooseng_chunks{state="missing"})'),
    ("chunks under goal or endangered", 'max(sum by (node) (mooseng_chunks{state=~"undergoal|endangered"}))'),
    ("client FUSE writes per second", 'sum(rate(mooseng_client_fuse_operations_total{op="write"}[15s]))'),
    ("alerts firing", 'count(ALERTS{alertstate="firing"}) or vector(0)'),
)
LOG_PATTERN = (r"event=(ha_decision|fenced|promot|demot|write_locks|lease|signal|role_start|"
               r"daemon_died)|crc error|connection lost|registered|register error")
MARGIN_S = 30.0  # series and logs start this long before the run and end this long after


@dataclass
class Event:
    """One line of the timeline."""

    t: float
    source: str  # method, rollback, ledger, log
    what: str
    status: str = ""


@dataclass
class Run:
    """Everything one report shows."""

    path: Path
    journal: dict[str, Any]
    faults: list[dict[str, Any]]
    check: dict[str, Any] | None
    start: float
    end: float
    events: list[Event] = field(default_factory=list)
    series: list[dict[str, Any]] = field(default_factory=list)
    series_error: str | None = None
    logs: list[dict[str, str]] = field(default_factory=list)
    logs_error: str | None = None
    histories: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    leader_changes: list[dict[str, Any]] = field(default_factory=list)
    # evidence/manifest.json of the run directory ({} when none was stored or readable)
    evidence: dict[str, Any] = field(default_factory=dict)
    # where ``series`` and ``logs`` came from: "stored" (evidence/), "live" (the lab) or "none"
    series_source: str = "none"
    logs_source: str = "none"

    @property
    def title(self) -> str:
        """The experiment's title."""
        return str(self.journal.get("experiment", {}).get("title", "(untitled experiment)"))


def epoch(stamp: str | None) -> float | None:
    """An ISO 8601 time of the journal as a Unix time."""
    if not stamp:
        return None
    return datetime.fromisoformat(stamp).timestamp()


def load_run(path: Path) -> Run:
    """Read the journal, ledger and checker result of a run directory (or a journal file)."""
    journal_path = path if path.is_file() else path / "journal.json"
    if not journal_path.exists():
        raise ActivityFailed(f"{path}: no journal.json; expected a run directory of `make "
                             "experiment` or a journal written by `chaos run --journal-path`")
    try:
        journal = json.loads(journal_path.read_text())
    except ValueError as exc:
        raise ActivityFailed(f"{journal_path}: not a JSON journal ({exc})") from None
    run_dir = journal_path.parent
    faults = Ledger(run_dir).faults() if (run_dir / "faults.jsonl").exists() else []
    checks = sorted(run_dir.glob("workload/*/check.json"))
    check = json.loads(checks[-1].read_text()) if checks else None
    start = epoch(journal.get("start")) or 0.0
    end = epoch(journal.get("end")) or start
    run = Run(run_dir, journal, faults, check, start, end)
    run.events = timeline(journal, faults)
    run.histories = histories(run_dir)
    run.leader_changes = leader_changes(run_dir)
    return run


def histories(run_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """The clients' workload histories of the run's (newest) workload; {} when none."""
    folders = sorted({p.parent for p in run_dir.glob("workload/*/*.history.jsonl")})
    if not folders:
        return {}
    found = {}
    for path in sorted(folders[-1].glob("*.history.jsonl")):
        client = path.name.removesuffix(".history.jsonl")
        found[client] = []
        for line in path.read_text().splitlines():
            try:
                found[client].append(json.loads(line))
            except ValueError:  # a torn line: the others still show
                continue
    return found


def leader_changes(run_dir: Path) -> list[dict[str, Any]]:
    """The leader changes ``no_leader_overlap`` saved for the run; [] when it did not run."""
    try:
        saved = json.loads((run_dir / "leader-overlap.json").read_text())
    except (FileNotFoundError, ValueError):
        return []
    changes = saved.get("leader_changes") if isinstance(saved, dict) else None
    return [c for c in changes or [] if isinstance(c, dict)]


def _short(output: Any, width: int = 160) -> str:
    text = json.dumps(output, sort_keys=True, default=str) if output is not None else ""
    return text if len(text) <= width else text[:width - 1] + "…"


def timeline(journal: dict[str, Any], faults: list[dict[str, Any]]) -> list[Event]:
    """Method and rollback activities and ledger events, in time order."""
    events: list[Event] = []
    for phase in ("run", "rollbacks"):
        for item in journal.get(phase) or []:
            began = epoch(item.get("start"))
            if began is None:
                continue
            activity = item.get("activity", {})
            detail = item.get("exception") and str(item["exception"][-1]).strip()
            what = (f"{activity.get('type', 'activity')} {activity.get('name')}: "
                    f"{detail or _short(item.get('output'))}")
            events.append(Event(began, "method" if phase == "run" else "rollback", what,
                                item.get("status", "")))
    for fault in faults:
        service = fault.get("target", {}).get("service", "?")
        events.append(Event(fault["t"], "ledger", f"fault {fault['kind']} on {service} opened"))
        if fault.get("undone_t"):
            events.append(Event(fault["undone_t"], "ledger",
                                f"fault {fault['kind']} on {service} undone: {fault.get('how')}"))
    return sorted(events, key=lambda e: e.t)


def recovery(run: Run) -> list[tuple[str, float]]:
    """How long each waiting probe of the method waited (``waited_s`` in its output)."""
    found = []
    for item in run.journal.get("run") or []:
        output = item.get("output")
        if isinstance(output, dict) and isinstance(output.get("waited_s"), (int, float)):
            found.append((item["activity"].get("name", "?"), float(output["waited_s"])))
    return found


def series_step(start: float, end: float) -> float:
    """Seconds between two points of a range query over [start, end] (about 240 points)."""
    return max(1.0, (end - start) / 240)


def query_series(query_range: Callable[[str, float, float, float], list], start: float,
                 end: float) -> tuple[list[dict[str, Any]], str | None]:
    """Every series of ``SERIES`` over [start, end]: (series so far, error or None).

    Stops at the first query that fails (an unreachable Prometheus fails them all).
    """
    step = series_step(start, end)
    found: list[dict[str, Any]] = []
    try:
        for title, query in SERIES:
            points = query_range(query, start, end, step)
            found.append({"title": title, "query": query, "points": points})
    except ActivityFailed as exc:
        return found, str(exc)
    return found, None


def add_series(run: Run, query_range: Callable[[str, float, float, float], list]) -> None:
    """Fill ``run.series`` from ``query_range(query, start, end, step)`` (Prometheus, live)."""
    found, error = query_series(query_range, run.start - MARGIN_S, run.end + MARGIN_S)
    run.series.extend(found)
    run.series_error = error
    run.series_source = "live" if run.series or error is None else "none"


def add_logs(run: Run, read: Callable[..., list], pattern: str = LOG_PATTERN,
             limit: int = 200) -> None:
    """Fill ``run.logs`` with the collected lines of the run's window matching ``pattern``
    (the log collector, live)."""
    try:
        lines = read(run.start - MARGIN_S, run.end + MARGIN_S, None, pattern, limit)
        run.logs = [line.as_dict() for line in lines]
        run.logs_source = "live"
    except ActivityFailed as exc:
        run.logs_error = str(exc)
