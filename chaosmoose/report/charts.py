"""Inline SVG charts that share one time frame: axes with units, legends, fault windows.

Every chart of a report is drawn on the same :class:`Frame`: the same time range (seconds
since the run's start, from ``-MARGIN_S`` to the run's length ``+ MARGIN_S``, the window the
Prometheus series and log lines cover), the same plot width, the fault windows (ledger
faults from applied to undone, workload runners left out, overlapping windows merged) shaded
grey and the leader changes dashed. A chart is plain SVG: no scripts, no external files,
every label escaped. :mod:`timeline` draws the write-availability lanes and the latency
chart with these parts; :func:`series_svg` draws one Prometheus series.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__: list[str] = []  # not an activity module

WIDTH, LEFT, RIGHT = 760, 90, 16
PLOT = WIDTH - LEFT - RIGHT
TOP = 28
FONT_PX = 11    # every text of the charts (the titles: 13)
CHAR_PX = 6.5   # a generous average glyph width at FONT_PX, to space legend entries
FAULT_FILL = "#9e9e9e"
LEADER_COLOUR = "#6f42c1"
SERIES_COLOUR = "#1f6feb"
FAULT_LEGEND = "fault (opened to undone)"
AXIS_LABEL = "time since run start (s)"

# The unit of each Prometheus series of ``collect.SERIES``, by title (y axis and legend).
UNITS = {
    "masters serving as leader": "masters",
    "chunkservers registered with the leader": "chunkservers",
    "chunks missing": "chunks",
    "chunks under goal or endangered": "chunks",
    "client FUSE writes per second": "ops/s",
    "alerts firing": "alerts",
}
DEFAULT_UNIT = "value"


def unit_of(title: str) -> str:
    """The unit of the series named ``title`` (``value`` for an unknown series)."""
    return UNITS.get(title, DEFAULT_UNIT)


@dataclass(frozen=True)
class Frame:
    """The time range and marks every chart shares; times in seconds since ``origin``."""

    origin: float                                  # epoch seconds drawn as 0
    lo: float
    hi: float
    faults: tuple[tuple[float, float, str], ...] = ()   # (from, to, label), merged, clipped
    leader_changes: tuple[tuple[float, str], ...] = ()  # (t, label) inside [lo, hi]

    @property
    def span(self) -> float:
        """The range's length in seconds (1 when empty)."""
        return (self.hi - self.lo) or 1.0

    def x(self, t: float) -> float:
        """The x pixel of ``t`` seconds since the origin."""
        return round(LEFT + (t - self.lo) / self.span * PLOT, 1)

    def contains(self, t: float) -> bool:
        """Whether ``t`` (seconds since the origin) is inside the range."""
        return self.lo <= t <= self.hi

    @property
    def epoch_range(self) -> tuple[float, float]:
        """The range's ends as epoch seconds."""
        return self.origin + self.lo, self.origin + self.hi


def merge_windows(windows: Iterable[tuple[float, float, str]]) -> list[tuple[float, float, str]]:
    """Overlapping or touching windows as one (labels joined), so shading never stacks."""
    merged: list[list[Any]] = []
    for a, b, label in sorted(windows):
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
            merged[-1][2].append(label)
        else:
            merged.append([a, b, [label]])
    return [(a, b, _join(labels)) for a, b, labels in merged]


def _join(labels: list[str]) -> str:
    unique = list(dict.fromkeys(labels))
    return unique[0] if len(unique) == 1 else f"{unique[0]} and {len(unique) - 1} more"


def fault_windows(faults: Iterable[Mapping[str, Any]], origin: float, lo: float,
                  hi: float) -> list[tuple[float, float, str]]:
    """``(start, end, label)`` in seconds since ``origin`` of each ledger fault but the
    workload's own (opened ``t`` to ``undone_t``; still open: to ``hi``), clipped to
    [lo, hi]; a fault wholly outside is left out."""
    windows = []
    for fault in faults:
        opened = fault.get("t")
        if str(fault.get("kind", "")).startswith("workload.") or not isinstance(
                opened, (int, float)):
            continue
        undone = fault.get("undone_t")
        a = max(lo, opened - origin)
        b = min(hi, (undone - origin) if isinstance(undone, (int, float)) else hi)
        if a <= b:
            service = (fault.get("target") or {}).get("service", "?")
            windows.append((a, b, f"{fault.get('kind')} on {service}"))
    return windows


