"""Figures of a benchmark run, the baselines and targets they are held against, and how they
are shown: pure functions over plain data (standard library only), shared by
``scripts/bench.py`` and the benchmarks it runs.

A :class:`Figure` is one measured number, with the baseline it is compared with when the run
measured one (the disk under the FUSE mount, one client against three), and the target the
issue sets, if any. A target is on the **ratio** (``value / baseline``: "sequential read
through FUSE at least 0.8 of the disk") or on the **value** itself ("idle memory at most
1 GiB"). Whether it is met is reported, never asserted.

Each benchmark's JSON result becomes figures through ``FIGURES[name]``; :func:`results`
lays out the suite's JSON, :func:`markdown` its table and :func:`svg_chart` a
self-contained SVG bar chart (no scripts, no external files, every label escaped, the
report's colours and fonts): one bar per figure at its ratio to the baseline, or at
``value / target`` when the target is on the value, with the target marked.

It lives in ``scripts/`` next to the benchmarks, not in ``chaosmoose``: the benchmarks are
host-side scripts, not Chaos Toolkit activities, and the package is installed into the
image, which has no use for them.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MIB = 1 << 20
GIB = 1 << 30
OPS = (">=", "<=")
SHOWN_OPS = {">=": "≥", "<=": "≤"}


# --------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class Target:
    """What a figure should reach: ``op`` (``>=`` or ``<=``) ``threshold``, on the ratio to
    the baseline (``on="ratio"``) or on the value (``on="value"``)."""

    op: str
    threshold: float
    on: str = "ratio"

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"target op {self.op!r} is invalid; expected one of {OPS}")
        if self.on not in ("ratio", "value"):
            raise ValueError(f"target on {self.on!r} is invalid; expected ratio or value")

    def met(self, value: float | None, ratio: float | None) -> bool | None:
        """Whether the target is met (None when the figure it is on is unknown)."""
        subject = ratio if self.on == "ratio" else value
        if subject is None:
            return None
        return subject >= self.threshold if self.op == ">=" else subject <= self.threshold

    def text(self, unit: str = "") -> str:
        """``≥ 0.5 × baseline`` or ``≤ 1024 MiB``."""
        shown = SHOWN_OPS[self.op]
        if self.on == "ratio":
            return f"{shown} {self.threshold:g} × baseline"
        return f"{shown} {self.threshold:g}{(' ' + unit) if unit else ''}"

    def as_dict(self) -> dict[str, Any]:
        """The target as the results JSON keeps it."""
        return {"op": self.op, "threshold": self.threshold, "on": self.on}


@dataclass(frozen=True)
class Figure:
    """One measured number of one benchmark, with its baseline and target if it has them."""

    benchmark: str
    name: str
    value: float | None
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: Target | None = None

    @property
    def ratio(self) -> float | None:
        """``value / baseline`` (None without both, or with a zero baseline)."""
        if self.value is None or self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline

    @property
    def met(self) -> bool | None:
        """Whether the target is met; None without a target or without the figure."""
        return None if self.target is None else self.target.met(self.value, self.ratio)

    @property
    def scale(self) -> float | None:
        """Where the figure's bar ends on the chart: its ratio to the baseline, else (a
        target on the value) ``value / threshold``; None when it has neither."""
        if self.ratio is not None:
            return self.ratio
        target = self.target
        if target is not None and target.on == "value" and target.threshold > 0 \
                and self.value is not None:
            return self.value / target.threshold
        return None

    @property
    def scale_target(self) -> float | None:
        """Where the target sits on the chart (the threshold of a ratio target, 1 for a
        target on the value), None without one that can be drawn."""
        target = self.target
        if target is None:
            return None
        if target.on == "ratio":
            return target.threshold if self.ratio is not None else None
        return 1.0 if target.threshold > 0 and self.value is not None else None

    def as_dict(self) -> dict[str, Any]:
        """The figure as the results JSON keeps it."""
        return {"benchmark": self.benchmark, "figure": self.name, "value": rounded(self.value),
                "unit": self.unit, "baseline": rounded(self.baseline),
                "baseline_name": self.baseline_name or None, "ratio": rounded(self.ratio, 3),
                "target": self.target.as_dict() if self.target else None,
                "target_text": self.target.text(self.unit) if self.target else None,
                "met": self.met}


def rounded(value: float | None, digits: int = 2) -> float | None:
    """``value`` rounded (None stays None; ints and floats alike)."""
    return None if value is None else round(float(value), digits)


def number(value: Any) -> float | None:
    """A finite number from ``value``, else None (a missing or malformed field)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def dig(document: Any, *path: str | int) -> Any:
    """``document[path[0]][path[1]]...``, None where a step is missing."""
    for step in path:
        if isinstance(document, Mapping) and isinstance(step, str):
            document = document.get(step)
        elif isinstance(document, Sequence) and isinstance(step, int) \
                and -len(document) <= step < len(document):
            document = document[step]
        else:
            return None
    return document


