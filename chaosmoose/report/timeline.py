"""Write availability over a run: a pure model of the workload histories and its SVG charts.

:func:`build` turns the clients' histories (``{client: [record, ...]}``, as the runner
writes them: ``start``, ``invoke`` then ``ok`` / ``fail`` / ``info``, ``end``), the fault
ledger and the leader changes (if the run has them) into an :class:`Availability`: per
client every completed operation as (seconds since run start, outcome), the gaps with no
acknowledged write longer than a threshold, and per second the p50/p99 latency of the
operations completed in it. :func:`lanes_svg` and :func:`latency_svg` draw it as inline
SVG (no scripts, no network) with the parts of :mod:`charts`, on the report's shared time
frame or, without one, over the model's own run.

Outcomes are what the client saw when the operation completed: ``ok`` (acknowledged),
``fail`` (certainly not applied), ``info`` (unknown, e.g. a timeout). A timed-out write
that succeeds later stays ``info`` here (the checker still counts it as acknowledged, late);
an operation with no completion at all (the runner hung or was killed) is ``info`` at its
invoke time. Gaps follow ``checker.unavailability_by_client``: from a client's start (or
previous ``ok``) to its next ``ok`` or its end; a client without an end record is open until
the last record of any client, so a client that hung while others wrote shows its silence.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaosmoose.report import charts

__all__: list[str] = []  # not an activity module

OUTCOMES = ("ok", "fail", "info")
LABELS = {"ok": "acknowledged", "fail": "failed", "info": "unknown"}
COLOURS = {"ok": "#1a7f37", "fail": "#c62828", "info": "#d4a017"}
P50_COLOUR, P99_COLOUR = "#1f6feb", "#e36209"
WRITES = ("write-file", "append")


@dataclass
class Gap:
    """A window of one client with no acknowledged write (seconds since run start)."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        """The gap's length."""
        return round(self.end - self.start, 3)


@dataclass
class Lane:
    """One client: its completed operations and its gaps."""

    client: str
    ops: list[tuple[float, str]] = field(default_factory=list)  # (t, ok|fail|info)
    gaps: list[Gap] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        """How many operations ended with ``outcome``."""
        return sum(1 for _, o in self.ops if o == outcome)

    @property
    def longest_gap(self) -> Gap | None:
        """The longest gap above the threshold, None when there is none."""
        return max(self.gaps, key=lambda g: g.seconds, default=None)


@dataclass
class Availability:
    """What the write-availability section shows; times in seconds since ``start``."""

    start: float  # epoch seconds of t = 0
    duration: float
    threshold: float
    lanes: list[Lane]
    faults: list[tuple[float, float, str]]  # (opened, undone, label), clipped to the run
    leader_changes: list[tuple[float, str]]  # (t, label); empty when the run has none
    latency: list[tuple[int, float, float, int]]  # (second, p50 ms, p99 ms, operations)


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile of non-empty ``values``."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def _stamp(rec: Mapping[str, Any]) -> float | None:
    t = rec.get("t")
    return float(t) if isinstance(t, (int, float)) and not isinstance(t, bool) else None


def _gaps(marks: list[float], threshold: float) -> list[Gap]:
    return [Gap(a, b) for a, b in itertools.pairwise(marks) if b - a > threshold]


