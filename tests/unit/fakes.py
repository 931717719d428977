"""Fakes for the HA tests: a clock, an in-memory store on the real state machine, daemons."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from mooseng.dcs import Intent, Lease, Member, RaftStatus, Store, StoreError
from mooseng.dcs.raft import _Replicated
from mooseng.ha import HA, HAConfig

MASTERS = ["master-1", "master-2", "master-3"]


class FakeClock:
    """Wall and monotonic time that only move when told."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SyncExecutor:
    """Runs an action at once, in the caller's thread."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:  # noqa: BLE001
            future.set_exception(exc)
        return future


class PendingExecutor:
    """Keeps actions pending until run_all() (a promotion still in progress)."""

    def __init__(self) -> None:
        self.pending: list[tuple[Future, Callable[..., Any], tuple]] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        future: Future = Future()
        self.pending.append((future, fn, args))
        return future

    def run_all(self) -> None:
        pending, self.pending = self.pending, []
        for future, fn, args in pending:
            try:
                future.set_result(fn(*args))
            except Exception as exc:  # noqa: BLE001
                future.set_exception(exc)


class FakeStore(Store):
    """The real replicated state machine, applied locally with the fake clock."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.state = _Replicated()
        self.retry_timeout = 0.5
        self.failing = False
        self.raft_moves: list[str] = []
        self.raft = RaftStatus(term=3, commit_index=100, has_quorum=True, leader="master-1", ready=True,
                               peers={"master-2": "connected", "master-3": "connected"})
        # Follower contact as the (shared) Raft leader sees it: followers answer continuously
        # until cut_followers(); leads_raft False makes the holder a Raft follower (None).
        self.leads_raft = True
        self.followers_silent_since: float | None = None

    def cut_followers(self) -> None:
        """From now on no follower answers the Raft leader."""
        if self.followers_silent_since is None:
            self.followers_silent_since = self.clock.monotonic()

    def heal_followers(self) -> None:
        """Followers answer again."""
        self.followers_silent_since = None

    def _check(self) -> None:
        if self.failing:
            raise StoreError("renew_lease failed: timeout")

    def acquire_lease(self, node: str, ttl: float, epoch_hint: int) -> Lease | None:
        self._check()
        got = self.state.apply_acquire(node, ttl, self.clock.time(), epoch_hint, _doApply=True)
        return Lease.from_dict(got) if got else None

    def renew_lease(self, node: str, epoch: int, ttl: float) -> Lease | None:
        self._check()
        got = self.state.apply_renew(node, epoch, ttl, self.clock.time(), _doApply=True)
        return Lease.from_dict(got) if got else None

    def release_lease(self, node: str, epoch: int, reserve_for: str | None = None,
                      reserve_ttl: float = 0.0, min_version: int = 0) -> bool:
        self._check()
        return self.state.apply_release(node, epoch, self.clock.time(), reserve_for, reserve_ttl,
                                        min_version, _doApply=True)

    def get_lease(self) -> Lease:
        return Lease.from_dict(self.state.read_lease())

    def set_member(self, node: str, data: dict[str, Any], ttl: float) -> None:
        self._check()
        self.state.apply_member(node, data, ttl, self.clock.time(), _doApply=True)

    def members(self) -> dict[str, Member]:
        return {n: Member(n, m["data"], m["updated_at"], m["expires_at"])
                for n, m in self.state.read_members().items()}

    def metadata_ever_reported(self) -> bool:
        return self.state.read_metadata_seen()

    def mark_served(self, node: str, epoch: int) -> None:
        self._check()
        if not self.state.apply_served(node, epoch, _doApply=True):
            raise StoreError(f"mark_served refused for epoch {epoch}")

    def served_epoch(self) -> int:
        return self.state.read_served()

    def set_intent(self, intent: Intent | None) -> None:
        self._check()
        self.state.apply_intent(intent.to_dict() if intent else None, _doApply=True)

    def get_intent(self) -> Intent | None:
        data = self.state.read_intent()
        return Intent.from_dict(data) if data else None

    def raft_status(self) -> RaftStatus:
        return self.raft

    def follower_contact_age(self) -> float | None:
        if not self.leads_raft:
            return None
        if self.followers_silent_since is None:
            return 0.0
        return self.clock.monotonic() - self.followers_silent_since

    def move_raft_leadership(self, node: str) -> bool:
        self.raft_moves.append(node)
        return True


