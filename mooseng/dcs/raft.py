"""The store over pysyncobj Raft: the three master agents replicate one small state.

Every write is a ``@replicated`` method that carries the wall-clock ``now`` of the
caller, so all replicas decide expiry identically. A write waits for its commit
(``sync=True``) at most ``retry_timeout`` seconds; pysyncobj's failures become
:class:`StoreError`. Reads come from the local replica without a round trip.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, SyncObjConsumer, replicated
from pysyncobj.syncobj import SyncObjException

from mooseng.dcs import Intent, Lease, Member, RaftStatus, Store, StoreError

log = logging.getLogger("mooseng.dcs.raft")

RAFT_TRANSFER_INTERVAL_S = 5.0

FAIL_NAMES = {value: name.lower() for name, value in vars(FAIL_REASON).items()
              if not name.startswith("_") and isinstance(value, int)}


class _Replicated(SyncObjConsumer):
    """The replicated state machine. Methods prefixed ``apply_`` run on every replica.

    A consumer (not a SyncObj subclass) so that the state exists before the Raft
    thread replays the journal, and is included in pysyncobj's full dumps.
    """

    def __init__(self) -> None:
        super().__init__()
        self._lease: dict[str, Any] = Lease().to_dict()
        self._members: dict[str, dict[str, Any]] = {}
        self._intent: dict[str, Any] | None = None
        self._metadata_seen: bool = False
        self._served: dict[str, Any] = {"epoch": 0, "node": None}

    @replicated
    def apply_acquire(self, node: str, ttl: float, now: float, epoch_hint: int) -> dict | None:
        lease = Lease.from_dict(self._lease)
        if lease.valid(now) or lease.epoch != epoch_hint or lease.reserved_against(node, now):
            return None
        self._lease = Lease(node, lease.epoch + 1, now + ttl).to_dict()
        return dict(self._lease)

    @replicated
    def apply_renew(self, node: str, epoch: int, ttl: float, now: float) -> dict | None:
        lease = Lease.from_dict(self._lease)
        if lease.holder != node or lease.epoch != epoch:
            return None
        self._lease = Lease(node, epoch, max(lease.expires_at, now + ttl)).to_dict()
        return dict(self._lease)

    @replicated
    def apply_release(self, node: str, epoch: int, now: float, reserve_for: str | None,
                      reserve_ttl: float, min_version: int = 0) -> bool:
        lease = Lease.from_dict(self._lease)
        if lease.holder != node or lease.epoch != epoch:
            return False
        self._lease = Lease(None, epoch, now, reserve_for,
                            now + reserve_ttl if reserve_for else 0.0,
                            min_version if reserve_for else 0).to_dict()
        return True

    @replicated
    def apply_member(self, node: str, data: dict, ttl: float, now: float) -> bool:
        self._members[node] = {"data": data, "updated_at": now, "expires_at": now + ttl}
        if data.get("has_metadata"):
            self._metadata_seen = True
        return True

    @replicated
    def apply_served(self, node: str, epoch: int) -> bool:
        if epoch <= int(self._served["epoch"]):
            return epoch == self._served["epoch"] and node == self._served["node"]
        self._served = {"epoch": epoch, "node": node}
        return True

    @replicated
    def apply_intent(self, intent: dict | None) -> bool:
        self._intent = intent
        return True

    # --- local reads (called from agent threads; values are replaced, never mutated) ---
    def read_lease(self) -> dict[str, Any]:
        return dict(self._lease)

    def read_members(self) -> dict[str, dict[str, Any]]:
        return dict(self._members)

    def read_intent(self) -> dict[str, Any] | None:
        return self._intent

    def read_metadata_seen(self) -> bool:
        return self._metadata_seen

    def read_served(self) -> int:
        return int(self._served["epoch"])


class _TickingSyncObj(SyncObj):
    """SyncObj that also runs callables queued by other threads on its own tick thread
    (pysyncobj's internals, e.g. ``transferLeadership``, are not thread-safe)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.on_tick_thread: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        super().__init__(*args, **kwargs)

    def _onTick(self, timeToWait: float = 0.0) -> None:
        super()._onTick(timeToWait)
        while True:
            try:
                job = self.on_tick_thread.get_nowait()
            except queue.Empty:
                return
            try:
                job()
            except Exception:  # one failed job must not stop the Raft thread
                log.exception("event=raft_tick_job_failed")


def node_of(address: str) -> str:
    """``master-2:9440`` -> ``master-2``."""
    return address.rsplit(":", 1)[0]


class RaftStore(Store):
    """:class:`Store` on a pysyncobj group of ``<node>:<port>`` addresses."""

    def __init__(self, node: str, masters: list[str], *, port: int = 9440, password: str | None,
                 journal_dir: Path | None, retry_timeout: float = 0.5, min_timeout: float = 0.4,
                 max_timeout: float = 0.8, clock: Callable[[], float] = time.time,
                 addresses: dict[str, str] | None = None) -> None:
        """``addresses`` overrides ``<node>:<port>`` per node (tests on 127.0.0.1)."""
        self.node = node
        self.retry_timeout = retry_timeout
        self._clock = clock
        self._addresses = {m: (addresses or {}).get(m, f"{m}:{port}") for m in masters}
        if node not in self._addresses:
            raise ValueError(f"node {node!r} is not one of the masters {masters}")
        self._by_address = {a: m for m, a in self._addresses.items()}
        conf_args: dict[str, Any] = {
            "password": password or None, "useFork": False, "dynamicMembershipChange": False,
            "raftMinTimeout": min_timeout, "raftMaxTimeout": max_timeout,
            "appendEntriesPeriod": min(0.1, min_timeout / 4),
            # The tick drives commits: 20 ms (pysyncobj's default is 50) cuts the latency of
            # every lease write, which sits on the failover path, for little CPU.
            "autoTickPeriod": 0.02,
            "connectionTimeout": max(max_timeout, 1.0), "connectionRetryTime": 0.3,
            "commandsWaitLeader": False, "leaderFallbackTimeout": max_timeout * 2,
            "logCompactionMinEntries": 2000, "logCompactionMinTime": 60,
            "dnsCacheTime": 5.0, "dnsFailCacheTime": 1.0,
        }
        if journal_dir is not None:
            journal_dir.mkdir(parents=True, exist_ok=True)
            conf_args["journalFile"] = str(journal_dir / f"{node}.journal")
            conf_args["fullDumpFile"] = str(journal_dir / f"{node}.dump")
        self_address = self._addresses[node]
        partners = [a for m, a in self._addresses.items() if m != node]
        self._state = _Replicated()
        self._obj = _TickingSyncObj(self_address, partners, SyncObjConf(**conf_args),
                                    consumers=[self._state])
        self._closed = threading.Event()
        self._last_transfer = float("-inf")
        self.transfer_interval = RAFT_TRANSFER_INTERVAL_S
        log.info("event=raft_started self=%s partners=%s journal=%s", self_address, ",".join(partners),
                 conf_args.get("journalFile"))

    def _call(self, what: str, method: Callable[..., Any], *args: Any) -> Any:
        """Run a replicated method and wait for its commit, bounded by retry_timeout."""
        if self._closed.is_set():
            raise StoreError(f"{what}: store closed")
        try:
            return method(*args, sync=True, timeout=self.retry_timeout)
        except SyncObjException as exc:
            code = exc.errorCode
            reason = "timeout" if code == "Timeout" else FAIL_NAMES.get(code, str(code))
            raise StoreError(f"{what} failed: {reason}") from None

    def acquire_lease(self, node: str, ttl: float, epoch_hint: int) -> Lease | None:
        result = self._call("acquire_lease", self._state.apply_acquire, node, ttl, self._clock(),
                            epoch_hint)
        return Lease.from_dict(result) if result else None

    def renew_lease(self, node: str, epoch: int, ttl: float) -> Lease | None:
        result = self._call("renew_lease", self._state.apply_renew, node, epoch, ttl, self._clock())
        return Lease.from_dict(result) if result else None

    def release_lease(self, node: str, epoch: int, reserve_for: str | None = None,
                      reserve_ttl: float = 0.0, min_version: int = 0) -> bool:
        return bool(self._call("release_lease", self._state.apply_release, node, epoch, self._clock(),
                               reserve_for, reserve_ttl, min_version))

    def get_lease(self) -> Lease:
        return Lease.from_dict(self._state.read_lease())

    def set_member(self, node: str, data: dict[str, Any], ttl: float) -> None:
        self._call("set_member", self._state.apply_member, node, data, ttl, self._clock())

    def members(self) -> dict[str, Member]:
        return {n: Member(n, m["data"], m["updated_at"], m["expires_at"])
                for n, m in self._state.read_members().items()}

    def metadata_ever_reported(self) -> bool:
        return self._state.read_metadata_seen()

    def mark_served(self, node: str, epoch: int) -> None:
        if not self._call("mark_served", self._state.apply_served, node, epoch):
            raise StoreError(f"mark_served refused: epoch {epoch} is not newer than "
                             f"{self._state.read_served()}")

    def served_epoch(self) -> int:
        return self._state.read_served()

    def set_intent(self, intent: Intent | None) -> None:
        self._call("set_intent", self._state.apply_intent, intent.to_dict() if intent else None)

    def get_intent(self) -> Intent | None:
        data = self._state.read_intent()
        return Intent.from_dict(data) if data else None

    def raft_status(self) -> RaftStatus:
        obj = self._obj
        leader = obj._getLeader()
        peers = {}
        for peer in obj.otherNodes:
            name = self._by_address.get(peer.address, node_of(peer.address))
            peers[name] = "connected" if obj.isNodeConnected(peer) else "disconnected"
        leader_name = None
        if leader is not None:
            leader_name = self._by_address.get(leader.address, node_of(leader.address))
        return RaftStatus(term=obj.raftCurrentTerm, commit_index=obj.raftCommitIndex,
                          has_quorum=obj.hasQuorum, leader=leader_name, ready=obj.isReady(),
                          peers=dict(sorted(peers.items())))

    def move_raft_leadership(self, node: str) -> bool:
        """When this node leads Raft and ``node`` does not, ask pysyncobj to hand Raft
        leadership to ``node`` (Raft TimeoutNow; pysyncobj refuses a target that is not
        fully caught up). At most one request per ``transfer_interval`` seconds: a refused or
        lost hand-over costs the holder a renewal or two, so it is not hammered."""
        if node == self.node or node not in self._addresses or self._closed.is_set():
            return False
        obj = self._obj
        if not obj._isLeader() or time.monotonic() - self._last_transfer < self.transfer_interval:
            return False
        self._last_transfer = time.monotonic()
        address = self._addresses[node]

        def done(_result: Any, error: int) -> None:
            if error == FAIL_REASON.SUCCESS:
                log.info("event=raft_leadership_transfer to=%s reason='the lease holder leads Raft'",
                         node)
            else:
                log.debug("event=raft_leadership_transfer_refused to=%s reason=%s", node,
                          FAIL_NAMES.get(error, error))

        obj.on_tick_thread.put(lambda: obj.transferLeadership(address, callback=done))
        return True

    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self._obj.destroy()
