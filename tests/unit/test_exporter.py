"""The chunkserver/client exporter and the shared metrics layer (prometheus_client), on real
files and sockets; every server's exposition passes ``promtool check metrics``."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from mooseng.exporter import (
    ExporterServer,
    MountCollector,
    SingleFlight,
    TierCollector,
    count_chunk_files,
    daemon_collector,
    parse_mount_stats,
    render,
)
from mooseng.promtext import CONTENT_TYPE, Exposition, family, gauge
from mooseng.supervisor import Daemon
from tests.unit.expositions import MOUNT_STATS as STATS
from tests.unit.expositions import every_text


def samples(text: str) -> dict[str, float]:
    """{'name{labels}': value} of an exposition."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


class Families:
    """A collector of fixed families."""

    def __init__(self, *families) -> None:
        self.families = families

    def collect(self):
        return list(self.families)


def test_families_escape_labels_keep_precision_and_leave_empty_ones_out():
    text = render([Families(
        family("x_bytes", "gauge", "help", [({"path": 'a"b\\c\nd'}, 25874712345), ({}, 0.1)]),
        family("empty", "gauge", "no samples: left out", []),
        gauge("unknown_value", "None is no sample", None),
        family("x_requests_total", "counter", "a counter", [({"code": "200"}, 3)]))])
    got = samples(text)
    # full precision: %g once rounded byte counts to 6 digits
    assert got['x_bytes{path="a\\"b\\\\c\\nd"}'] == 25874712345
    assert got['x_bytes{path=""}'] == 0.1
    assert got['x_requests_total{code="200"}'] == 3
    assert "# TYPE x_bytes gauge" in text.splitlines()
    assert "# HELP x_requests_total a counter" in text.splitlines()
    assert "# TYPE x_requests_total counter" in text.splitlines()
    assert "empty" not in text and "unknown_value" not in text and "_created" not in text
    assert text.count("# TYPE") == 2


def test_a_counter_must_end_in_total_and_kinds_are_gauge_or_counter():
    with pytest.raises(ValueError, match="must end in _total"):
        family("x_requests", "counter", "h", [({}, 1)])
    with pytest.raises(ValueError, match="expected gauge or counter"):
        family("x_seconds", "histogram", "h", [({}, 1)])


def test_families_of_one_name_from_two_collectors_become_one(caplog):
    text = render([Families(gauge("mooseng_daemon_up", "h", 1, daemon="a")),
                   Families(gauge("mooseng_daemon_up", "h", 0, daemon="b")),
                   # prometheus_client names this counter mooseng_daemon_up too: a clash
                   Families(family("mooseng_daemon_up_total", "counter", "h", [({}, 1)]))])
    assert text.count("# TYPE mooseng_daemon_up gauge") == 1
    assert samples(text) == {'mooseng_daemon_up{daemon="a"}': 1, 'mooseng_daemon_up{daemon="b"}': 0}
    assert "event=metric_type_conflict metric=mooseng_daemon_up types=gauge,counter" in caplog.text


def test_an_exposition_collects_on_every_render_and_only_then():
    calls = []

    class Counting:
        def collect(self):
            calls.append(1)
            yield gauge("x_calls", "collections so far", len(calls))

    exposition = Exposition([Counting()])
    assert calls == []
    assert samples(exposition.text())["x_calls"] == 1
    assert samples(exposition.text())["x_calls"] == 2


def test_parse_mount_stats_reads_counters_and_bracketed_gauges():
    stats = parse_mount_stats(STATS + "garbage line\nname: not-a-number\n")
    assert stats["fuse_ops.write"] == 6 and stats["master.usec_ping"] == 130
    assert stats["symlink_cache.#links"] == 0 and "name" not in stats


def make_tier(root: Path, files: dict[str, int]) -> Path:
    for sub, count in files.items():
        (root / sub).mkdir(parents=True)
        for i in range(count):
            (root / sub / f"chunk_{i:016X}_00000001.mfs").write_bytes(b"x")
        (root / sub / "not-a-chunk.tmp").write_bytes(b"x")
    return root


def test_tier_collector_counts_chunk_files_and_reports_statvfs(tmp_path):
    fast = make_tier(tmp_path / "fast", {"00": 2, "A1": 3})
    bulk = make_tier(tmp_path / "bulk", {"FF": 1})
    now = [0.0]
    collector = TierCollector({"fast": fast, "bulk": bulk, "gone": tmp_path / "missing"},
                              count_every=15, clock=lambda: now[0])
    got = samples(render([collector]))
    assert got['mooseng_chunkserver_chunk_files{tier="fast"}'] == 5
    assert got['mooseng_chunkserver_chunk_files{tier="bulk"}'] == 1
    assert got['mooseng_chunkserver_chunk_files{tier="gone"}'] == 0
    st = os.statvfs(fast)
    assert got['mooseng_chunkserver_folder_size_bytes{tier="fast"}'] == st.f_blocks * st.f_frsize
    assert 'mooseng_chunkserver_folder_size_bytes{tier="gone"}' not in got
    # Counts are cached until count_every passes.
    (fast / "00" / "chunk_00000000000000FF_00000001.mfs").write_bytes(b"x")
    assert count_chunk_files(fast) == 6
    assert samples(render([collector]))['mooseng_chunkserver_chunk_files{tier="fast"}'] == 5
    now[0] = 16.0
    assert samples(render([collector]))['mooseng_chunkserver_chunk_files{tier="fast"}'] == 6


