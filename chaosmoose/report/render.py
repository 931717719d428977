"""Render a collected run as Markdown and as one self-contained HTML page (inline SVG
charts, no scripts, no external files)."""

from __future__ import annotations

import html
from datetime import UTC, datetime

from chaosmoose.report.collect import MARGIN_S, Run, recovery

__all__: list[str] = []  # not an activity module

BARS = "▁▂▃▄▅▆▇█"
STYLE = ("body{font-family:sans-serif;margin:2em;max-width:70em;color:#222}"
         "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;"
         "text-align:left;vertical-align:top}.PASSED{color:#1a7f37}.bad{color:#c62828}"
         "svg{background:#fafafa;border:1px solid #ddd}.series{fill:none;stroke:#1f6feb;"
         "stroke-width:1.5}.mark{stroke:#c62828;stroke-dasharray:3,3}svg text{font-size:10px;"
         "fill:#666}pre{background:#f6f8fa;padding:.5em;overflow-x:auto;font-size:12px}")


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


def markdown(run: Run) -> str:
    """The report as Markdown."""
    j = run.journal
    out = [f"# {run.title}", "", (f"**{verdict(run)}**: status `{j.get('status')}`, deviated "
           f"`{j.get('deviated')}`, {clock(run.start)}-{clock(run.end)} UTC "
           f"({run.end - run.start:.1f} s). Run directory: `{run.path}`."), ""]
    if j.get("experiment", {}).get("description"):
        out += [j["experiment"]["description"], ""]
    strict = (j.get("chaosmoose") or {}).get("strict") or {}
    for item in strict.get("violations") or []:
        out.append(f"- strict mode violation: {item}")
    for item in strict.get("healed") or []:
        out.append(f"- healed by strict mode: {item.get('kind')} on {item.get('service')}")
    out += ["", "## Steady state", "", "| phase | probe | tolerance |", "|---|---|---|"]
    out += [f"| {a} | {b} | {c} |" for a, b, c in _steady(run)]
    rto = recovery(run)
    out += ["", "## Recovery (RTO)", ""]
    out += [f"- {name}: {waited:.2f} s" for name, waited in rto] or ["- no waiting probe ran"]
    writes = _writes(run)
    out += ["", "## Acknowledged writes (RPO)", ""]
    out += [f"- {k}: {v}" for k, v in writes] or ["- no workload ran"]
    out += ["", "## Timeline (UTC)", "", "| time | source | event | status |", "|---|---|---|---|"]
    out += [f"| {clock(e.t)} | {e.source} | {e.what.replace('|', '/')} | {e.status} |"
            for e in run.events]
    out += ["", f"## Prometheus ({MARGIN_S:.0f} s before to {MARGIN_S:.0f} s after the run)", ""]
    if run.series_error:
        out.append(f"- not available: {run.series_error}")
    for s in run.series:
        values = [v for _, v in s["points"]]
        span = f"min {min(values):g}, max {max(values):g}" if values else "no data"
        out.append(f"- {s['title']} (`{s['query']}`): {span}  \n  `{sparkline(values)}`")
    out += ["", "## Log excerpts", ""]
    if run.logs_error:
        out.append(f"- not available: {run.logs_error}")
    elif not run.logs:
        out.append("- no matching line")
    else:
        out.append("```")
        out += [f"{line['time'][11:23]} {line['service']:<14} {line['message'][:200]}"
                for line in run.logs]
        out.append("```")
    return "\n".join(out) + "\n"


def _svg(points: list[tuple[float, float]], start: float, end: float,
         marks: list[float], width: int = 640, height: int = 80) -> str:
    """A line chart of ``points`` with vertical fault marks; self-contained SVG."""
    if not points:
        return "<p><em>no data</em></p>"
    values = [v for _, v in points]
    low, high = min(0.0, min(values)), max(values)
    span_y = (high - low) or 1.0
    span_x = (end - start) or 1.0

    def x(t: float) -> float:
        return round((t - start) / span_x * width, 1)

    def y(v: float) -> float:
        return round(height - 4 - (v - low) / span_y * (height - 8), 1)

    line = " ".join(f"{x(t)},{y(v)}" for t, v in points)
    bars = "".join(f'<line x1="{x(t)}" y1="0" x2="{x(t)}" y2="{height}" class="mark"/>'
                   for t in marks if start <= t <= end)
    return (f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'role="img">{bars}<polyline points="{line}" class="series"/>'
            f'<text x="2" y="12">{high:g}</text><text x="2" y="{height - 2}">{low:g}</text></svg>')


