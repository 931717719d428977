"""The game day's consolidated report (gameday.md, gameday.html).

One table of the runs, each linking its own report (``<nn>-<name>/report.html`` and
``report.md``, relative to the session folder, so the folder can be moved or archived as
a whole), the session's timeline in one picture (``chaosmoose.gameday.timeline``: inlined
in the HTML, ``gameday-timeline.svg`` beside the Markdown), the plan's halts and blast
radius, the observer notes and the resilience score. Every text is escaped.
"""

from __future__ import annotations

import html
import time
from urllib.parse import quote

from chaosmoose.gameday import timeline
from chaosmoose.gameday.score import formula, session_score
from chaosmoose.gameday.session import Session, StepResult, read_notes
from chaosmoose.report.render import STYLE, clock

__all__: list[str] = []  # not an activity module


def status(session: Session) -> str:
    """The session's state in one sentence: halted and why, or how far it went."""
    if not session.halted:
        return ""
    healed = [h for h in session.healed if h.get("undone")]
    failed = [h for h in session.healed if not h.get("undone")]
    heal = (f"{len(healed)} open faults undone" if healed else "no fault was left open")
    if failed:
        heal += f"; {len(failed)} could NOT be undone (run chaosmoose cleanup)"
    return f"HALTED: {session.halt_reason}; {heal}; later runs skipped."


def score_text(session: Session) -> str:
    scores = [r.score for r in session.results]
    scored = sum(1 for s in scores if s is not None)
    tail = "" if scored == len(scores) else f" (over {scored} scored of {len(scores)} runs)"
    return f"{session_score(scores)} / 100{tail}"


def links(session: Session, result: StepResult) -> dict[str, str]:
    """The run's reports that exist, ``{"html": "01-a/report.html", "md": ...}``, relative
    to the session folder."""
    found = {}
    for kind, name in (("html", "report.html"), ("md", "report.md")):
        link = timeline.report_link(session.dir, result.run_dir, name)
        if link:
            found[kind] = link
    return found


def radius_text(session: Session) -> str:
    """``at most 1 masters and 1 chunkservers down at once``."""
    return "at most " + " and ".join(
        f"{value} {key.removeprefix('max_').removesuffix('_down')}"
        for key, value in session.plan.blast_radius.items()) + " down at once"


def _rows(session: Session) -> list[list[str]]:
    rows = []
    for r in session.results:
        check = r.check or {}
        longest = (check.get("unavailability") or {}).get("longest_s")
        rto = ", ".join(f"{name} {waited:.1f} s" for name, waited in r.recovery) or "-"
        score = "halted" if r.score is None else f"{r.score:.0f}"
        worst = r.parts.get("worst_client")
        gap = "-" if longest is None else f"{longest} s"
        if worst:
            gap = f"{r.parts['worst_gap_s']:.1f} s ({worst}); merged {gap}"
        detect = "-" if r.detection_s is None else f"{r.detection_s:.1f} s"
        rows.append([str(r.step.index), r.step.name, r.verdict, f"{r.seconds:.1f} s",
                     score, r.parts.get("why", ""), "-" if not check else f"{check.get('lost')} of "
                     f"{check.get('acknowledged')}", gap, rto, detect])
    return rows


def _md_links(found: dict[str, str]) -> str:
    if not found:
        return "(no report)"
    return ", ".join(f"[{kind}](<{link}>)" for kind, link in found.items())


def _html_links(found: dict[str, str]) -> str:
    if not found:
        return "(no report)"
    return ", ".join(f"<a href='{html.escape(quote(link), quote=True)}'>{kind}</a>"
                     for kind, link in found.items())


def _md_cell(text: str) -> str:
    """A Markdown table cell: no pipe or line break may end the cell early."""
    return text.replace("|", "\\|").replace("\n", " ")


HEAD = ["#", "experiment", "outcome", "time", "score", "score because", "lost writes",
        "longest write gap (worst client)", "recovery", "detection", "report"]


def markdown(session: Session) -> str:
    """gameday.md."""
    planned = len(session.plan.steps)
    halted = status(session)
    out = [f"# Game day: {session.plan.title}", "",
           (f"Started {clock(session.started)} UTC, {len(session.results)} of {planned} runs. "
           f"Session folder `{session.dir}`."), ""]
    if halted:
        out += [f"**{halted}**", ""]
    if session.plan.halts:
        out += ["Halt conditions: " + "; ".join(h.describe() for h in session.plan.halts) + ".",
                ""]
    out += [f"Blast radius: {radius_text(session)}.", ""]
    out += [f"**Resilience score: {score_text(session)}**", "",
            f"Formula: {formula(session.plan.targets)}", "", "| " + " | ".join(HEAD) + " |",
            "|" + "---|" * len(HEAD)]
    out += ["| " + " | ".join([*(_md_cell(c) for c in row), _md_links(links(session, r))])
            + " |" for row, r in zip(_rows(session), session.results, strict=True)]
    model = timeline.build(session)
    out += ["", "## Session timeline", "", f"![session timeline]({timeline.SVG_FILE})", ""]
    out += timeline.markdown_lines(model)
    out += ["", "## Observer notes", ""]
    out += read_notes(session.dir) or ["(none)"]
    return "\n".join(out) + "\n"


def html_page(session: Session) -> str:
    """gameday.html (links to each run's report)."""
    e = html.escape
    halted = status(session)
    parts = [(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Game day: "
             f"{e(session.plan.title)}</title><style>{STYLE}</style></head><body>"),
             f"<h1>Game day: {e(session.plan.title)}</h1>",
             (f"<p>Started {clock(session.started)} UTC, {len(session.results)} of "
             f"{len(session.plan.steps)} runs; "
             f"written {time.strftime('%H:%M:%S', time.gmtime())} UTC.</p>"),
             f"<p><b class=bad>{e(halted)}</b></p>" if halted else "",
             (f"<p>Halt conditions: {e('; '.join(h.describe() for h in session.plan.halts))}"
              ".</p>") if session.plan.halts else "",
             f"<p>Blast radius: {e(radius_text(session))}.</p>",
             f"<h2>Resilience score: {e(score_text(session))}</h2>"
             f"<p>{e(formula(session.plan.targets))}</p><table><tr>"
             + "".join(f"<th>{e(h)}</th>" for h in HEAD) + "</tr>"]
    for row, result in zip(_rows(session), session.results, strict=True):
        cells = [f"<td>{e(c)}</td>" for c in row]
        cells.append(f"<td>{_html_links(links(session, result))}</td>")
        css = "" if row[2] == "PASSED" else " class='bad'"
        parts.append(f"<tr{css}>" + "".join(cells) + "</tr>")
    parts.append("</table><h2>Session timeline</h2>")
    parts.append(timeline.svg(timeline.build(session)))
    parts.append("<h2>Observer notes</h2><ul>")
    parts += [f"<li>{e(n[2:])}</li>" for n in read_notes(session.dir)] or ["<li>(none)</li>"]
    parts.append("</ul></body></html>")
    return "\n".join(parts) + "\n"
