"""Freeze / thaw / fence on loss of follower contact, asserted as exact sentences on a fake clock.

The fake store plays the Raft leader's view: followers answer continuously until
``cut_followers()``; ``failing`` makes every store call fail, as during a partition.
Defaults of the fake config: ttl 2.0, safety margin 0.5 (fence 1.5 s after the last
renewal was sent), freeze_after 0.4, check interval 0.05.
"""

from __future__ import annotations

import pytest

from mooseng import settings
from mooseng.agent import load_config
from mooseng.ha import HA, HAConfig
from tests.unit.fakes import FakeClock, FakeDaemons, FakeStore, make_ha, report

FROZE = ("froze mfsmaster: no follower has answered for 0.45 s (more than 0.4 s); it serves again "
         "once followers answer and lease epoch 1 is renewed after that")
BACK = "no action: followers answer again; mfsmaster stays frozen until lease epoch 1 is renewed"
LOST_AGAIN = "no action: followers stopped answering again before a renewal; mfsmaster stays frozen"
FENCED_FROZEN = ("self-fenced: could not renew the lease within ttl - safety margin (mfsmaster was "
                 "frozen: killed without thawing)")


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def store(clock: FakeClock) -> FakeStore:
    return FakeStore(clock)


def serving_leader(store: FakeStore, clock: FakeClock, **config: object) -> tuple[HA, FakeDaemons]:
    """master-1 leads lease epoch 1 (renewed at clock.now) with mfsmaster running."""
    daemons = FakeDaemons(version=100)
    ha = make_ha("master-1", store, clock, daemons, **config)  # type: ignore[arg-type]
    assert ha.run_cycle().startswith("promoted self because no leader existed")
    assert ha.is_leader()
    return ha, daemons


def partition(store: FakeStore) -> None:
    """The leader is cut off from both followers: no answers, no commits."""
    store.cut_followers()
    store.failing = True


def heal(store: FakeStore) -> None:
    store.heal_followers()
    store.failing = False


def frozen_leader(store: FakeStore, clock: FakeClock) -> tuple[HA, FakeDaemons]:
    ha, daemons = serving_leader(store, clock)
    partition(store)
    clock.advance(0.45)
    assert ha.check_contact() == FROZE
    return ha, daemons


def test_freezes_once_no_follower_answered_for_longer_than_freeze_after(
        store: FakeStore, clock: FakeClock) -> None:
    ha, daemons = serving_leader(store, clock)
    partition(store)
    clock.advance(0.35)
    assert ha.check_contact() is None
    assert ha.is_leader()
    clock.advance(0.1)
    assert ha.check_contact() == FROZE
    assert daemons.frozen and daemons.calls[-1] == "freeze"
    assert not ha.is_leader()
    assert ha.check_contact() is None  # decided once
    snap = ha.snapshot()
    assert (snap["frozen"], snap["frozen_since"], snap["freezes"]) == (True, clock.now, 1)
    [epoch] = ha.serving_history()
    assert epoch["freezes"] == [{"frozen_at": clock.now, "thawed_at": None}]


def test_no_freeze_while_some_follower_answers_within_freeze_after(
        store: FakeStore, clock: FakeClock) -> None:
    ha, daemons = serving_leader(store, clock)
    for _ in range(20):  # answers arrive, late but within freeze_after
        store.cut_followers()
        clock.advance(0.35)
        assert ha.check_contact() is None
        store.heal_followers()
        assert ha.run_cycle() == "no action: I am master-1, the leader with the lease"
    assert ha.is_leader() and "freeze" not in daemons.calls


def test_thaws_when_followers_answer_and_a_later_renewal_succeeds(
        store: FakeStore, clock: FakeClock) -> None:
    ha, daemons = frozen_leader(store, clock)
    assert ha.run_cycle() == ("lease renewal failed (renew_lease failed: timeout); self-fencing in "
                              "1.1 s unless it succeeds (mfsmaster frozen)")
    clock.advance(0.05)
    heal(store)
    assert ha.check_contact() == BACK
    assert not ha.is_leader() and daemons.frozen
    clock.advance(0.05)
    assert ha.run_cycle() == ("thawed mfsmaster: followers answer again and lease epoch 1 was "
                              "renewed after that (frozen 0.10 s)")
    assert ha.is_leader() and not daemons.frozen and daemons.calls[-2:] == ["freeze", "thaw"]
    clock.advance(0.25)
    assert ha.run_cycle() == "no action: I am master-1, the leader with the lease"
    [epoch] = ha.serving_history()
    assert epoch["freezes"] == [{"frozen_at": pytest.approx(clock.now - 0.35),
                                 "thawed_at": pytest.approx(clock.now - 0.25)}]
    assert ha.snapshot()["thaws"] == 1