def html_page(run: Run) -> str:
    """The report as one HTML page."""
    e = html.escape
    j = run.journal
    start, end = run.start - MARGIN_S, run.end + MARGIN_S
    marks = [ev.t for ev in run.events if ev.source == "ledger" and "opened" in ev.what
             and "workload" not in ev.what]
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(run.title)}</title>",
             f"<style>{STYLE}</style>",
             "</head><body>", f"<h1>{e(run.title)}</h1>"]
    outcome = verdict(run)
    parts.append(f"<p><b class='{'PASSED' if outcome == 'PASSED' else 'bad'}'>{e(outcome)}</b>: "
                 f"status {e(str(j.get('status')))}, deviated {e(str(j.get('deviated')))}, "
                 f"{clock(run.start)}-{clock(run.end)} UTC ({run.end - run.start:.1f} s). "
                 f"Run directory <code>{e(str(run.path))}</code>.</p>")
    if j.get("experiment", {}).get("description"):
        parts.append(f"<p>{e(j['experiment']['description'])}</p>")
    strict = (j.get("chaosmoose") or {}).get("strict") or {}
    items = [f"strict mode violation: {v}" for v in strict.get("violations") or []]
    items += [f"healed by strict mode: {h.get('kind')} on {h.get('service')}"
              for h in strict.get("healed") or []]
    if items:
        parts.append("<ul class='bad'>" + "".join(f"<li>{e(i)}</li>" for i in items) + "</ul>")
    parts.append("<h2>Steady state</h2><table><tr><th>phase</th><th>probe</th><th>tolerance</th></tr>")
    parts += [f"<tr><td>{e(a)}</td><td>{e(b)}</td><td class='{'bad' if c == 'NOT met' else ''}'>"
              f"{e(c)}</td></tr>" for a, b, c in _steady(run)]
    parts.append("</table><h2>Recovery (RTO)</h2><ul>")
    parts += [f"<li>{e(n)}: {w:.2f} s</li>" for n, w in recovery(run)] or ["<li>no waiting probe ran</li>"]
    parts.append("</ul><h2>Acknowledged writes (RPO)</h2><ul>")
    parts += [f"<li>{e(k)}: {e(v)}</li>" for k, v in _writes(run)] or ["<li>no workload ran</li>"]
    parts.append("</ul><h2>Timeline (UTC)</h2><table><tr><th>time</th><th>source</th>"
                 "<th>event</th><th>status</th></tr>")
    parts += [f"<tr><td>{clock(ev.t)}</td><td>{e(ev.source)}</td><td>{e(ev.what)}</td>"
              f"<td>{e(ev.status)}</td></tr>" for ev in run.events]
    parts.append(f"</table><h2>Prometheus</h2><p>{MARGIN_S:.0f} s before to {MARGIN_S:.0f} s "
                 "after the run; dashed lines: faults injected.</p>")
    if run.series_error:
        parts.append(f"<p class='bad'>not available: {e(run.series_error)}</p>")
    for s in run.series:
        parts.append(f"<h3>{e(s['title'])}</h3><p><code>{e(s['query'])}</code></p>"
                     f"{_svg(s['points'], start, end, marks)}")
    parts.append("<h2>Log excerpts</h2>")
    if run.logs_error:
        parts.append(f"<p class='bad'>not available: {e(run.logs_error)}</p>")
    elif not run.logs:
        parts.append("<p>no matching line</p>")
    else:
        parts.append("<pre>" + "\n".join(e(f"{line['time'][11:23]} {line['service']:<14} "
                                              f"{line['message'][:300]}") for line in run.logs)
                     + "</pre>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
