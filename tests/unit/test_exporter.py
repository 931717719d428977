"""The chunkserver/client exporter and the shared metrics writer, on real files and sockets."""

from __future__ import annotations

import os
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
from mooseng.promtext import MetricsText, labels_text
from mooseng.supervisor import Daemon

# Lines as mfsmount 3.0.117 writes them in <mount>/.stats (captured from client-1).
STATS = """fuse_ops: 111
fuse_ops.lookup: 25
fuse_ops.lookup.master: 24
fuse_ops.write: 6
fuse_ops.read: 7
symlink_cache.#links: [0]
master.usec_ping: [130]
master.reconnects: 2
master.bytes_sent: 2810
master.bytes_received: 3777
"""


def samples(text: str) -> dict[str, float]:
    """{'name{labels}': value} of an exposition."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def test_metrics_text_escapes_labels_and_keeps_precision():
    out = MetricsText()
    out.add("x_bytes", "gauge", "help", [({"path": 'a"b\\c\nd'}, 25874712345), ({}, 0.1)])
    out.add("empty", "gauge", "no samples: left out", [])
    text = out.text()
    assert 'x_bytes{path="a\\"b\\\\c\\nd"} 25874712345' in text.splitlines()
    assert "x_bytes 0.1" in text.splitlines()
    assert "empty" not in text and text.count("# TYPE") == 1
    assert labels_text({}) == ""


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
    out = MetricsText()
    collector(out)
    got = samples(out.text())
    assert got['mooseng_chunkserver_chunk_files{tier="fast"}'] == 5
    assert got['mooseng_chunkserver_chunk_files{tier="bulk"}'] == 1
    assert got['mooseng_chunkserver_chunk_files{tier="gone"}'] == 0
    st = os.statvfs(fast)
    assert got['mooseng_chunkserver_folder_size_bytes{tier="fast"}'] == st.f_blocks * st.f_frsize
    assert 'mooseng_chunkserver_folder_size_bytes{tier="gone"}' not in got
    # Counts are cached until count_every passes.
    (fast / "00" / "chunk_00000000000000FF_00000001.mfs").write_bytes(b"x")
    assert count_chunk_files(fast) == 6
    out = MetricsText()
    collector(out)
    assert samples(out.text())['mooseng_chunkserver_chunk_files{tier="fast"}'] == 5
    now[0] = 16.0
    out = MetricsText()
    collector(out)
    assert samples(out.text())['mooseng_chunkserver_chunk_files{tier="fast"}'] == 6


def test_mount_collector_reports_a_plain_folder_as_not_mounted(tmp_path):
    out = MetricsText()
    MountCollector(tmp_path, timeout=2)(out)
    assert samples(out.text()) == {"mooseng_client_mount_up": 0}


def test_mount_collector_reads_stats_of_a_mount(tmp_path, monkeypatch):
    (tmp_path / ".stats").write_text(STATS)
    monkeypatch.setattr(os.path, "ismount", lambda p: Path(p) == tmp_path)
    out = MetricsText()
    MountCollector(tmp_path)(out)
    got = samples(out.text())
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
        out = MetricsText()
        collect(out)
        assert samples(out.text())['mooseng_daemon_up{daemon="sleeper"}'] == 1
    finally:
        daemon.stop("kill", timeout=5)
    out = MetricsText()
    collect(out)
    got = samples(out.text())
    assert got['mooseng_daemon_up{daemon="sleeper"}'] == 0
    assert got['mooseng_daemon_restarts_total{daemon="sleeper"}'] == 0


def test_a_failing_collector_does_not_hide_the_others():
    def broken(out):
        raise RuntimeError("boom")

    text = render([broken, lambda out: out.gauge("fine", "still here", 1)])
    assert "fine 1" in text.splitlines()


def test_exporter_serves_metrics_over_http():
    server = ExporterServer([lambda out: out.gauge("mooseng_test_value", "a test", 7)],
                            host="127.0.0.1", port=0)
    server.start()
    try:
        base = f"http://127.0.0.1:{server.port}"
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as reply:
            assert reply.status == 200
            assert reply.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert "mooseng_test_value 7" in reply.read().decode().splitlines()
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{base}/nope", timeout=5)
        assert err.value.code == 404
    finally:
        server.stop()