class FakeDaemons:
    """Records what the loop asked for; state is plain attributes."""

    def __init__(self, version: int = 0, has_metadata: bool = True, lineage: int = 1) -> None:
        self.version = version
        self.metadata = has_metadata
        self.master = False
        self.metalogger = False
        self.frozen = False
        self.calls: list[str] = []
        self.promote_error: Exception | None = None
        self.lineage_epoch = lineage  # most tests run under a leader that served epoch 1
        self.served = False  # mfsmaster ran here (its changelog holds its own changes)
        self.own_change: int | None = None  # overrides the last change of that changelog
        self.promoted_epoch: int | None = None  # the lease epoch promote() was given
        self.barrier_died = False  # the reply barrier exited while mfsmaster runs

    def master_running(self) -> bool:
        return self.master

    def master_accepts_clients(self) -> bool:
        return self.master

    def has_metadata(self) -> bool:
        return self.metadata

    def change_number(self) -> int:
        return self.version

    def own_master_change(self) -> int:
        return self.own_change if self.own_change is not None else (self.version if self.served else 0)

    def daemon_info(self) -> dict[str, Any]:
        name = "mfsmaster" if self.master else "mfsmetalogger"
        up = self.master or self.metalogger
        return {"name": name, "pid": 42 if up else None, "state": "running" if up else "stopped"}

    def ensure_metalogger(self) -> bool:
        if self.metalogger or self.master:
            return False
        self.metalogger = True
        self.calls.append("start metalogger")
        return True

    def restart_metalogger(self, lineage: int) -> None:
        self.metalogger = True
        self.served, self.own_change = False, None  # every file set aside
        self.lineage_epoch = lineage
        self.calls.append(f"restart metalogger lineage={lineage}")

    def lineage(self) -> int:
        return self.lineage_epoch

    def set_lineage(self, epoch: int) -> None:
        self.lineage_epoch = epoch

    def bootstrap(self) -> None:
        self.metadata = True
        self.calls.append("bootstrap")

    def promote(self, may_start: Callable[[], bool], fresh: bool = False,
                min_version: int = 0, epoch: int = 0) -> tuple[float, int]:
        self.calls.append(f"promote fresh={fresh}")
        self.promoted_epoch = epoch
        self.metalogger = False
        if self.promote_error:
            raise self.promote_error
        if self.version < min_version:
            raise RuntimeError(f"my change number {self.version} is behind {min_version}")
        if not may_start():
            raise RuntimeError("aborted")
        self.master = self.served = True
        return 1.5, self.version

    def ensure_barrier(self) -> bool:
        if self.barrier_died and self.master and not self.frozen:
            self.barrier_died = False
            self.calls.append("restart barrier")
            return True
        return False

    def fence(self) -> None:
        self.calls.append("fence")
        self.master = self.frozen = False

    def freeze_master(self) -> bool:
        self.calls.append("freeze")
        self.frozen = self.master
        return self.master

    def thaw_master(self) -> bool:
        self.calls.append("thaw")
        was, self.frozen = self.frozen, False
        return was

    def stop_master(self) -> None:
        self.calls.append("kill frozen master" if self.frozen else "stop master")
        self.master = self.frozen = False

    def demote(self) -> None:
        self.calls.append("demote")
        self.master = False
        self.metalogger = True


def make_ha(node: str, store: FakeStore, clock: FakeClock, daemons: FakeDaemons,
            executor: Any = None, **timing: float) -> HA:
    config = HAConfig(node=node, masters=MASTERS, api_url=f"http://{node}:9430", **timing)
    return HA(config, store, daemons, clock=clock, executor=executor or SyncExecutor())


def report(store: FakeStore, node: str, version: int, candidate: bool = True, **extra: Any) -> None:
    """Publish a member report for another node, as its agent would."""
    data = {"role": "follower", "metadata_version": version, "has_metadata": True,
            "candidate": candidate, "leader_ready": False, "epoch": store.get_lease().epoch}
    data.update(extra)
    store.set_member(node, data, 2.0)
