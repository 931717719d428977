"""`make bench` (scripts/bench.py) and its figures (scripts/benchstats.py): choosing the
benchmarks, their command lines, reading their results, figures against baselines and
targets, the results JSON, the Markdown table and the SVG chart. No Docker: the suite's
cluster check and benchmarks are faked; one test runs a tiny stand-in benchmark script."""

import json
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import bench
import benchstats as bs

MIB = 1 << 20
GIB = 1 << 30
SVG = "{http://www.w3.org/2000/svg}"


# --- results as the benchmarks write them ----------------------------------------------------

def io_result(fuse_write=45.0, direct_write=100.0) -> dict:
    def side(mib_s, iops):
        return {"mib_s": mib_s, "iops": iops, "bw_bytes": int(mib_s * MIB)}
    return {
        "benchmark": "io", "chunkserver": "chunkserver-1",
        "jobs": {
            "seq_write": {"fuse": side(fuse_write, fuse_write), "direct": side(direct_write,
                                                                               direct_write),
                          "compared": "mib_s", "ratio": fuse_write / direct_write},
            "seq_read": {"fuse": side(180.0, 180), "direct": side(200.0, 200),
                         "compared": "mib_s", "ratio": 0.9},
            "rand_read": {"fuse": side(4.0, 1000.0), "direct": side(40.0, 10000.0),
                          "compared": "iops", "ratio": 0.1},
            "rand_write": {"fuse": side(2.0, 500.0), "direct": side(8.0, 2000.0),
                           "compared": "iops", "ratio": 0.25}},
        "metadata": {"fuse": {"create_per_s": 700.0, "stat_per_s": 9000.0,
                              "unlink_per_s": 900.0},
                     "direct": {"create_per_s": 70000.0, "stat_per_s": 300000.0,
                                "unlink_per_s": 90000.0}},
        "concurrent": {"clients": ["client-1", "client-2", "client-3"],
                       "seq_write": {"aggregate_mib_s": 90.0},
                       "seq_read": {"aggregate_mib_s": 360.0}},
        "errors": []}


IDLE = {"benchmark": "idle", "total": {"memory_bytes": int(1.5 * GIB), "cpu_percent": 95.5},
        "target_memory_bytes": GIB, "make_up": None}
FAILOVER = {"rounds": 3, "lost": 0, "corrupt": 0, "stalled_rounds": 0,
            "leader_s": {"p50": 2.97, "p95": 3.3, "max": 3.33},
            "first_write_s": {"p50": 4.78, "p95": 5.07, "max": 5.07},
            "all_clients_s": {"p50": 4.87, "p95": 5.18, "max": 5.18}, "per_round": [],
            "breakdown": {"leader.served": {"p50": 2.39, "p95": 2.45, "max": 2.45},
                          "clients.registered": {"p50": 2.56, "p95": 2.68, "max": 2.68}}}
DATA = {"writer": "client-1", "reader": "client-2", "generate_mib_s_median": 49.0,
        "verify_mib_s_median": 122.3, "lost": 0, "per_round": []}
REPLICATION = {"summary": {"rounds": 1, "target_s": 60.0,
                           "re_replicated_s": {"p50": 69.8, "p95": 69.8, "max": 69.8},
                           "re_replicated_mib_s": {"p50": 7.2, "p95": 7.2, "max": 7.2}},
               "rounds": [{"round": 1, "timeline": {"loss": [{"t": 0.5}]},
                           "re_replicated_s": 69.8}]}


def record(result, status="ok", code=0, error=None) -> dict:
    return {"status": status, "exit_code": code, "seconds": 12.5, "command": "x",
            "source": None, "error": error, "note": None, "result": result}


