"""The whole game-day session in one picture: an SVG timeline, one row per run.

Each run is a bar from its start to its end, coloured by its outcome (passed, deviated,
failed, halted); on it, the fault windows of its ledger (applied to undone; the workload
runner, an observer, left out) and the leader changes (from ``leader-overlap.json`` when
the experiment checked for overlapping leaders, else as the game-day watcher saw them). A
halt is a dashed line across every row. The time axis counts from the session's start.
Every label links to the run's report. No script, no external file: the SVG is inlined in
``gameday.html`` and written as ``gameday-timeline.svg`` for ``gameday.md``.

:func:`build` turns a session into a :class:`SessionTimeline` (plain data); :func:`svg`
and :func:`markdown_lines` draw it. Every text is escaped.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from chaosmoose.ledger import Ledger

if TYPE_CHECKING:
    from chaosmoose.gameday.session import Session, StepResult

__all__: list[str] = []  # not an activity module

SVG_FILE = "gameday-timeline.svg"
COLOURS = {"passed": "#1a7f37", "deviated": "#bf8700", "failed": "#c62828",
           "halted": "#6e7781"}
FAULT, LEADER, HALT = "#24292f", "#0969da", "#c62828"
WIDTH, LABEL, RIGHT, TOP, ROW, AXIS = 900, 200, 24, 34, 30, 34
STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)


@dataclass(frozen=True)
class Window:
    """A fault in place from ``start`` to ``end`` (Unix times)."""

    start: float
    end: float
    label: str
    open_at_end: bool = False


@dataclass(frozen=True)
class Bar:
    """One run of the session."""

    index: int
    name: str
    verdict: str
    outcome: str                  # passed, deviated, failed or halted
    start: float
    end: float
    report: str | None = None     # the run's report.html, relative to the session folder
    faults: tuple[Window, ...] = ()
    leaders: tuple[tuple[float, str], ...] = ()  # (t, the master serving from then on)


@dataclass(frozen=True)
class SessionTimeline:
    """Everything the picture shows."""

    title: str
    start: float
    end: float
    bars: tuple[Bar, ...] = ()
    halt: tuple[float, str] | None = None  # (when, why)


def outcome(verdict: str) -> str:
    """A run's verdict as one of passed, deviated, failed, halted."""
    if verdict == "PASSED":
        return "passed"
    if verdict == "HALTED":
        return "halted"
    return "deviated" if verdict.startswith("DEVIATED") else "failed"


def report_link(session_dir: Path, run_dir: Path, name: str) -> str | None:
    """``<run folder>/<name>`` relative to the session folder, when the file exists."""
    path = run_dir / name
    if not path.exists():
        return None
    return Path(os.path.relpath(path, session_dir)).as_posix()


def fault_windows(run_dir: Path, end: float) -> tuple[Window, ...]:
    """The run's faults (not its workload runner) from applied to undone; a fault still
    open is drawn to ``end``."""
    windows = []
    for fault in Ledger(run_dir).faults():
        if str(fault.get("kind", "")).startswith("workload."):
            continue
        start = fault.get("applied_t") or fault.get("t")
        if not isinstance(start, (int, float)):
            continue
        undone = fault.get("undone_t")
        closed = isinstance(undone, (int, float))
        label = f"{fault['kind']} on {(fault.get('target') or {}).get('service', '?')}"
        windows.append(Window(float(start), float(undone) if closed else max(end, start),
                              label, not closed))
    return tuple(sorted(windows, key=lambda w: w.start))


def leader_marks(result: StepResult) -> tuple[tuple[float, str], ...]:
    """Leader changes of a run: the overlap checker's (exact) when it ran, else the
    watcher's polls after its first (the first is the leader the run started with)."""
    from chaosmoose.report.collect import leader_changes

    exact = []
    for change in leader_changes(result.run_dir):
        t = change.get("new_served_from")
        node = (change.get("new") or {}).get("node")
        if isinstance(t, (int, float)) and node:
            exact.append((float(t), str(node)))
    if exact:
        return tuple(sorted(exact))
    return tuple(result.leader_changes[1:])