def ratio(value: float | None, baseline: float | None) -> float | None:
    """``value / baseline`` rounded to 3 digits; None without both or with a zero baseline."""
    if value is None or baseline is None or baseline == 0:
        return None
    return round(value / baseline, 3)


# --------------------------------------------------------------------------- per benchmark

# The targets for I/O through FUSE, as fractions of the same job on the disk.
IO_TARGETS = {"seq_write": 0.5, "seq_read": 0.8, "rand_read": 0.3}
IO_JOBS = {  # job: (figure name, what is compared, unit)
    "seq_write": ("sequential write, 1 MiB blocks", "mib_s", "MiB/s"),
    "seq_read": ("sequential read, 1 MiB blocks", "mib_s", "MiB/s"),
    "rand_read": ("random read, 4 KiB blocks", "iops", "IOPS"),
    "rand_write": ("random write, 4 KiB blocks", "iops", "IOPS"),
}
META_PHASES = ("create", "stat", "unlink")
IDLE_MEMORY_TARGET = GIB
FAILOVER_RTO_TARGET_S = 3.0
# Issue #12: every client's first created file after a kill, p50 and max over the rounds.
FAILOVER_ALL_CLIENTS_P50_S = 3.5
FAILOVER_ALL_CLIENTS_MAX_S = 6.0
# The per-node breakdown's steps shown as figures (failover_breakdown.summarize keys).
FAILOVER_STEPS = (
    ("leader.promotion", "new leader takes the lease (p50)"),
    ("leader.served", "new leader serving (p50)"),
    ("chunkservers.registered", "chunkservers registered with the new leader (p50)"),
    ("clients.registered", "mounts registered with the new leader (p50)"),
    ("clients.in_flight_done", "operation running at the kill completed (p50)"),
)
REPLICATION_TARGET_S = 60.0


def io_figures(result: Mapping[str, Any]) -> list[Figure]:
    """FUSE against the disk: the four fio jobs, the metadata phases, and the clients at
    once against one client alone."""
    found = []
    disk = f"{result.get('chunkserver', 'chunkserver')} disk"
    for job, (name, key, unit) in IO_JOBS.items():
        pair = dig(result, "jobs", job) or {}
        threshold = IO_TARGETS.get(job)
        found.append(Figure("io", f"FUSE {name}", number(dig(pair, "fuse", key)), unit,
                            number(dig(pair, "direct", key)), disk,
                            Target(">=", threshold) if threshold is not None else None))
    for phase in META_PHASES:
        found.append(Figure("io", f"FUSE metadata: {phase}", number(
            dig(result, "metadata", "fuse", f"{phase}_per_s")), "files/s", number(
            dig(result, "metadata", "direct", f"{phase}_per_s")), disk))
    together = result.get("concurrent") or {}
    clients = len(together.get("clients") or [])
    for job, single in (("seq_write", "sequential write"), ("seq_read", "sequential read")):
        value = number(dig(together, job, "aggregate_mib_s"))
        if value is None and not together:
            continue
        found.append(Figure("io", f"FUSE {single}, {clients or 'all'} clients at once "
                                  "(aggregate)", value, "MiB/s",
                            number(dig(result, "jobs", job, "fuse", "mib_s")), "one client"))
    return found