def document(**records) -> dict:
    machine = {"cores": 2, "memory_bytes": 8 * GIB, "kernel": "6.1.0-28-amd64",
               "docker": {"version": "20.10.24"}, "git": {"commit": "e3d89d4abcdef0123",
                                                          "dirty": True}}
    return bs.results("results-20241129T103500Z", "2024-11-29T10:35:00Z",
                      "2024-11-29T10:50:00Z", "scripts/bench.py", {"short": False}, machine,
                      records)


# --- figures, ratios, targets ----------------------------------------------------------------

def test_target_on_the_ratio_and_on_the_value():
    at_least = bs.Target(">=", 0.5)
    assert at_least.met(1.0, 0.5) is True and at_least.met(1.0, 0.49) is False
    assert at_least.met(1.0, None) is None
    assert at_least.text() == "≥ 0.5 × baseline"
    at_most = bs.Target("<=", 1024, on="value")
    assert at_most.met(1000, None) is True and at_most.met(1536, 9.0) is False
    assert at_most.text("MiB") == "≤ 1024 MiB"
    with pytest.raises(ValueError):
        bs.Target("==", 1)


def test_figure_ratio_met_and_where_its_bar_ends():
    fuse = bs.Figure("io", "write", 45.0, "MiB/s", 100.0, "disk", bs.Target(">=", 0.5))
    assert fuse.ratio == 0.45 and fuse.met is False
    assert fuse.scale == 0.45 and fuse.scale_target == 0.5
    memory = bs.Figure("idle", "memory", 1536.0, "MiB", target=bs.Target("<=", 1024, "value"))
    assert memory.ratio is None and memory.met is False
    assert memory.scale == 1.5 and memory.scale_target == 1.0
    lost = bs.Figure("failover", "lost", 0.0, "writes", target=bs.Target("<=", 0, "value"))
    assert lost.met is True and lost.scale is None  # a zero target cannot scale a bar
    plain = bs.Figure("data", "written", 49.0, "MiB/s")
    assert plain.met is None and plain.scale is None
    zero_baseline = bs.Figure("io", "x", 1.0, "IOPS", 0.0, "disk", bs.Target(">=", 0.3))
    assert zero_baseline.ratio is None and zero_baseline.met is None
    assert bs.Figure("io", "x", None, "IOPS", 5.0).as_dict()["ratio"] is None


def test_io_figures_compare_fuse_with_the_disk_and_the_clients_with_one():
    figures = {f.name: f for f in bs.io_figures(io_result())}
    write = figures["FUSE sequential write, 1 MiB blocks"]
    assert (write.value, write.baseline, write.baseline_name) == (45.0, 100.0,
                                                                  "chunkserver-1 disk")
    assert write.target == bs.Target(">=", 0.5) and write.met is False
    read = figures["FUSE sequential read, 1 MiB blocks"]
    assert read.ratio == pytest.approx(0.9) and read.met is True
    rand = figures["FUSE random read, 4 KiB blocks"]
    assert (rand.value, rand.unit, rand.met) == (1000.0, "IOPS", False)
    assert figures["FUSE random write, 4 KiB blocks"].target is None
    create = figures["FUSE metadata: create"]
    assert create.ratio == pytest.approx(0.01) and create.unit == "files/s"
    together = figures["FUSE sequential read, 3 clients at once (aggregate)"]
    assert (together.value, together.baseline, together.baseline_name) == (360.0, 180.0,
                                                                           "one client")
    assert len(figures) == 4 + 3 + 2
    partial = io_result()
    del partial["concurrent"], partial["jobs"]["rand_read"]
    names = [f.name for f in bs.io_figures(partial)]
    assert "FUSE random read, 4 KiB blocks" in names  # kept, as not measured
    assert not any("at once" in n for n in names)
    assert next(f for f in bs.io_figures(partial) if "random read" in f.name).met is None