def build(session: Session) -> SessionTimeline:
    """The session's timeline from its results, ledgers and halt."""
    bars = []
    for r in session.results:
        end = r.ended or (r.started + r.seconds)
        bars.append(Bar(r.step.index, r.step.name, r.verdict, outcome(r.verdict), r.started,
                        end, report_link(session.dir, r.run_dir, "report.html"),
                        fault_windows(r.run_dir, end), leader_marks(r)))
    halt = None
    if session.halted_at is not None:
        halt = (session.halted_at, str(session.halt_reason))
    ends = [session.started, *(b.end for b in bars), *(w.end for b in bars for w in b.faults)]
    if halt:
        ends.append(halt[0])
    return SessionTimeline(session.plan.title, session.started, max(ends), tuple(bars), halt)


# --- drawing ------------------------------------------------------------------------------

def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def mmss(seconds: float) -> str:
    """``m:ss`` from the session's start (``h:mm:ss`` from an hour on)."""
    whole = round(max(0.0, seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def tick_step(span: float, most: int = 10) -> int:
    """The smallest round step in seconds that gives at most ``most`` ticks."""
    return next((s for s in STEPS if span / s <= most), STEPS[-1])


class _Scale:
    """Session time to x."""

    def __init__(self, start: float, end: float) -> None:
        self.start, self.span = start, max(end - start, 1.0)

    def x(self, t: float) -> float:
        plot = WIDTH - LABEL - RIGHT
        return round(LABEL + (min(max(t, self.start), self.start + self.span) - self.start)
                     / self.span * plot, 1)


def _legend() -> list[str]:
    parts, x = [], LABEL
    for name, colour in COLOURS.items():
        parts.append(f'<rect x="{x}" y="8" width="12" height="12" fill="{colour}" '
                     f'fill-opacity="0.45" stroke="{colour}"/><text x="{x + 16}" y="18">'
                     f"{name}</text>")
        x += 80
    parts.append(f'<rect x="{x}" y="12" width="20" height="6" fill="{FAULT}"/>'
                 f'<text x="{x + 24}" y="18">fault</text>')
    x += 70
    parts.append(f'<path d="M{x + 5},9 l5,5 l-5,5 l-5,-5 z" fill="{LEADER}"/>'
                 f'<text x="{x + 14}" y="18">leader change</text>')
    x += 110
    parts.append(f'<line x1="{x}" y1="8" x2="{x}" y2="22" stroke="{HALT}" '
                 f'stroke-dasharray="4,3" stroke-width="2"/><text x="{x + 6}" y="18">halt</text>')
    return parts


def _bar(bar: Bar, row: int, scale: _Scale) -> list[str]:
    y = TOP + row * ROW
    colour = COLOURS[bar.outcome]
    x0, x1 = scale.x(bar.start), scale.x(bar.end)
    name = bar.name if len(bar.name) <= 26 else bar.name[:25] + "…"
    underline = ' text-decoration="underline"' if bar.report else ""
    label = (f'<text x="6" y="{y + 19}" class="run"{underline}><title>{_e(bar.name)}: '
             f"{_e(bar.verdict)}</title>{bar.index}. {_e(name)}</text>")
    if bar.report:  # the label opens the run's report
        label = f'<a href="{_e(quote(bar.report))}">{label}</a>'
    span = (f'<rect x="{x0}" y="{y + 4}" width="{max(x1 - x0, 1.5):.1f}" height="20" '
            f'fill="{colour}" fill-opacity="0.45" stroke="{colour}" class="{bar.outcome}">'
            f"<title>{bar.index}. {_e(bar.name)}: {_e(bar.verdict)}, "
            f"{mmss(bar.start - scale.start)} to {mmss(bar.end - scale.start)}</title></rect>")
    parts = [label, span]
    for w in bar.faults:
        a, b = scale.x(w.start), scale.x(w.end)
        still = ", never undone" if w.open_at_end else ""
        parts.append(f'<rect x="{a}" y="{y + 15}" width="{max(b - a, 1.5):.1f}" height="7" '
                     f'fill="{FAULT}" fill-opacity="0.8" class="fault"><title>{_e(w.label)}: '
                     f"{mmss(w.start - scale.start)} to {mmss(w.end - scale.start)}{still}"
                     "</title></rect>")
    for t, leader in bar.leaders:
        x = scale.x(t)
        parts.append(f'<path d="M{x},{y + 1} l5,5 l-5,5 l-5,-5 z" fill="{LEADER}" '
                     f'class="leader"><title>leader: {_e(leader)} from '
                     f"{mmss(t - scale.start)}</title></path>")
    return parts


def _axis(scale: _Scale, bottom: int) -> list[str]:
    baseline = (f'<line x1="{LABEL}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}" '
                'stroke="#888"/>')
    parts = [baseline]
    step = tick_step(scale.span)
    t = 0
    while t <= scale.span + 1e-6:
        x = scale.x(scale.start + t)
        parts.append(f'<line x1="{x}" y1="{TOP}" x2="{x}" y2="{bottom + 4}" stroke="#ddd"/>'
                     f'<text x="{x}" y="{bottom + 16}" text-anchor="middle">{mmss(t)}</text>')
        t += step
    parts.append(f'<text x="6" y="{bottom + 16}">time since start</text>')
    return parts


def svg(model: SessionTimeline) -> str:
    """The timeline as one standalone SVG document (also valid inline in HTML)."""
    scale = _Scale(model.start, model.end)
    rows = max(len(model.bars), 1)
    bottom = TOP + rows * ROW + 4
    height = bottom + AXIS
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" role="img" class="session-timeline" '
            'font-family="sans-serif" font-size="11">')
    parts = [head, f"<title>Game day {_e(model.title)}: session timeline</title>",
             f'<rect width="{WIDTH}" height="{height}" fill="#fafafa"/>']
    parts += _legend()
    parts += _axis(scale, bottom)
    if not model.bars:
        parts.append(f'<text x="{LABEL + 8}" y="{TOP + 19}">no run started</text>')
    for row, bar in enumerate(model.bars):
        parts += _bar(bar, row, scale)
    if model.halt is not None:
        t, why = model.halt
        x = scale.x(t)
        parts.append(f'<line x1="{x}" y1="{TOP - 4}" x2="{x}" y2="{bottom}" stroke="{HALT}" '
                     f'stroke-width="2" stroke-dasharray="4,3" class="halt"><title>halted at '
                     f"{mmss(t - model.start)}: {_e(why)}</title></line>"
                     f'<text x="{min(x + 4, WIDTH - RIGHT - 40)}" y="{TOP - 6}" fill="{HALT}">'
                     "halted</text>")
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def markdown_lines(model: SessionTimeline) -> list[str]:
    """The timeline in words, one line per run (under the picture in gameday.md)."""
    lines = []
    for bar in model.bars:
        text = (f"- {mmss(bar.start - model.start)}–{mmss(bar.end - model.start)} "
                f"#{bar.index} {bar.name}: {bar.verdict}")
        if bar.faults:
            text += "; faults: " + ", ".join(
                f"{w.label} {mmss(w.start - model.start)}–{mmss(w.end - model.start)}"
                + (" (never undone)" if w.open_at_end else "") for w in bar.faults)
        if bar.leaders:
            text += "; leader: " + ", ".join(f"{name} from {mmss(t - model.start)}"
                                             for t, name in bar.leaders)
        lines.append(text)
    if model.halt is not None:
        lines.append(f"- {mmss(model.halt[0] - model.start)} halted: {model.halt[1]}")
    return lines or ["- no run started"]
