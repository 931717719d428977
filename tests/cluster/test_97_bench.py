"""Issue 12: `make bench` against the real cluster, in its short form.

``scripts/bench.py --short --only io``, ``--only idle``, ``--only data`` and ``--only
failover`` must each leave ``results-<time>.json``, ``.md`` and ``.svg`` holding positive
figures, and the I/O benchmark must leave nothing of its own on the mount or on
chunkserver-1's tier. (``--only replication`` runs last in the suite, in
``test_98_bench_replication.py``.) No timing is
asserted: the figures are whatever this machine gives, and targets are only reported.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.cluster.conftest import REPO

pytestmark = pytest.mark.cluster

PYTHON = str(REPO / ".venv" / "bin" / "python")


def bench(out_dir: Path, *args: str, timeout: float = 900) -> dict:
    """Run the suite with ``args`` into ``out_dir``; its results document (the run's output
    is printed, for the test log)."""
    done = subprocess.run([PYTHON, "scripts/bench.py", "--out-dir", str(out_dir), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          check=False)
    print(done.stdout[-6000:])
    print(done.stderr[-12000:], file=sys.stderr)
    assert done.returncode == 0, f"bench.py exited {done.returncode}: {done.stderr[-3000:]}"
    found = sorted(out_dir.glob("results-*.json"))
    assert len(found) == 1, f"expected one results file in {out_dir}: {found}"
    stem = found[0].with_suffix("")
    markdown = stem.with_suffix(".md").read_text()
    svg = stem.with_suffix(".svg").read_text()
    assert "| benchmark | figure | value | baseline | ratio | target | met |" in markdown
    ET.fromstring(svg)  # a well-formed, self-contained SVG
    return json.loads(found[0].read_text())


def figure(document: dict, name: str) -> dict:
    matches = [f for f in document["figures"] if f["figure"] == name]
    assert len(matches) == 1, f"no single figure {name!r} in {document['figures']}"
    return matches[0]


def test_short_io_benchmark_leaves_results_with_positive_figures(cluster, tmp_path):
    document = bench(tmp_path / "io", "--short", "--only", "io")
    record = document["benchmarks"]["io"]
    assert record["status"] == "ok", record
    result = record["result"]
    assert result["errors"] == []
    for job in ("seq_write", "seq_read", "rand_read", "rand_write"):
        entry = result["jobs"][job]
        key = entry["compared"]
        assert entry["fuse"][key] > 0 and entry["direct"][key] > 0, (job, entry)
        assert entry["ratio"] > 0
    for side in ("fuse", "direct"):
        for phase in ("create", "stat", "unlink"):
            assert result["metadata"][side][f"{phase}_per_s"] > 0
    together = result["concurrent"]
    assert together["clients"] == ["client-1", "client-2", "client-3"]
    for job in ("seq_write", "seq_read"):
        assert together[job]["clients_measured"] == 3
        assert together[job]["aggregate_mib_s"] > 0
    write = figure(document, "FUSE sequential write, 1 MiB blocks")
    assert write["value"] > 0 and write["baseline"] > 0 and write["ratio"] > 0
    assert write["met"] in (True, False)  # reported, never asserted
    assert document["machine"]["cores"] > 0 and document["machine"]["docker"]["version"]
    # nothing of the benchmark is left behind
    assert not cluster.sh("client-1", "ls -A /mnt/client-1/bench-io 2>/dev/null || true").out\
        .strip()
    left = cluster.sh("chunkserver-1", "ls -A /var/lib/mooseng/tiers/fast | "
                                       "grep mooseng-bench || true").out
    assert not left.strip(), f"left on chunkserver-1's tier: {left}"
    for service in ("client-1", "client-2", "client-3", "chunkserver-1"):
        assert not cluster.sh(service, "ls /tmp/mooseng-bench-* 2>/dev/null || true").out\
            .strip()
        assert not cluster.sh(service, "pgrep -x fio || true").out.strip()


def test_short_idle_cost_leaves_results_with_positive_figures(cluster, tmp_path):
    document = bench(tmp_path / "idle", "--short", "--only", "idle")
    record = document["benchmarks"]["idle"]
    assert record["status"] == "ok", record
    result = record["result"]
    running = {c.labels["com.docker.compose.service"]
               for c in cluster.docker.containers.list(filters={"label": [
                   f"com.docker.compose.project={cluster.project}"]})}
    assert set(result["containers"]) == running
    for service, figures in result["containers"].items():
        assert figures["memory_mean_bytes"] > 0, service
        assert figures["cpu_seconds"] is not None and figures["cpu_seconds"] >= 0, service
    assert result["total"]["memory_bytes"] > 0 and result["total"]["cpu_percent"] > 0
    assert result["memory_met"] in (True, False)
    memory = figure(document, "idle memory, every container (mean)")
    assert memory["value"] > 0 and memory["target"] == {"op": "<=", "threshold": 1024,
                                                        "on": "value"}


def test_short_data_benchmark_writes_and_verifies_a_set(cluster, tmp_path):
    document = bench(tmp_path / "data", "--short", "--only", "data")
    record = document["benchmarks"]["data"]
    assert record["status"] == "ok", record
    assert record["result"]["lost"] == 0
    assert figure(document, "data set written through client-1 (median)")["value"] > 0
    assert figure(document, "data set verified through client-2 (median)")["value"] > 0


def test_short_failover_benchmark_breaks_the_kill_down_per_node(cluster, tmp_path):
    document = bench(tmp_path / "failover", "--short", "--only", "failover")
    record = document["benchmarks"]["failover"]
    assert record["status"] == "ok", record
    result = record["result"]
    assert result["rounds"] == 1 and result["stalled_rounds"] == 0 and result["lost"] == 0
    steps = {key: value["p50"] for key, value in result["breakdown"].items()}
    # every step was found in the cluster's logs, and they come in the order they must
    for key in ("leader.promotion", "leader.restored", "leader.mfsmaster_ready",
                "leader.served", "chunkservers.router", "chunkservers.registered",
                "clients.router", "clients.registered", "clients.first_file"):
        assert steps.get(key, 0) > 0, (key, steps)
    assert (steps["leader.promotion"] < steps["leader.restored"]
            < steps["leader.mfsmaster_ready"] <= steps["leader.served"])
    assert steps["leader.served"] <= steps["clients.router"] <= steps["clients.registered"]
    assert steps["clients.registered"] < steps["clients.first_file"]
    assert steps["leader.served"] <= steps["chunkservers.registered"]
    every = figure(document, "every client writing again (p50)")
    assert every["value"] >= steps["clients.first_file"] and every["target"]["threshold"] == 3.5

