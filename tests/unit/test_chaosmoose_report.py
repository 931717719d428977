"""chaosmoose report on a real run directory (journal, ledger and checker result of a
chunkserver-loss run, kept under tests/unit/data), with Prometheus and logs faked."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosmoose import cli
from chaosmoose.logs._collector import LogLine
from chaosmoose.report import collect, render

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
    assert page.count("<svg") == len(collect.SERIES) and 'class="mark"' in page
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
