"""A real run with its evidence (chunkserver-loss from the cluster suite, committed under
tests/unit/data): the report renders every section offline from what the run stored."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from chaosmoose import cli

DATA = Path(__file__).parent / "data" / "run-chunkserver-loss-evidence"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(DATA, target)
    return target


def test_offline_report_of_a_stored_run_has_charts_logs_and_figures(run_dir, capsys):
    assert cli.main(["report", "--offline", str(run_dir)]) == 0
    out = capsys.readouterr()
    sources = re.search(r"(\d+) Prometheus points \(stored\), (\d+) log lines \(stored\)",
                        out.out)
    assert sources and int(sources.group(1)) > 100 and int(sources.group(2)) > 0, out
    assert "note:" not in out.err
    md = (run_dir / "report.md").read_text()
    assert md.index("| key figure | value |") < md.index("## Write availability")
    assert "alert detection time: MooseNGChunkserverDown | 15.13 s" in md
    assert "| acknowledged writes lost (RPO) | 0 writes |" in md
    assert "not available" not in md  # every section had its stored data
    page = (run_dir / "report.html").read_text()
    charts = re.findall(r'<svg[^>]*class="[^"]*series-chart', page)
    assert len(charts) == 6  # one per stored series, none empty
    assert page.count("<polyline") >= 6 and 'class="fault"' in page
    assert "registered" in page or "connection lost" in page  # stored log excerpts


def test_a_stored_run_without_its_evidence_says_which_sections_have_no_data(run_dir, capsys):
    shutil.rmtree(run_dir / "evidence")
    assert cli.main(["report", "--offline", str(run_dir)]) == 0
    err = capsys.readouterr().err
    assert "Prometheus series not stored in this run directory" in err
    assert "log lines not stored in this run directory" in err
