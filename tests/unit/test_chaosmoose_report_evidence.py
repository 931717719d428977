"""A run directory as complete evidence: Prometheus series and log lines stored at the end of
a run (``chaosmoose.report.evidence``), rendered later without the lab; Prometheus and the
log collector are faked (and made to fail the test if an offline report touches them)."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosmoose import cli
from chaosmoose.logs import _collector
from chaosmoose.logs._collector import LogLine
from chaosmoose.monitoring import _prometheus
from chaosmoose.report import collect, evidence

DATA = Path(__file__).parent / "data" / "run-chunkserver-loss"
SOURCES = evidence.Sources(prometheus="http://prom.example:9090",
                           logs="all.log of the 'logs' service of compose project 'mooseng'")


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(DATA, target)
    return target


@pytest.fixture
def no_lab(monkeypatch):
    """Any live query fails the test: what must render offline may not touch the lab."""
    def forbidden(*args, **kwargs):
        raise AssertionError(f"the lab was queried: {args}")

    monkeypatch.setattr(_prometheus, "range_query", forbidden)
    monkeypatch.setattr(_collector, "read_window", forbidden)
    return forbidden


def fake_query_range(query, start, end, step):
    """One point per step, the value telling which query it was."""
    number = [q for _, q in collect.SERIES].index(query)
    points, t = [], start
    while t <= end:
        points.append((t, float(number)))
        t += step
    return points


LINES = [
    LogLine("2026-11-26T09:27:10.000000+00:00", "master-1", "mooseng-master-1-1",
            "event=ha_decision decision='no action: I am the leader'"),
    LogLine("2026-11-26T09:27:11.000000+00:00", "chunkserver-2", "mooseng-chunkserver-2-1",
            "hdd space manager: scanning folder /var/lib/mooseng/tiers/fast"),
    LogLine("2026-11-26T09:27:12.000000+00:00", "master-2", "mooseng-master-2-1",
            "chunkserver 172.18.0.7 registered"),
    LogLine("2026-11-26T09:27:13.000000+00:00", "client-1", "mooseng-client-1-1",
            "GET /metrics 200"),
]


def fake_read(since, until, services, pattern, limit):
    assert services is None and pattern is None and limit == 0, "store reads the whole window"
    return list(LINES)


def down(*args, **kwargs):
    raise ActivityFailed("Prometheus at http://prom.example:9090 unreachable: connection refused")


def store(run_dir: Path, **kwargs) -> dict:
    run = collect.load_run(run_dir)
    options = {"now": run.end + 3600.0, **kwargs}
    query_range = options.pop("query_range", fake_query_range)
    read = options.pop("read", fake_read)
    return evidence.store(run_dir, run.start, run.end, query_range, read, SOURCES,
                          "unit test", **options)


def test_stored_series_and_logs_render_offline_exactly_as_queried(run_dir):
    manifest = store(run_dir)
    run = collect.load_run(run_dir)
    window = manifest["window"]
    assert window["start"] == run.start - collect.MARGIN_S
    assert window["end"] == run.end + collect.MARGIN_S  # stored long after: nothing cut
    expected, error = collect.query_series(fake_query_range, window["start"], window["end"])
    assert error is None

    evidence.fill_run(run, offline=True, sources=SOURCES)
    assert run.series == expected and run.series_source == "stored"
    assert isinstance(run.series[0]["points"][0], tuple)
    assert run.series_error is None and run.logs_error is None
    assert run.logs == [LINES[0].as_dict(), LINES[2].as_dict()]  # the report's default pattern
    assert run.logs_source == "stored"
    assert run.evidence["stored_by"] == "unit test"
    assert manifest["series"] == {**manifest["series"], "source": SOURCES.prometheus,
                                  "series": len(collect.SERIES), "error": None}
    assert manifest["logs"]["lines"] == manifest["logs"]["lines_in_window"] == 4
    assert manifest["logs"]["matching_default_pattern"] == 2
    assert json.loads((run_dir / "evidence" / "manifest.json").read_text()) == manifest

    # Another pattern picks other stored lines: all lines of the window are there.
    other = collect.load_run(run_dir)
    evidence.fill_run(other, offline=True, pattern=r"GET /metrics", sources=SOURCES)
    assert [line["service"] for line in other.logs] == ["client-1"]


def test_stored_evidence_is_used_without_offline_too(run_dir, no_lab):
    store(run_dir)
    run = collect.load_run(run_dir)
    evidence.fill_run(run, offline=False, query_range=no_lab, read=no_lab, sources=SOURCES)
    assert run.series_source == run.logs_source == "stored"


def test_large_files_are_gzip_compressed_small_ones_plain(run_dir):
    manifest = store(run_dir, gzip_above=0)
    folder = run_dir / "evidence"
    assert manifest["series"]["file"] == "series.json.gz"
    assert manifest["logs"]["file"] == "logs.jsonl.gz"
    for name in ("series.json.gz", "logs.jsonl.gz"):
        data = (folder / name).read_bytes()
        assert data[:2] == b"\x1f\x8b", f"{name} is not gzip"
        assert gzip.decompress(data).decode().strip()
    assert len(gzip.decompress((folder / "logs.jsonl.gz").read_bytes()).splitlines()) == 4
    assert not (folder / "series.json").exists() and not (folder / "logs.jsonl").exists()

    manifest = store(run_dir, gzip_above=10**9)
    assert (manifest["series"]["file"], manifest["logs"]["file"]) == ("series.json", "logs.jsonl")
    assert json.loads((folder / "series.json").read_text())["series"]
    assert not (folder / "series.json.gz").exists() and not (folder / "logs.jsonl.gz").exists()


def test_without_evidence_offline_says_per_section_why_there_is_no_data(run_dir, no_lab):
    run = collect.load_run(run_dir)
    evidence.fill_run(run, offline=True, query_range=no_lab, read=no_lab, sources=SOURCES)
    assert run.series == [] and run.logs == []
    assert run.series_source == run.logs_source == "none" and run.evidence == {}
    assert run.series_error.startswith("Prometheus series not stored in this run directory")
    assert run.series_error.endswith(
        "--offline forbids querying Prometheus at http://prom.example:9090")
    assert run.logs_error.startswith("log lines not stored in this run directory")
    assert run.logs_error.endswith(f"--offline forbids reading the log collector "
                                   f"({SOURCES.logs})")


def test_without_evidence_and_online_the_lab_is_queried_live(run_dir):
    run = collect.load_run(run_dir)
    evidence.fill_run(run, offline=False, query_range=fake_query_range,
                      read=lambda *a: [LINES[0]], sources=SOURCES)
    assert run.series_source == run.logs_source == "live"
    assert len(run.series) == len(collect.SERIES) and run.logs == [LINES[0].as_dict()]


def test_an_unreachable_source_is_recorded_in_the_manifest_not_raised(run_dir, no_lab):
    def docker_gone(*args):
        raise RuntimeError("Error while fetching server API version")

    manifest = store(run_dir, query_range=down, read=docker_gone)
    on_disk = json.loads((run_dir / "evidence" / "manifest.json").read_text())
    assert on_disk == manifest
    assert manifest["series"]["error"] == ("Prometheus at http://prom.example:9090 "
                                           "unreachable: connection refused")
    assert manifest["series"]["series"] == 0
    assert manifest["logs"]["error"] == ("RuntimeError: Error while fetching server API "
                                         "version")
    assert manifest["logs"]["file"] is None
    assert "errors: series: Prometheus at" in evidence.summary(manifest)

    run = collect.load_run(run_dir)
    evidence.fill_run(run, offline=True, query_range=no_lab, read=no_lab, sources=SOURCES)
    assert run.series_error.startswith("Prometheus series stored incomplete at ")
    assert "unreachable: connection refused" in run.series_error
    assert run.logs_error.startswith("log lines not stored (RuntimeError: Error while fetching")
    # Online, an incomplete section is asked again from the lab.
    run = collect.load_run(run_dir)
    evidence.fill_run(run, offline=False, query_range=fake_query_range,
                      read=lambda *a: [LINES[2]], sources=SOURCES)
    assert run.series_source == run.logs_source == "live" and run.series_error is None


def test_a_source_failing_halfway_keeps_what_it_gave(run_dir):
    calls = []

    def flaky(query, start, end, step):
        calls.append(query)
        if len(calls) > 2:
            raise ActivityFailed("Prometheus at http://prom.example:9090 unreachable: timeout")
        return fake_query_range(query, start, end, step)

    manifest = store(run_dir, query_range=flaky)
    assert manifest["series"]["series"] == 2 and "timeout" in manifest["series"]["error"]
    run = collect.load_run(run_dir)
    evidence.fill_run(run, offline=True, sources=SOURCES)
    assert [s["title"] for s in run.series] == [t for t, _ in collect.SERIES[:2]]
    assert run.series_source == "stored" and "stored incomplete" in run.series_error


def test_the_window_is_cut_at_store_time_at_the_end_of_a_run(run_dir):
    run = collect.load_run(run_dir)
    manifest = store(run_dir, now=run.end + 2.0)
    assert manifest["window"]["end"] == run.end + 2.0
    assert manifest["window"]["cut_at_store_time"] is True


def test_evidence_of_another_run_is_not_shown_for_this_journal(run_dir, no_lab):
    run = collect.load_run(run_dir)
    evidence.store(run_dir, run.start - 900, run.end - 900, fake_query_range, fake_read,
                   SOURCES, "unit test", now=run.end)
    evidence.fill_run(run, offline=True, sources=SOURCES)
    assert run.series == [] and "belongs to the run that started" in run.series_error
    assert "belongs to the run that started" in run.logs_error


def test_a_damaged_evidence_file_is_named_and_the_lab_asked_when_online(run_dir, no_lab):
    manifest = store(run_dir, gzip_above=0)
    (run_dir / "evidence" / manifest["series"]["file"]).write_bytes(b"\x1f\x8bnot gzip")
    run = collect.load_run(run_dir)
    evidence.fill_run(run, offline=True, sources=SOURCES)
    assert run.series == [] and run.series_error.startswith("Prometheus series stored but "
                                                           "unusable (")
    assert "series.json.gz is unreadable" in run.series_error
    assert run.logs_source == "stored" and run.logs_error is None
    run = collect.load_run(run_dir)
    evidence.fill_run(run, offline=False, query_range=fake_query_range, read=no_lab,
                      sources=SOURCES)
    assert run.series_source == "live" and run.logs_source == "stored"
    (run_dir / "evidence" / "manifest.json").write_text("{torn")
    run = collect.load_run(run_dir)
    evidence.fill_run(run, offline=True, sources=SOURCES)
    assert "manifest.json is not JSON" in run.series_error and run.evidence == {}


def test_log_lines_beyond_the_limit_keep_every_matching_line_and_the_newest_others():
    records = [{"time": str(i), "service": "s", "container": "c",
                "message": f"event=ha_decision {i}" if i in (1, 4) else f"noise {i}"}
               for i in range(10)]
    kept, matching = evidence.bound_lines(records, 4)
    assert matching == 2
    assert [r["time"] for r in kept] == ["1", "4", "8", "9"]
    kept, _ = evidence.bound_lines(records, 1)
    assert [r["time"] for r in kept] == ["4"]
    assert evidence.bound_lines(records, 10)[0] == records


def test_the_manifest_counts_dropped_lines(run_dir):
    manifest = store(run_dir, max_log_lines=3)
    assert manifest["logs"]["lines"] == 3 and manifest["logs"]["dropped"] == 1
    assert manifest["logs"]["max_lines"] == 3


def test_histories_are_listed_and_a_missing_one_is_named(run_dir):
    folder = run_dir / "workload" / "r"
    (folder / "workload.json").write_text(json.dumps(
        {"run": "r", "clients": {"client-1": {}, "client-2": {}}, "stopped": True}))
    (folder / "client-1.history.jsonl").write_text('{"type": "invoke"}\n{"type": "ok"}\n')
    manifest = store(run_dir)
    assert manifest["histories"]["files"] == {"workload/r/client-1.history.jsonl": 2}
    assert manifest["histories"]["missing"] == ["workload/r/client-2.history.jsonl"]
    assert "stop_workload did not run" in manifest["histories"]["error"]


def test_cli_report_offline_renders_from_stored_evidence(run_dir, no_lab, capsys):
    points = store(run_dir, gzip_above=0)["series"]["points"]
    assert points > len(collect.SERIES)
    assert cli.main(["report", "--offline", str(run_dir)]) == 0
    out = capsys.readouterr()
    assert f"{points} Prometheus points (stored), 2 log lines (stored)" in out.out
    assert "note:" not in out.err
    md = (run_dir / "report.md").read_text()
    assert "event=ha_decision decision='no action: I am the leader'" in md
    assert "chunkserver 172.18.0.7 registered" in md
    assert "not available" not in md


def test_cli_report_offline_without_evidence_says_why(run_dir, no_lab, capsys, monkeypatch):
    monkeypatch.setenv("CHAOSMOOSE_PROMETHEUS_URL", "http://prom.example:9090")
    assert cli.main(["report", "--offline", str(run_dir)]) == 0
    err = capsys.readouterr().err
    assert "note: Prometheus series not stored in this run directory" in err
    assert "--offline forbids querying Prometheus at http://prom.example:9090" in err
    md = (run_dir / "report.md").read_text()
    assert "not available: Prometheus series not stored in this run directory" in md
    assert "not available: log lines not stored in this run directory" in md


def test_cli_report_store_keeps_complete_sections(run_dir, monkeypatch, capsys):
    asked = []

    def query(query, start, end, step, configuration=None, secrets=None):
        asked.append(query)
        return fake_query_range(query, start, end, step)

    def read(since, until, services, pattern, limit, configuration=None, secrets=None):
        return fake_read(since, until, services, pattern, limit)

    monkeypatch.setattr(_prometheus, "range_query", query)
    monkeypatch.setattr(_collector, "read_window", read)
    assert cli.main(["report", "--store", str(run_dir)]) == 0
    assert "6 Prometheus series" in capsys.readouterr().out
    first = evidence.read_manifest(run_dir)
    assert first["stored_by"] == "chaosmoose report --store" and not asked[len(collect.SERIES):]

    # Later the sources are gone: a second --store keeps what was stored, and renders it.
    monkeypatch.setattr(_prometheus, "range_query", down)
    monkeypatch.setattr(_collector, "read_window", down)
    assert cli.main(["report", "--store", str(run_dir)]) == 0
    second = evidence.read_manifest(run_dir)
    assert second["series"] == {**first["series"], "kept": True}
    assert second["logs"] == {**first["logs"], "kept": True}
    assert "Prometheus points (stored)" in capsys.readouterr().out


def test_cli_report_refuses_store_with_offline(run_dir, capsys):
    assert cli.main(["report", "--offline", "--store", str(run_dir)]) == 2
    assert "--offline forbids it" in capsys.readouterr().err
    assert not (run_dir / "evidence").exists()


def test_the_strict_control_stores_evidence_at_the_end_and_never_fails_for_it(tmp_path,
                                                                            monkeypatch):
    from chaosmoose.controls import strict

    config = {"chaosmoose_run_dir": str(tmp_path / "run")}
    journal = {"status": "completed", "deviated": False, "run": [], "steady_states": {},
               "start": "2026-11-26T09:26:48+00:00", "end": "2026-11-26T09:28:00+00:00"}
    calls = []

    def fake_store(run_dir, start, end, stored_by, configuration=None, secrets=None,
                   keep_complete=False):
        calls.append((run_dir, end - start, configuration))
        return {"series": {"error": None}, "logs": {"error": "the log collector (logs) is "
                                                    "not running"}, "histories": {}}

    monkeypatch.setattr(evidence, "store_from_lab", fake_store)
    strict.after_experiment_control({}, journal, config)
    assert calls == [(tmp_path / "run", 72.0, config)]
    assert journal["chaosmoose"]["evidence"] == {
        "folder": str(tmp_path / "run" / "evidence"),
        "errors": {"logs": "the log collector (logs) is not running"}}
    assert journal["status"] == "completed"

    def crash(*args, **kwargs):
        raise PermissionError("[Errno 13] Permission denied: 'run/evidence'")

    monkeypatch.setattr(evidence, "store_from_lab", crash)
    journal["chaosmoose"] = {}
    strict.after_experiment_control({}, journal, config)  # no exception
    assert journal["chaosmoose"]["evidence"]["errors"] == {
        "evidence": "PermissionError: [Errno 13] Permission denied: 'run/evidence'"}
    assert journal["status"] == "completed" and journal["chaosmoose"]["strict"]["violations"] == []

    calls.clear()
    monkeypatch.setattr(evidence, "store_from_lab", fake_store)
    journal["chaosmoose"] = {}
    strict.after_experiment_control({}, journal, config, store_evidence=False)
    assert calls == [] and "evidence" not in journal["chaosmoose"]


def test_the_store_from_the_lab_reads_the_configured_sources(tmp_path, monkeypatch,
                                                             requests_mock):
    seen = {}
    prometheus = requests_mock.get("http://prom.example:9090/api/v1/query_range", json={
        "status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {}, "values": [[970.0, "1"], [1000.0, "NaN"]]}]}})

    def read(since, until, services, pattern, limit, configuration=None, secrets=None):
        seen["logs"] = (since, until, limit, configuration)
        return LINES

    monkeypatch.setattr(_collector, "read_window", read)
    config = {"prometheus_url": "http://prom.example:9090", "evidence_log_lines": "3",
              "logs_service": "syslog"}
    manifest = evidence.store_from_lab(tmp_path, 1000.0, 1060.0, "t", config)
    assert prometheus.call_count == len(collect.SERIES)
    assert prometheus.last_request.qs["start"] == ["970.000"]
    assert seen["logs"] == (970.0, manifest["window"]["end"], 0, config)
    assert manifest["series"]["source"] == "http://prom.example:9090"
    assert manifest["series"]["error"] is None and manifest["series"]["points"] == 12
    assert "'syslog' service" in manifest["logs"]["source"]
    assert manifest["logs"]["max_lines"] == 3 and manifest["logs"]["dropped"] == 1
    run_points = evidence.load_series(tmp_path, manifest["series"])[0]["points"]
    assert run_points[0] == (970.0, 1.0) and run_points[1][1] != run_points[1][1]  # NaN kept
    with pytest.raises(ActivityFailed, match="evidence_log_lines='0' is invalid"):
        evidence.store_from_lab(tmp_path, 1000.0, 1060.0, "t", {"evidence_log_lines": "0"})
