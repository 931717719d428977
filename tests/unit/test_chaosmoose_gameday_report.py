"""The game day's session report: links to every run's report and the session timeline in
one SVG, drawn from a synthetic session (no cluster, no chaos run)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from chaosmoose.gameday import report, session, timeline
from chaosmoose.gameday.plan import parse_plan
from chaosmoose.gameday.session import StepResult
from chaosmoose.ledger import Ledger

T0 = 1_795_683_600.0  # the session's start
SVG = "{http://www.w3.org/2000/svg}"


def synthetic_session(tmp_path: Path) -> session.Session:
    """Four runs: passed (a kill, undone; a leader change), deviated, failed (a fault never
    undone), and one halted by a halt condition at T0 + 100 s."""
    (tmp_path / "a.json").write_text("{}")
    names = ["leader loss", "follower <loss> & co", "bit rot", "leader pause"]
    plan = parse_plan({"title": "Storage <day>", "pause_between": 0,
                       "experiments": [{"path": "a.json", "name": n} for n in names]}, tmp_path)
    game = session.Session(plan, tmp_path / "runs", "chaos", offline=True, say=lambda line: None)
    game.started = T0
    spans = [(0, 30, "PASSED"), (35, 55, "DEVIATED"), (60, 80, "FAILED (exit 1)"),
             (85, 100, "HALTED")]
    for step, (a, b, verdict) in zip(plan.steps, spans, strict=True):
        run_dir = game.dir / f"{step.index:02d}-{session.slug(step.name)}"
        run_dir.mkdir()
        if verdict != "HALTED":  # a halted run before its journal has no report
            (run_dir / "report.html").write_text("<html></html>")
            (run_dir / "report.md").write_text("# run\n")
        game.results.append(StepResult(step, run_dir, 0, verdict, b - a, None,
                                       started=T0 + a, ended=T0 + b))
    first = Ledger(game.dir / "01-leader-loss")
    kill = first.open("container.kill", {"service": "master-1"}, "r1")
    first.open("workload.runner", {"service": "client-1"}, "r1")  # an observer: not drawn
    _rewrite_times(first, {kill["id"]: (T0 + 5, T0 + 28)})
    game.results[0].leader_changes = [(T0 + 1, "master-1"), (T0 + 9, "master-2")]
    third = Ledger(game.dir / "03-bit-rot")
    third.open("chunk.corrupt", {"service": "chunkserver-2"}, "r3")
    _rewrite_times(third, {})
    game.halt_reason, game.halted_at = "halt condition: no leader for 20 s: <boom>", T0 + 100
    return game


def _rewrite_times(ledger: Ledger, windows: dict[str, tuple[float, float]]) -> None:
    """Put the ledger's faults at fixed times: ``windows`` {id: (applied, undone)}; others
    applied at their run's start + 1 s and never undone."""
    records = [json.loads(line) for line in ledger.path.read_text().splitlines()]
    out = []
    for record in records:
        applied, undone = windows.get(record["id"], (T0 + 61, None))
        record["t"] = applied
        out.append(record)
        if undone is not None:
            out.append({"event": "undone", "id": record["id"], "how": "started", "t": undone})
    ledger.path.write_text("".join(json.dumps(r) + "\n" for r in out))


@pytest.fixture
def game(tmp_path):
    return synthetic_session(tmp_path)


def test_the_model_has_one_bar_per_run_with_faults_leaders_and_the_halt(game):
    model = timeline.build(game)
    assert [(b.index, b.outcome) for b in model.bars] == [
        (1, "passed"), (2, "deviated"), (3, "failed"), (4, "halted")]
    assert model.start == T0 and model.end == T0 + 100
    assert model.bars[0].faults == (timeline.Window(T0 + 5, T0 + 28,
                                                    "container.kill on master-1"),)
    assert model.bars[0].leaders == ((T0 + 9, "master-2"),)  # the first poll is no change
    assert model.bars[2].faults[0].open_at_end and model.bars[2].faults[0].end == T0 + 80
    assert model.bars[0].report == "01-leader-loss/report.html" and model.bars[3].report is None
    assert model.halt == (T0 + 100, "halt condition: no leader for 20 s: <boom>")