def test_contact_coming_back_wakes_the_loop_to_renew_at_once(
        store: FakeStore, clock: FakeClock) -> None:
    """The fence deadline may be a few tenths of a second away when followers answer again:
    the renewal that thaws must not wait for the next loop tick (loop_wait)."""
    ha, _ = frozen_leader(store, clock)
    ha._wake.clear()
    heal(store)
    assert ha.check_contact() == BACK
    assert ha._wake.is_set()
    ha._wake.clear()
    assert ha.check_contact() is None  # seen back once: no second wake-up
    assert not ha._wake.is_set()


def test_no_thaw_when_followers_answer_but_renewal_fails(store: FakeStore, clock: FakeClock) -> None:
    ha, daemons = frozen_leader(store, clock)
    store.heal_followers()  # answers come back, but commits still fail
    assert ha.check_contact() == BACK
    for _ in range(4):
        clock.advance(0.25)
        assert ha.run_cycle().startswith("lease renewal failed (renew_lease failed: timeout)")
        assert ha.check_contact() is None
        assert not ha.is_leader() and daemons.frozen
    clock.advance(0.1)  # 1.5 s after the last successful renewal was sent
    assert ha.check_fence() == FENCED_FROZEN
    assert "thaw" not in daemons.calls and daemons.calls[-1] == "fence"
    assert not daemons.master and not ha.is_leader() and not ha.snapshot()["frozen"]
    [epoch] = ha.serving_history()
    assert epoch["fenced_at"] == clock.now and epoch["freezes"][0]["thawed_at"] is None


def test_frozen_holder_whose_lease_was_taken_is_killed_without_thawing(
        store: FakeStore, clock: FakeClock) -> None:
    ha, daemons = frozen_leader(store, clock)
    clock.advance(2.0)  # the lease expired; the majority elected master-2
    heal(store)
    store.acquire_lease("master-2", 2.0, 1)
    ha._state.deadline = clock.now + 1  # pretend the watchdog did not run (paused process)
    assert ha.run_cycle() == ("self-fenced: lease epoch 1 is no longer mine (holder master-2, epoch 2) "
                              "(mfsmaster was frozen: killed without thawing)")
    assert "thaw" not in daemons.calls and daemons.calls[-1] == "fence"


def test_flapping_contact_without_a_renewal_never_thaws(store: FakeStore, clock: FakeClock) -> None:
    """Single answers get through between checks (faster than the check interval), sometimes
    none for longer than freeze_after; no renewal commits: mfsmaster never serves again and
    is killed frozen at the fencing deadline."""
    ha, daemons = frozen_leader(store, clock)
    seen, fenced, step = [], None, 0
    while fenced is None:
        step += 1
        clock.advance(0.02)
        if step % 16 < 6:  # an answer arrives, then the link drops again before the check
            store.heal_followers()
            store.cut_followers()
        clock.advance(0.03)
        seen.append(ha.check_contact())
        assert not ha.is_leader() and daemons.frozen, step
        if step % 5 == 0:
            assert ha.run_cycle().startswith("lease renewal failed")
        fenced = ha.check_fence()
    assert BACK in seen and LOST_AGAIN in seen
    assert fenced == FENCED_FROZEN and "thaw" not in daemons.calls


def test_renewal_sent_before_contact_was_seen_back_does_not_thaw(
        store: FakeStore, clock: FakeClock) -> None:
    ha, daemons = frozen_leader(store, clock)
    clock.advance(0.05)
    heal(store)  # answers and a commit get through at once, before any check saw them
    assert ha.run_cycle() == BACK  # the renewal was sent before contact was seen back
    assert not ha.is_leader() and daemons.frozen
    partition(store)  # and the link drops again
    clock.advance(0.45)
    assert ha.check_contact() == LOST_AGAIN
    assert ha.run_cycle().startswith("lease renewal failed")
    assert not ha.is_leader() and "thaw" not in daemons.calls
    clock.advance(0.05)
    heal(store)
    assert ha.check_contact() == BACK
    clock.advance(0.05)
    assert ha.run_cycle() == ("thawed mfsmaster: followers answer again and lease epoch 1 was "
                              "renewed after that (frozen 0.60 s)")
    assert ha.is_leader()


def test_no_switchover_while_frozen(store: FakeStore, clock: FakeClock) -> None:
    ha, daemons = frozen_leader(store, clock)
    store.failing = False  # renewals commit, but the check still sees no answers
    clock.advance(0.05)
    report(store, "master-2", 100)
    assert ha.request_switchover("master-2")[0] == 202
    clock.advance(0.05)
    assert ha.run_cycle() == ("no action: I am master-1, the leader with the lease, but mfsmaster "
                              "stays frozen until followers answer and a renewal sent after that "
                              "succeeds")
    assert "stop master" not in daemons.calls and daemons.frozen


def test_freeze_disabled_by_setting(store: FakeStore, clock: FakeClock) -> None:
    ha, daemons = serving_leader(store, clock, freeze_on_contact_loss=False)
    store.cut_followers()
    for _ in range(10):
        clock.advance(0.1)
        assert ha.check_contact() is None
    assert ha.is_leader() and "freeze" not in daemons.calls


