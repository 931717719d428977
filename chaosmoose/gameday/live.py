"""The game day's live view: a terminal dashboard, or plain lines when not on a terminal.

On a terminal (``sys.stdout.isatty()``, not ``TERM=dumb``, not asked for plain output) a
`rich <https://rich.readthedocs.io>`_ ``Live`` panel stays at the bottom of the screen
and is redrawn four times a second from the session's state: the current experiment and
activity, the master serving /leader, which clients are writing (seconds since each one's
last acknowledged write), the open faults and the elapsed time. The session's lines (each
activity as it starts, each run's outcome) scroll above it. Anywhere else (a pipe, a log
file, CI) the same lines are printed as they are, and nothing else.

:func:`rows` turns a :class:`LiveState` into the dashboard's ``(label, value)`` rows; it
is pure, so the wording is tested without a terminal.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rich.live import Live
    from rich.panel import Panel

__all__: list[str] = []  # not an activity module

REFRESH_PER_SECOND = 4


@dataclass(frozen=True)
class LiveState:
    """What the dashboard shows at one instant (``None``: not observed)."""

    title: str
    step: str = ""                                # "[2/5] follower loss"; "" between runs
    activity: str = ""                            # "action kill-a-follower"
    serving: tuple[str, ...] | None = None        # masters serving /leader
    gaps: dict[str, float] | None = None          # client -> s since its last acked write
    faults: tuple[str, ...] | None = None         # open faults of the session's ledgers
    elapsed_s: float = 0.0                        # since the session started
    run_elapsed_s: float | None = None            # since the current run started
    halt: str | None = None                       # why the session is halting
    writing_within_s: float = 5.0                 # a client acked within this is writing
    done: tuple[str, ...] = field(default_factory=tuple)  # "1 leader loss PASSED 100"


def clock(seconds: float) -> str:
    """``mm:ss`` (``h:mm:ss`` from an hour on)."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


def leader_text(serving: tuple[str, ...] | None) -> str:
    """The leader row: one name, none, several, or unknown."""
    if serving is None:
        return "unknown (not polled)"
    if not serving:
        return "NONE serving /leader"
    if len(serving) == 1:
        return serving[0]
    return f"{len(serving)} serving /leader: {', '.join(serving)}"


def clients_text(gaps: dict[str, float] | None, within: float) -> str:
    """The clients row: how many write, and each one's time since its last acked write."""
    if gaps is None:
        return "unknown (histories not read)"
    if not gaps:
        return "no workload running"
    writing = [c for c, gap in gaps.items() if gap <= within]
    each = ", ".join(f"{client} {'' if gap <= within else 'STALLED '}{gap:.1f} s"
                     for client, gap in sorted(gaps.items()))
    return f"{len(writing)} of {len(gaps)} writing ({each})"


def faults_text(faults: tuple[str, ...] | None) -> str:
    """The open-faults row."""
    if faults is None:
        return "unknown"
    return "; ".join(faults) if faults else "none"


def rows(state: LiveState) -> list[tuple[str, str]]:
    """The dashboard's rows, in order."""
    elapsed = clock(state.elapsed_s)
    if state.run_elapsed_s is not None:
        elapsed += f" (this run {clock(state.run_elapsed_s)})"
    out = [("experiment", state.step or "(between runs)"),
           ("activity", state.activity or "-"),
           ("leader", leader_text(state.serving)),
           ("clients writing", clients_text(state.gaps, state.writing_within_s)),
           ("open faults", faults_text(state.faults)),
           ("elapsed", elapsed)]
    if state.done:
        out.append(("done", "; ".join(state.done)))
    if state.halt:
        out.append(("HALTING", state.halt))
    return out


def _style(label: str, value: str) -> str:
    """The colour of one row's value."""
    bad = (value.startswith(("NONE", "unknown")) or "STALLED" in value
           or label == "HALTING" or (label == "leader" and "serving /leader:" in value))
    if bad:
        return "bold red"
    if label == "open faults" and value != "none":
        return "yellow"
    return ""


def render(state: LiveState) -> Panel:
    """The dashboard as a rich Panel (rich is imported when a dashboard is drawn)."""
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in rows(state):
        grid.add_row(label, Text(value, style=_style(label, value)))
    return Panel(grid, title=f"game day: {state.title}", title_align="left")


class View(Protocol):
    """Where the session's lines and state go."""

    live: bool  # True: the session should poll the leader and clients for the dashboard

    def say(self, line: str) -> None:
        """Show one line."""

    def start(self, state: Callable[[], LiveState]) -> None:
        """Begin showing ``state()`` (called again at every redraw)."""

    def stop(self) -> None:
        """Stop showing the state (the last picture stays)."""


class PlainView:
    """Plain lines, as they are said; no dashboard."""

    live = False

    def __init__(self, say: Callable[[str], None] = print) -> None:
        self._say = say

    def say(self, line: str) -> None:
        """Print the line."""
        self._say(line)

    def start(self, state: Callable[[], LiveState]) -> None:
        """Nothing to draw."""

    def stop(self) -> None:
        """Nothing to stop."""


class LiveView:
    """A rich Live dashboard at the bottom of the terminal, the lines scrolling above."""

    live = True

    def __init__(self, stream: IO[str] | None = None,
                 refresh_per_second: float = REFRESH_PER_SECOND) -> None:
        from rich.console import Console

        self.console = Console(file=stream or sys.stdout)
        self.refresh_per_second = refresh_per_second
        self._live: Live | None = None

    def say(self, line: str) -> None:
        """Print the line above the dashboard."""
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def start(self, state: Callable[[], LiveState]) -> None:
        """Draw ``state()`` now and at every refresh (a rich thread redraws it, so the clock
        moves on while the session is busy writing a report or healing)."""
        from rich.live import Live

        self._live = Live(console=self.console, get_renderable=lambda: render(state()),
                          refresh_per_second=self.refresh_per_second, transient=False)
        self._live.start()

    def stop(self) -> None:
        """Stop redrawing; the last picture stays on screen."""
        if self._live is not None:
            self._live.stop()
            self._live = None


def on_terminal(stream: IO[str]) -> bool:
    """Whether ``stream`` is a terminal that can hold a dashboard."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream
        return False
    return tty and os.environ.get("TERM", "") != "dumb"


def make_view(plain: bool = False, stream: IO[str] | None = None) -> View:
    """The dashboard on a terminal, plain lines otherwise (or when ``plain``)."""
    out = stream or sys.stdout
    if plain or not on_terminal(out):
        return PlainView(lambda line: print(line, file=out, flush=True))
    return LiveView(out)