def test_idle_failover_data_and_replication_figures():
    idle = {f.name: f for f in bs.idle_figures(IDLE)}
    memory = idle["idle memory, every container (mean)"]
    assert memory.value == 1536.0 and memory.met is False and memory.scale == 1.5
    assert idle["idle CPU, every container"].value == 95.5
    timed = bs.idle_figures({**IDLE, "make_up": {"seconds": 24.0}})
    assert timed[-1].name == "make up to all healthy" and timed[-1].value == 24.0
    failover = {f.name: f for f in bs.failover_figures(FAILOVER)}
    rto = failover["first acknowledged write after the kill, RTO (p50)"]
    assert rto.value == 4.78 and rto.met is False and rto.target.threshold == 3.0
    assert failover["acknowledged writes lost"].met is True
    every = failover["every client writing again (p50)"]
    assert every.value == 4.87 and every.met is False and every.target.threshold == 3.5
    assert failover["every client writing again (max)"].met is True  # 5.18 <= 6
    # the breakdown's steps, only those the run found
    assert failover["new leader serving (p50)"].value == 2.39
    assert failover["mounts registered with the new leader (p50)"].value == 2.56
    assert "chunkservers registered with the new leader (p50)" not in failover
    data = {f.name: f for f in bs.data_figures(DATA)}
    assert data["data set written through client-1 (median)"].value == 49.0
    assert data["data set entries lost"].met is True
    replication = bs.replication_figures(REPLICATION)
    assert replication[0].value == 69.8 and replication[0].met is False
    assert replication[2].value is None  # not rebalanced: shown as '-'


# --- the results document --------------------------------------------------------------------

def test_results_layout():
    doc = document(io=record(io_result()), idle=record(IDLE),
                   failover=record(None, "failed", 1, "exit 1: no result"))
    assert list(doc) == ["run", "started", "ended", "command", "options", "machine",
                         "benchmarks", "figures", "targets"]
    assert list(doc["benchmarks"]) == ["io", "idle", "failover"]
    assert doc["benchmarks"]["failover"]["error"] == "exit 1: no result"
    first = doc["figures"][0]
    assert set(first) == {"benchmark", "figure", "value", "unit", "baseline", "baseline_name",
                          "ratio", "target", "target_text", "met"}
    assert first["ratio"] == 0.45 and first["target"] == {"op": ">=", "threshold": 0.5,
                                                          "on": "ratio"}
    assert first["target_text"] == "≥ 0.5 × baseline" and first["met"] is False
    assert doc["targets"] == {"met": 1, "not_met": 3, "unknown": 0}
    assert json.loads(json.dumps(doc)) == doc  # plain JSON
    again = bs.figures_from_results(json.loads(json.dumps(doc)))
    assert [f.as_dict() for f in again] == doc["figures"]


# --- Markdown and SVG ------------------------------------------------------------------------

def test_markdown_table_rows():
    figures = bs.io_figures(io_result()) + bs.idle_figures(IDLE)
    lines = bs.table(figures).splitlines()
    assert lines[0] == "| benchmark | figure | value | baseline | ratio | target | met |"
    assert lines[2] == ("| io | FUSE sequential write, 1 MiB blocks | 45 MiB/s | 100 MiB/s "
                        "(chunkserver-1 disk) | 0.45 | ≥ 0.5 × baseline | **no** |")
    assert ("| idle | idle memory, every container (mean) | 1 536 MiB | - | - | ≤ 1024 MiB | "
            "**no** |") in lines
    assert "| io | FUSE metadata: stat | 9 000 files/s | 300 000 files/s (chunkserver-1 disk)"\
           " | 0.03 | - | - |" in lines
    assert len(lines) == 2 + len(figures)


def test_number_format():
    assert bs.fmt(None) == "-"
    assert bs.fmt(0.0, "writes") == "0 writes"
    assert bs.fmt(4.781, "s") == "4.78 s"
    assert bs.fmt(45.25, "MiB/s") == "45.2 MiB/s"
    assert bs.fmt(12345.6, "IOPS") == "12 346 IOPS"


