"""The game day's consolidated report (gameday.md, gameday.html)."""

from __future__ import annotations

import html
import time

from chaosmoose.gameday.score import FLOOR, GRACE_S, session_score
from chaosmoose.gameday.session import Session, read_notes
from chaosmoose.report.render import STYLE, clock

__all__: list[str] = []  # not an activity module

FORMULA = (f"Each run scores 0 if it did not pass or lost or corrupted an acknowledged write; "
           f"otherwise 100 minus 1 point per second that its longest gap without an "
           f"acknowledged write exceeds {GRACE_S:g} s (at least {FLOOR:g}). The session scores "
           "the mean over the runs started.")


def _rows(session: Session) -> list[list[str]]:
    rows = []
    for r in session.results:
        check = r.check or {}
        longest = (check.get("unavailability") or {}).get("longest_s")
        rto = ", ".join(f"{name} {waited:.1f} s" for name, waited in r.recovery) or "-"
        rows.append([str(r.step.index), r.step.name, r.verdict, f"{r.seconds:.1f} s",
                     f"{r.score:.0f}", "-" if not check else f"{check.get('lost')} of "
                     f"{check.get('acknowledged')}", "-" if longest is None else f"{longest} s",
                     rto, f"{r.run_dir.name}/report.html"])
    return rows


HEAD = ["#", "experiment", "outcome", "time", "score", "lost writes", "longest write gap",
        "recovery", "report"]


def markdown(session: Session) -> str:
    """gameday.md."""
    score = session_score([r.score for r in session.results])
    planned = len(session.plan.steps)
    out = [f"# Game day: {session.plan.title}", "",
           (f"Started {clock(session.started)} UTC, {len(session.results)} of {planned} runs"
           f"{' (HALTED by Ctrl-C; every fault undone)' if session.halted else ''}. "
           f"Session folder `{session.dir}`."), "", f"**Resilience score: {score} / 100**", "",
           f"Formula: {FORMULA}", "", "| " + " | ".join(HEAD) + " |",
           "|" + "---|" * len(HEAD)]
    out += ["| " + " | ".join(row) + " |" for row in _rows(session)]
    out += ["", "## Observer notes", ""]
    out += read_notes(session.dir) or ["(none)"]
    return "\n".join(out) + "\n"


def html_page(session: Session) -> str:
    """gameday.html (links to each run's report)."""
    e = html.escape
    score = session_score([r.score for r in session.results])
    parts = [(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Game day: "
             f"{e(session.plan.title)}</title><style>{STYLE}</style></head><body>"),
             f"<h1>Game day: {e(session.plan.title)}</h1>",
             (f"<p>Started {clock(session.started)} UTC, {len(session.results)} of "
             f"{len(session.plan.steps)} runs{' <b class=bad>(HALTED by Ctrl-C; every fault undone)</b>' if session.halted else ''}; "
             f"written {time.strftime('%H:%M:%S', time.gmtime())} UTC.</p>"),
             f"<h2>Resilience score: {score} / 100</h2><p>{e(FORMULA)}</p><table><tr>"
             + "".join(f"<th>{e(h)}</th>" for h in HEAD) + "</tr>"]
    for row in _rows(session):
        cells = [f"<td>{e(c)}</td>" for c in row[:-1]]
        cells.append(f"<td><a href='{e(row[-1])}'>report</a></td>")
        css = "" if row[2] == "PASSED" else " class='bad'"
        parts.append(f"<tr{css}>" + "".join(cells) + "</tr>")
    parts.append("</table><h2>Observer notes</h2><ul>")
    parts += [f"<li>{e(n[2:])}</li>" for n in read_notes(session.dir)] or ["<li>(none)</li>"]
    parts.append("</ul></body></html>")
    return "\n".join(parts) + "\n"