def build(histories: Mapping[str, Sequence[Mapping[str, Any]]],
          faults: Iterable[Mapping[str, Any]] = (),
          leader_changes: Iterable[Mapping[str, Any]] = (),
          start: float | None = None, end: float | None = None,
          threshold: float = 1.0) -> Availability:
    """The availability model of a run (see the module docstring).

    ``faults`` are ledger faults (``Ledger.faults()``: ``t`` opened, ``undone_t``); the
    workload runners' own entries are left out, a fault still open at the end runs to the
    end, and each window is clipped to the run. ``leader_changes`` are the
    ``no_leader_overlap`` result's (``new_served_from``, ``new.node``). ``start``/``end``
    (epoch seconds) default to the first and last history record.
    """
    stamps = [t for records in histories.values() for r in records
              if (t := _stamp(r)) is not None]
    t0 = start if start is not None else min(stamps, default=0.0)
    last_seen = max(stamps, default=t0)
    duration = max((end if end is not None else last_seen), last_seen) - t0
    lanes, latencies = [], {}
    for client, records in histories.items():
        lane = Lane(client)
        invoked: dict[Any, float] = {}
        oks: list[float] = []
        for rec in records:
            t, kind = _stamp(rec), rec.get("type")
            if t is None or rec.get("f") not in WRITES:
                continue
            if kind == "invoke":
                invoked[rec.get("seq")] = t
            elif kind in OUTCOMES and not rec.get("late"):
                began = invoked.pop(rec.get("seq"), None)
                lane.ops.append((t - t0, kind))
                if kind == "ok":
                    oks.append(t - t0)
                if began is not None:
                    latencies.setdefault(math.floor(t - t0), []).append((t - began) * 1000)
        lane.ops += [(t - t0, "info") for t in invoked.values()]  # never completed
        lane.ops.sort()
        first = next((t for r in records if r.get("type") == "start"
                      and (t := _stamp(r)) is not None), None)
        final = next((t for r in reversed(records) if r.get("type") == "end"
                      and (t := _stamp(r)) is not None), last_seen)
        begin = first - t0 if first is not None else (oks[0] if oks else None)
        if begin is not None:
            lane.gaps = _gaps([begin, *oks, max(final - t0, oks[-1] if oks else begin)],
                              threshold)
        lanes.append(lane)
    windows = charts.fault_windows(faults, t0, 0.0, duration)
    marks = []
    for change in leader_changes:
        t = change.get("new_served_from")
        if isinstance(t, (int, float)) and 0 <= t - t0 <= duration:
            marks.append((t - t0, f"leader: {(change.get('new') or {}).get('node', '?')}"))
    latency = [(s, round(percentile(v, 50), 3), round(percentile(v, 99), 3), len(v))
               for s, v in sorted(latencies.items())]
    return Availability(t0, duration, threshold, lanes, sorted(windows), sorted(marks), latency)


# --- SVG -------------------------------------------------------------------------------
# Drawn with the parts of :mod:`charts` on a :class:`charts.Frame`: the report passes the
# frame every chart shares; without one a chart spans the model's own run.

LEFT, PLOT, TOP = charts.LEFT, charts.PLOT, charts.TOP
LANE_H, LANE_GAP = 24, 6
LANES_TOP = TOP + 12  # room for the leader changes' labels under the title


def own_frame(model: Availability) -> charts.Frame:
    """The frame of the model's own run: 0 to its duration, its faults and leader changes."""
    return charts.Frame(model.start, 0.0, model.duration,
                        tuple(charts.merge_windows(model.faults)), tuple(model.leader_changes))


def lanes_svg(model: Availability, frame: charts.Frame | None = None) -> str:
    """One lane per client: operation ticks by outcome (acknowledged top, unknown middle,
    failed bottom), hatched gaps with no acknowledged write, grey fault windows across all
    lanes, dashed leader changes; time axis, legend and title."""
    frame = frame or own_frame(model)
    shift = model.start - frame.origin  # model seconds + shift = frame seconds
    bottom = LANES_TOP + len(model.lanes) * (LANE_H + LANE_GAP)
    height = bottom + 62
    parts = [charts.open_svg("availability", height, frame,
                             "Write availability per client (gaps: no acknowledged write for "
                             f"more than {model.threshold:g} s)"),
             ('<defs><pattern id="wa-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
              'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="6" '
              'stroke="#c62828" stroke-width="2"/></pattern></defs>'),
             charts.shade_faults(frame, LANES_TOP - 4, bottom)]
    for i, lane in enumerate(model.lanes):
        parts.append(_lane(frame, shift, lane, LANES_TOP + i * (LANE_H + LANE_GAP)))
    parts.append(charts.mark_leaders(frame, LANES_TOP - 8, bottom))
    parts.append(charts.time_axis(frame, bottom))
    items = [(charts.box(COLOURS[o]), LABELS[o]) for o in ("ok", "fail", "info")]
    items.append((charts.box("url(#wa-hatch)", 'stroke="#c62828"'),
                  f"no acknowledged write > {model.threshold:g} s"))
    parts.append(charts.legend(items + charts.mark_legend(frame), bottom + 40))
    return "".join(parts) + "</svg>"


