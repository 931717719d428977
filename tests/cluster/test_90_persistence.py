"""Issue 2: `make down` then `make up` keeps every file (named volumes persist). Runs last."""

from __future__ import annotations

import pytest

from tests.cluster.conftest import CLIENTS, make

pytestmark = pytest.mark.cluster


def test_down_then_up_keeps_every_file(cluster):
    cluster.sh("client-1", "mkdir -p /mnt/client-1/persist && head -c 5000000 /dev/urandom"
               " > /mnt/client-1/persist/blob && sync")
    before = cluster.sh("client-1", "cd /mnt/client-1 && find . -type f -not -name '.*' | sort"
                        " | xargs sha256sum").out
    assert "persist/blob" in before
    make("down")
    make("up")
    cluster.wait_healthy()
    for client in CLIENTS:
        after = cluster.sh(client, f"cd /mnt/{client} && find . -type f -not -name '.*' | sort"
                           " | xargs sha256sum").out
        assert after == before, f"{client} sees different files after down/up"
