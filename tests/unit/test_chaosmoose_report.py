"""chaosmoose report on a real run directory (journal, ledger and checker result of a
chunkserver-loss run, kept under tests/unit/data), with Prometheus and logs faked."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from xml.etree import ElementTree

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosmoose import cli
from chaosmoose.logs._collector import LogLine
from chaosmoose.report import collect, render, timeline

DATA = Path(__file__).parent / "data" / "run-chunkserver-loss"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(DATA, target)
    return target


def test_timeline_merges_activities_and_ledger_in_time_order(run_dir):
    run = collect.load_run(run_dir)
    times = [e.t for e in run.events]
    assert times == sorted(times)
    kill = next(e for e in run.events if e.what.startswith("action kill-a-chunkserver"))
    opened = next(e for e in run.events if "container.kill" in e.what and "opened" in e.what)
    undone = next(e for e in run.events if "container.kill" in e.what and "undone" in e.what)
    assert kill.t <= opened.t < undone.t and kill.status == "succeeded"
    assert {e.source for e in run.events} == {"method", "ledger", "rollback"}
    assert dict(collect.recovery(run)) == {"monitoring-fires-chunkserver-down": pytest.approx(
        json.loads((run_dir / "journal.json").read_text())["run"][2]["output"]["waited_s"]),
        "chunkserver-down-alert-resolves": pytest.approx(
        json.loads((run_dir / "journal.json").read_text())["run"][6]["output"]["waited_s"])}


def test_markdown_and_html_carry_outcome_writes_series_and_logs(run_dir):
    run = collect.load_run(run_dir)
    asked = []

    def query_range(query, start, end, step):
        asked.append((query, start, end, step))
        return [(start, 0.0), (run.start + 5, 1.0), (end, 0.0)]

    def read(since, until, services, pattern, limit):
        assert since == run.start - collect.MARGIN_S and until == run.end + collect.MARGIN_S
        return [LogLine("2026-11-26T09:27:16.306000+00:00", "master-1", "mooseng_master-1_1",
                        "event=ha_decision decision='<promoted> & done'")]

    collect.add_series(run, query_range)
    collect.add_logs(run, read)
    assert len(asked) == len(collect.SERIES) and all(a[2] - a[1] > run.end - run.start for a in asked)
    md = render.markdown(run)
    assert md.startswith(f"# {run.title}\n") and "**PASSED**" in md
    check = run.check
    assert f"- lost (RPO): {check['lost']}" in md and f"- acknowledged writes: {check['acknowledged']}" in md
    assert "- monitoring-fires-chunkserver-down:" in md
    assert "min 0, max 1" in md and "▁█▁" in md
    assert "event=ha_decision decision='<promoted> & done'" in md
    page = render.html_page(run)
    # one chart per series, each with the fault (the chunkserver kill) shaded
    assert page.count('<svg class="series-chart"') == len(collect.SERIES)
    assert page.count('class="fault"') == len(collect.SERIES)
    assert "&lt;promoted&gt; &amp; done" in page and "<promoted>" not in page


def test_unreachable_sources_are_reported_not_fatal(run_dir):
    run = collect.load_run(run_dir)

    def down(*args):
        raise ActivityFailed("Prometheus at http://127.0.0.1:9090 unreachable: connection refused")

    collect.add_series(run, down)
    collect.add_logs(run, down)
    md = render.markdown(run)
    assert md.count("not available: Prometheus at http://127.0.0.1:9090 unreachable") == 2


def test_a_failed_run_says_why(run_dir):
    journal = json.loads((run_dir / "journal.json").read_text())
    journal.update(status="failed", deviated=True)
    journal["chaosmoose"]["strict"] = {"violations": ["steady state missed after the method"],
                                       "healed": [{"kind": "container.kill", "service": "chunkserver-1"}]}
    (run_dir / "journal.json").write_text(json.dumps(journal))
    md = render.markdown(collect.load_run(run_dir))
    assert "**DEVIATED**" in md
    assert "- strict mode violation: steady state missed after the method" in md
    assert "- healed by strict mode: container.kill on chunkserver-1" in md


def test_cli_writes_both_files_offline_and_rejects_a_folder_without_journal(run_dir, tmp_path,
                                                                               capsys):
    assert cli.main(["report", "--offline", str(run_dir)]) == 0
    assert (run_dir / "report.md").read_text().startswith("# ")
    assert (run_dir / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert "PASSED" in capsys.readouterr().out
    assert cli.main(["report", "--offline", str(tmp_path)]) == 2
    assert "no journal.json" in capsys.readouterr().err


# --- write availability (chaosmoose/report/timeline.py) ----------------------------------

def _op(client: str, seq: int, invoked: float, outcome: str | None, done: float | None,
        **extra) -> list[dict]:
    op = {"client": client, "seq": seq, "f": "append" if seq % 2 == 0 else "write-file"}
    records = [{"t": invoked, "type": "invoke", **op}]
    if outcome:
        records.append({"t": done, "type": outcome, **op, **extra})
    return records


def _histories(t0: float) -> dict[str, list[dict]]:
    """client-1 writes, fails once, times out for 5 s (a 6.5 s gap from 2.0 s), writes again;
    client-2 hangs in an operation at 1.5 s and never ends while the others write on;
    client-3 writes every 0.5 s (one hole of exactly 1 s: not a gap) until 10 s."""
    def start(c):
        return [{"t": t0, "type": "start", "f": "workload", "client": c}]

    def end(c):
        return [{"t": t0 + 10.0, "type": "end", "f": "workload", "client": c}]

    one = start("client-1")
    for seq, t in enumerate((0.5, 1.0, 1.5, 2.0), 1):
        one += _op("client-1", seq, t0 + t - 0.01, "ok", t0 + t)
    one += _op("client-1", 5, t0 + 2.49, "fail", t0 + 2.5, error="OSError: EIO")
    one += _op("client-1", 6, t0 + 3.0, "info", t0 + 8.0, error="timeout after 5 s")
    for seq, t in enumerate((8.5, 9.0, 9.5), 7):
        one += _op("client-1", seq, t0 + t - 0.01, "ok", t0 + t)
    one += [{"t": t0 + 9.6, "type": "info", "late": True, "late_outcome": "ok",
             "client": "client-1", "seq": 6, "f": "append"}]
    one += end("client-1")
    two = start("client-2") + _op("client-2", 1, t0 + 0.49, "ok", t0 + 0.5)
    two += _op("client-2", 2, t0 + 0.99, "ok", t0 + 1.0) + _op("client-2", 3, t0 + 1.5, None, None)
    three = start("client-3")
    times = [n / 2 for n in range(1, 21) if n != 9]  # 0.5 .. 10.0 without 4.5
    for seq, t in enumerate(times, 1):
        three += _op("client-3", seq, t0 + t - 0.01, "ok", t0 + t)
    three += end("client-3")
    return {"client-1": one, "client-2": two, "client-3": three}


def _faults(t0: float) -> list[dict]:
    return [
        {"kind": "workload.runner", "t": t0 - 0.5, "target": {"service": "client-1"}},
        {"kind": "container.kill", "t": t0 - 1.0, "undone_t": t0 + 3.0,
         "target": {"service": "chunkserver-1"}},
        {"kind": "network.partition", "t": t0 + 7.0, "undone_t": None,
         "target": {"service": "master-1"}},
        {"kind": "container.pause", "t": t0 + 20.0, "undone_t": t0 + 30.0,
         "target": {"service": "master-2"}},
    ]


T0 = 1_795_685_200.0
CHANGES = [{"new_served_from": T0 + 6.0, "new": {"node": "master-2", "epoch": 8},
            "old": {"node": "master-1", "epoch": 7}}]


def _model(**kwargs):
    return timeline.build(_histories(T0), _faults(T0), start=T0, end=T0 + 10.0, **kwargs)


def test_availability_model_counts_outcomes_and_finds_gaps_of_each_client():
    model = _model()
    assert model.duration == pytest.approx(10.0) and model.threshold == 1.0
    lanes = {lane.client: lane for lane in model.lanes}
    assert [(c, ok, fail, info) for c, ok, fail, info, _ in timeline.summary_rows(model)] == [
        ("client-1", 7, 1, 1), ("client-2", 2, 0, 1), ("client-3", 19, 0, 0)]
    assert [(round(g.start, 3), round(g.end, 3)) for g in lanes["client-1"].gaps] == [(2.0, 8.5)]
    assert lanes["client-1"].ops[5] == (pytest.approx(8.0), "info")  # at its timeout
    # client-2 hung at 1.5 s with no end record: its gap runs to the others' last record
    assert [(round(g.start, 3), round(g.end, 3)) for g in lanes["client-2"].gaps] == [(1.0, 10.0)]
    assert lanes["client-2"].ops[-1] == (pytest.approx(1.5), "info")
    assert lanes["client-3"].gaps == []  # a hole of exactly 1 s is not longer than 1 s
    assert [(round(g.start, 3), g.seconds) for g in
            _model(threshold=0.9).lanes[2].gaps] == [(4.0, 1.0)]
    assert timeline.summary_rows(model)[1][4] == "9 s from 1.0 s"
    assert timeline.summary_rows(model)[2][4] == "none"


def test_fault_windows_are_clipped_to_the_run_and_runner_entries_left_out():
    model = timeline.build(_histories(T0), _faults(T0), CHANGES, start=T0, end=T0 + 10.0)
    assert [(round(a, 3), round(b, 3), label) for a, b, label in model.faults] == [
        (0.0, 3.0, "container.kill on chunkserver-1"),       # opened before the run
        (7.0, 10.0, "network.partition on master-1")]        # never undone
    assert model.leader_changes == [(pytest.approx(6.0), "leader: master-2")]
    assert _model().leader_changes == []


def test_latency_percentiles_per_second():
    assert timeline.percentile([5, 1, 3, 2], 50) == 2 and timeline.percentile([5, 1, 3, 2], 99) == 5
    latency = {s: (p50, p99, n) for s, p50, p99, n in _model().latency}
    # second 8: client-1's 5 s timeout and three 10 ms writes (client-1 at 8.5, client-3 at 8, 8.5)
    assert latency[8] == (pytest.approx(10.0), pytest.approx(5000.0), 4)
    assert latency[0] == (pytest.approx(10.0), pytest.approx(10.0), 3)
    assert latency[1] == (pytest.approx(10.0), pytest.approx(10.0), 5)
    # every completed operation is timed once; client-2's hung one never completed
    assert sum(n for *_, n in _model().latency) == 7 + 1 + 1 + 2 + 19


def test_lanes_svg_has_a_lane_per_client_legend_axis_and_shaded_faults():
    model = timeline.build(_histories(T0), _faults(T0), CHANGES, start=T0, end=T0 + 10.0)
    svg = timeline.lanes_svg(model)
    root = ElementTree.fromstring(svg)  # well-formed, self-contained
    ns = "{http://www.w3.org/2000/svg}"
    lanes = [g for g in root.iter(f"{ns}g") if g.get("class") == "lane"]
    assert [g.find(f"{ns}text").text for g in lanes] == ["client-1", "client-2", "client-3"]
    ticks = [t for t in root.iter(f"{ns}line") if t.get("class") == "tick"]
    assert len(ticks) == 11  # 0..10 s every second
    assert "time since run start (s)" in svg
    faults = [r for r in root.iter(f"{ns}rect") if r.get("class") == "fault"]
    assert [(r.get("x"), r.get("width")) for r in faults] == [
        (str(float(timeline.LEFT)), str(round(0.3 * timeline.PLOT, 1))),
        (str(round(timeline.LEFT + 0.7 * timeline.PLOT, 1)), str(round(0.3 * timeline.PLOT, 1)))]
    legend = next(g for g in root.iter(f"{ns}g") if g.get("class") == "legend")
    assert [t.text for t in legend.iter(f"{ns}text")] == [
        "acknowledged", "failed", "unknown", "no acknowledged write > 1 s",
        "fault (opened to undone)", "leader change"]
    assert len([r for r in root.iter(f"{ns}rect") if r.get("class") == "gap"]) == 2
    assert len([x for x in root.iter(f"{ns}line") if x.get("class") == "leader"]) == 1
    assert any(x.get("class") == "op-fail" for x in root.iter(f"{ns}line"))
    assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "leader change" not in timeline.lanes_svg(_model())
    latency = ElementTree.fromstring(timeline.latency_svg(model))
    assert {p.get("class") for p in latency.iter(f"{ns}polyline")} == {"p50", "p99"}
    assert "1000 ms" in timeline.latency_svg(model)


def _write_histories(run_dir: Path, start: float) -> None:
    folder = run_dir / "workload" / "r"
    for client, records in _histories(start).items():
        (folder / f"{client}.history.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in records))


def test_report_of_a_run_with_histories_has_the_write_availability_section(run_dir):
    start = collect.load_run(run_dir).start
    _write_histories(run_dir, start)
    (run_dir / "leader-overlap.json").write_text(json.dumps({"leader_changes": [
        {"new_served_from": start + 6.0, "new": {"node": "master-2"}}]}))
    run = collect.load_run(run_dir)
    assert sorted(run.histories) == ["client-1", "client-2", "client-3"]
    md = render.markdown(run)
    assert md.index("## Write availability") < md.index("## Steady state")
    assert "| client-1 | 7 | 1 | 1 | 6.5 s from 2.0 s |" in md
    assert "| client-2 | 2 | 0 | 1 | 9 s from 1.0 s |" in md
    assert "- leader: master-2 at 6.0 s" in md
    page = render.html_page(run)
    assert page.index("<h2>Write availability</h2>") < page.index("<h2>Steady state</h2>")
    assert page.index("<b class='PASSED'>") < page.index("<h2>Write availability</h2>")
    assert page.count('<svg class="availability"') == 1 and page.count('<svg class="latency"') == 1
    assert 'class="leader"' in page and "no workload history" not in page


def test_report_of_a_run_without_histories_says_so(run_dir):
    run = collect.load_run(run_dir)
    assert run.histories == {} and run.leader_changes == []
    md = render.markdown(run)
    assert "## Write availability\n\n- no workload history in this run" in md
    page = render.html_page(run)
    assert "<h2>Write availability</h2><p>no workload history in this run" in page
    assert 'class="availability"' not in page


def test_latency_lines_break_where_a_second_has_no_completed_operation():
    from chaosmoose.report.timeline import _consecutive
    rows = [(2, 1.0, 2.0, 3), (3, 1.0, 2.0, 3), (7, 1.0, 2.0, 1), (9, 1.0, 2.0, 1), (10, 1.0, 2.0, 1)]
    assert [[r[0] for r in run] for run in _consecutive(rows)] == [[2, 3], [7], [9, 10]]
