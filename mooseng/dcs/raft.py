"""The store over pysyncobj Raft: the three master agents replicate one small state.

Every write is a ``@replicated`` method that carries the wall-clock ``now`` of the
caller, so all replicas decide expiry identically. A write waits for its commit
(``sync=True``) at most ``retry_timeout`` seconds; pysyncobj's failures become
:class:`StoreError`. Reads come from the local replica without a round trip.
"""

from __future__ import annotations

import logging
import math
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, SyncObjConsumer, replicated
from pysyncobj.dns_resolver import globalDnsResolver
from pysyncobj.monotonic import monotonic as raft_monotonic
from pysyncobj.node import TCPNode
from pysyncobj.syncobj import SyncObjException
from pysyncobj.tcp_connection import TcpConnection
from pysyncobj.transport import TCPTransport

from mooseng.dcs import Intent, Lease, Member, RaftStatus, Store, StoreError

log = logging.getLogger("mooseng.dcs.raft")

RAFT_TRANSFER_INTERVAL_S = 5.0
# What a Raft peer can make this agent buffer (see GuardedTcpConnection). Before the key
# exchange the only frame is a peer's encrypted 32-byte key (a few hundred bytes); after it,
# appendEntries batches are 64 KiB (pysyncobj's appendEntriesBatchSizeBytes) and this
# store's whole state is a few KiB.
UNAUTHENTICATED_FRAME_LIMIT = 64 * 1024
AUTHENTICATED_FRAME_LIMIT = 16 * 1024 * 1024
READ_BATCH = 256 * 1024  # bytes read from one socket before the frames in them are parsed


BIND_TIMEOUT_S = 10.0  # how long the Raft listener may take to bind before the agent gives up


class RaftBindError(RuntimeError):
    """The Raft listener cannot be bound where it must listen (never a silent fallback)."""


def local_address(host: str, wait: float = BIND_TIMEOUT_S, interval: float = 0.5,
                  resolve: Callable[[str], list[str]] | None = None,
                  sleep: Callable[[float], None] = time.sleep) -> str:
    """The IPv4 address of this container that ``host`` names (``master-1.raft``: its alias on
    the masters-only Raft network). Resolution is retried for ``wait`` seconds; the address
    must be one of this container's own (a test bind to port 0). Raises RaftBindError naming
    the host, what it resolved to and why, so an agent whose Raft network is missing stops
    at start instead of listening on every address."""
    resolve = resolve or _ipv4_addresses
    deadline = time.monotonic() + wait
    while True:
        try:
            addresses = resolve(host)
            break
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise RaftBindError(
                    f"the Raft listen host {host} does not resolve after {wait:g} s ({exc}); "
                    f"expected this master's alias on the Raft network (docker-compose.yml, "
                    f"network raft; MOOSENG_RAFT_DOMAIN)") from None
            sleep(interval)
    problems = []
    for address in sorted(addresses):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind((address, 0))
        except OSError as exc:
            problems.append(f"{address}: {exc.strerror or exc}")
        else:
            return address
    raise RaftBindError(f"the Raft listen host {host} resolves to {', '.join(sorted(addresses))}, "
                        f"none of them this container's own ({'; '.join(problems)}); expected "
                        f"this master's alias on the Raft network")


def _ipv4_addresses(host: str) -> list[str]:
    infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def append_entries_period(min_timeout: float) -> float:
    """pysyncobj's ``appendEntriesPeriod`` for an election timeout lower bound: the leader's
    heartbeat period (RaftStore passes the same value; the agent checks
    MOOSENG_FREEZE_AFTER against it)."""
    return min(0.1, min_timeout / 4)

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


class GuardedTcpConnection(TcpConnection):
    """A pysyncobj connection that bounds what its peer can make this process buffer.

    pysyncobj reads everything a socket holds before parsing (growing one ``bytes`` buffer,
    a copy per 8 KiB read) and waits for a frame's announced length, up to 2 GiB, before it
    checks the frame's signature: a 32 MiB flood from anybody who can reach the Raft port
    kept the Raft thread busy long enough to fail lease renewals. Here a peer that has not
    completed pysyncobj's key exchange (its first frame must decrypt with the password) may
    announce at most UNAUTHENTICATED_FRAME_LIMIT bytes and buffer no more than one such frame;
    an authenticated one AUTHENTICATED_FRAME_LIMIT. Beyond that the connection is closed.
    At most READ_BATCH bytes are read before the frames are parsed, so the buffer never grows
    by more than that per poll. Connections are switched to this class by
    :class:`GuardedTCPTransport` (pysyncobj builds them itself)."""

    def _authenticated(self) -> bool:
        return self.encryptor is None or self.sendRandKey is not None

    def _TcpConnection__processRead(self) -> bool:  # overrides pysyncobj's private reader
        more = TcpConnection._TcpConnection__processRead(self)  # type: ignore[attr-defined]
        buffered: bytes = self._TcpConnection__readBuffer  # type: ignore[attr-defined]
        if not buffered:
            return more
        trusted = self._authenticated()
        limit = AUTHENTICATED_FRAME_LIMIT if trusted else UNAUTHENTICATED_FRAME_LIMIT
        announced = struct.unpack("i", buffered[:4])[0] if len(buffered) >= 4 else 0
        if announced < 0 or announced > limit or (not trusted and len(buffered) > 4 + limit):
            try:
                peer = self._TcpConnection__socket.getpeername()  # type: ignore[attr-defined]
            except (OSError, AttributeError):
                peer = "?"
            log.warning("event=raft_peer_cut peer=%s authenticated=%s announced_bytes=%d "
                        "buffered_bytes=%d limit=%d", peer, trusted, announced, len(buffered), limit)
            self.disconnect()
            return False
        return more and len(buffered) < READ_BATCH


