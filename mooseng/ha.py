"""The high-availability decision loop, after Patroni's ``ha.py``: it ONLY decides.

Each :meth:`HA.run_cycle` reads the store, renews or takes the lease, starts at
most one long action (promotion, handover, metalogger restart) on the executor
so that lease renewal continues, and returns one sentence that says what it did
and why. The API never acts: it writes intents and wakes the loop.

Rules:
- the lease holder renews every loop; if no renewal succeeded for
  ``ttl - safety_margin`` it stops mfsmaster at once (self-fencing);
- a follower takes the lease only once it expired (or was handed to it), and
  only if its change number is the highest among fresh members (ties: the Raft
  leader, then the lowest node name);
- the choice waits until every fresh candidate has reported after the lease expired
  (until then the old leader could still write, so older reports may understate);
- and only from the newest lineage: a node is a candidate only if its metadata
  descends from the last leader that served (its lineage epoch is at least the
  store's served epoch). A leader records that it served before it reports
  ready, so no write is acknowledged by a lineage the store does not know;
- bootstrap: on a brand-new cluster only the first master, with no metadata
  anywhere, creates an empty file system;
- freeze on contact loss (:meth:`HA.check_contact`, run by the watchdog every
  ``contact_check_interval``): MooseFS streams its changelog to metaloggers
  asynchronously, so a leader cut off from its followers would acknowledge writes no
  follower will ever hold until it fences. When no follower has answered the holder's
  Raft heartbeats for ``freeze_after``, mfsmaster is frozen (SIGSTOP) and acknowledges
  nothing; it is thawed (SIGCONT) only once followers answer again AND a renewal of the
  same epoch sent after that succeeded (no newer leader exists, the lease is extended).
  A frozen mfsmaster that must be fenced is SIGKILLed, never thawed first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from mooseng.dcs import Intent, Lease, Member, Store, StoreError
from mooseng.history import ServingHistory

log = logging.getLogger("mooseng.ha")

FAILED_PROMOTION_COOLDOWN_TTLS = 3.0
HANDOVER_RESERVATION_TTLS = 3.0
# For this long after the lease expired, a follower cycles every FREE_LEASE_POLL_WAIT_S
# (not every loop_wait), so the choice of a new leader does not wait a whole loop.
FREE_LEASE_FAST_POLL_S = 2.0
FREE_LEASE_POLL_WAIT_S = 0.05


@dataclass(frozen=True)
class HAConfig:
    """Timing and identity of one agent (the agent reads every value from
    :mod:`mooseng.settings`; the defaults here only serve unit tests)."""

    node: str
    masters: list[str]
    ttl: float = 2.0
    loop_wait: float = 0.5
    retry_timeout: float = 0.5
    safety_margin: float = 0.5
    api_url: str = ""
    replica_max_lag: int = 200
    freeze_on_contact_loss: bool = True
    freeze_after: float = 0.4
    contact_check_interval: float = 0.05

    def problems(self) -> list[str]:
        """Why this configuration is unsafe (empty when it is fine)."""
        errors = []
        if self.node not in self.masters:
            errors.append(f"MOOSENG_NODE={self.node!r} is not in MOOSENG_MASTERS={','.join(self.masters)}")
        if self.loop_wait + 2 * self.retry_timeout > self.ttl:
            errors.append(f"MOOSENG_LOOP_WAIT + 2*MOOSENG_RETRY_TIMEOUT = "
                          f"{self.loop_wait + 2 * self.retry_timeout:g} s exceeds MOOSENG_TTL = {self.ttl:g} s")
        if self.ttl - self.safety_margin <= self.loop_wait + self.retry_timeout:
            errors.append(f"MOOSENG_TTL - MOOSENG_SAFETY_MARGIN = {self.ttl - self.safety_margin:g} s leaves "
                          f"no time to renew (needs more than MOOSENG_LOOP_WAIT + MOOSENG_RETRY_TIMEOUT = "
                          f"{self.loop_wait + self.retry_timeout:g} s)")
        if self.contact_check_interval >= self.safety_margin:
            errors.append(f"MOOSENG_CONTACT_CHECK_INTERVAL = {self.contact_check_interval:g} s is not "
                          f"below MOOSENG_SAFETY_MARGIN = {self.safety_margin:g} s (the watchdog "
                          f"fences up to one interval late)")
        window = self.ttl - self.safety_margin
        if self.freeze_on_contact_loss and self.freeze_after + self.contact_check_interval >= window:
            errors.append(f"MOOSENG_FREEZE_AFTER + MOOSENG_CONTACT_CHECK_INTERVAL = "
                          f"{self.freeze_after + self.contact_check_interval:g} s is not below "
                          f"MOOSENG_TTL - MOOSENG_SAFETY_MARGIN = {window:g} s (mfsmaster would be "
                          f"fenced before it could freeze)")
        return errors


class Daemons(Protocol):
    """What the loop needs from the MooseFS side (see :class:`mooseng.mfs.MfsController`)."""

    def master_running(self) -> bool: ...
    def master_accepts_clients(self) -> bool: ...
    def has_metadata(self) -> bool: ...
    def change_number(self) -> int: ...
    def own_master_change(self) -> int: ...
    def daemon_info(self) -> dict[str, Any]: ...
    def ensure_metalogger(self) -> bool: ...
    def restart_metalogger(self, lineage: int) -> None: ...
    def lineage(self) -> int: ...
    def set_lineage(self, epoch: int) -> None: ...
    def bootstrap(self) -> None: ...
    def promote(self, may_start: Callable[[], bool], fresh: bool = False,
                min_version: int = 0, epoch: int = 0) -> tuple[float, int]: ...
    def ensure_barrier(self) -> bool: ...
    def fence(self) -> None: ...
    def freeze_master(self) -> bool: ...
    def thaw_master(self) -> bool: ...
    def stop_master(self) -> None: ...
    def demote(self) -> None: ...


class Clock:
    """Wall clock (shared by all containers) for the store, monotonic for local deadlines."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class Executor(Protocol):
    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future: ...


