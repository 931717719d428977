"""Issue 10: test data sets on the real cluster.

A set written through one client must read back intact through another while a
chunkserver is killed (the default storage class keeps 2 copies), and damage done through
a client must be reported by ``chaosmoose data verify`` with exit status 1.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from chaosmoose.chunkserver.actions import kill_chunkserver, start_chunkservers
from chaosmoose.data import _datasets
from chaosmoose.data.actions import data_generate
from chaosmoose.data.probes import data_intact
from tests.cluster.conftest import REPO

pytestmark = pytest.mark.cluster

CHAOSMOOSE = str(REPO / ".venv" / "bin" / "chaosmoose")


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``chaosmoose`` from the repository (its stdout and stderr as text)."""
    return subprocess.run([CHAOSMOOSE, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout, check=False)


def configuration(run_dir: Path, name: str) -> dict:
    return {"chaosmoose_run_dir": str(run_dir), "chaosmoose_run_id": f"{name}-{time.time_ns()}"}


def test_set_written_on_client_1_reads_intact_on_client_2_with_a_chunkserver_killed(
        cluster, run_dir):
    config = configuration(run_dir, "data")
    directory = f"chaosmoose-data-test/stopped-{time.strftime('%Y%m%dT%H%M%S')}"
    made = data_generate(directory=directory, size="32MiB", files=80, seed=65,
                         client="client-1", configuration=config)
    print(f"generated: {json.dumps(made)}")
    manifest = run_dir / "datasets" / directory / "manifest.json"
    assert made["manifest"] == str(manifest) and manifest.is_file()
    assert made["bytes"] == 32 * 1024 * 1024 and made["files"] == 80
    entries = json.loads(manifest.read_text())["entries"]
    assert {"dir", "file", "sparse", "hardlink", "symlink"} <= {e["kind"] for e in entries}
    # what client-1 wrote is on the mount as the manifest says (spot check with sha256sum)
    some = next(e for e in entries if e["kind"] == "file" and e["size"] > 1024 * 1024)
    out = cluster.sh("client-3", f"sha256sum '/mnt/client-3/{directory}/{some['path']}'").out
    assert out.split()[0] == some["sha256"]
    try:
        killed = kill_chunkserver(target="chunkserver-2", signal="SIGKILL", configuration=config)
        assert killed["chunkserver"] == "chunkserver-2"
        container = cluster.container("chunkserver-2")
        container.reload()
        assert container.status == "exited"
        report = data_intact(directory=directory, client="client-2", file_timeout=120,
                             configuration=config)
        shown = {k: report.get(k) for k in ("entries", "intact", "missing", "corrupt",
                                            "seconds", "mib_per_s")}
        print(f"verified with chunkserver-2 killed: {json.dumps(shown)}")
        assert report["client"] == "client-2"
        assert report["valid"] is True, report["problems"]
        assert report["intact"] == report["entries"] == len(entries)
        assert report["missing"] == 0 and report["corrupt"] == 0 and report["unexpected"] == 0
        # the command line, from the third client, says the same with exit status 0
        done = cli("data", "verify", "--dir", directory, "--client", "client-3", "--run",
                   str(run_dir))
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"intact {len(entries)}, missing 0, corrupt 0" in done.stdout
    finally:
        start_chunkservers(configuration=config)
        _datasets.remove(directory, "client-1", configuration=config)


def test_damage_done_through_a_client_is_reported_and_fails_the_verify(cluster, run_dir):
    directory = f"chaosmoose-data-test/damaged-{time.strftime('%Y%m%dT%H%M%S')}"
    done = cli("data", "generate", "--dir", directory, "--size", "4MiB", "--files", "30",
               "--seed", "10", "--client", "client-2", "--run", str(run_dir))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "generated " in done.stdout and "100%" in done.stderr  # plain progress lines
    manifest = run_dir / "datasets" / directory / "manifest.json"
    entries = json.loads(manifest.read_text())["entries"]
    linked = {e.get("target") for e in entries} | {e.get("points_to") for e in entries}
    plain = [e for e in entries if e["kind"] == "file" and e["size"] > 0
             and e["path"] not in linked]
    flipped, deleted = plain[0], plain[1]
    try:
        path = f"/mnt/client-1/{directory}/{flipped['path']}"
        cluster.sh("client-1", f"python3 -c \"import os; f = open('{path}', 'r+b'); "
                               "b = f.read(1); f.seek(0); f.write(bytes([b[0] ^ 1])); "
                               "f.flush(); os.fsync(f.fileno())\"")
        cluster.sh("client-3", f"rm '/mnt/client-3/{directory}/{deleted['path']}'")
        done = cli("data", "verify", "--dir", directory, "--client", "client-1", "--run",
                   str(run_dir))
        assert done.returncode == 1, done.stdout + done.stderr
        assert "missing 1, corrupt 1" in done.stdout
        assert f"corrupt  {flipped['path']}: content differs" in done.stdout
        assert f"missing  {deleted['path']}: absent" in done.stdout
        report = json.loads((manifest.parent / "verify.json").read_text())
        assert report["lost"] == 2 and report["intact"] == len(entries) - 2
        # bad input: a folder without a manifest is refused with exit status 2, nothing run
        done = cli("data", "verify", "--dir", "no-such-set", "--run", str(run_dir))
        assert done.returncode == 2
        assert "no manifest for data set 'no-such-set': looked for" in done.stderr
        assert not (run_dir / "datasets" / "no-such-set").exists()
    finally:
        _datasets.remove(directory, "client-2", configuration=configuration(run_dir, "data"))