class GuardedTCPTransport(TCPTransport):
    """pysyncobj's TCP transport with every connection a :class:`GuardedTcpConnection`."""

    def _onNewIncomingConnection(self, conn: TcpConnection) -> None:
        conn.__class__ = GuardedTcpConnection
        super()._onNewIncomingConnection(conn)

    def addNode(self, node: Any) -> None:
        super().addNode(node)
        conn = self._connections.get(node)
        if conn is not None:
            conn.__class__ = GuardedTcpConnection


class DialedNode(TCPNode):
    """A partner known by its Raft address (its identity, ``master-1:9440``) but dialled
    at another one (its link's proxy). pysyncobj connects to ``ip``/``port`` and names
    peers by ``address``, so only the dialled endpoint changes."""

    def __init__(self, address: str, dial: str) -> None:
        super().__init__(address)
        self._dial_host, port = dial.rsplit(":", 1)
        self._dial_port = int(port)

    @property
    def ip(self) -> str:  # type: ignore[override]
        return globalDnsResolver().resolve(self._dial_host)

    @property
    def port(self) -> int:  # type: ignore[override]
        return self._dial_port


def node_of(address: str) -> str:
    """``master-2:9440`` -> ``master-2``."""
    return address.rsplit(":", 1)[0]


class RaftStore(Store):
    """:class:`Store` on a pysyncobj group of ``<node>:<port>`` addresses."""

    def __init__(self, node: str, masters: list[str], *, port: int = 9440, password: str | None,
                 journal_dir: Path | None, retry_timeout: float = 0.5, min_timeout: float = 0.4,
                 max_timeout: float = 0.8, clock: Callable[[], float] = time.time,
                 addresses: dict[str, str] | None = None, dial: dict[str, str] | None = None,
                 bind_host: str | None = None, bind_timeout: float = BIND_TIMEOUT_S) -> None:
        """``addresses`` overrides ``<node>:<port>`` per node (tests on 127.0.0.1); ``dial``
        gives, per partner, the ``host:port`` to connect to instead of its address (the
        link's proxy). Identities stay the addresses either way. ``bind_host`` (an IP) is
        where the listener binds, on this node's address's port; None binds every address.
        A listener that is not bound within ``bind_timeout`` seconds raises RaftBindError."""
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
            # pysyncobj retries a failed bind forever by default, silently: give up instead.
            "bindRetryTime": 0.5, "maxBindRetries": max(1, math.ceil(bind_timeout / 0.5)),
        }
        self_address = self._addresses[node]
        if bind_host:
            conf_args["bindAddress"] = f"{bind_host}:{self_address.rsplit(':', 1)[1]}"
        if journal_dir is not None:
            journal_dir.mkdir(parents=True, exist_ok=True)
            conf_args["journalFile"] = str(journal_dir / f"{node}.journal")
            conf_args["fullDumpFile"] = str(journal_dir / f"{node}.dump")
        dial = dial or {}
        partners = [DialedNode(a, dial[m]) if m in dial else TCPNode(a)
                    for m, a in self._addresses.items() if m != node]
        self._state = _Replicated()
        self._obj = _TickingSyncObj(self_address, partners, SyncObjConf(**conf_args),
                                    consumers=[self._state], transportClass=GuardedTCPTransport)
        try:
            self._obj.waitBinded()
        except SyncObjException:
            self._obj.destroy()
            where = conf_args.get("bindAddress") or f"*:{self_address.rsplit(':', 1)[1]}"
            raise RaftBindError(f"the Raft listener of {node} could not bind {where} within "
                                f"{bind_timeout:g} s (port in use, or not an address of this "
                                f"container?)") from None
        self._closed = threading.Event()
        self._last_transfer = float("-inf")
        self.transfer_interval = RAFT_TRANSFER_INTERVAL_S
        log.info("event=raft_started self=%s listen=%s partners=%s dial=%s journal=%s",
                 self_address, conf_args.get("bindAddress", "*"),
                 ",".join(p.address for p in partners),
                 ",".join(f"{m}@{d}" for m, d in sorted(dial.items())) or "direct",
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

    def follower_contact_age(self) -> float | None:
        """While this replica leads Raft: seconds since the most recent answer of any follower
        to its AppendEntries (pysyncobj keeps, per follower, the monotonic time of the last
        answer, and falls back to follower after ``leaderFallbackTimeout`` without a majority
        of them). None when this replica does not lead, or while pysyncobj refills the table
        on becoming leader (it then stamps every follower "now"). A lock-free read of
        pysyncobj's private table: the values are floats, so ``list()`` copies them under the
        GIL without running Python code."""
        obj = self._obj
        if self._closed.is_set() or not obj._isLeader():
            return None
        answered = list(getattr(obj, "_SyncObj__lastResponseTime", {}).values())
        if not answered:
            return None
        return max(0.0, raft_monotonic() - max(answered))

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