@dataclass
class _Action:
    name: str
    future: Future
    epoch: int | None = None


@dataclass
class _State:
    role: str = "starting"
    epoch: int | None = None  # the lease epoch this agent holds
    deadline: float | None = None  # monotonic: stop mfsmaster if not renewed by then
    leader_ready: bool = False
    followed_epoch: int | None = None  # epoch whose leader our metalogger was restarted for
    counted_epoch: int | None = None  # the last epoch counted in leader_changes
    leader_changes: int = 0
    since: float = field(default_factory=time.time)
    last_decision: str = ""
    last_cycle: float | None = None  # monotonic
    promotion_duration: float | None = None
    cooldown_until: float = 0.0
    metadata_version: int = 0
    start_version: int | None = None  # my change number when my mfsmaster began serving `epoch`
    diverged_changes: int | None = None  # my changes beyond the next leader's start, last counted
    daemon: dict[str, Any] = field(default_factory=lambda: {"name": "mfsmetalogger", "pid": None,
                                                              "state": "stopped"})
    # freeze on loss of follower contact (monotonic times unless named _wall)
    renewed: tuple[int, float] | None = None  # (epoch, send time) of the last successful renewal
    contact_age: float | None = None  # last follower_contact_age() seen by the check
    frozen_at: float | None = None
    frozen_wall: float | None = None
    contact_back_at: float | None = None  # first check, while frozen, that saw followers answer
    freezes: int = 0
    thaws: int = 0

    def unfreeze(self) -> None:
        """Forget the freeze (thawed, or mfsmaster is gone)."""
        self.frozen_at = self.frozen_wall = self.contact_back_at = None


