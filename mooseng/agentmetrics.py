"""The master agent's ``GET /metrics``: a prometheus_client custom collector.

It reads what the API reads (the HA snapshot, the lease and Raft status from the store,
and, on the leader only, chunkservers and the chunk matrix from ``mfscli`` through the
API's cluster probe) when Prometheus scrapes; :mod:`mooseng.api` renders it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import Metric

from mooseng.promtext import family, gauge

if TYPE_CHECKING:
    from mooseng.api import ApiContext


class AgentCollector:
    """Lease, Raft, metadata, daemons and freezes of this agent; chunks and chunkservers as
    the leader sees them (no figure rather than a false zero when ``mfscli`` fails)."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        ctx = self.ctx
        snap = ctx.ha.snapshot()
        now = ctx.clock()
        lease = ctx.store.get_lease()
        raft = ctx.store.raft_status()
        leading = ctx.ha.is_leader()
        yield gauge("mooseng_master_is_leader", "1 when this node holds the lease and serves.",
                    1 if leading else 0)
        yield gauge("mooseng_raft_term", "Current Raft term.", raft.term)
        yield gauge("mooseng_raft_commit_index", "Raft commit index.", raft.commit_index)
        yield gauge("mooseng_raft_has_quorum", "1 when a Raft majority is connected.",
                    1 if raft.has_quorum else 0)
        yield family("mooseng_leader_changes_total", "counter", "Leader changes seen by this agent.",
                     [({}, snap["leader_changes"])])
        yield gauge("mooseng_master_frozen",
                    "1 while mfsmaster is frozen (SIGSTOP) because no follower answered Raft.",
                    1 if snap["frozen"] else 0)
        yield family("mooseng_master_freezes_total", "counter",
                     "Times this agent froze mfsmaster on loss of follower contact.",
                     [({}, snap["freezes"])])
        yield gauge("mooseng_metadata_version", "This node's metadata change number.",
                    snap["metadata_version"])
        yield gauge("mooseng_lease_epoch", "Epoch of the leader lease.", lease.epoch)
        yield gauge("mooseng_lease_expires_in_seconds", "Seconds until the lease expires.",
                    round(lease.expires_in(now), 3) if lease.holder else 0)
        daemon = snap["daemon"]
        yield family("mooseng_daemon_up", "gauge", "1 when the MooseFS daemon runs here.",
                     [({"daemon": name}, 1 if daemon["name"] == name and daemon["state"] == "running"
                       else 0) for name in ("mfsmaster", "mfsmetalogger")])
        if snap["promotion_duration"] is not None:
            yield gauge("mooseng_promotion_duration_seconds", "Duration of the last promotion.",
                        round(snap["promotion_duration"], 3))
        if not leading:
            return
        cluster = ctx.probe.read(lease.holder)
        yield family("mooseng_chunks", "gauge", "Chunks by state (from the leader).",
                     [({"state": k}, v) for k, v in (cluster.get("chunks") or {}).items()])
        servers = cluster.get("chunkservers")
        if servers is None:  # mfscli failed: no figure rather than a false zero
            return
        yield gauge("mooseng_chunkservers_connected", "Chunkservers registered with the leader.",
                    len(servers))
        yield family("mooseng_chunkserver_disk_used_bytes", "gauge", "Disk space used.",
                     [({"chunkserver": s["address"]}, s["used_bytes"]) for s in servers])
        yield family("mooseng_chunkserver_disk_total_bytes", "gauge", "Disk space in total.",
                     [({"chunkserver": s["address"]}, s["total_bytes"]) for s in servers])