def idle_figures(result: Mapping[str, Any]) -> list[Figure]:
    """Memory and CPU of the idle cluster (and ``make up`` when it was timed)."""
    total = result.get("total") or {}
    memory = number(total.get("memory_bytes"))
    target = number(result.get("target_memory_bytes")) or IDLE_MEMORY_TARGET
    found = [Figure("idle", "idle memory, every container (mean)",
                    None if memory is None else memory / MIB, "MiB",
                    target=Target("<=", round(target / MIB), on="value")),
             Figure("idle", "idle CPU, every container", number(total.get("cpu_percent")),
                    "% of one core")]
    seconds = number(dig(result, "make_up", "seconds"))
    if seconds is not None:
        found.append(Figure("idle", "make up to all healthy", seconds, "s"))
    return found


def failover_figures(result: Mapping[str, Any]) -> list[Figure]:
    """Leader kills: p50 of each recovery time, and acknowledged writes lost."""
    found = [Figure("failover", "new leader after a kill -9 (p50)",
                    number(dig(result, "leader_s", "p50")), "s"),
             Figure("failover", "first acknowledged write after the kill, RTO (p50)",
                    number(dig(result, "first_write_s", "p50")), "s",
                    target=Target("<=", FAILOVER_RTO_TARGET_S, on="value")),
             Figure("failover", "every client writing again (p50)",
                    number(dig(result, "all_clients_s", "p50")), "s",
                    target=Target("<=", FAILOVER_ALL_CLIENTS_P50_S, on="value")),
             Figure("failover", "every client writing again (max)",
                    number(dig(result, "all_clients_s", "max")), "s",
                    target=Target("<=", FAILOVER_ALL_CLIENTS_MAX_S, on="value")),
             Figure("failover", "acknowledged writes lost", number(result.get("lost")),
                    "writes", target=Target("<=", 0, on="value"))]
    steps = result.get("breakdown") or {}
    found += [Figure("failover", name, number(dig(steps, key, "p50")), "s after the kill")
              for key, name in FAILOVER_STEPS if key in steps]
    return found


def data_figures(result: Mapping[str, Any]) -> list[Figure]:
    """Data set throughput through one client, verification through another, losses."""
    writer, reader = result.get("writer", "writer"), result.get("reader", "reader")
    return [Figure("data", f"data set written through {writer} (median)",
                   number(result.get("generate_mib_s_median")), "MiB/s"),
            Figure("data", f"data set verified through {reader} (median)",
                   number(result.get("verify_mib_s_median")), "MiB/s"),
            Figure("data", "data set entries lost", number(result.get("lost")), "entries",
                   target=Target("<=", 0, on="value"))]


def replication_figures(result: Mapping[str, Any]) -> list[Figure]:
    """Re-replication after a chunkserver loss against its target, and the rebalance."""
    summary = result.get("summary") or {}
    target = number(summary.get("target_s")) or REPLICATION_TARGET_S
    return [Figure("replication", "no chunk below goal after a chunkserver kill (p50)",
                   number(dig(summary, "re_replicated_s", "p50")), "s",
                   target=Target("<=", target, on="value")),
            Figure("replication", "re-replication rate (p50)",
                   number(dig(summary, "re_replicated_mib_s", "p50")), "MiB/s"),
            Figure("replication", "rebalanced after the chunkserver returned (p50)",
                   number(dig(summary, "rebalanced_s", "p50")), "s")]


FIGURES: dict[str, Callable[[Mapping[str, Any]], list[Figure]]] = {
    "io": io_figures, "idle": idle_figures, "failover": failover_figures,
    "data": data_figures, "replication": replication_figures}


def figures_of(benchmarks: Mapping[str, Mapping[str, Any]]) -> list[Figure]:
    """Every figure of the benchmarks that produced a result (``{"result": {...}}``), in the
    order they ran; a benchmark without a figure function gives none."""
    found: list[Figure] = []
    for name, record in benchmarks.items():
        result = record.get("result")
        if isinstance(result, Mapping) and name in FIGURES:
            found += FIGURES[name](result)
    return found


def target_counts(figures: Iterable[Figure]) -> dict[str, int]:
    """How many targets were met, not met, and could not be judged (figure missing)."""
    counts = {"met": 0, "not_met": 0, "unknown": 0}
    for figure in figures:
        if figure.target is None:
            continue
        key = {True: "met", False: "not_met", None: "unknown"}[figure.met]
        counts[key] += 1
    return counts


