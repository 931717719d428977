"""Issue 2: `make down` then `make up` keeps every file (named volumes persist). Runs last.

Compared: the tree of files this suite wrote and never changed afterwards (this test's own
files, the data-plane set, the HA set), by name and sha256, read through every client.
The chaosmoose workload folders are left out: other tests tamper with them on purpose
through one client, and another client's FUSE cache may still hold the older bytes.
"""

from __future__ import annotations

import pytest

from tests.cluster.conftest import CLIENTS, make

pytestmark = pytest.mark.cluster

STABLE = "persist dataplane ha-before"


def listing(cluster, client: str) -> str:
    """Names and checksums of the stable folders, as ``client`` reads them."""
    return cluster.sh(client, f"cd /mnt/{client} && find {STABLE} -type f 2>/dev/null | sort"
                      " | xargs sha256sum").out


def test_down_then_up_keeps_every_file(cluster):
    cluster.sh("client-1", "mkdir -p /mnt/client-1/persist && head -c 5000000 /dev/urandom"
               " > /mnt/client-1/persist/blob && sync")
    before = listing(cluster, "client-1")
    assert "persist/blob" in before
    assert before.count("\n") > 200, "the earlier tests' files should be part of the check"
    make("down")
    make("up")
    cluster.wait_healthy()
    for client in CLIENTS:
        assert listing(cluster, client) == before, f"{client} sees different files after down/up"
