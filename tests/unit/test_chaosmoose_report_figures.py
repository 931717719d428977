"""Recovery figures (chaosmoose/report/figures.py) on a small synthetic leader-loss run,
and the report's charts and key figures drawn from it (render.py, charts.py)."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

import pytest

from chaosmoose.report import charts, collect, figures, render

T0 = 1_795_685_200.0          # the run's start
FAULT = T0 + 5.05             # the leader kill in place (applied_t)
NS = "{http://www.w3.org/2000/svg}"
DATA = Path(__file__).parent / "data" / "run-chunkserver-loss"


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def op(client: str, seq: int, invoked: float, *outcomes: tuple[str, float, dict]) -> list[dict]:
    base = {"client": client, "seq": seq, "f": "append"}
    records = [{"t": T0 + invoked, "type": "invoke", **base}]
    records += [{"t": T0 + t, "type": kind, **base, **extra} for kind, t, extra in outcomes]
    return records


def histories() -> dict[str, list[dict]]:
    """client-1: a write in flight at the fault is acknowledged at 5.1 s (it does not
    count), failures, then a write invoked at 8.1 s acknowledged at 8.15 s (3.1 s);
    client-2: a timeout, then a write acknowledged at 9.25 s (4.2 s after the fault);
    client-3: its write invoked at 6 s times out at 11 s and completes ok late at 11.5 s."""
    one = [{"t": T0, "type": "start", "f": "workload", "client": "client-1"}]
    one += op("client-1", 1, 4.0, ("ok", 4.01, {}))
    one += op("client-1", 2, 4.9, ("ok", 5.1, {}))
    one += op("client-1", 3, 5.2, ("fail", 5.3, {"error": "EIO"}))
    one += op("client-1", 4, 8.1, ("ok", 8.15, {}))
    two = op("client-2", 1, 4.5, ("ok", 4.51, {}))
    two += op("client-2", 2, 5.5, ("info", 8.5, {"error": "timeout"}))
    two += op("client-2", 3, 9.0, ("ok", 9.25, {}))
    three = op("client-3", 1, 4.6, ("ok", 4.61, {}))
    three += op("client-3", 2, 6.0, ("info", 11.0, {"error": "timeout"}),
                ("info", 11.5, {"late": True, "late_outcome": "ok"}))
    return {"client-1": one, "client-2": two, "client-3": three}


FAULTS = [
    {"kind": "workload.runner", "t": T0 - 0.5, "target": {"service": "client-1"}},
    {"kind": "container.kill", "role": "leader", "t": T0 + 5.0, "applied_t": FAULT,
     "undone_t": T0 + 12.0, "target": {"service": "master-1"}},
]
CHANGES = [{"new_served_from": T0 + 8.05, "new": {"node": "master-2", "epoch": 8},
            "old": {"node": "master-1", "epoch": 7}}]


def activity(name: str, func: str, start: float, end: float, output, **arguments) -> dict:
    kind = "probe" if func.startswith(("wait", "replication")) else "action"
    return {"activity": {"name": name, "type": kind,
                         "provider": {"type": "python", "func": func, "arguments": arguments}},
            "start": iso(T0 + start), "end": iso(T0 + end), "status": "succeeded",
            "output": output}


def journal() -> dict:
    return {"experiment": {"title": "Synthetic leader loss", "description": "a <b>test</b>"},
            "start": iso(T0), "end": iso(T0 + 20.0), "status": "completed", "deviated": False,
            "run": [
                activity("kill-the-leader", "kill_master", 5.0, 5.06, {"master": "master-1"}),
                activity("wait-for-a-new-leader", "wait_for_leader", 5.1, 8.3,
                         {"name": "master-2", "epoch": 8, "waited_s": 3.2}),
                activity("alert-fires", "wait_for_alert", 5.2, 20.2,
                         {"name": "MooseNGNoLeader", "state": "firing", "waited_s": 15.0,
                          "ok": True}),
                activity("replication-back-to-goal", "replication_converged", 13.0, 14.5, 1.5),
                activity("still-at-goal", "replication_converged", 15.0, 15.2, 0.0),
            ], "rollbacks": [], "steady_states": {}}


def synthetic_run(**changes) -> collect.Run:
    run = collect.Run(Path("/runs/synthetic"), journal(), FAULTS, {
        "acknowledged": 9, "lost": 0, "corrupt": 0}, T0, T0 + 20.0)
    run.histories, run.leader_changes = histories(), CHANGES
    for key, value in changes.items():
        setattr(run, key, value)
    return run


def by_name(found: figures.Figures) -> dict[str, figures.Figure]:
    return {f.name: f for f in found.all}


# --- figures ---------------------------------------------------------------------------

def test_figures_of_a_synthetic_leader_loss():
    found = figures.compute(synthetic_run())
    assert found.fault_t == pytest.approx(FAULT)  # applied_t, not the opening
    assert found.fault_label == "container.kill on master-1"
    f = by_name(found)
    assert f["time to new leader"].value == pytest.approx(3.0)
    assert "master-2 (epoch 8)" in f["time to new leader"].detail
    rto = "time to first acknowledged write (RTO): "
    assert f[rto + "client-1"].value == pytest.approx(3.1)  # the in-flight ack at 5.1 s is left out
    assert f[rto + "client-2"].value == pytest.approx(4.2)
    assert f[rto + "client-2"].text == "4.20 s"
    assert f[rto + "client-3"].value == pytest.approx(6.45)  # acknowledged late
    assert "(late)" in f[rto + "client-3"].detail
    assert f["time to all clients writing"].value == pytest.approx(6.45)
    assert f["time to all clients writing"].detail == "the last was client-3"
    alert = f["alert detection time: MooseNGNoLeader"]
    assert alert.value == pytest.approx(15.15) and not alert.upper_bound
    converged = f["replication convergence time: replication-back-to-goal"]
    assert converged.value == pytest.approx(2.5)  # from the undo at 12 s to the probe's end
    assert "undone" in converged.detail
    bound = f["replication convergence time: still-at-goal"]
    assert bound.upper_bound and bound.text == "≤ 3.20 s"  # converged at its first poll
    assert f["acknowledged writes lost (RPO)"].text == "0 writes"
    assert [k.kind for k in found.key()] == [figures.NEW_LEADER, figures.ALL_WRITING,
                                             figures.ALERT_FIRING, figures.CONVERGENCE,
                                             figures.LOST]
    assert all(definition for _, definition in found.definitions())


def test_figures_that_cannot_be_computed_say_why():
    no_fault = by_name(figures.compute(synthetic_run(faults=FAULTS[:1])))
    assert no_fault["time to new leader"].value is None
    assert "no fault" in no_fault["time to new leader"].text
    assert no_fault["time to all clients writing"].why_not.startswith("no fault")
    none = by_name(figures.compute(synthetic_run(leader_changes=[], histories={}, check=None)))
    assert none["time to first acknowledged write (RTO)"].why_not == (
        "no workload history in this run")
    assert none["acknowledged writes lost (RPO)"].value is None
    # the leader change is still found: the wait_for_leader probe saw master-2 serve
    assert none["time to new leader"].value == pytest.approx(8.3 - 5.05)
    assert "seen by probe wait-for-a-new-leader" in none["time to new leader"].detail
    plain = journal()
    plain["run"] = plain["run"][:1]
    quiet = by_name(figures.compute(synthetic_run(leader_changes=[], journal=plain)))
    assert quiet["time to new leader"].text == "n/a (no leader change in this run)"
    hung = histories()
    hung["client-3"] = hung["client-3"][:3]  # no write after the fault completes
    stuck = by_name(figures.compute(synthetic_run(histories=hung)))
    assert "no write invoked after the fault" in stuck[
        "time to first acknowledged write (RTO): client-3"].why_not
    assert stuck["time to all clients writing"].why_not == (
        "client-3 never wrote again after the fault")


def test_a_probe_that_timed_out_gives_no_figure_but_its_reason():
    timed_out = journal()
    timed_out["run"][2]["output"].update(ok=False)
    timed_out["run"][3]["output"] = -1.0
    f = by_name(figures.compute(synthetic_run(journal=timed_out)))
    assert "gave up" in f["alert detection time: MooseNGNoLeader"].why_not
    assert "gave up" in f["replication convergence time: replication-back-to-goal"].why_not


def test_first_alert_from_the_alerts_firing_series():
    series = [{"title": "alerts firing", "query": "q",
               "points": [[T0 + t, v] for t, v in ((0, 1), (5, 1), (10, 1), (15, 2), (20, 0))]}]
    f = figures.any_alert(FAULT, series)
    assert f[0].value == pytest.approx(15 - 5.05) and "1 alerts firing" in f[0].detail
    assert figures.any_alert(FAULT, [])[0:] == []
    flat = [{"title": "alerts firing", "points": [(T0, 0.0), (T0 + 20, 0.0)]}]
    assert figures.any_alert(FAULT, flat)[0].why_not == "no alert started firing after the fault"


# --- charts and pages ------------------------------------------------------------------

def series_points(start: float, end: float, step: float = 2.0) -> list[tuple[float, float]]:
    n = int((end - start) / step)
    return [(start + i * step, float(i % 4)) for i in range(n + 1) if not 10 <= i <= 12]


def charted_run() -> collect.Run:
    run = synthetic_run()
    run.series = [{"title": title, "query": query,
                   "points": series_points(T0 - collect.MARGIN_S, T0 + 20 + collect.MARGIN_S)}
                  for title, query in collect.SERIES]
    return run


def svgs(page: str) -> list[ElementTree.Element]:
    return [ElementTree.fromstring(m) for m in re.findall(r"<svg .*?</svg>", page, re.DOTALL)]


def test_every_chart_shares_one_time_range_with_axes_legend_faults_and_leader_changes():
    run = charted_run()
    page = render.html_page(run)
    found = svgs(page)
    assert [s.get("class") for s in found] == (
        ["availability", "latency"] + ["series-chart"] * len(collect.SERIES))
    ranges = {(s.get("data-t0"), s.get("data-t1")) for s in found}
    assert ranges == {(f"{T0 - collect.MARGIN_S:.3f}", f"{T0 + 20 + collect.MARGIN_S:.3f}")}
    for svg in found:
        ticks = [t for t in svg.iter(f"{NS}line") if t.get("class") == "tick"]
        assert [t.get("x1") for t in ticks] == [t.get("x1") for t in [
            x for x in found[0].iter(f"{NS}line") if x.get("class") == "tick"]]
        labels = [t.text for t in svg.iter(f"{NS}text")]
        assert "-30" in labels and "0" in labels and "50" in labels
        assert "time since run start (s)" in labels
        legend = next(g for g in svg.iter(f"{NS}g") if g.get("class") == "legend")
        assert "fault (opened to undone)" in [t.text for t in legend.iter(f"{NS}text")]
        assert "leader change" in [t.text for t in legend.iter(f"{NS}text")]
        faults = [r for r in svg.iter(f"{NS}rect") if r.get("class") == "fault"]
        # the leader kill from 5 s to 12 s of a -30..50 s frame; the runner left out
        assert [(r.get("x"), r.get("width")) for r in faults] == [
            (str(round(charts.LEFT + 35 / 80 * charts.PLOT, 1)),
             str(round(round(charts.LEFT + 42 / 80 * charts.PLOT, 1)
                       - round(charts.LEFT + 35 / 80 * charts.PLOT, 1), 1)))]
        leader = [x for x in svg.iter(f"{NS}line") if x.get("class") == "leader"]
        assert [x.get("x1") for x in leader] == [str(round(charts.LEFT + 38.05 / 80 * charts.PLOT, 1))]
    chunks = found[2 + [t for t, _ in collect.SERIES].index("chunks missing")]
    assert "chunks" in [t.text for t in chunks.iter(f"{NS}text") if t.get("class") == "unit"]
    assert len([p for p in chunks.iter(f"{NS}polyline") if p.get("class") == "series"]) == 2
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script" not in page


def test_every_series_has_a_unit_and_the_value_axis_is_round():
    assert all(charts.unit_of(title) != charts.DEFAULT_UNIT for title, _ in collect.SERIES)
    assert charts.unit_of("something new") == "value"
    assert charts.nice_ticks(0, 3) == [0, 1, 2, 3]
    assert charts.nice_ticks(0, 0) == [0, 1]
    assert charts.nice_ticks(0, 47.5) == [0, 20, 40, 60] or charts.nice_ticks(0, 47.5)[-1] >= 47.5
    assert charts.nice_ticks(0, 0.3)[-1] >= 0.3


def test_overlapping_fault_windows_are_shaded_once():
    merged = charts.merge_windows([(1, 3, "a"), (2, 5, "b"), (7, 8, "c")])
    assert merged == [(1, 5, "a and 1 more"), (7, 8, "c")]


def test_markdown_has_the_verdict_and_key_figures_at_the_top_and_definitions():
    md = render.markdown(charted_run())
    top = md[:md.index("## Write availability")]
    assert "**PASSED**" in top
    assert "| key figure | value |" in top
    assert "| time to new leader | 3.00 s |" in top
    assert "| time to all clients writing | 6.45 s |" in top
    assert "| acknowledged writes lost (RPO) | 0 writes |" in top
    assert "Fault: container.kill on master-1, in place at" in top
    assert "| time to first acknowledged write (RTO): client-2 | 4.20 s |" in md
    assert "- **time to first acknowledged write (RTO)**: Per client" in md
    assert "<svg" not in md and "<b>" not in md.replace("a <b>test</b>", "")


def test_html_escapes_what_the_run_says_and_markdown_cells_escape_pipes():
    run = charted_run()
    run.journal["experiment"]["title"] = "x <script>alert(1)</script>"
    page = render.html_page(run)
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert render.cell("a|b\nc") == "a\\|b c"


def test_report_of_the_stored_run_renders_both_forms(tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(DATA, run_dir)
    (run_dir / "leader-overlap.json").write_text(json.dumps({"leader_changes": []}))
    run = collect.load_run(run_dir)
    page = render.html_page(run)
    assert page.startswith("<!DOCTYPE html>") and "Recovery figures" in page
    md = render.markdown(run)
    assert "| alert detection time: MooseNGChunkserverDown | 16.27 s |" in md
    assert "- monitoring-fires-chunkserver-down: 16.09 s" in md  # the probe's own wait


def test_ties_in_time_do_not_break_the_figures():
    twice = op("client-1", 1, 6.0, ("ok", 7.0, {})) + op("client-1", 2, 6.5, ("ok", 7.0, {}))
    both = [dict(CHANGES[0]), {**CHANGES[0], "new": {"node": "master-3"}}]
    f = by_name(figures.compute(synthetic_run(histories={"client-1": twice},
                                              leader_changes=both)))
    assert f["time to first acknowledged write (RTO): client-1"].value == pytest.approx(1.95)
    assert f["time to new leader"].value == pytest.approx(3.0)