# --------------------------------------------------------------------------- results JSON


def results(run: str, started: str, ended: str, command: str, options: Mapping[str, Any],
            machine: Mapping[str, Any],
            benchmarks: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The suite's JSON document: the run, the machine, every benchmark's record (status,
    exit code, seconds, command, result or error) and the figures drawn from them."""
    figures = figures_of(benchmarks)
    return {"run": run, "started": started, "ended": ended, "command": command,
            "options": dict(options), "machine": dict(machine),
            "benchmarks": {name: dict(record) for name, record in benchmarks.items()},
            "figures": [f.as_dict() for f in figures],
            "targets": target_counts(figures)}


def figures_from_results(document: Mapping[str, Any]) -> list[Figure]:
    """The figures of a results document written by :func:`results`."""
    return figures_of(document.get("benchmarks") or {})


# --------------------------------------------------------------------------- Markdown


def fmt(value: float | None, unit: str = "") -> str:
    """A number for a table: ``-`` when unknown, precision by magnitude, then the unit."""
    if value is None:
        return "-"
    size = abs(value)
    digits = 0 if size >= 100 else 1 if size >= 10 else 2
    text = f"{value:,.{digits}f}".replace(",", " ")
    if value == int(value) and size < 100:
        text = f"{int(value)}"
    return f"{text} {unit}".strip()


def met_cell(met: bool | None) -> str:
    """``yes``, ``**no**``, or ``-`` (no target, or figure missing)."""
    return {True: "yes", False: "**no**", None: "-"}[met]


def table(figures: Sequence[Figure]) -> str:
    """The Markdown table: benchmark, figure, value, baseline, ratio, target, met."""
    lines = ["| benchmark | figure | value | baseline | ratio | target | met |",
             "|---|---|---|---|---|---|---|"]
    for f in figures:
        baseline = fmt(f.baseline, f.unit)
        if f.baseline is not None and f.baseline_name:
            baseline += f" ({f.baseline_name})"
        ratio_text = "-" if f.ratio is None else f"{f.ratio:.2f}"
        target = f.target.text(f.unit) if f.target else "-"
        lines.append(f"| {f.benchmark} | {f.name} | {fmt(f.value, f.unit)} | {baseline} | "
                     f"{ratio_text} | {target} | {met_cell(f.met)} |")
    return "\n".join(lines)


def machine_line(machine: Mapping[str, Any]) -> str:
    """The machine in one sentence."""
    memory = number(machine.get("memory_bytes"))
    parts = [f"{machine.get('cores', '?')} cores",
             f"{memory / GIB:.1f} GiB memory" if memory else "memory unknown",
             f"kernel {machine.get('kernel', '?')}",
             f"Docker {dig(machine, 'docker', 'version') or '?'}"]
    commit = dig(machine, "git", "commit")
    if commit:
        dirty = " with uncommitted changes" if dig(machine, "git", "dirty") else ""
        parts.append(f"commit {str(commit)[:12]}{dirty}")
    return ", ".join(parts)


def markdown(document: Mapping[str, Any], chart_name: str | None = None) -> str:
    """The suite as a Markdown page: machine, benchmark statuses, the figure table, target
    counts and (``chart_name``) a link to the chart."""
    figures = figures_from_results(document)
    lines = [f"# MooseNG benchmarks, {document.get('run', '?')}", "",
             f"Machine: {machine_line(document.get('machine') or {})}.  ",
             f"Command: `{document.get('command', '')}`  ",
             f"From {document.get('started', '?')} to {document.get('ended', '?')} (UTC).", "",
             "| benchmark | status | exit | seconds | note |", "|---|---|---|---|---|"]
    for name, record in (document.get("benchmarks") or {}).items():
        note = record.get("error") or record.get("note") or ""
        note = note.replace("|", "\\|").replace("\n", " ")[:300] or "-"
        exit_code = record.get("exit_code")
        lines.append(f"| {name} | {record.get('status', '?')} | "
                     f"{'-' if exit_code is None else exit_code} | "
                     f"{fmt(number(record.get('seconds')))} | {note} |")
    lines += ["", table(figures), ""]
    counts = target_counts(figures)
    judged = counts["met"] + counts["not_met"]
    lines.append(f"Targets: {counts['met']} met, {counts['not_met']} not met (of {judged} "
                 "judged"
                 + (f"; {counts['unknown']} without the figure" if counts["unknown"] else "")
                 + "). Ratios are value / baseline, both measured in this run; targets are "
                 "reported, never asserted.")
    if chart_name:
        lines += ["", f"![each figure against its baseline or target]({chart_name})"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- SVG

PLOT = 380                   # width of the bars' area
MAX_TEXT = 430               # widest label column (longer labels are cut with an ellipsis)
TOP, ROW_H, BAR_H = 44, 22, 14
FONT_PX = 11    # every text of the chart (the title: 13)
CHAR_PX = 6.5   # a generous average glyph width at FONT_PX
COLOURS = {True: "#1a7f37", False: "#c62828", None: "#1f6feb"}  # met, not met, no target
TARGET_COLOUR = "#222"
BASELINE_COLOUR = "#9e9e9e"
MAX_SCALE = 4.0  # bars beyond this are clipped at the edge (their label says the value)
LEGEND = ("target met", "target not met", "no target", "target", "1 × baseline")


def axis_max(figures: Sequence[Figure]) -> float:
    """The chart's right end: the largest bar or target plus a margin, at least 1.2, at
    most ``MAX_SCALE``."""
    ends = [v for f in figures for v in (f.scale, f.scale_target) if v is not None]
    return min(MAX_SCALE, max([1.2, *(1.05 * v for v in ends)]))


def tick_step(high: float) -> float:
    """A round tick spacing giving at most 8 ticks between 0 and ``high``."""
    for step in (0.1, 0.2, 0.25, 0.5, 1.0):
        if high / step <= 8:
            return step
    return 1.0


def bar_label(figure: Figure) -> str:
    """The text right of a bar: the ratio and its baseline (or the value), then the target
    and whether it is met: ``0.45 × chunkserver-1 disk; target ≥ 0.5: not met``."""
    if figure.ratio is not None:
        text = f"{figure.ratio:.2f} × {figure.baseline_name or 'baseline'}"
    else:
        text = fmt(figure.value, figure.unit)
    target = figure.target
    if target is not None:
        unit = f" {figure.unit}" if target.on == "value" and figure.unit else ""
        verdict = {True: "met", False: "not met", None: "not judged"}[figure.met]
        text += f"; target {SHOWN_OPS[target.op]} {target.threshold:g}{unit}: {verdict}"
    return text


def text_width(texts: Iterable[str], limit: float = MAX_TEXT) -> float:
    """Pixels the longest of ``texts`` needs (at most ``limit``)."""
    return min(limit, max((len(t) for t in texts), default=10) * CHAR_PX + 12)


def cut(text: str, width: float) -> str:
    """``text``, cut with an ellipsis to fit ``width`` pixels."""
    fits = int((width - 12) / CHAR_PX)
    return text if len(text) <= fits else text[:max(1, fits - 1)] + "…"


def svg_chart(figures: Sequence[Figure], title: str) -> str:
    """A horizontal bar per figure that has a baseline or a target: its ratio to the
    baseline (or ``value / target``), coloured by met / not met / no target, the target as
    a dark mark and 1 (the baseline, or the target of a value) as a dashed line. The label
    columns are as wide as their texts need (up to ``MAX_TEXT``)."""
    drawn = [f for f in figures if f.scale is not None]
    e = html.escape
    labels = [f"{f.benchmark}: {f.name}" for f in drawn]
    notes = [bar_label(f) for f in drawn]
    left = text_width(labels)
    right = text_width(notes)
    legend_width = sum(30 + CHAR_PX * len(t) for t in LEGEND)
    width = round(max(left + PLOT + right, left + legend_width, CHAR_PX * len(title) + 20))
    height = TOP + max(1, len(drawn)) * ROW_H + 70
    parts = [(f'<svg class="bench" viewBox="0 0 {width} {height}" width="{width}" '
              f'height="{height}" role="img" xmlns="http://www.w3.org/2000/svg" '
              f'style="font-family:sans-serif;font-size:{FONT_PX}px">'),
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
             (f'<text class="title" x="10" y="18" style="font-size:13px;fill:#222">'
              f'{e(title)}</text>'),
             ('<text x="10" y="34" style="fill:#555">bar: value / baseline measured in the '
              'same run, or value / target when the target is on the value</text>')]
    if not drawn:
        parts.append(f'<text x="10" y="{TOP + 14}">no figure with a baseline or a target '
                     'was measured</text></svg>')
        return "".join(parts)
    high = axis_max(drawn)

    def x(scale: float) -> float:
        return round(left + min(max(scale, 0.0), high) / high * PLOT, 1)

    bottom = TOP + len(drawn) * ROW_H
    step = tick_step(high)
    for i in range(int(high / step + 1e-9) + 1):
        tick = round(i * step, 6)
        parts.append(f'<line class="grid" x1="{x(tick)}" y1="{TOP - 4}" x2="{x(tick)}" '
                     f'y2="{bottom}" stroke="#eee"/><text x="{x(tick)}" y="{bottom + 14}" '
                     f'text-anchor="middle">{tick:g}</text>')
    parts.append(f'<line x1="{left}" y1="{bottom}" x2="{left + PLOT}" y2="{bottom}" '
                 'stroke="#666"/>')
    parts.append(f'<line class="baseline" x1="{x(1.0)}" y1="{TOP - 6}" x2="{x(1.0)}" '
                 f'y2="{bottom}" stroke="{BASELINE_COLOUR}" stroke-dasharray="4,3"/>')
    for i, (f, label, note) in enumerate(zip(drawn, labels, notes, strict=True)):
        y = TOP + i * ROW_H
        scale = f.scale or 0.0
        bar = max(1.0, round(x(scale) - left, 1))
        parts.append(f'<g class="row"><title>{e(label)}: {e(note)}</title>'
                     f'<text x="{left - 6}" y="{y + BAR_H - 2}" text-anchor="end" '
                     f'style="fill:#222">{e(cut(label, left))}</text>'
                     f'<rect class="bar" x="{left}" y="{y + 1}" width="{bar}" '
                     f'height="{BAR_H}" fill="{COLOURS[f.met]}"/>')
        if scale > high:
            parts.append(f'<text x="{left + PLOT - 2}" y="{y + BAR_H - 2}" text-anchor="end" '
                         'style="fill:#fff">»</text>')
        mark = f.scale_target
        if mark is not None:
            parts.append(f'<line class="target" x1="{x(mark)}" y1="{y - 1}" x2="{x(mark)}" '
                         f'y2="{y + BAR_H + 3}" stroke="{TARGET_COLOUR}" stroke-width="2"/>')
        parts.append(f'<text x="{left + PLOT + 6}" y="{y + BAR_H - 2}" style="fill:#222">'
                     f'{e(cut(note, right))}</text></g>')
    parts.append(f'<text x="{left + PLOT / 2}" y="{bottom + 28}" text-anchor="middle">'
                 'ratio (1 = the baseline, or the target of a value)</text>')
    swatches = [f'<rect x="0" y="0" width="12" height="10" fill="{COLOURS[True]}"/>',
                f'<rect x="0" y="0" width="12" height="10" fill="{COLOURS[False]}"/>',
                f'<rect x="0" y="0" width="12" height="10" fill="{COLOURS[None]}"/>',
                (f'<line x1="6" y1="-1" x2="6" y2="11" stroke="{TARGET_COLOUR}" '
                 'stroke-width="2"/>'),
                (f'<line x1="6" y1="-1" x2="6" y2="11" stroke="{BASELINE_COLOUR}" '
                 'stroke-dasharray="3,2"/>')]
    parts.append(f'<g class="legend" transform="translate({left},{bottom + 44})">')
    offset = 0.0
    for swatch, text in zip(swatches, LEGEND, strict=True):
        parts.append(f'<g transform="translate({offset},0)">{swatch}<text x="16" y="9">'
                     f'{e(text)}</text></g>')
        offset += 30 + CHAR_PX * len(text)
    parts.append("</g></svg>")
    return "".join(parts)