def make_frame(origin: float, lo: float, hi: float,
               faults: Iterable[Mapping[str, Any]] = (),
               leader_changes: Iterable[tuple[float, str]] = ()) -> Frame:
    """A frame from ledger faults (opened ``t`` to ``undone_t``; still open: to the end)
    and leader changes (epoch t, label), both clipped to [lo, hi]."""
    windows = fault_windows(faults, origin, lo, hi)
    marks = tuple(sorted((t - origin, label) for t, label in leader_changes
                         if lo <= t - origin <= hi))
    return Frame(origin, lo, hi, tuple(merge_windows(windows)), marks)


# --- parts ----------------------------------------------------------------------------

def tick_step(span: float) -> float:
    """A round tick spacing giving at most about 10 ticks over ``span`` seconds."""
    for step in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600):
        if span / step <= 10:
            return step
    return 3600 * math.ceil(span / 36000)


def open_svg(css_class: str, height: float, frame: Frame, title: str) -> str:
    """The ``<svg>`` start tag of a chart (its time range in ``data-t0``/``data-t1``, epoch
    seconds) and its title."""
    t0, t1 = frame.epoch_range
    return (f'<svg class="{css_class}" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
            f'height="{height}" role="img" xmlns="http://www.w3.org/2000/svg" '
            f'data-t0="{t0:.3f}" data-t1="{t1:.3f}" '
            f'style="font-family:sans-serif;font-size:{FONT_PX}px">'
            f'<title>{html.escape(title)}</title>'
            f'<text class="title" x="{LEFT}" y="16" style="font-size:13px;fill:#222">'
            f'{html.escape(title)}</text>')


def time_axis(frame: Frame, y: float) -> str:
    """The x axis at height ``y``: a tick and its label every round number of seconds."""
    step = tick_step(frame.span)
    parts = [f'<line x1="{LEFT}" y1="{y}" x2="{LEFT + PLOT}" y2="{y}" stroke="#666"/>']
    first = math.ceil(frame.lo / step - 1e-9)
    for i in range(first, math.floor(frame.hi / step + 1e-9) + 1):
        t = i * step
        x = frame.x(t)
        parts.append(f'<line class="tick" x1="{x}" y1="{y}" x2="{x}" y2="{y + 4}" '
                     f'stroke="#666"/><text x="{x}" y="{y + 14}" text-anchor="middle">'
                     f'{t:g}</text>')
    parts.append(f'<text x="{LEFT + PLOT / 2}" y="{y + 28}" text-anchor="middle">'
                 f'{AXIS_LABEL}</text>')
    return "".join(parts)


def shade_faults(frame: Frame, top: float, bottom: float) -> str:
    """Grey rectangles over [top, bottom] for each fault window, with a tooltip."""
    return "".join(
        f'<rect class="fault" x="{frame.x(a)}" y="{top}" '
        f'width="{max(1.0, round(frame.x(b) - frame.x(a), 1))}" height="{bottom - top}" '
        f'fill="{FAULT_FILL}" fill-opacity="0.3"><title>{html.escape(label)}: '
        f'{a:.1f} to {b:.1f} s</title></rect>' for a, b, label in frame.faults)


def mark_leaders(frame: Frame, top: float, bottom: float, labels: bool = True) -> str:
    """A dashed vertical line at each leader change, labelled with the new leader."""
    parts = []
    for t, label in frame.leader_changes:
        x = frame.x(t)
        parts.append(f'<line class="leader" x1="{x}" y1="{top}" x2="{x}" y2="{bottom}" '
                     f'stroke="{LEADER_COLOUR}" stroke-dasharray="4,3"><title>'
                     f'{html.escape(label)} at {t:.1f} s</title></line>')
        if labels:
            parts.append(f'<text x="{x + 2}" y="{top}" style="fill:{LEADER_COLOUR}">'
                         f'{html.escape(label)}</text>')
    return "".join(parts)


def box(fill: str, extra: str = "") -> str:
    """A legend swatch: a small filled box."""
    return f'<rect x="0" y="0" width="12" height="10" fill="{fill}" {extra}/>'


def line_swatch(colour: str, dash: str = "") -> str:
    """A legend swatch: a short line."""
    style = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<line x1="0" y1="5" x2="12" y2="5" stroke="{colour}" stroke-width="2"{style}/>'


def legend(items: Sequence[tuple[str, str]], y: float) -> str:
    """A row of legend entries; each item is an SVG swatch (drawn at 0,0) and its label."""
    parts, x = [f'<g class="legend" transform="translate(10,{y})">'], 0.0
    for swatch, label in items:
        parts.append(f'<g transform="translate({x},0)">{swatch}<text x="16" y="9">'
                     f'{html.escape(label)}</text></g>')
        x += 30 + CHAR_PX * len(label)
    return "".join(parts) + "</g>"