def test_holder_that_does_not_lead_raft_is_not_frozen_on_unknown_contact(
        store: FakeStore, clock: FakeClock) -> None:
    ha, daemons = serving_leader(store, clock)
    store.leads_raft = False  # a Raft hand-over to the new holder still pending
    for _ in range(10):
        clock.advance(0.1)
        assert ha.check_contact() is None
    assert ha.is_leader() and "freeze" not in daemons.calls


def test_frozen_holder_that_lost_raft_leadership_thaws_on_a_renewal_sent_after_the_freeze(
        store: FakeStore, clock: FakeClock) -> None:
    ha, daemons = frozen_leader(store, clock)
    store.leads_raft = False  # pysyncobj stepped down; the two followers elected a Raft leader
    assert ha.check_contact() is None
    clock.advance(0.1)
    heal(store)  # the partition heals: the renewal commits through the new Raft leader
    assert ha.run_cycle() == ("thawed mfsmaster: a renewal of lease epoch 1 sent after the freeze "
                              "committed through another Raft leader (frozen 0.10 s)")
    assert ha.is_leader() and daemons.calls[-1] == "thaw"


def test_fence_deadline_still_applies_to_an_unfrozen_partitioned_leader(
        store: FakeStore, clock: FakeClock) -> None:
    ha, daemons = serving_leader(store, clock, freeze_on_contact_loss=False)
    partition(store)
    clock.advance(1.5)
    assert ha.check_fence() == "self-fenced: could not renew the lease within ttl - safety margin"
    assert daemons.calls[-1] == "fence"


def test_timing_rule_rejects_a_freeze_that_comes_after_the_fence() -> None:
    bad = HAConfig(node="master-1", masters=["master-1"], ttl=1.5, loop_wait=0.25, retry_timeout=0.25,
                   safety_margin=0.3, freeze_after=1.2, contact_check_interval=0.05)
    assert bad.problems() == [
        ("MOOSENG_FREEZE_AFTER + MOOSENG_CONTACT_CHECK_INTERVAL = 1.25 s is not below MOOSENG_TTL - "
         "MOOSENG_SAFETY_MARGIN = 1.2 s (mfsmaster would be fenced before it could freeze)")]
    assert HAConfig(node="master-1", masters=["master-1"], ttl=1.5, loop_wait=0.25,
                    retry_timeout=0.25, safety_margin=0.3, freeze_after=1.2,
                    freeze_on_contact_loss=False).problems() == []
    slow = HAConfig(node="master-1", masters=["master-1"], contact_check_interval=0.5)
    assert slow.problems()[0] == ("MOOSENG_CONTACT_CHECK_INTERVAL = 0.5 s is not below "
                                  "MOOSENG_SAFETY_MARGIN = 0.5 s (the watchdog fences up to one "
                                  "interval late)")


def test_load_config_validates_the_freeze_settings() -> None:
    base = {"MOOSENG_NODE": "master-1", "MOOSENG_RAFT_PASSWORD": "s"}
    with pytest.raises(settings.SettingError,
                       match=r"MOOSENG_FREEZE_AFTER \+ MOOSENG_CONTACT_CHECK_INTERVAL = 1.25 s"):
        load_config({**base, "MOOSENG_FREEZE_AFTER": "1.2"})
    with pytest.raises(settings.SettingError, match="below two Raft heartbeat periods"):
        load_config({**base, "MOOSENG_FREEZE_AFTER": "0.1"})
    with pytest.raises(settings.SettingError, match="MOOSENG_FREEZE_ON_CONTACT_LOSS='maybe' is invalid"):
        load_config({**base, "MOOSENG_FREEZE_ON_CONTACT_LOSS": "maybe"})
    config, _ = load_config(base)
    assert (config.freeze_on_contact_loss, config.freeze_after, config.contact_check_interval) == (
        True, 0.4, 0.05)
    config, _ = load_config({**base, "MOOSENG_FREEZE_ON_CONTACT_LOSS": "false",
                             "MOOSENG_FREEZE_AFTER": "5"})
    assert not config.freeze_on_contact_loss


def test_watchdog_fence_during_a_pending_renewal_is_one_decision(
        store: FakeStore, clock: FakeClock) -> None:
    ha, daemons = frozen_leader(store, clock)
    original = store.renew_lease

    def slow_renewal(node: str, epoch: int, ttl: float):
        clock.advance(1.1)  # the call blocks past the deadline; the watchdog fences meanwhile
        assert ha.check_fence() == FENCED_FROZEN
        return original(node, epoch, ttl)

    store.renew_lease = slow_renewal  # type: ignore[method-assign]
    assert ha.run_cycle() == "no action: lease epoch 1 was given up while its renewal was pending"
    assert ha.snapshot()["last_decision"] == ("no action: lease epoch 1 was given up while its "
                                              "renewal was pending")
    assert "thaw" not in daemons.calls and not daemons.master