def _lane(frame: charts.Frame, shift: float, lane: Lane, y: float) -> str:
    """One client's lane at height ``y``: frame, gaps and one tick per pixel and outcome."""
    e = html.escape
    parts = [(f'<g class="lane"><text x="{LEFT - 6}" y="{y + LANE_H / 2 + 4}" '
              f'text-anchor="end" style="fill:#222">{e(lane.client)}</text>'
              f'<rect x="{LEFT}" y="{y}" width="{PLOT}" height="{LANE_H}" '
              'fill="none" stroke="#ddd"/>')]
    for gap in lane.gaps:
        a = max(frame.lo, gap.start + shift)
        b = min(frame.hi, gap.end + shift)
        if a >= b:
            continue
        parts.append(f'<rect class="gap" x="{frame.x(a)}" y="{y}" '
                     f'width="{round(frame.x(b) - frame.x(a), 1)}" '
                     f'height="{LANE_H}" fill="url(#wa-hatch)" fill-opacity="0.5" '
                     f'stroke="#c62828"><title>no acknowledged write for {gap.seconds:g} s '
                     f'from {gap.start:.1f} s</title></rect>')
    band = LANE_H / 3
    drawn = set()  # one tick per pixel column and outcome keeps the page small
    for t, outcome in lane.ops:
        if not frame.contains(t + shift):
            continue
        x = frame.x(t + shift)
        if (round(x), outcome) in drawn:
            continue
        drawn.add((round(x), outcome))
        row = {"ok": 0, "info": 1, "fail": 2}[outcome]
        parts.append(f'<line class="op-{outcome}" x1="{x}" y1="{y + row * band + 1}" '
                     f'x2="{x}" y2="{y + (row + 1) * band - 1}" '
                     f'stroke="{COLOURS[outcome]}"/>')
    return "".join(parts) + "</g>"


def latency_svg(model: Availability, frame: charts.Frame | None = None) -> str:
    """p50 and p99 write latency per second (log scale, ms) on the lanes' time axis."""
    if not model.latency:
        return "<p>no completed operation to time</p>"
    frame = frame or own_frame(model)
    shift = model.start - frame.origin
    top, plot_h = TOP, 120
    bottom = top + plot_h
    height = bottom + 62
    values = [v for _, p50, p99, _ in model.latency for v in (p50, p99)]
    low = 10 ** math.floor(math.log10(max(min(values), 0.01)))
    high = 10 ** math.ceil(math.log10(max(max(values), low * 10)))

    def y(ms: float) -> float:
        ratio = (math.log10(max(ms, low)) - math.log10(low)) / (math.log10(high / low))
        return round(bottom - ratio * plot_h, 1)

    decades = []
    decade = low
    while decade <= high * 1.0001:
        decades.append(decade)
        decade *= 10
    parts = [charts.open_svg("latency", height, frame,
                             "Write latency per second: p50 and p99 (ms, log scale)"),
             charts.shade_faults(frame, top, bottom),
             charts.value_axis(decades, y, "ms (log scale)", top, bottom,
                               lambda value: f"{value:g} ms")]
    for name, index, colour in (("p50", 1, P50_COLOUR), ("p99", 2, P99_COLOUR)):
        for run in _consecutive(model.latency):  # a second without a completed op breaks the line
            xs = [(frame.x(min(row[0] + 0.5, model.duration) + shift), y(row[index]))
                  for row in run if frame.contains(row[0] + shift)]
            if len(xs) == 1:
                parts.append(f'<circle class="{name}" cx="{xs[0][0]}" cy="{xs[0][1]}" r="2" '
                             f'fill="{colour}"/>')
            elif xs:
                points = " ".join(f"{a},{b}" for a, b in xs)
                parts.append(f'<polyline class="{name}" points="{points}" fill="none" '
                             f'stroke="{colour}" stroke-width="1.5"/>')
    parts.append(charts.mark_leaders(frame, top, bottom, labels=False))
    parts.append(charts.time_axis(frame, bottom))
    parts.append(charts.legend([(charts.line_swatch(P50_COLOUR), "p50"),
                                (charts.line_swatch(P99_COLOUR), "p99"),
                                *charts.mark_legend(frame)], bottom + 40))
    return "".join(parts) + "</svg>"


def _consecutive(rows: list) -> list[list]:
    """``rows`` (sorted by their first field, whole seconds) split where a second is missing."""
    runs: list[list] = []
    for row in rows:
        if runs and row[0] - runs[-1][-1][0] <= 1:
            runs[-1].append(row)
        else:
            runs.append([row])
    return runs


def summary_rows(model: Availability) -> list[tuple[str, int, int, int, str]]:
    """Per client: acknowledged, failed and unknown counts and the longest gap (text)."""
    rows = []
    for lane in model.lanes:
        gap = lane.longest_gap
        text = f"{gap.seconds:g} s from {gap.start:.1f} s" if gap else "none"
        rows.append((lane.client, lane.count("ok"), lane.count("fail"), lane.count("info"),
                     text))
    return rows
