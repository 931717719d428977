"""Render a collected run as Markdown and as one self-contained HTML page (inline SVG
charts, no scripts, no external files).

Both forms come from Jinja2 templates (``templates/report.html.j2`` with autoescape on,
``templates/report.md.j2`` with a ``cell`` filter for table cells) filled from one context
(:func:`context`): the verdict and the key figures first (:mod:`figures`), then the write
availability and the Prometheus series drawn on one shared time frame (:mod:`charts`), the
recovery figures with their definitions, steady state, writes, timeline and log lines.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup

from chaosmoose.report import charts, figures, timeline
from chaosmoose.report.collect import MARGIN_S, Run, recovery

__all__: list[str] = []  # not an activity module

BARS = "▁▂▃▄▅▆▇█"
STYLE = ("body{font-family:sans-serif;margin:2em;max-width:70em;color:#222}"
         "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
         "padding:.2em .5em;text-align:left;vertical-align:top}.PASSED{color:#1a7f37}"
         ".bad{color:#c62828}.na{color:#777}.note{color:#555;font-size:.9em}"
         ".key td{font-size:1.05em}dt{font-weight:bold;margin-top:.4em}"
         "dd{margin-left:1.5em;color:#444}svg{background:#fafafa;border:1px solid #ddd;"
         "max-width:100%;height:auto;display:block;margin:.3em 0}svg text{fill:#666}"
         "pre{background:#f6f8fa;padding:.5em;overflow-x:auto;font-size:12px;"
         "white-space:pre-wrap}@page{size:A4;margin:12mm}"
         "@media print{body{margin:0;max-width:none}svg,tr{break-inside:avoid}}")


def clock(t: float) -> str:
    """``HH:MM:SS.mmm`` UTC."""
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S.%f")[:-3]


def verdict(run: Run) -> str:
    """One word for the outcome (what ``chaos run`` with strict mode would exit with)."""
    journal = run.journal
    if journal.get("status") == "completed" and not journal.get("deviated"):
        return "PASSED"
    return "DEVIATED" if journal.get("deviated") else f"FAILED ({journal.get('status')})"


def sparkline(values: list[float]) -> str:
    """Unicode bars for a text report."""
    if not values:
        return "(no data)"
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(BARS[int((v - low) / span * (len(BARS) - 1))] for v in values)


def _steady(run: Run) -> list[tuple[str, str, str]]:
    rows = []
    for phase in ("before", "after"):
        state = (run.journal.get("steady_states") or {}).get(phase)
        if not state:
            rows.append((phase, "(not run)", ""))
            continue
        for probe in state.get("probes", []):
            ok = "met" if probe.get("tolerance_met") else "NOT met"
            rows.append((phase, probe["activity"].get("name", "?"), ok))
    return rows


def _writes(run: Run) -> list[tuple[str, str]]:
    check = run.check
    if not check:
        return []
    longest = (check.get("unavailability") or {}).get("longest_s")
    return [("acknowledged writes", str(check.get("acknowledged"))),
            ("intact after healing", str(check.get("intact"))),
            ("lost (RPO)", str(check.get("lost"))), ("corrupt", str(check.get("corrupt"))),
            ("indeterminate", str(check.get("indeterminate"))),
            ("longest time without an acknowledged write", f"{longest} s")]


NO_HISTORY = "no workload history in this run (no workload/*/<client>.history.jsonl)"


def availability(run: Run) -> timeline.Availability | None:
    """The write-availability model of the run, None when it has no workload history."""
    if not run.histories:
        return None
    return timeline.build(run.histories, run.faults, run.leader_changes, run.start, run.end)


def frame(run: Run) -> charts.Frame:
    """The time frame every chart of the report shares: seconds since the run's start,
    from ``MARGIN_S`` before it to ``MARGIN_S`` after it (the Prometheus and log window)."""
    return charts.make_frame(run.start, -MARGIN_S, run.end - run.start + MARGIN_S,
                             run.faults, figures.leader_marks(run))


def _series(run: Run, shared: charts.Frame) -> list[dict[str, Any]]:
    """Each Prometheus series with its unit, chart, sparkline and range text."""
    found = []
    for s in run.series:
        unit = charts.unit_of(s["title"])
        values = [v for _, v in s["points"]]
        span = f"min {min(values):g}, max {max(values):g} {unit}" if values else "no data"
        found.append({"title": s["title"], "query": s["query"], "unit": unit, "span": span,
                      "sparkline": sparkline(values),
                      "svg": Markup(charts.series_svg(shared, s["title"], s["points"], unit))})
    return found


def _fault_sentence(run: Run, found: figures.Figures) -> str:
    if found.fault_t is None:
        return "No fault in this run's ledger (the workload aside)."
    return (f"Fault: {found.fault_label}, in place at {clock(found.fault_t)} UTC "
            f"({found.fault_t - run.start:.2f} s into the run).")


def _strict_items(run: Run) -> list[str]:
    strict = (run.journal.get("chaosmoose") or {}).get("strict") or {}
    items = [f"strict mode violation: {v}" for v in strict.get("violations") or []]
    items += [f"healed by strict mode: {h.get('kind')} on {h.get('service')}"
              for h in strict.get("healed") or []]
    return items


SOURCES = {"stored": "stored with the run (evidence/)", "live": "queried live from the lab"}


def _source(run: Run, name: str) -> str:
    """Where series or logs came from (``series_source``, ``logs_source``), "" if unknown."""
    return SOURCES.get(str(getattr(run, name, "")), "")


def context(run: Run) -> dict[str, Any]:
    """What both templates show, computed once."""
    journal = run.journal
    shared = frame(run)
    found = figures.compute(run)
    model = availability(run)
    after = run.end - run.start + MARGIN_S
    return {
        "title": run.title, "verdict": verdict(run),
        "verdict_class": "PASSED" if verdict(run) == "PASSED" else "bad",
        "status": str(journal.get("status")), "deviated": str(journal.get("deviated")),
        "started": clock(run.start), "ended": clock(run.end), "duration": run.end - run.start,
        "path": str(run.path), "description": journal.get("experiment", {}).get("description"),
        "strict_items": _strict_items(run),
        "key_figures": found.key(), "figures": found.all, "definitions": found.definitions(),
        "fault_sentence": _fault_sentence(run, found),
        "frame_sentence": (f"Every chart spans the same time: seconds since {clock(run.start)} "
                           f"UTC (the run's start), from {-MARGIN_S:g} to {after:.0f} s "
                           f"({MARGIN_S:g} s before and after the run); grey: fault windows "
                           "(opened to undone); dashed: leader changes."),
        "window_sentence": f"{MARGIN_S:.0f} s before to {MARGIN_S:.0f} s after the run",
        "availability": model is not None, "no_history": NO_HISTORY,
        "threshold": model.threshold if model else 1.0,
        "availability_rows": timeline.summary_rows(model) if model else [],
        "fault_windows": model.faults if model else [],
        "leader_changes": shared.leader_changes,
        "lanes_svg": Markup(timeline.lanes_svg(model, shared)) if model else "",
        "latency_svg": Markup(timeline.latency_svg(model, shared)) if model else "",
        "series": _series(run, shared), "series_error": run.series_error,
        "series_source": _source(run, "series_source"),
        "probe_waits": recovery(run), "steady": _steady(run), "writes": _writes(run),
        "events": [{"clock": clock(e.t), "source": e.source, "what": e.what,
                    "status": e.status} for e in run.events],
        "logs_error": run.logs_error, "logs_source": _source(run, "logs_source"),
        "log_lines": log_lines(run, 300),
    }


def log_lines(run: Run, width: int) -> list[str]:
    """The collected log lines as text: time, service, the message cut to ``width``."""
    return [f"{line['time'][11:23]} {line['service']:<14} {line['message'][:width]}"
            for line in run.logs]


def cell(value: Any) -> str:
    """A Markdown table cell: pipes escaped, line breaks as spaces."""
    return str(value).replace("\r", " ").replace("\n", " ").replace("|", "\\|")


@cache
def environment() -> jinja2.Environment:
    """The templates of this package; HTML autoescaped, Markdown not."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("chaosmoose.report", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",),
                                            default_for_string=False),
        keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    env.filters["cell"] = cell
    return env


def markdown(run: Run) -> str:
    """The report as Markdown."""
    values = {**context(run), "log_lines": log_lines(run, 200)}
    return environment().get_template("report.md.j2").render(values)


def html_page(run: Run) -> str:
    """The report as one HTML page."""
    return environment().get_template("report.html.j2").render(style=STYLE, **context(run))