def test_mount_collector_reports_a_plain_folder_as_not_mounted(tmp_path):
    assert samples(render([MountCollector(tmp_path, timeout=2)])) == {"mooseng_client_mount_up": 0}


def test_mount_collector_reads_stats_of_a_mount(tmp_path, monkeypatch):
    (tmp_path / ".stats").write_text(STATS)
    monkeypatch.setattr(os.path, "ismount", lambda p: Path(p) == tmp_path)
    got = samples(render([MountCollector(tmp_path)]))
    assert got["mooseng_client_mount_up"] == 1
    assert got['mooseng_client_fuse_operations_total{op="write"}'] == 6
    assert got['mooseng_client_fuse_operations_total{op="lookup"}'] == 25
    assert 'mooseng_client_fuse_operations_total{op="lookup.master"}' not in got
    assert got["mooseng_client_master_reconnects_total"] == 2
    assert got["mooseng_client_master_ping_seconds"] == pytest.approx(130e-6)


def test_single_flight_gives_up_on_a_stuck_read_and_starts_no_second_one():
    release = threading.Event()
    flight = SingleFlight()
    began = time.monotonic()
    ok, reason = flight.run(lambda: release.wait(30), timeout=0.2)
    assert not ok and "no answer within 0.2 s" in reason and time.monotonic() - began < 2
    ok, reason = flight.run(lambda: 1, timeout=0.2)
    assert not ok and "still stuck" in reason
    release.set()
    time.sleep(0.1)
    assert flight.run(lambda: 42, timeout=1) == (True, 42)
    ok, reason = flight.run(lambda: 1 / 0, timeout=1)
    assert not ok and "ZeroDivisionError" in reason


def test_daemon_collector_follows_a_real_child():
    daemon = Daemon("sleeper", [sys.executable, "-c", "import time; time.sleep(30)"])
    collect = daemon_collector([daemon])
    daemon.start()
    try:
        assert samples(render([collect]))['mooseng_daemon_up{daemon="sleeper"}'] == 1
    finally:
        daemon.stop("kill", timeout=5)
    got = samples(render([collect]))
    assert got['mooseng_daemon_up{daemon="sleeper"}'] == 0
    assert got['mooseng_daemon_restarts_total{daemon="sleeper"}'] == 0


def test_a_failing_collector_does_not_hide_the_others(caplog):
    class Broken:
        def collect(self):
            yield gauge("half", "yielded before the failure", 1)
            raise RuntimeError("boom")

    text = render([Broken(), Families(gauge("fine", "still here", 1))])
    assert samples(text) == {"fine": 1}
    assert "event=collector_failed" in caplog.text and "boom" in caplog.text


def test_exporter_serves_metrics_over_http():
    server = ExporterServer([Families(gauge("mooseng_test_value", "a test", 7))],
                            host="127.0.0.1", port=0)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as reply:
            assert reply.status == 200
            assert reply.headers["Content-Type"] == CONTENT_TYPE
            assert samples(reply.read().decode()) == {"mooseng_test_value": 7}
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{base}/nope", timeout=5)
        assert err.value.code == 404
    finally:
        server.stop()


def test_exporter_errors_are_json_on_the_bounded_server():
    from mooseng.httpserver import LISTEN_BACKLOG, BoundedHTTPServer

    server = ExporterServer([], host="127.0.0.1", port=0)
    server.start()
    try:
        assert isinstance(server.httpd, BoundedHTTPServer)
        assert server.httpd.request_queue_size == LISTEN_BACKLOG
        base = f"http://127.0.0.1:{server.port}"
        request = urllib.request.Request(f"{base}/metrics", data=b"x", method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=5)
        assert (err.value.code, err.value.headers["Allow"]) == (405, "GET, HEAD")
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b"FROB /metrics HTTP/1.1\r\n\r\n")
            reply = sock.makefile("rb").read()
        assert reply.startswith((b"HTTP/1.0 501", b"HTTP/1.1 501"))
        assert reply.rstrip().endswith(b'"error": "Unsupported method (\'FROB\')"}')
    finally:
        server.stop()


def test_exporter_error_bodies_are_json_naming_the_node():
    """Any path, quotes included, gives a JSON body in the API's shape: node, error."""
    import json

    server = ExporterServer([], host="127.0.0.1", port=0, node="chunkserver-1")
    server.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(b'GET /a"b\\c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
            head, _, body = sock.makefile("rb").read().partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 404")
        assert json.loads(body) == {"node": "chunkserver-1",
                                    "error": 'no such endpoint /a"b\\c'}
        request = urllib.request.Request(f"http://127.0.0.1:{server.port}/health", data=b"x",
                                         method="PUT")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=5)
        assert json.loads(err.value.read()) == {
            "node": "chunkserver-1", "error": "PUT is not allowed on /health; use GET or HEAD"}
    finally:
        server.stop()


def test_every_exposition_passes_promtool_check_metrics(tmp_path, monkeypatch):
    """Names, types, HELP and units of the agent's and each exporter's /metrics follow the
    Prometheus conventions, as promtool (Debian's ``prometheus`` package) lints them. The
    cluster suite runs the same check on live /metrics in the Prometheus container."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not on PATH (apt-get install prometheus brings it); "
                    "tests/cluster/test_40_monitoring.py checks the live /metrics with it")
    for kind, text in every_text(tmp_path, monkeypatch).items():
        assert "# TYPE" in text, kind
        done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                              text=True, timeout=60, check=False)
        assert done.returncode == 0, f"{kind}: promtool check metrics: {done.stderr}{done.stdout}"