def test_markdown_page():
    doc = document(io=record(io_result()), data=record(None, "failed", 2, "exit 2: no result"))
    page = bs.markdown(doc, "results-20241129T103500Z.svg")
    assert page.startswith("# MooseNG benchmarks, results-20241129T103500Z\n")
    assert ("Machine: 2 cores, 8.0 GiB memory, kernel 6.1.0-28-amd64, Docker 20.10.24, commit "
            "e3d89d4abcde with uncommitted changes.") in page
    assert "| io | ok | 0 | 12.5 | - |" in page
    assert "| data | failed | 2 | 12.5 | exit 2: no result |" in page
    assert "Targets: 1 met, 2 not met (of 3 judged)" in page
    assert "![each figure against its baseline or target](results-20241129T103500Z.svg)" in page


def bars(svg: str) -> list:
    root = ET.fromstring(svg)
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "row"]


def test_svg_chart_is_self_contained_and_draws_every_comparable_figure():
    figures = (bs.io_figures(io_result()) + bs.idle_figures(IDLE)
               + bs.failover_figures(FAILOVER) + bs.data_figures(DATA))
    svg = bs.svg_chart(figures, "MooseNG benchmarks <test> & more")
    root = ET.fromstring(svg)  # well-formed XML
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    assert "<script" not in svg and "href" not in svg
    assert "&lt;test&gt; &amp; more" in svg
    rows = bars(svg)
    drawn = [f for f in figures if f.scale is not None]
    # 9 io figures, idle memory, failover RTO and every client p50 / max (scaled to their
    # targets); not CPU, not losses, not the breakdown's steps (no target)
    assert len(rows) == len(drawn) == 13
    colours = [next(r.iter(f"{SVG}rect")).get("fill") for r in rows]
    assert colours[0] == bs.COLOURS[False]         # sequential write 0.45 < 0.5
    assert colours[1] == bs.COLOURS[True]          # sequential read 0.9 >= 0.8
    assert colours[3] == bs.COLOURS[None]          # random write: no target
    targets = [r for r in rows if any(line.get("class") == "target"
                                      for line in r.iter(f"{SVG}line"))]
    assert len(targets) == 3 + 4                   # io targets, memory, RTO, every client x2
    widths = [float(next(r.iter(f"{SVG}rect")).get("width")) for r in rows]
    assert widths[0] < widths[1]                   # 0.45 vs 0.9
    assert all(w <= bs.PLOT for w in widths)
    assert float(root.get("width")) >= bs.PLOT + len("io: FUSE sequential write, 1 MiB blocks")\
        * bs.CHAR_PX
    assert "0.45 × chunkserver-1 disk; target ≥ 0.5: not met" in svg
    assert "4.78 s; target ≤ 3 s: not met" in svg


def test_svg_chart_clips_long_bars_and_says_when_there_is_nothing_to_draw():
    huge = bs.Figure("io", "x", 100.0, "MiB/s", 1.0, "disk")
    svg = bs.svg_chart([huge, bs.Figure("io", "y", 1.0, "MiB/s", 1.0, "disk")], "t")
    widths = [float(next(r.iter(f"{SVG}rect")).get("width")) for r in bars(svg)]
    assert widths[0] == bs.PLOT and "»" in svg and "100.00 × disk" in svg
    empty = bs.svg_chart([bs.Figure("data", "written", 1.0, "MiB/s")], "t")
    ET.fromstring(empty)
    assert "no figure with a baseline or a target" in empty and not bars(empty)


# --- choosing and running the benchmarks -----------------------------------------------------

def test_selection():
    assert bench.select([], False) == ["idle", "io", "data", "failover"]
    assert bench.select([], True) == ["idle", "io", "data", "failover", "replication"]
    assert bench.select(["io"], False) == ["io"]
    assert bench.select(["failover,io", "idle"], False) == ["idle", "io", "failover"]
    assert bench.select(["replication"], False) == ["replication"]
    with pytest.raises(ValueError, match="unknown benchmark disk; expected one of idle, io"):
        bench.select(["io,disk"], False)


