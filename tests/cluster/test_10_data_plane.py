"""Issue 2: the data plane of the real cluster (files, replication, chunkserver restart, bad input)."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.cluster.conftest import CHUNKSERVERS, CLIENTS, REPO, SERVICES, wait_for

pytestmark = pytest.mark.cluster

BIG = "dataplane/big.bin"
TREE = "dataplane/tree"


def mnt(client: str) -> str:
    """The mount point of ``client``."""
    return f"/mnt/{client}"


def sha256(cluster, client: str, path: str) -> str:
    """sha256 of ``path`` (relative to the mount) read through ``client``."""
    out = cluster.sh(client, f"sha256sum {mnt(client)}/{path}").out
    return out.split()[0]


def tree_listing(cluster, client: str) -> str:
    """A sorted listing of the small-file tree with each file's checksum."""
    return cluster.sh(client, f"cd {mnt(client)}/{TREE} && find . -type f | sort | xargs sha256sum").out


@pytest.fixture(scope="module")
def dataset(cluster):
    """A > 64 MiB random file written on client-1 and 200 small files written on client-2."""
    cluster.sh("client-1", f"rm -rf {mnt('client-1')}/dataplane && mkdir -p {mnt('client-1')}/dataplane"
               f" && head -c $((80*1024*1024)) /dev/urandom > {mnt('client-1')}/{BIG} && sync")
    cluster.sh("client-2", f"mkdir -p {mnt('client-2')}/{TREE} && cd {mnt('client-2')}/{TREE}"
               " && for d in $(seq 1 10); do mkdir -p d$d; for f in $(seq 1 20); do"
               " echo \"file $d/$f $RANDOM\" > d$d/f$f; done; done && sync")
    return {"big": sha256(cluster, "client-1", BIG), "tree": tree_listing(cluster, "client-2")}


def test_all_services_healthy(cluster):
    states = {service: cluster.health(service) for service in SERVICES}
    assert states == {service: "healthy" for service in SERVICES}


def test_big_file_reads_back_identically_on_every_client(cluster, dataset):
    size = cluster.sh("client-3", f"stat -c %s {mnt('client-3')}/{BIG}").out.strip()
    assert int(size) == 80 * 1024 * 1024
    for client in ("client-2", "client-3"):
        assert sha256(cluster, client, BIG) == dataset["big"], f"{client} read different bytes"


def test_small_file_tree_lists_identically_on_every_client(cluster, dataset):
    assert dataset["tree"].count("\n") == 200
    for client in ("client-1", "client-3"):
        assert tree_listing(cluster, client) == dataset["tree"], f"{client} sees another tree"


def test_every_chunk_reaches_goal_on_two_chunkservers(cluster, dataset):
    def settled():
        matrix = cluster.chunk_matrix()
        return matrix if matrix["missing"] == 0 and matrix["undergoal"] == 0 else False

    matrix = wait_for("chunk matrix without missing/undergoal chunks", settled, timeout=120)
    assert matrix["endangered"] == 0
    assert matrix["stable"] > 0
    info = cluster.sh("client-1", f"mfsfileinfo {mnt('client-1')}/{BIG}").out
    chunks = re.split(r"\n\s*chunk \d+:", info)[1:]
    assert len(chunks) == 2, f"an 80 MiB file should span 2 chunks of 64 MiB:\n{info}"
    for chunk in chunks:
        servers = re.findall(r"copy \d+: ([\d.]+:\d+)", chunk)
        assert len(servers) == 2 and len(set(servers)) == 2, f"chunk not on 2 servers:\n{chunk}"


def test_restarting_a_chunkserver_keeps_every_file_readable(cluster, dataset):
    cluster.container("chunkserver-2").restart(timeout=30)
    for client in CLIENTS:
        assert sha256(cluster, client, BIG) == dataset["big"]
        assert tree_listing(cluster, client) == dataset["tree"]
    cluster.wait_healthy(CHUNKSERVERS, timeout=120)
    for client in CLIENTS:
        assert sha256(cluster, client, BIG) == dataset["big"]


def test_malformed_setting_fails_at_once_naming_the_variable(cluster):
    compose = ["docker-compose"]
    if subprocess.run(["docker", "compose", "version"], capture_output=True,
                      check=False).returncode == 0:
        compose = ["docker", "compose"]
    done = subprocess.run(
        [*compose, "run", "--rm", "--no-deps", "-e", "MOOSENG_CS_PORT=not-a-port", "chunkserver-1"],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0
    assert "MOOSENG_CS_PORT='not-a-port' is invalid" in done.stdout + done.stderr