class HA:
    """One agent's decision loop."""

    def __init__(self, config: HAConfig, store: Store, daemons: Daemons, clock: Clock | None = None,
                 executor: Executor | None = None, history: ServingHistory | None = None) -> None:
        self.config = config
        self.store = store
        self.daemons = daemons
        self.clock = clock or Clock()
        self.executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="ha-action")
        self.history = history or ServingHistory(config.node)
        self._state = _State(since=self.clock.time())
        self._lock = threading.RLock()
        # Serialises freeze, thaw and fence (watchdog and loop threads): a thaw never races a
        # kill. Taken before self._lock, never while holding it.
        self._freeze_lock = threading.Lock()
        self._action: _Action | None = None
        self._wake = threading.Event()
        self._last_logged = ("", 0.0)

    # ------------------------------------------------------------------ loop
    def wake(self) -> None:
        """Run the next cycle now (the API calls this after writing an intent)."""
        self._wake.set()

    def run_forever(self, stop: threading.Event) -> None:
        """Cycle until ``stop`` is set."""
        while not stop.is_set():
            self.run_cycle()
            self._wake.wait(self._next_wait())
            self._wake.clear()

    def _next_wait(self) -> float:
        """loop_wait, shortened to wake right at the lease's expiry or our fencing deadline."""
        wait = self.config.loop_wait
        with self._lock:
            deadline = self._state.deadline
        if deadline is not None:
            wait = min(wait, max(0.01, deadline - self.clock.monotonic()))
        else:
            expires_in = self.store.get_lease().expires_in(self.clock.time())
            if 0 < expires_in < wait:
                wait = expires_in + 0.01
            elif -FREE_LEASE_FAST_POLL_S < expires_in <= 0:
                wait = min(wait, FREE_LEASE_POLL_WAIT_S)  # right after expiry: elect quickly
        return wait

    def run_cycle(self) -> str:
        """Decide once; return (and log) the sentence describing the decision."""
        try:
            sentence = self._cycle()
        except Exception:
            log.exception("event=ha_cycle_error")
            sentence = "no action: unexpected error in the HA cycle (traceback logged)"
        with self._lock:
            self._state.last_decision = sentence
            self._state.last_cycle = self.clock.monotonic()
        self._log_decision(sentence)
        return sentence

    def _log_decision(self, sentence: str) -> None:
        with self._lock:  # the loop and the watchdog both decide
            last, at = self._last_logged
            now = self.clock.monotonic()
            fresh = sentence != last or now - at > 60
            if fresh:
                self._last_logged = (sentence, now)
        if fresh:
            log.info("event=ha_decision decision=%r", sentence)
        else:
            log.debug("event=ha_decision decision=%r", sentence)

    # --------------------------------------------------------------- helpers
    def _action_running(self) -> _Action | None:
        action = self._action
        return action if action is not None and not action.future.done() else None

    def _start_action(self, name: str, fn: Callable[..., Any], *args: Any, epoch: int | None = None) -> None:
        self._action = _Action(name, self.executor.submit(fn, *args), epoch)

    def _holding(self) -> bool:
        with self._lock:
            return self._state.epoch is not None

    def _my_report(self, lease: Lease) -> dict[str, Any]:
        """What this node publishes in ``members/<node>``."""
        with self._lock:
            st = self._state
            leader = st.epoch is not None
            busy = self._action_running() is not None
            role, epoch, ready = st.role, st.epoch, st.leader_ready
            cooling = self.clock.monotonic() < st.cooldown_until
        if not busy:
            version = self.daemons.change_number()
            has_metadata = self.daemons.has_metadata()
            daemon = self.daemons.daemon_info()
            with self._lock:
                st.metadata_version, st.daemon = version, daemon
        with self._lock:
            version, daemon = st.metadata_version, dict(st.daemon)
        if busy:
            has_metadata = True if role in ("leader", "promoting") else self.daemons.has_metadata()
        lineage = self.daemons.lineage()
        current = lineage >= self.store.served_epoch()
        with self._lock:
            start_version = st.start_version if leader and ready else None
        return {"role": role, "epoch": epoch if leader else lease.epoch, "metadata_version": version,
                "has_metadata": has_metadata, "leader_ready": leader and ready,
                "start_version": start_version,
                "lineage": lineage, "lineage_current": current,
                "candidate": (not leader and not busy and has_metadata and current and not cooling),
                "api_url": self.config.api_url, "daemon": daemon}

    def _publish(self, report: dict[str, Any]) -> str | None:
        try:
            self.store.set_member(self.config.node, report, self.config.ttl)
            return None
        except StoreError as exc:
            return str(exc)

    def _fence(self, reason: str) -> str:
        """Give up leadership at once: forget the epoch, SIGKILL mfsmaster (a frozen one too:
        SIGKILL ends a stopped process, it is never thawed first)."""
        with self._freeze_lock:
            with self._lock:
                was = self._state.epoch
                frozen = self._state.frozen_at is not None
                self._state.epoch = None
                self._state.deadline = None
                self._state.leader_ready = False
                self._state.role = "follower"
                self._state.unfreeze()
            self.daemons.fence()
        if was is not None:
            self.history.ended(was, self.clock.time(), "fenced", reason)
        log.warning("event=self_fenced epoch=%s frozen=%s reason=%r", was, frozen, reason)
        if frozen:
            return f"self-fenced: {reason} (mfsmaster was frozen: killed without thawing)"
        return f"self-fenced: {reason}"

    def check_fence(self) -> str | None:
        """Called often by a watchdog thread: fence if the renewal deadline passed."""
        with self._lock:
            deadline = self._state.deadline
            due = deadline is not None and self.clock.monotonic() >= deadline
        if due:
            return self._decided(self._fence("could not renew the lease within ttl - safety margin"))
        return None

    def _decided(self, sentence: str) -> str:
        """Record and log a decision taken off the loop (the watchdog)."""
        with self._lock:
            self._state.last_decision = sentence
        self._log_decision(sentence)
        return sentence

    def check_contact(self) -> str | None:
        """Called often by the watchdog, and by the loop after each renewal: freeze mfsmaster
        when no follower has answered for longer than freeze_after; thaw it once followers
        answer again and a renewal of the same epoch sent after that succeeded. Returns (and
        logs) the decision when one was taken, else None."""
        if not self.config.freeze_on_contact_loss:
            return None
        with self._freeze_lock:
            sentence = self._decide_contact()
        return self._decided(sentence) if sentence else None

    def _decide_contact(self) -> str | None:
        """The freeze/thaw rules (under the freeze lock).

        When this node leads Raft, contact is measured: the age of the latest follower answer.
        When it does not (a Raft hand-over to a new holder lags, or pysyncobj stepped down),
        contact cannot be measured: no freeze is started on that (it would freeze every new
        leader until Raft follows it; the lease fence still bounds the window), and a frozen
        mfsmaster thaws on a renewal sent after the freeze, whose commit through the other
        nodes' Raft leader is itself the proof of contact."""
        cfg = self.config
        now = self.clock.monotonic()
        with self._lock:
            st = self._state
            epoch, frozen_at, deadline = st.epoch, st.frozen_at, st.deadline
            serving = (epoch is not None and st.role == "leader" and deadline is not None
                       and now < deadline)
        if not serving:
            return None  # fenced, handed over or still promoting: nothing to freeze or thaw
        age = self.store.follower_contact_age()
        with self._lock:
            st.contact_age = age
        if frozen_at is None:
            if age is None or age <= cfg.freeze_after:
                return None
            return self._freeze(epoch, age)  # type: ignore[arg-type]
        if age is not None and age > cfg.freeze_after:
            with self._lock:
                was_back, st.contact_back_at = st.contact_back_at, None
            if was_back is not None:
                return "no action: followers stopped answering again before a renewal; mfsmaster stays frozen"
            return None
        if age is None:
            gate = frozen_at
            why = f"a renewal of lease epoch {epoch} sent after the freeze committed through another Raft leader"
        else:
            with self._lock:
                if st.contact_back_at is None:
                    st.contact_back_at = now
                    self.wake()  # renew now, not at the next loop tick: the fence deadline is near
                    return (f"no action: followers answer again; mfsmaster stays frozen until lease "
                            f"epoch {epoch} is renewed")
                gate = st.contact_back_at
            why = f"followers answer again and lease epoch {epoch} was renewed after that"
        with self._lock:
            renewed = st.renewed
        if renewed is None or renewed[0] != epoch or renewed[1] <= gate:
            return None
        return self._thaw(epoch, frozen_at, why)  # type: ignore[arg-type]

    def _freeze(self, epoch: int, age: float) -> str:
        with self._lock:
            st = self._state
            st.frozen_at, st.frozen_wall, st.contact_back_at = self.clock.monotonic(), None, None
            st.freezes += 1
        self.daemons.freeze_master()
        at = self.clock.time()  # after SIGSTOP: the wide side for the serving history
        with self._lock:
            self._state.frozen_wall = at
        self.history.frozen(epoch, at)
        log.warning("event=master_frozen epoch=%s contact_age=%.3f", epoch, age)
        return (f"froze mfsmaster: no follower has answered for {age:.2f} s (more than "
                f"{self.config.freeze_after:g} s); it serves again once followers answer and lease "
                f"epoch {epoch} is renewed after that")

    def _thaw(self, epoch: int, frozen_at: float, why: str) -> str:
        self.history.thawed(epoch, self.clock.time())  # before SIGCONT: the wide side
        self.daemons.thaw_master()
        with self._lock:
            took = self.clock.monotonic() - frozen_at
            self._state.unfreeze()  # /leader may answer 200 only now
            self._state.thaws += 1
        log.info("event=master_thawed epoch=%s frozen_for=%.3f", epoch, took)
        return f"thawed mfsmaster: {why} (frozen {took:.2f} s)"

    # ------------------------------------------------------------------ cycle
    def _cycle(self) -> str:
        now = self.clock.time()
        lease = self.store.get_lease()
        if self._holding():
            return self._as_holder(lease)
        return self._as_follower(lease, now)

    def _as_holder(self, lease: Lease) -> str:
        cfg = self.config
        fenced = self.check_fence()
        if fenced:
            return fenced
        with self._lock:
            epoch = self._state.epoch
        if epoch is None:
            return "no action: the lease was released by a handover"
        sent = self.clock.monotonic()
        try:
            renewed = self.store.renew_lease(cfg.node, epoch, cfg.ttl)
        except StoreError as exc:
            fenced = self.check_fence()
            if fenced:
                return fenced
            with self._lock:
                if self._state.epoch != epoch:  # the watchdog fenced while the call was pending
                    return f"no action: lease epoch {epoch} was given up while its renewal was pending"
                left = (self._state.deadline or sent) - self.clock.monotonic()
                frozen = self._state.frozen_at is not None
            return (f"lease renewal failed ({exc}); self-fencing in {max(left, 0):.1f} s unless it "
                    f"succeeds{' (mfsmaster frozen)' if frozen else ''}")
        with self._lock:
            if self._state.epoch != epoch:
                return "no action: the lease was released by a handover"
            if renewed is None:
                current = self.store.get_lease()
                reason = (f"lease epoch {epoch} is no longer mine (holder {current.holder}, "
                          f"epoch {current.epoch})")
            else:
                reason = ""
                self._state.deadline = sent + cfg.ttl - cfg.safety_margin
                self._state.renewed = (epoch, sent)
        if reason:
            return self._fence(reason)
        self._publish(self._my_report(renewed))
        contact = self.check_contact()  # a renewal may be what a frozen mfsmaster waits for
        if contact:
            return contact

        running = self._action_running()
        if running is not None:
            return f"no action: {running.name} in progress; renewed lease epoch {epoch}"
        finished = self._collect_action()
        if finished:
            return finished
        with self._lock:
            role = self._state.role
        if role != "leader":
            return f"no action: holding lease epoch {epoch} as {role}"
        if not self.daemons.master_running():
            return self._give_up(epoch, "mfsmaster exited unexpectedly")
        with self._lock:
            frozen = self._state.frozen_at is not None
        if frozen:  # a switchover waits too: a frozen mfsmaster cannot hand its last changes over
            return (f"no action: I am {cfg.node}, the leader with the lease, but mfsmaster stays "
                    f"frozen until followers answer and a renewal sent after that succeeds")
        if self.daemons.ensure_barrier():
            return (f"restarted the reply barrier in front of mfsmaster (it had exited); lease "
                    f"epoch {epoch}")
        ready = self.daemons.master_accepts_clients()
        with self._lock:
            self._state.leader_ready = ready
        intent = self.store.get_intent()
        if intent is not None and intent.kind == "switchover" and intent.from_node == cfg.node:
            return self._start_handover(epoch, intent)
        if not ready:
            return f"no action: I am {cfg.node}, the leader with the lease, but mfsmaster does not accept clients"
        return f"no action: I am {cfg.node}, the leader with the lease"

    def _finished_action(self) -> tuple[_Action, BaseException] | None:
        """Forget the finished action; when it failed, log it with its traceback and return
        it with its error (the caller decides how it is retried)."""
        action, self._action = self._action, None
        if action is None:
            return None
        error = action.future.exception()
        if error is None:
            log.debug("event=action_done action=%r epoch=%s", action.name, action.epoch)
            return None
        log.error("event=action_failed action=%r epoch=%s error=%r", action.name, action.epoch,
                  str(error), exc_info=(type(error), error, error.__traceback__))
        return action, error

    def _collect_action(self) -> str | None:
        """Turn a finished action's failure into a decision (holder side): a failed promotion
        or handover gives the lease up (mfsmaster is killed, the node demotes); the next
        cycles retry as a follower."""
        failed = self._finished_action()
        if failed is None:
            return None
        action, error = failed
        if action.name == "promotion":
            with self._lock:
                self._state.cooldown_until = (self.clock.monotonic()
                                              + FAILED_PROMOTION_COOLDOWN_TTLS * self.config.ttl)
            return self._give_up(action.epoch or 0, f"promotion failed: {error}")
        if action.name == "handover" and action.epoch is not None:
            with self._lock:
                holding = self._state.epoch == action.epoch
            if holding:
                return self._give_up(action.epoch, f"handover failed: {error}")
        return (f"no action: {action.name} failed ({error}; traceback logged); retrying on "
                f"the next cycle")

    def _collect_follower_action(self) -> str | None:
        """A follower's view of a finished action: a failed metalogger restart is retried on
        the next cycle (its epoch is not marked followed); a failed demotion is retried by
        the next cycles' ensure_metalogger."""
        failed = self._finished_action()
        if failed is None:
            return None
        action, error = failed
        if action.name == "metalogger restart":
            with self._lock:
                if self._state.followed_epoch == action.epoch:
                    self._state.followed_epoch = None
            return (f"could not restart metalogger to follow the leader of epoch {action.epoch} "
                    f"({type(error).__name__}: {error}; traceback logged); retrying on the next "
                    f"cycle")
        if action.name == "demotion":
            return (f"demotion failed ({type(error).__name__}: {error}; traceback logged); the "
                    f"metalogger is started again on the next cycle")
        return (f"no action: {action.name} failed ({type(error).__name__}: {error}; traceback "
                f"logged)")

    def _give_up(self, epoch: int, reason: str) -> str:
        """Release the lease after a failure and demote off the loop."""
        with self._freeze_lock:
            with self._lock:
                self._state.epoch = None
                self._state.deadline = None
                self._state.leader_ready = False
                self._state.role = "demoting"
                self._state.unfreeze()
            self.daemons.fence()
        self.history.ended(epoch, self.clock.time(), "stepped_down", reason)
        try:
            self.store.release_lease(self.config.node, epoch)
        except StoreError as exc:
            log.warning("event=release_failed epoch=%s reason=%r", epoch, str(exc))
        self._start_action("demotion", self._demote_action)
        return f"released lease epoch {epoch}: {reason}"

    def _demote_action(self) -> None:
        try:
            self.daemons.demote()
        finally:
            with self._lock:
                if self._state.epoch is None:
                    self._state.role = "follower"

    def _start_handover(self, epoch: int, intent: Intent) -> str:
        now = self.clock.time()
        try:
            self.store.set_intent(None)
        except StoreError as exc:
            return f"no action: switchover requested but the intent could not be cleared ({exc})"
        if now >= intent.expires_at:
            return f"no action: dropped an expired switchover request to {intent.to_node}"
        target = intent.to_node or self._best_candidate(now, exclude=self.config.node)
        if target is None:
            return "no action: switchover requested but no follower can take over"
        with self._lock:
            self._state.role = "demoting"
            self._state.leader_ready = False
        self._start_action("handover", self._handover_action, epoch, target, epoch=epoch)
        return f"handing over to {target}: stopping mfsmaster, then releasing lease epoch {epoch} for it"

    def _handover_action(self, epoch: int, target: str) -> None:
        self.daemons.stop_master()
        self.history.ended(epoch, self.clock.time(), "stepped_down", f"handover to {target}")
        final = self.daemons.change_number()
        with self._lock:
            self._state.epoch = None
            self._state.deadline = None
        try:
            # The target may take over only once its metalogger holds our last change; it gets
            # a few TTLs to catch up, then the normal candidate rules apply.
            self.store.release_lease(self.config.node, epoch, reserve_for=target,
                                     reserve_ttl=HANDOVER_RESERVATION_TTLS * self.config.ttl,
                                     min_version=final)
            log.info("event=handover_released epoch=%s target=%s final_change=%s", epoch, target,
                     final)
        except StoreError as exc:
            log.warning("event=handover_release_failed epoch=%s reason=%r", epoch, str(exc))
        self._demote_action()
        self.wake()

    # --------------------------------------------------------------- follower
    def _as_follower(self, lease: Lease, now: float) -> str:
        cfg = self.config
        running = self._action_running()
        if running is not None:
            self._publish(self._my_report(lease))
            return f"no action: {running.name} in progress"
        failed = self._collect_follower_action()
        if failed:
            self._publish(self._my_report(lease))
            return failed
        with self._lock:
            if self._state.role in ("starting", "promoting"):
                self._state.role = "follower"
        raft = self.store.raft_status()
        if not raft.ready:
            return "no action: the Raft store is not ready yet (catching up with the group)"
        report = self._my_report(lease)
        publish_error = self._publish(report)

        if lease.holder == cfg.node and lease.valid(now):
            try:
                self.store.release_lease(cfg.node, lease.epoch)
            except StoreError as exc:
                return f"no action: could not release lease epoch {lease.epoch} that I do not use ({exc})"
            return (f"released lease epoch {lease.epoch} that this agent does not use "
                    f"(left by a previous run or a late commit)")

        if self._should_bootstrap(lease):
            return self._take_lease(lease, now, report, bootstrap=True)

        if lease.valid(now):
            return self._follow(lease, report)

        started = self.daemons.ensure_metalogger()
        if publish_error:
            return f"no action: the lease is free but I could not publish my state ({publish_error})"
        if not report["has_metadata"]:
            return "no action: the lease is free but I have no metadata yet"
        if not report["lineage_current"]:
            return (f"no action: the lease is free but my metadata is of lineage "
                    f"{report['lineage']}, older than the last leader that served (epoch "
                    f"{self.store.served_epoch()}); promoting me would lose its writes")
        reserved = lease.reserved_against(cfg.node, now)
        if reserved:
            return f"no action: the lease is reserved for {reserved} (switchover)"
        if lease.reserved_for != cfg.node or now >= lease.reserved_until:
            with self._lock:
                cooling = self.clock.monotonic() < self._state.cooldown_until
            if cooling:
                return "no action: not a candidate for a while after a failed promotion"
            waiting = self._reported_before(lease.expires_at, now)
            if waiting:
                return (f"no action: the lease expired; waiting for {', '.join(waiting)} to report "
                        f"its change number from after the expiry")
            best = self._best_candidate(now, mine=report)
            if best != cfg.node:
                return self._why_not_me(best, report, now)
        result = self._take_lease(lease, now, report, bootstrap=False)
        if started and result.startswith("no action"):
            return result + " (metalogger started)"
        return result

    def _follow(self, lease: Lease, report: dict[str, Any]) -> str:
        holder, epoch = lease.holder, lease.epoch
        with self._lock:
            followed = self._state.followed_epoch
        leader = self.store.members().get(holder or "")
        leader_ready = (leader is not None and leader.data.get("leader_ready")
                        and leader.data.get("epoch") == epoch)
        if holder and leader_ready:
            # The holder should also lead Raft, so that a dying follower never stalls its
            # renewals; asked only of a settled leader (a hand-over can fail and cost renewals).
            self.store.move_raft_leadership(holder)
        if followed != epoch and leader_ready:
            # Counted before the restart sets my files aside (they hold my own changes).
            diverged = self._count_diverged(epoch, leader.data.get("start_version"))  # type: ignore[union-attr]
            with self._lock:
                self._state.followed_epoch = epoch
                if self._state.counted_epoch != epoch:  # a retried restart is not a new change
                    self._state.counted_epoch = epoch
                    self._state.leader_changes += 1
            self._start_action("metalogger restart", self.daemons.restart_metalogger, epoch,
                               epoch=epoch)
            future = self._action.future  # type: ignore[union-attr]
            if not future.done():
                return (f"restarting metalogger to follow new leader {holder} (epoch {epoch}) from "
                        f"a clean slate (setting my old files aside){diverged}")
            failed = self._collect_follower_action()
            if failed:
                return failed + diverged
            return (f"restarted metalogger to follow new leader {holder} (epoch {epoch}) from a "
                    f"clean slate (my old files set aside){diverged}")
        if self.daemons.ensure_metalogger():
            return f"started metalogger; following {holder} (lease epoch {epoch})"
        return f"no action: following {holder} (lease epoch {epoch})"

    def _count_diverged(self, epoch: int, start_version: Any) -> str:
        """When I served an older epoch whose count is not recorded yet: count my own changes
        beyond ``start_version``, where the new leader's epoch ``epoch`` starts (they diverge:
        the new lineage never had them, and they are set aside with my files), record the
        count in that epoch's serving history and return the clause for the sentence ("" when
        I am not a former leader)."""
        mine = [e for e in self.history.entries(limit=1)
                if e["epoch"] < epoch and e.get("diverged") is None]
        if not mine:
            return ""
        served = mine[0]["epoch"]
        own = self.daemons.own_master_change()
        if not isinstance(start_version, int) or isinstance(start_version, bool):
            self.history.diverged(served, self.clock.time(), None, own, None, epoch)
            log.warning("event=diverged_changes epoch=%s new_epoch=%s own_change=%s "
                        "start_version=unknown", served, epoch, own)
            return (f"; how many of my changes of epoch {served} (up to {own}) diverge is unknown "
                    f"(the new leader did not publish its starting change number)")
        count = max(0, own - start_version) if own else 0
        with self._lock:
            self._state.diverged_changes = count
        self.history.diverged(served, self.clock.time(), count, own, start_version, epoch)
        log.warning("event=diverged_changes epoch=%s new_epoch=%s own_change=%s start_version=%s "
                    "count=%s", served, epoch, own, start_version, count)
        return (f"; {count} of my changes of epoch {served} diverge (my last change {own}, epoch "
                f"{epoch} starts from {start_version})")

    def _should_bootstrap(self, lease: Lease) -> bool:
        """Only the first master, on a cluster where nobody ever had metadata or a lease."""
        return (self.config.node == self.config.masters[0] and lease.epoch == 0
                and lease.holder is None and not self.store.metadata_ever_reported()
                and not self.daemons.has_metadata())

    def _fresh_candidates(self, now: float, mine: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
        members: dict[str, Member] = self.store.members()
        found = {name: m.data for name, m in members.items() if m.fresh(now) and m.data.get("candidate")}
        if mine is not None:
            found.pop(self.config.node, None)
            if mine.get("candidate"):
                found[self.config.node] = mine
        return found

    def _reported_before(self, expired_at: float, now: float) -> list[str]:
        """Other fresh candidates whose last report predates the lease's expiry: their change
        number may still have grown since (the old leader could write until then), so the
        choice waits for their next report (one loop) or for it to go stale (one TTL)."""
        members = self.store.members()
        return sorted(name for name, m in members.items()
                      if name != self.config.node and m.fresh(now) and m.data.get("candidate")
                      and m.updated_at < expired_at)

    def _best_candidate(self, now: float, mine: dict[str, Any] | None = None,
                        exclude: str | None = None) -> str | None:
        """Highest change number among fresh candidates; ties go to the Raft leader (its
        renewals then never wait for another node's Raft election, and no hand-over is
        needed), then to the lowest name."""
        found = self._fresh_candidates(now, mine)
        found.pop(exclude or "", None)
        if not found:
            return None
        raft_leader = self.store.raft_status().leader
        return min(found, key=lambda n: (-int(found[n].get("metadata_version", 0)),
                                         n != raft_leader, n))

    def _why_not_me(self, best: str | None, report: dict[str, Any], now: float) -> str:
        mine = report["metadata_version"]
        if best is None:
            return "no action: the lease expired but no member can take it"
        theirs = int(self._fresh_candidates(now, report)[best].get("metadata_version", 0))
        if theirs == mine:
            why = ("leads Raft" if best == self.store.raft_status().leader
                   else "a lower name")
            return f"no action: the lease expired; {best} has the same change number {mine} and {why}"
        return f"no action: the lease expired but {best} has the higher change number ({theirs} > my {mine})"

    def _take_lease(self, lease: Lease, now: float, report: dict[str, Any], bootstrap: bool) -> str:
        cfg = self.config
        sent = self.clock.monotonic()
        try:
            taken = self.store.acquire_lease(cfg.node, cfg.ttl, lease.epoch)
        except StoreError as exc:
            return f"no action: could not take the lease ({exc})"
        if taken is None:
            return "no action: another node took the lease first"
        with self._lock:
            self._state.epoch = taken.epoch
            self._state.deadline = sent + cfg.ttl - cfg.safety_margin
            self._state.role = "promoting"
            self._state.leader_ready = False
            self._state.followed_epoch = taken.epoch
        handed_over = lease.reserved_for == cfg.node and now < lease.reserved_until
        min_version = lease.reserved_min_version if handed_over else 0
        self._start_action("promotion", self._promote_action, taken.epoch, bootstrap, min_version,
                           epoch=taken.epoch)
        if bootstrap:
            return (f"bootstrapped a new file system: no member ever had metadata and I am "
                    f"{cfg.node}, the first master (lease epoch {taken.epoch})")
        if lease.reserved_for == cfg.node and now < lease.reserved_until:
            why = "the previous leader handed the lease over to me"
        elif lease.holder is None and lease.epoch == 0:
            why = "no leader existed"
        else:
            why = "the lease expired"
        return (f"promoted self because {why} and my change number {report['metadata_version']} "
                f"is highest (lease epoch {taken.epoch})")

    def _promote_action(self, epoch: int, bootstrap: bool, min_version: int = 0) -> None:
        if bootstrap:
            self.daemons.bootstrap()

        def may_start() -> bool:
            with self._lock:
                return self._state.epoch == epoch

        # start_version: the change number the new epoch restored from (before mfsmaster
        # wrote anything); every change numbered above it that another node holds (a cut-off
        # old leader's) diverges from this lineage and is set aside there.
        took, start_version = self.daemons.promote(may_start, fresh=bootstrap,
                                                   min_version=min_version, epoch=epoch)
        self.daemons.set_lineage(epoch)
        self._mark_served(epoch)
        with self._lock:
            serves = self._state.epoch == epoch
            if serves:
                self._state.counted_epoch = epoch
                self._state.start_version = start_version
                self._state.role = "leader"
                self._state.leader_ready = True
                self._state.promotion_duration = took
                self._state.leader_changes += 1
                log.info("event=promoted epoch=%s took=%.2fs start_version=%s", epoch, took,
                         start_version)
        if serves:
            self.history.served(epoch, self.clock.time(), start_version)
        self.wake()

    def _mark_served(self, epoch: int) -> None:
        """Record in the store that this node serves epoch ``epoch`` before reporting ready;
        retried until the lease is gone (then the promotion fails and is given up)."""
        while True:
            with self._lock:
                if self._state.epoch != epoch:
                    raise RuntimeError(f"lease epoch {epoch} lost before it was marked served")
            try:
                self.store.mark_served(self.config.node, epoch)
                return
            except StoreError as exc:
                log.warning("event=mark_served_retry epoch=%s reason=%r", epoch, str(exc))
                time.sleep(self.config.retry_timeout / 2)

    # --------------------------------------------------------------- read side
    def is_leader(self) -> bool:
        """Holds a lease that is not past its local deadline, mfsmaster accepts clients and
        is not frozen."""
        with self._lock:
            st = self._state
            return (st.epoch is not None and st.role == "leader" and st.leader_ready
                    and st.frozen_at is None
                    and st.deadline is not None and self.clock.monotonic() < st.deadline)

    def is_route_target(self) -> bool:
        """What routers check (``GET /route``): :meth:`is_leader`, frozen or not.

        A frozen mfsmaster acknowledges nothing, and it is either thawed under the same lease
        epoch (no newer leader can exist then) or SIGKILLed, which ends its sessions. Routers
        therefore keep client and chunkserver sessions through a freeze: cutting them turned
        each short freeze into chunkserver re-registrations, endangered chunks and blocked
        reads."""
        with self._lock:
            st = self._state
            return (st.epoch is not None and st.role == "leader" and st.leader_ready
                    and st.deadline is not None and self.clock.monotonic() < st.deadline)

    def serving_history(self, limit: int = 50) -> list[dict[str, Any]]:
        """The last ``limit`` epochs this node served (see :mod:`mooseng.history`)."""
        return self.history.entries(limit)

    def loop_alive(self) -> bool:
        """The last cycle ended less than three loop intervals ago."""
        with self._lock:
            last = self._state.last_cycle
        return last is not None and self.clock.monotonic() - last < 3 * self.config.loop_wait + 1.0

    def snapshot(self) -> dict[str, Any]:
        """A copy of the agent's state for the API (never blocks on daemons)."""
        with self._lock:
            st = self._state
            return {"role": st.role, "epoch": st.epoch, "leader_ready": st.leader_ready,
                    "leader_changes": st.leader_changes, "since": st.since,
                    "last_decision": st.last_decision, "promotion_duration": st.promotion_duration,
                    "metadata_version": st.metadata_version, "daemon": dict(st.daemon),
                    "start_version": st.start_version if st.epoch is not None else None,
                    "diverged_changes": st.diverged_changes,
                    "action": self._action_running().name if self._action_running() else None,
                    "frozen": st.frozen_at is not None, "frozen_since": st.frozen_wall,
                    "freezes": st.freezes, "thaws": st.thaws, "contact_age": st.contact_age}

    def leave(self, stop_daemons: Callable[[], None], kill_master: Callable[[], None]) -> str:
        """Shut down: stop serving as leader, run ``stop_daemons``, then release the lease.

        A graceful mfsmaster stop takes seconds, longer than a short TTL: the holder keeps
        renewing until the process exited, so no new leader can start next to it; if renewal
        fails up to the fencing deadline, ``kill_master`` (SIGKILL) runs. Returns a sentence."""
        with self._freeze_lock, self._lock:
            epoch, deadline = self._state.epoch, self._state.deadline
            self._state.epoch = None  # no promotion in flight may start mfsmaster now
            self._state.deadline = None
            self._state.leader_ready = False  # /leader answers 503: routers cut the sessions
            self._state.role = "demoting"
            # a frozen mfsmaster stays frozen: the daemons' stop kills it, it never thaws
            self._state.unfreeze()
        if epoch is None:
            stop_daemons()
            return "stopped the daemons (not the leader)"
        cfg = self.config
        stopper = threading.Thread(target=stop_daemons, name="stop-daemons", daemon=True)
        stopper.start()
        deadline = deadline if deadline is not None else self.clock.monotonic()
        killed = False
        while stopper.is_alive():
            sent = self.clock.monotonic()
            try:
                if self.store.renew_lease(cfg.node, epoch, cfg.ttl) is not None:
                    deadline = sent + cfg.ttl - cfg.safety_margin
                else:
                    deadline = sent  # the lease is not ours any more
            except StoreError:
                pass
            if not killed and self.clock.monotonic() >= deadline:
                kill_master()
                killed = True
                log.warning("event=self_fenced epoch=%s reason='lease not renewable while mfsmaster "
                            "stopped at shutdown'", epoch)
            stopper.join(cfg.loop_wait)
        self.history.ended(epoch, self.clock.time(), "fenced" if killed else "stepped_down",
                           "agent shutdown" + (" (killed: lease not renewable)" if killed else ""))
        try:
            self.store.release_lease(cfg.node, epoch)
        except StoreError as exc:
            log.warning("event=lease_release_failed epoch=%s reason=%r", epoch, str(exc))
            return f"stopped mfsmaster; could not release lease epoch {epoch} ({exc})"
        log.info("event=lease_released epoch=%s reason=shutdown", epoch)
        return (f"stopped mfsmaster{' (killed: lease not renewable)' if killed else ''}, "
                f"then released lease epoch {epoch}")

    def request_switchover(self, target: str | None) -> tuple[int, dict[str, Any]]:
        """Validate and record a switchover intent; return (HTTP status, body)."""
        cfg = self.config
        now = self.clock.time()
        if target is not None and target not in cfg.masters:
            return 404, {"error": f"unknown target {target!r}; masters are {', '.join(cfg.masters)}"}
        lease = self.store.get_lease()
        if not lease.valid(now) or lease.holder is None:
            return 409, {"error": "no leader holds the lease now"}
        if target == lease.holder:
            return 409, {"error": f"{target} is already the leader"}
        best = target or self._best_candidate(now, exclude=lease.holder)
        if best is None:
            return 409, {"error": "no follower can take over now"}
        candidates = self._fresh_candidates(now, None)
        if best not in candidates:
            return 409, {"error": f"{best} is not a healthy follower with metadata now"}
        intent = Intent("switchover", lease.holder, best, now, now + 3 * cfg.ttl)
        try:
            self.store.set_intent(intent)
        except StoreError as exc:
            return 409, {"error": f"could not record the switchover: {exc}"}
        self.wake()
        return 202, {"accepted": True, "from": lease.holder, "to": best}