def test_the_svg_is_well_formed_escaped_and_places_everything_on_one_axis(game):
    text = timeline.svg(timeline.build(game))
    root = ET.fromstring(text)  # raises on anything unescaped
    rects = {r.get("class"): r for r in root.iter(f"{SVG}rect") if r.get("class")}
    assert set(rects) >= {"passed", "deviated", "failed", "halted", "fault"}
    bars = [r for r in root.iter(f"{SVG}rect") if r.get("class") in timeline.COLOURS]
    xs = [float(r.get("x")) for r in bars]
    assert xs == sorted(xs) and xs[0] == timeline.LABEL, "runs go left to right from 0"
    right = float(bars[-1].get("x")) + float(bars[-1].get("width"))
    assert right == pytest.approx(timeline.WIDTH - timeline.RIGHT, abs=0.2)
    assert float(bars[0].get("width")) == pytest.approx(
        (timeline.WIDTH - timeline.LABEL - timeline.RIGHT) * 30 / 100, abs=0.2)
    fault = next(r for r in root.iter(f"{SVG}rect") if r.get("class") == "fault")
    assert float(fault.get("x")) == pytest.approx(
        timeline.LABEL + (timeline.WIDTH - timeline.LABEL - timeline.RIGHT) * 5 / 100, abs=0.2)
    halt = next(line for line in root.iter(f"{SVG}line") if line.get("class") == "halt")
    assert float(halt.get("x1")) == pytest.approx(timeline.WIDTH - timeline.RIGHT, abs=0.2)
    assert "no leader for 20 s: <boom>" in "".join(halt.itertext())
    titles = ["".join(t.itertext()) for t in root.iter(f"{SVG}title")]
    assert any(t.startswith("leader: master-2 from 0:09") for t in titles)
    assert any("follower <loss> & co: DEVIATED" in t for t in titles)
    assert "follower &lt;loss&gt; &amp; co" in text and "<boom>" not in text
    ticks = [t.text for t in root.iter(f"{SVG}text") if t.get("text-anchor") == "middle"]
    assert ticks[0] == "0:00" and ticks[-1] == "1:40" and len(ticks) <= 11
    links = [a.get("href") for a in root.iter(f"{SVG}a")]
    assert links == ["01-leader-loss/report.html", "02-follower-loss-co/report.html",
                     "03-bit-rot/report.html"]


def test_the_html_report_links_every_run_and_inlines_the_timeline(game):
    page = report.html_page(game)
    assert "<a href='01-leader-loss/report.html'>html</a>, " \
           "<a href='01-leader-loss/report.md'>md</a>" in page
    assert "<a href='03-bit-rot/report.md'>md</a>" in page
    assert page.count("(no report)") == 1  # the halted run
    assert page.count("<svg") == 1 and 'class="session-timeline"' in page
    assert "Storage &lt;day&gt;" in page and "Storage <day>" not in page
    assert "Blast radius: at most 1 masters and 1 chunkservers down at once." in page


def test_the_markdown_report_links_every_run_and_the_timeline_picture(game):
    game.write_timeline()
    md = report.markdown(game)
    assert "| [html](<01-leader-loss/report.html>), [md](<01-leader-loss/report.md>) |" in md
    assert "| 4 | leader pause | HALTED |" in md and "(no report) |" in md
    assert f"![session timeline]({timeline.SVG_FILE})" in md
    assert (game.dir / timeline.SVG_FILE).read_text().startswith("<svg")
    assert "- 0:00–0:30 #1 leader loss: PASSED; faults: container.kill on master-1 " \
           "0:05–0:28; leader: master-2 from 0:09" in md
    assert "chunk.corrupt on chunkserver-2 1:01–1:20 (never undone)" in md
    assert "- 1:40 halted: halt condition: no leader for 20 s: <boom>" in md
    for link in re.findall(r"\]\(<([^>]+)>\)", md):
        assert (game.dir / link).exists(), f"{link} is not relative to the session folder"


def test_an_empty_session_still_draws(tmp_path):
    (tmp_path / "a.json").write_text("{}")
    plan = parse_plan({"experiments": ["a.json"]}, tmp_path)
    game = session.Session(plan, tmp_path / "runs", "chaos", offline=True, say=lambda line: None)
    text = timeline.svg(timeline.build(game))
    ET.fromstring(text)
    assert "no run started" in text
    assert timeline.markdown_lines(timeline.build(game)) == ["- no run started"]


@pytest.mark.parametrize("span, step", [(10, 1), (100, 10), (152, 30), (3000, 300)])
def test_ticks_are_round(span, step):
    assert timeline.tick_step(span) == step
