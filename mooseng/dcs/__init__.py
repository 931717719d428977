"""The distributed configuration store (DCS) contract, after Patroni's ``dcs``.

A small key-value store with expiring keys, replicated by consensus:

- the **lease** (``leader``): holder, epoch, wall-clock expiry, and an optional
  reservation naming the only node allowed to take it next (switchover);
- **members** (``members/<node>``): what each agent last reported, expiring
  after a ttl so a dead agent drops out of elections;
- an **intent** (switchover requested through the API).

Expiry uses wall-clock timestamps carried inside each replicated command (all
containers share the host kernel clock), so every replica applies the same
decision. Every call is bounded by ``retry_timeout`` and raises
:class:`StoreError` when the store cannot answer in time.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any


class StoreError(RuntimeError):
    """The store could not complete a call (no quorum, no Raft leader, timeout)."""


@dataclass(frozen=True)
class Lease:
    """The leader lease as the store holds it. ``holder`` is None when nobody holds it."""

    holder: str | None = None
    epoch: int = 0
    expires_at: float = 0.0
    reserved_for: str | None = None
    reserved_until: float = 0.0
    reserved_min_version: int = 0  # a handover target must hold at least this change number

    def valid(self, now: float) -> bool:
        """True while somebody holds the lease and it has not expired."""
        return self.holder is not None and now < self.expires_at

    def expires_in(self, now: float) -> float:
        """Seconds until expiry (negative when expired, 0 when nobody holds it)."""
        return self.expires_at - now if self.holder is not None else 0.0

    def reserved_against(self, node: str, now: float) -> str | None:
        """The node the lease is reserved for when that is not ``node``, else None."""
        if self.reserved_for and self.reserved_for != node and now < self.reserved_until:
            return self.reserved_for
        return None

    def to_dict(self) -> dict[str, Any]:
        """Plain form for the replicated state and JSON."""
        return {"holder": self.holder, "epoch": self.epoch, "expires_at": self.expires_at,
                "reserved_for": self.reserved_for, "reserved_until": self.reserved_until,
                "reserved_min_version": self.reserved_min_version}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Lease:
        """Inverse of :meth:`to_dict`."""
        return cls(data.get("holder"), int(data.get("epoch", 0)), float(data.get("expires_at", 0.0)),
                   data.get("reserved_for"), float(data.get("reserved_until", 0.0)),
                   int(data.get("reserved_min_version", 0)))


@dataclass(frozen=True)
class Member:
    """What one agent last reported about itself."""

    node: str
    data: dict[str, Any]
    updated_at: float
    expires_at: float

    def fresh(self, now: float) -> bool:
        """True while the member's report has not expired."""
        return now < self.expires_at


@dataclass(frozen=True)
class Intent:
    """A planned action requested through the API (today only ``switchover``)."""

    kind: str
    from_node: str
    to_node: str | None
    created_at: float
    expires_at: float

    def to_dict(self) -> dict[str, Any]:
        """Plain form for the replicated state."""
        return {"kind": self.kind, "from_node": self.from_node, "to_node": self.to_node,
                "created_at": self.created_at, "expires_at": self.expires_at}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Intent:
        """Inverse of :meth:`to_dict`."""
        return cls(data["kind"], data["from_node"], data.get("to_node"), float(data["created_at"]),
                   float(data["expires_at"]))


@dataclass(frozen=True)
class RaftStatus:
    """Consensus health as seen from this node."""

    term: int = 0
    commit_index: int = 0
    has_quorum: bool = False
    leader: str | None = None
    ready: bool = False
    peers: dict[str, str] = field(default_factory=dict)  # node -> "connected" | "disconnected"


class Store(abc.ABC):
    """The store contract used by :mod:`mooseng.ha`. Reads are local and never block."""

    retry_timeout: float

    @abc.abstractmethod
    def acquire_lease(self, node: str, ttl: float, epoch_hint: int) -> Lease | None:
        """Take the lease if nobody holds it or it expired, the store's epoch still equals
        ``epoch_hint`` (the epoch the caller decided on) and no reservation names another
        node. Returns the new lease (epoch incremented) or None when refused."""

    @abc.abstractmethod
    def renew_lease(self, node: str, epoch: int, ttl: float) -> Lease | None:
        """Compare-and-set: extend the lease iff ``node`` holds ``epoch``. None when refused."""

    @abc.abstractmethod
    def release_lease(self, node: str, epoch: int, reserve_for: str | None = None,
                      reserve_ttl: float = 0.0, min_version: int = 0) -> bool:
        """Give the lease up iff ``node`` holds ``epoch``; optionally reserve the next
        acquisition for ``reserve_for`` during ``reserve_ttl`` seconds, for a target that
        holds at least change ``min_version`` (the old leader's last change)."""

    @abc.abstractmethod
    def get_lease(self) -> Lease:
        """The lease as this replica knows it."""

    @abc.abstractmethod
    def set_member(self, node: str, data: dict[str, Any], ttl: float) -> None:
        """Publish this node's report, expiring after ``ttl``."""

    @abc.abstractmethod
    def members(self) -> dict[str, Member]:
        """Every member report this replica holds, fresh or not."""

    @abc.abstractmethod
    def metadata_ever_reported(self) -> bool:
        """True once any member has reported having MooseFS metadata (bootstrap guard)."""

    @abc.abstractmethod
    def mark_served(self, node: str, epoch: int) -> None:
        """Record that ``node`` served as MooseFS leader at lease ``epoch`` (only ever grows).

        A node may promote only from metadata of the latest served lineage."""

    @abc.abstractmethod
    def served_epoch(self) -> int:
        """The highest lease epoch whose holder served as leader (0 before any)."""

    @abc.abstractmethod
    def set_intent(self, intent: Intent | None) -> None:
        """Write (or clear, with None) the pending intent."""

    @abc.abstractmethod
    def get_intent(self) -> Intent | None:
        """The pending intent, if any (expired intents are returned too; callers check)."""

    @abc.abstractmethod
    def raft_status(self) -> RaftStatus:
        """Term, commit index, quorum, Raft leader and peer links."""

    @abc.abstractmethod
    def follower_contact_age(self) -> float | None:
        """Seconds since any follower last answered this replica's Raft AppendEntries, while
        this replica leads the consensus group; None when it does not lead (or cannot tell).
        A local read that never blocks (the fencing watchdog calls it every few ms)."""

    def move_raft_leadership(self, node: str) -> bool:
        """Best effort: if this replica leads the consensus group, hand that leadership to
        ``node`` (the lease holder), so that the holder's renewals never wait for an
        election when a follower dies. True when a transfer was requested. Default: no-op."""
        return False

    def close(self) -> None:
        """Stop the store's threads and connections."""
