"""The /metrics text of every kind of server, rendered by the real collectors on fake state.

The exporters' collectors are the ones ``mooseng.roles.exporter_collectors`` hooks in for a
chunkserver and a client (so a collector added there is covered here too), over tier folders
and a mount made in a temporary folder; the agent's is its API's collector on the fake
store and HA loop of the API tests, as the leader, so every conditional family is present.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from mooseng import roles
from mooseng.api import ApiContext, ClusterProbe, Views
from mooseng.promtext import render
from mooseng.supervisor import Daemon
from tests.unit.fakes import FakeClock, FakeDaemons, FakeStore, make_ha

# Lines as mfsmount 3.0.117 writes them in <mount>/.stats (captured from client-1).
MOUNT_STATS = """fuse_ops: 111
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


class LeaderProbe(ClusterProbe):
    """The leader's view of chunkservers and chunks without mfscli."""

    def read(self, leader: str | None) -> dict[str, Any]:  # type: ignore[override]
        return {"chunkservers": [{"address": "10.0.0.5:9422", "id": 1, "labels": "A", "chunks": 3,
                                  "used_bytes": 25874712345, "total_bytes": 100}],
                "chunks": {"missing": 0, "endangered": 0, "undergoal": 1, "stable": 2,
                           "overgoal": 0, "pending_deletion": 0}}


def agent_text() -> str:
    """The leading agent's /metrics."""
    clock = FakeClock()
    store = FakeStore(clock)
    ha = make_ha("master-1", store, clock, FakeDaemons(version=77))
    ha.run_cycle()
    ha.run_cycle()
    return Views(ApiContext("master-1", ha, store, probe=LeaderProbe(), clock=clock.time)).metrics()


def exporter_text(role: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A chunkserver's or a client's exporter /metrics, from roles' own collector list."""
    node = f"{role}-1"
    data = tmp_path / role
    mount = tmp_path / "mnt"
    monkeypatch.setenv("MOOSENG_DATA_DIR", str(data))
    monkeypatch.setenv("MOOSENG_MOUNT_POINT", str(mount))
    for tier in ("fast", "bulk"):
        (data / "tiers" / tier / "00").mkdir(parents=True)
        (data / "tiers" / tier / "00" / "chunk_0000000000000001_00000001.mfs").write_bytes(b"x")
    mount.mkdir(exist_ok=True)
    (mount / ".stats").write_text(MOUNT_STATS)
    real_ismount = os.path.ismount
    monkeypatch.setattr(os.path, "ismount", lambda p: Path(p) == mount or real_ismount(p))
    daemons = [Daemon("haproxy", ["true"]),
               Daemon("mfschunkserver" if role == "chunkserver" else "mfsmount", ["true"])]
    collectors = roles.exporter_collectors(role, node, daemons)
    assert collectors, f"no exporter collectors for {role}"
    return render(collectors)


def every_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """{server kind: its /metrics text}."""
    return {"agent": agent_text(),
            "chunkserver": exporter_text("chunkserver", tmp_path, monkeypatch),
            "client": exporter_text("client", tmp_path, monkeypatch)}


def metric_names(text: str) -> set[str]:
    """Names of the families an exposition declares (``# TYPE`` lines)."""
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