def mark_legend(frame: Frame) -> list[tuple[str, str]]:
    """The legend entries of the shared marks: fault windows, and leader changes if any."""
    items = [(box(FAULT_FILL, 'fill-opacity="0.3"'), FAULT_LEGEND)]
    if frame.leader_changes:
        swatch = (f'<line x1="6" y1="0" x2="6" y2="10" stroke="{LEADER_COLOUR}" '
                  'stroke-dasharray="3,2"/>')
        items.append((swatch, "leader change"))
    return items


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round values from at most ``low`` to at least ``high``, about ``count`` of them;
    whole numbers when the range is small counts."""
    if high <= low:
        high = low + 1.0
    raw = (high - low) / max(1, count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if step < 1 and high - low >= 1 and float(low).is_integer() and float(high).is_integer():
        step = 1.0
    first = math.floor(low / step + 1e-9)
    last = math.ceil(high / step - 1e-9)
    return [round(i * step, 10) for i in range(first, last + 1)]


def value_axis(ticks: Sequence[float], y_of: Callable[[float], float], unit: str, top: float,
               bottom: float, label: Callable[[float], str] = "{:g}".format) -> str:
    """The y axis: grid lines at ``ticks`` labelled by ``label``, the unit written along it."""
    parts = [f'<line x1="{LEFT}" y1="{top}" x2="{LEFT}" y2="{bottom}" stroke="#666"/>']
    for value in ticks:
        y = y_of(value)
        parts.append(f'<line class="ytick" x1="{LEFT - 4}" y1="{y}" x2="{LEFT + PLOT}" '
                     f'y2="{y}" stroke="#eee"/><text x="{LEFT - 6}" y="{y + 3}" '
                     f'text-anchor="end">{html.escape(label(value))}</text>')
    middle = (top + bottom) / 2
    parts.append(f'<text class="unit" x="14" y="{middle}" text-anchor="middle" '
                 f'transform="rotate(-90 14 {middle})">{html.escape(unit)}</text>')
    return "".join(parts)


def broken_runs(points: Sequence[tuple[float, float]]) -> list[list[tuple[float, float]]]:
    """``points`` (sorted by time) split where a sample is missing: a gap over 2.5 times
    the usual spacing (Prometheus had nothing there; a line across would be made up)."""
    if len(points) < 2:
        return [list(points)] if points else []
    spacings = sorted(b[0] - a[0] for a, b in itertools.pairwise(points))
    usual = spacings[len(spacings) // 2] or 1.0
    runs: list[list[tuple[float, float]]] = [[points[0]]]
    for before, point in itertools.pairwise(points):
        if point[0] - before[0] > 2.5 * usual:
            runs.append([])
        runs[-1].append(point)
    return runs


# --- charts ----------------------------------------------------------------------------

SERIES_PLOT_H = 110


def series_svg(frame: Frame, title: str, points: Sequence[Sequence[float]], unit: str,
               colour: str = SERIES_COLOUR) -> str:
    """One Prometheus series (epoch time, value) as a line chart on ``frame``: time and
    value axes, the unit, fault windows, leader changes and a legend."""
    top, bottom = TOP, TOP + SERIES_PLOT_H
    height = bottom + 62
    inside = sorted((float(t) - frame.origin, float(v)) for t, v in points
                    if frame.contains(float(t) - frame.origin) and math.isfinite(float(v)))
    values = [v for _, v in inside]
    ticks = nice_ticks(min([0.0, *values]), max([0.0, *values]))
    low, high = ticks[0], ticks[-1]

    def y_of(value: float) -> float:
        return round(bottom - (value - low) / ((high - low) or 1.0) * SERIES_PLOT_H, 1)

    parts = [open_svg("series-chart", height, frame, f"{title} ({unit})"),
             shade_faults(frame, top, bottom), value_axis(ticks, y_of, unit, top, bottom)]
    for run in broken_runs(inside):
        if len(run) == 1:
            parts.append(f'<circle class="series" cx="{frame.x(run[0][0])}" '
                         f'cy="{y_of(run[0][1])}" r="2" fill="{colour}"/>')
        else:
            line = " ".join(f"{frame.x(t)},{y_of(v)}" for t, v in run)
            parts.append(f'<polyline class="series" points="{line}" fill="none" '
                         f'stroke="{colour}" stroke-width="1.5"/>')
    if not inside:
        parts.append(f'<text x="{LEFT + PLOT / 2}" y="{(top + bottom) / 2}" '
                     'text-anchor="middle">no data in this range</text>')
    parts.append(mark_leaders(frame, top, bottom, labels=False))
    parts.append(time_axis(frame, bottom))
    parts.append(legend([(line_swatch(colour), f"{title} ({unit})"), *mark_legend(frame)],
                        bottom + 40))
    return "".join(parts) + "</svg>"