def test_extra_arguments_and_command_lines(tmp_path):
    extra = bench.parse_extra(["io=--size 64MiB --no-concurrent", "io=--files 10"])
    assert extra == {"io": ["--size", "64MiB", "--no-concurrent", "--files", "10"]}
    for bad in ("io", "disk=--x"):
        with pytest.raises(ValueError, match="NAME=ARGS"):
            bench.parse_extra([bad])
    out = tmp_path / "io.json"
    argv = bench.command(bench.BENCHMARKS["io"], True, extra["io"], out, python="py")
    assert argv == ["py", str(bench.SCRIPTS / "io_benchmark.py"), "--size", "16MiB",
                    "--runtime", "3", "--files", "200", "--size", "64MiB",
                    "--no-concurrent", "--files", "10", "--out", str(out)]
    failover = bench.command(bench.BENCHMARKS["failover"], False, (), out, python="py")
    assert failover[2:] == ["--kills", "3"]  # its result comes from its run directory
    assert bench.command(bench.BENCHMARKS["failover"], True, python="py")[2:] == ["--kills",
                                                                                  "1"]
    assert bench.shown([sys.executable, str(bench.SCRIPTS / "bench.py"), "a b"]) == \
        ".venv/bin/python scripts/bench.py 'a b'"


def test_dry_run_prints_every_command(capsys):
    assert bench.main(["--dry-run", "--short", "--only", "io,idle"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("idle: .venv/bin/python scripts/idle_cost.py --seconds 10 ")
    assert out[1].startswith("io: .venv/bin/python scripts/io_benchmark.py --size 16MiB ")
    assert len(out) == 2


def test_bad_arguments_exit_2():
    for bad in (["--only", "nope"], ["--args", "x"], ["--timeout", "0"]):
        with pytest.raises(SystemExit) as exc:
            bench.parse_args(bad)
        assert exc.value.code == 2


def test_results_are_read_from_the_out_file_the_run_directory_or_stdout(tmp_path):
    io_spec, failover = bench.BENCHMARKS["io"], bench.BENCHMARKS["failover"]
    out = tmp_path / "io.json"
    out.write_text(json.dumps({"benchmark": "io"}))
    assert bench.read_result(io_spec, out, "", []) == ({"benchmark": "io"}, str(out))
    run_dir = tmp_path / "runs" / "bench-20241129T103500"
    run_dir.mkdir(parents=True)
    (run_dir / "benchmark.json").write_text(json.dumps(FAILOVER))
    lines = ["10:35:00 run=bench-20241129T103500 kills=3 masters=master-1"]
    result, source = bench.read_result(failover, None, "{}", lines, repo=tmp_path)
    assert result == FAILOVER and source == "runs/bench-20241129T103500/benchmark.json"
    printed = '$ command\n{\n  "rounds": 1,\n  "lost": 0\n}\n'
    assert bench.read_result(failover, None, printed, ["no run here"], repo=tmp_path) == (
        {"rounds": 1, "lost": 0}, "stdout")
    with pytest.raises(bench.ResultMissing, match="its last line: cannot start: no leader"):
        bench.read_result(failover, None, "", ["cannot start: no leader", ""], repo=tmp_path)
    out.write_text("{half")
    with pytest.raises(bench.ResultMissing, match="not JSON"):
        bench.read_result(io_spec, out, "", [])


def test_run_name_and_last_json():
    assert bench.run_name(["x", "12:00:00 run=bench-data-1 size=1 GiB", "run=other"]) == \
        "bench-data-1"
    assert bench.run_name(["nothing"]) is None
    assert bench.last_json('{"a": 1}\ntext {"b": 2}\n{"c": 3}\n') == {"c": 3}
    assert bench.last_json("no json") is None


def test_records_and_exit_status():
    ok = bench.record_of(0, 3.21, ["py", "s"], {"x": 1}, "stdout", None, ["done"])
    assert ok["status"] == "ok" and ok["seconds"] == 3.2 and ok["note"] is None
    partial = bench.record_of(1, 1, ["py"], {"lost": 2}, "f", None, ["lost 2", ""])
    assert partial["status"] == "partial" and "exited 1" in partial["note"]
    assert "Last line: lost 2" in partial["note"]
    failed = bench.record_of(2, 1, ["py"], None, None, "exit 2: no result", [])
    assert failed["status"] == "failed" and failed["result"] is None
    assert bench.exit_status({"io": ok, "idle": failed}) == 0
    assert bench.exit_status({"io": partial}) == 0
    assert bench.exit_status({"io": failed, "idle": failed}) == 1
    assert bench.exit_status({}) == 1


def test_replication_timelines_are_left_out_of_the_suite_json():
    slim = bench.slim("replication", REPLICATION)
    assert "timeline" not in slim["rounds"][0] and slim["rounds"][0]["re_replicated_s"] == 69.8
    assert "timeline" in REPLICATION["rounds"][0]  # not changed in place
    assert bench.slim("io", {"a": 1}) == {"a": 1}


STAND_IN = textwrap.dedent("""
    import json, sys
    print("12:00:00 run=standin-1 working", file=sys.stderr)
    print("12:00:01 halfway", file=sys.stderr)
    args = sys.argv[1:]
    if "--fail" in args:
        print("cannot start: no cluster", file=sys.stderr)
        sys.exit(2)
    out = args[args.index("--out") + 1]
    open(out, "w").write(json.dumps({"benchmark": "io", "value": 7}))
    print(json.dumps({"printed": True}))
    sys.exit(1 if "--verdict" in args else 0)
""")


def test_run_one_streams_progress_and_reads_the_result(tmp_path):
    script = tmp_path / "standin.py"
    script.write_text(STAND_IN)
    out = tmp_path / "io.json"
    echoed = []
    spec = bench.BENCHMARKS["io"]
    done = bench.run_one(spec, [sys.executable, str(script), "--out", str(out)], out, 60,
                         echo=echoed.append)
    assert done["status"] == "ok" and done["exit_code"] == 0
    assert done["result"] == {"benchmark": "io", "value": 7} and done["source"] == str(out)
    assert echoed == ["  io | 12:00:00 run=standin-1 working", "  io | 12:00:01 halfway"]
    verdict = bench.run_one(spec, [sys.executable, str(script), "--out", str(out),
                                   "--verdict"], out, 60, echo=echoed.append)
    assert verdict["status"] == "partial" and verdict["exit_code"] == 1
    out.unlink()
    failed = bench.run_one(spec, [sys.executable, str(script), "--fail"], out, 60,
                           echo=echoed.append)
    assert failed["status"] == "failed" and failed["exit_code"] == 2
    assert failed["error"] == "exit 2: no result; its last line: cannot start: no cluster"


def test_write_outputs(tmp_path):
    doc = document(io=record(io_result()), idle=record(IDLE))
    paths = bench.write_outputs(tmp_path / "bench", "results-20241129T103500Z", doc)
    assert sorted(p.name for p in paths.values()) == [
        "results-20241129T103500Z.json", "results-20241129T103500Z.md",
        "results-20241129T103500Z.svg"]
    assert json.loads(paths["json"].read_text()) == doc
    assert "| io | FUSE sequential write" in paths["md"].read_text()
    ET.fromstring(paths["svg"].read_text())


# --- the suite end to end, with the cluster check and the benchmarks faked --------------------

class FakeDocker:
    def ping(self):
        return True

    def version(self):
        return {"Version": "20.10.24", "ApiVersion": "1.41"}

    def info(self):
        return {"NCPU": 2, "MemTotal": 8 * GIB, "Driver": "overlay2", "CgroupVersion": "2"}


@pytest.fixture
def suite(monkeypatch, tmp_path):
    """bench.main with Docker and the benchmarks faked; returns what ran."""
    import docker

    ran = []
    monkeypatch.setattr(docker, "from_env", lambda **kw: FakeDocker())
    monkeypatch.setattr(bench, "cluster_problem", lambda *a: None)
    outcomes = {"idle": record(IDLE), "io": record(io_result())}

    def fake_run_one(spec, argv, out, timeout, echo=bench.relay):
        ran.append((spec.name, list(argv)))
        return outcomes.get(spec.name, record(None, "failed", 1, "exit 1: no result"))

    monkeypatch.setattr(bench, "run_one", fake_run_one)
    return ran, outcomes, tmp_path / "bench"


def test_suite_runs_the_selection_and_writes_json_markdown_and_svg(suite, capsys):
    ran, _, out_dir = suite
    code = bench.main(["--short", "--only", "io", "--only", "idle", "--out-dir", str(out_dir)])
    assert code == 0
    assert [name for name, _ in ran] == ["idle", "io"]
    assert "--seconds" in ran[0][1] and "--size" in ran[1][1]
    files = sorted(p.name for p in out_dir.iterdir())
    assert len(files) == 3 and files[0].startswith("results-") and files[0].endswith("Z.json")
    doc = json.loads((out_dir / files[0]).read_text())
    assert list(doc["benchmarks"]) == ["idle", "io"]
    assert doc["options"]["short"] is True and doc["options"]["selected"] == ["idle", "io"]
    assert doc["machine"]["docker"]["version"] == "20.10.24" and doc["machine"]["cores"]
    assert doc["machine"]["git"]["commit"]
    assert any(f["figure"] == "FUSE sequential write, 1 MiB blocks" for f in doc["figures"])
    assert "| io | FUSE sequential write" in capsys.readouterr().out


def test_a_failed_benchmark_is_recorded_and_the_suite_goes_on(suite):
    ran, _, out_dir = suite
    assert bench.main(["--only", "data,io", "--out-dir", str(out_dir)]) == 0
    assert [name for name, _ in ran] == ["io", "data"]
    doc = json.loads(next(out_dir.glob("*.json")).read_text())
    assert doc["benchmarks"]["data"]["status"] == "failed"
    assert doc["benchmarks"]["io"]["status"] == "ok"


def test_every_benchmark_failing_exits_1(suite):
    _, outcomes, out_dir = suite
    outcomes.clear()
    assert bench.main(["--only", "data,failover", "--out-dir", str(out_dir)]) == 1
    assert len(list(out_dir.glob("*.md"))) == 1


def test_an_unreachable_cluster_exits_2_and_runs_nothing(suite, monkeypatch):
    ran, _, out_dir = suite
    monkeypatch.setattr(bench, "cluster_problem", lambda *a: "Docker API unreachable: refused")
    assert bench.main(["--out-dir", str(out_dir)]) == 2
    assert ran == [] and not out_dir.exists()


def test_cluster_problem_names_what_is_missing():
    class Containers:
        def __init__(self, found):
            self.found = found

        def list(self, filters):
            assert filters == {"label": "com.docker.compose.project=mooseng"}
            return self.found

    class Client(FakeDocker):
        def __init__(self, found):
            self.containers = Containers(found)

    masters = {"master-1": "http://127.0.0.1:9431"}
    assert bench.cluster_problem(Client(["c"]), "mooseng", masters, lambda url: 200) is None
    assert "no running container of compose project mooseng" in bench.cluster_problem(
        Client([]), "mooseng", masters, lambda url: 200)
    assert "no master agent answers /health" in bench.cluster_problem(
        Client(["c"]), "mooseng", masters, lambda url: 0)

    class Down(FakeDocker):
        def ping(self):
            raise ConnectionError("connection refused")

    assert bench.cluster_problem(Down(), "mooseng", masters, lambda url: 200) == \
        "Docker API unreachable: connection refused"
