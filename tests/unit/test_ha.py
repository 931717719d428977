"""The HA loop's decisions, asserted as exact sentences, on canned clusters."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Any

import pytest

from mooseng import settings
from mooseng.agent import load_config
from mooseng.ha import HAConfig
from tests.unit.fakes import FakeClock, FakeDaemons, FakeStore, PendingExecutor, make_ha, report


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def store(clock: FakeClock) -> FakeStore:
    return FakeStore(clock)


def leader_cluster(store: FakeStore, clock: FakeClock, version: int = 100):
    """master-1 leads (lease epoch 1) after a normal election."""
    daemons = FakeDaemons(version=version)
    ha = make_ha("master-1", store, clock, daemons)
    first = ha.run_cycle()
    assert first == f"promoted self because no leader existed and my change number {version} is highest (lease epoch 1)"
    return ha, daemons


def test_leader_renews_every_loop(store: FakeStore, clock: FakeClock) -> None:
    ha, daemons = leader_cluster(store, clock)
    assert daemons.master and ha.is_leader()
    for _ in range(5):
        clock.advance(0.5)
        assert ha.run_cycle() == "no action: I am master-1, the leader with the lease"
    lease = store.get_lease()
    assert lease.holder == "master-1" and lease.epoch == 1
    assert lease.expires_at == pytest.approx(clock.now + 2.0)


def test_holder_that_cannot_renew_self_fences_before_expiry(store: FakeStore, clock: FakeClock) -> None:
    ha, daemons = leader_cluster(store, clock)
    expires_at = store.get_lease().expires_at
    store.failing = True
    clock.advance(0.5)
    assert ha.run_cycle() == ("lease renewal failed (renew_lease failed: timeout); "
                              "self-fencing in 1.0 s unless it succeeds")
    clock.advance(0.5)
    assert ha.run_cycle() == ("lease renewal failed (renew_lease failed: timeout); "
                              "self-fencing in 0.5 s unless it succeeds")
    assert daemons.master
    clock.advance(0.5)
    assert ha.check_fence() == "self-fenced: could not renew the lease within ttl - safety margin"
    assert clock.now < expires_at
    assert not daemons.master and "fence" in daemons.calls and not ha.is_leader()


def test_loop_reports_fence_when_deadline_passed_during_cycle(store: FakeStore, clock: FakeClock) -> None:
    ha, daemons = leader_cluster(store, clock)
    store.failing = True
    clock.advance(1.6)
    assert ha.run_cycle() == "self-fenced: could not renew the lease within ttl - safety margin"
    assert not daemons.master


def test_holder_whose_lease_was_taken_fences_at_once(store: FakeStore, clock: FakeClock) -> None:
    ha, daemons = leader_cluster(store, clock)
    clock.advance(2.5)  # lease expired (a long pause), someone else took it
    store.acquire_lease("master-2", 2.0, 1)
    clock.advance(0.0)
    ha._state.deadline = clock.now + 1  # pretend the watchdog did not run (paused process)
    assert ha.run_cycle() == "self-fenced: lease epoch 1 is no longer mine (holder master-2, epoch 2)"
    assert not daemons.master


def test_follower_waits_until_the_lease_expired(store: FakeStore, clock: FakeClock) -> None:
    leader, _ = leader_cluster(store, clock, version=100)
    follower_daemons = FakeDaemons(version=100)
    follower = make_ha("master-2", store, clock, follower_daemons)
    assert follower.run_cycle() == "started metalogger; following master-1 (lease epoch 1)"
    leader.run_cycle()  # publishes leader_ready for epoch 1 (woken right after promotion)
    assert follower.run_cycle() == ("restarted metalogger to follow new leader master-1 (epoch 1) "
                                    "from a clean slate (my old files set aside)")
    assert follower.run_cycle() == "no action: following master-1 (lease epoch 1)"
    # the leader dies: no more renewals
    clock.advance(1.0)
    assert follower.run_cycle() == "no action: following master-1 (lease epoch 1)"
    clock.advance(0.9)
    assert follower.run_cycle() == "no action: following master-1 (lease epoch 1)"
    assert not follower_daemons.master
    clock.advance(0.2)
    assert follower.run_cycle() == ("promoted self because the lease expired and my change number 100 "
                                    "is highest (lease epoch 2)")
    assert follower_daemons.master and follower.is_leader()


def test_only_the_highest_change_number_takes_the_lease(store: FakeStore, clock: FakeClock) -> None:
    leader_cluster(store, clock)
    clock.advance(3.0)  # leader dead, lease expired
    m2, m3 = FakeDaemons(version=41200), FakeDaemons(version=41233)
    ha2 = make_ha("master-2", store, clock, m2)
    ha3 = make_ha("master-3", store, clock, m3)
    report(store, "master-3", 41233)
    assert ha2.run_cycle() == ("no action: the lease expired but master-3 has the higher change number "
                               "(41233 > my 41200)")
    assert ha3.run_cycle() == ("promoted self because the lease expired and my change number 41233 "
                               "is highest (lease epoch 2)")
    assert m3.master and not m2.master


def test_choice_waits_for_reports_from_after_the_expiry(store: FakeStore, clock: FakeClock) -> None:
    """A report older than the expiry may understate a change number that grew until the old
    leader stopped; the highest-looking follower must not promote on it."""
    leader_cluster(store, clock)
    clock.advance(1.8)
    report(store, "master-3", 400)  # master-3's last report while the old leader still wrote
    clock.advance(0.3)  # the lease (renewed at t=0, ttl 2) expired at t=2.0
    m2 = FakeDaemons(version=450)
    ha2 = make_ha("master-2", store, clock, m2)
    assert ha2.run_cycle() == ("no action: the lease expired; waiting for master-3 to report its "
                               "change number from after the expiry")
    assert not m2.master
    report(store, "master-3", 460)  # it did receive more changes before the leader died
    assert ha2.run_cycle() == ("no action: the lease expired but master-3 has the higher change "
                               "number (460 > my 450)")
    assert not m2.master


def test_follower_that_stopped_reporting_is_not_waited_for(store: FakeStore, clock: FakeClock) -> None:
    leader_cluster(store, clock)
    report(store, "master-3", 900)
    clock.advance(2.1)  # master-3's report (ttl 2) went stale with the lease: it is ignored
    m2 = FakeDaemons(version=450)
    ha2 = make_ha("master-2", store, clock, m2)
    assert ha2.run_cycle() == ("promoted self because the lease expired and my change number 450 "
                               "is highest (lease epoch 2)")


def test_follower_moves_raft_leadership_to_a_ready_lease_holder(store: FakeStore, clock: FakeClock) -> None:
    leader, _ = leader_cluster(store, clock)
    follower = make_ha("master-2", store, clock, FakeDaemons(version=100))
    follower.run_cycle()
    assert store.raft_moves == []  # not while the holder is still promoting
    leader.run_cycle()  # reports leader_ready
    follower.run_cycle()
    assert store.raft_moves == ["master-1"]


def test_tie_goes_to_the_raft_leader(store: FakeStore, clock: FakeClock) -> None:
    leader_cluster(store, clock)
    clock.advance(3.0)
    store.raft = dataclasses.replace(store.raft, leader="master-3")
    m2 = FakeDaemons(version=500)
    ha2 = make_ha("master-2", store, clock, m2)
    report(store, "master-3", 500)
    assert ha2.run_cycle() == ("no action: the lease expired; master-3 has the same change number 500 "
                               "and leads Raft")
    assert not m2.master


def test_tie_goes_to_the_lowest_name(store: FakeStore, clock: FakeClock) -> None:
    leader_cluster(store, clock)
    clock.advance(3.0)
    m3 = FakeDaemons(version=500)
    ha3 = make_ha("master-3", store, clock, m3)
    report(store, "master-2", 500)
    assert ha3.run_cycle() == ("no action: the lease expired; master-2 has the same change number 500 "
                               "and a lower name")


def test_lagging_follower_never_promotes(store: FakeStore, clock: FakeClock) -> None:
    leader_cluster(store, clock)
    clock.advance(3.0)
    lagging = FakeDaemons(version=10)
    ha2 = make_ha("master-2", store, clock, lagging)
    for _ in range(10):
        report(store, "master-3", 900, candidate=True)
        assert ha2.run_cycle() == ("no action: the lease expired but master-3 has the higher change "
                                   "number (900 > my 10)")
        clock.advance(0.5)
    lease = store.get_lease()  # nobody took the expired lease of epoch 1
    assert (lease.holder, lease.epoch, lease.valid(clock.now)) == ("master-1", 1, False)
    assert not lagging.master and "promote fresh=False" not in lagging.calls


def test_follower_without_metadata_does_not_promote(store: FakeStore, clock: FakeClock) -> None:
    ha2 = make_ha("master-2", store, clock, FakeDaemons(has_metadata=False))
    assert ha2.run_cycle() == "no action: the lease is free but I have no metadata yet"


def test_bootstrap_happens_exactly_once(store: FakeStore, clock: FakeClock) -> None:
    empty2 = FakeDaemons(has_metadata=False)
    ha2 = make_ha("master-2", store, clock, empty2)
    assert ha2.run_cycle() == "no action: the lease is free but I have no metadata yet"
    empty1 = FakeDaemons(has_metadata=False)
    ha1 = make_ha("master-1", store, clock, empty1)
    assert ha1.run_cycle() == ("bootstrapped a new file system: no member ever had metadata and I am "
                               "master-1, the first master (lease epoch 1)")
    assert empty1.calls[:2] == ["bootstrap", "promote fresh=True"]
    assert ha1.run_cycle() == "no action: I am master-1, the leader with the lease"
    assert store.metadata_ever_reported()
    # master-1 loses its disk and restarts later: metadata was reported once, never bootstrap again
    clock.advance(5.0)
    again = make_ha("master-1", store, clock, FakeDaemons(has_metadata=False))
    assert again.run_cycle() == "no action: the lease is free but I have no metadata yet"
    assert store.get_lease().epoch == 1


def test_node_with_metadata_never_bootstraps(store: FakeStore, clock: FakeClock) -> None:
    daemons = FakeDaemons(version=7, has_metadata=True)
    ha1 = make_ha("master-1", store, clock, daemons)
    assert ha1.run_cycle() == ("promoted self because no leader existed and my change number 7 is "
                               "highest (lease epoch 1)")
    assert "bootstrap" not in daemons.calls


def test_renewal_continues_while_promotion_runs(store: FakeStore, clock: FakeClock) -> None:
    executor = PendingExecutor()
    daemons = FakeDaemons(version=5)
    ha = make_ha("master-1", store, clock, daemons, executor=executor)
    assert ha.run_cycle().startswith("promoted self")
    for _ in range(3):
        clock.advance(0.5)
        assert ha.run_cycle() == "no action: promotion in progress; renewed lease epoch 1"
    assert not ha.is_leader()
    executor.run_all()
    assert ha.is_leader()
    clock.advance(0.5)
    assert ha.run_cycle() == "no action: I am master-1, the leader with the lease"


def test_failed_promotion_releases_the_lease(store: FakeStore, clock: FakeClock) -> None:
    daemons = FakeDaemons(version=5)
    daemons.promote_error = RuntimeError("mfsmaster restore exited with code 1: no metadata")
    ha = make_ha("master-1", store, clock, daemons)
    ha.run_cycle()
    clock.advance(0.5)
    assert ha.run_cycle() == ("released lease epoch 1: promotion failed: mfsmaster restore exited "
                              "with code 1: no metadata")
    assert store.get_lease().holder is None
    clock.advance(0.5)
    assert ha.run_cycle() == "no action: not a candidate for a while after a failed promotion"


def test_switchover_hands_over_to_the_named_target(store: FakeStore, clock: FakeClock) -> None:
    ha1, d1 = leader_cluster(store, clock, version=300)
    d2, d3 = FakeDaemons(version=300), FakeDaemons(version=300)
    ha2 = make_ha("master-2", store, clock, d2)
    ha3 = make_ha("master-3", store, clock, d3)
    ha2.run_cycle()
    ha3.run_cycle()
    status, body = ha2.request_switchover("master-3")
    assert (status, body) == (202, {"accepted": True, "from": "master-1", "to": "master-3"})
    clock.advance(0.5)
    assert ha1.run_cycle() == ("handing over to master-3: stopping mfsmaster, then releasing lease "
                               "epoch 1 for it")
    assert d1.calls[-2:] == ["stop master", "demote"] and not d1.master
    lease = store.get_lease()
    assert lease.holder is None and lease.reserved_for == "master-3"
    # master-2 has the same change number and a lower name, but the lease is reserved
    assert ha2.run_cycle() == "no action: the lease is reserved for master-3 (switchover)"
    assert ha3.run_cycle() == ("promoted self because the previous leader handed the lease over to me "
                               "and my change number 300 is highest (lease epoch 2)")
    assert d3.master and ha3.is_leader() and not ha1.is_leader()


def test_switchover_target_must_hold_the_old_leaders_last_change(
        store: FakeStore, clock: FakeClock) -> None:
    ha1, d1 = leader_cluster(store, clock, version=300)
    d3 = FakeDaemons(version=290)  # even after its metalogger flushed, it lacks changes
    ha3 = make_ha("master-3", store, clock, d3)
    ha3.run_cycle()
    assert ha1.request_switchover("master-3")[0] == 202
    d1.version = 305  # the changes made until mfsmaster stopped
    clock.advance(0.5)
    ha1.run_cycle()
    assert store.get_lease().reserved_min_version == 305
    ha3.run_cycle()  # takes the reserved lease; the promotion checks after the flush
    assert ha3.run_cycle() == ("released lease epoch 2: promotion failed: my change number 290 "
                               "is behind 305")
    assert not d3.master and store.get_lease().holder is None


def test_switchover_target_that_holds_the_last_change_promotes(store: FakeStore,
                                                               clock: FakeClock) -> None:
    ha1, d1 = leader_cluster(store, clock, version=300)
    d3 = FakeDaemons(version=305)
    ha3 = make_ha("master-3", store, clock, d3)
    ha3.run_cycle()
    assert ha1.request_switchover("master-3")[0] == 202
    d1.version = 305
    clock.advance(0.5)
    ha1.run_cycle()
    assert ha3.run_cycle().startswith("promoted self because the previous leader handed the lease")
    assert d3.master and ha3.is_leader()


def test_switchover_refusals(store: FakeStore, clock: FakeClock) -> None:
    ha1, _ = leader_cluster(store, clock)
    assert ha1.request_switchover("master-9")[0] == 404
    assert ha1.request_switchover("master-1") == (409, {"error": "master-1 is already the leader"})
    assert ha1.request_switchover("master-2") == (
        409, {"error": "master-2 is not a healthy follower with metadata now"})


def test_stale_lease_of_a_previous_run_is_released(store: FakeStore, clock: FakeClock) -> None:
    store.acquire_lease("master-1", 2.0, 0)
    ha = make_ha("master-1", store, clock, FakeDaemons(version=1))
    assert ha.run_cycle() == ("released lease epoch 1 that this agent does not use "
                              "(left by a previous run or a late commit)")
    assert store.get_lease().holder is None


def test_config_timing_rule_rejected() -> None:
    bad = HAConfig(node="master-1", masters=["master-1"], ttl=1.0, loop_wait=0.5, retry_timeout=0.5)
    assert bad.problems() == ["MOOSENG_LOOP_WAIT + 2*MOOSENG_RETRY_TIMEOUT = 1.5 s exceeds MOOSENG_TTL = 1 s",
                              ("MOOSENG_TTL - MOOSENG_SAFETY_MARGIN = 0.5 s leaves no time to renew "
                              "(needs more than MOOSENG_LOOP_WAIT + MOOSENG_RETRY_TIMEOUT = 1 s)")]
    assert HAConfig(node="master-1", masters=["master-1"]).problems() == []


def test_load_config_names_the_variable() -> None:
    env = {"MOOSENG_NODE": "master-1", "MOOSENG_RAFT_PASSWORD": "s", "MOOSENG_TTL": "0.6"}
    with pytest.raises(settings.SettingError, match="MOOSENG_LOOP_WAIT \\+ 2\\*MOOSENG_RETRY_TIMEOUT"):
        load_config(env)
    with pytest.raises(settings.SettingError, match="MOOSENG_RAFT_PASSWORD is empty"):
        load_config({"MOOSENG_NODE": "master-1"})
    with pytest.raises(settings.SettingError, match="MOOSENG_TTL='soon' is invalid"):
        load_config({"MOOSENG_NODE": "master-1", "MOOSENG_TTL": "soon", "MOOSENG_RAFT_PASSWORD": "s"})
    config, _ = load_config({"MOOSENG_NODE": "master-2", "MOOSENG_RAFT_PASSWORD": "s"})
    assert (config.ttl, config.loop_wait, config.retry_timeout, config.safety_margin) == (1.5, 0.25, 0.25, 0.3)


def test_a_newer_change_number_of_an_older_lineage_never_promotes(store: FakeStore,
                                                                  clock: FakeClock) -> None:
    """master-1 served epoch 1; master-2 still holds files of lineage 0 (say, it led before
    and was cut off while master-1 served): even with more changes it must not promote."""
    leader_cluster(store, clock)
    clock.advance(3.0)  # leader dead, lease expired
    stale = FakeDaemons(version=90000, lineage=0)
    current = FakeDaemons(version=41233, lineage=1)
    ha2 = make_ha("master-2", store, clock, stale)
    ha3 = make_ha("master-3", store, clock, current)
    assert ha2.run_cycle() == (
        "no action: the lease is free but my metadata is of lineage 0, older than the last "
        "leader that served (epoch 1); promoting me would lose its writes")
    assert ha3.run_cycle() == ("promoted self because the lease expired and my change number "
                               "41233 is highest (lease epoch 2)")
    assert store.served_epoch() == 2 and current.lineage_epoch == 2
    assert not stale.master


def test_leader_is_marked_served_before_it_reports_ready(store: FakeStore, clock: FakeClock) -> None:
    leader_cluster(store, clock)
    clock.advance(3.0)
    daemons = FakeDaemons(version=5)
    ha = make_ha("master-2", store, clock, daemons)
    store.failing = False
    calls = []
    original = store.mark_served

    def spy(node: str, epoch: int) -> None:
        calls.append((node, epoch, ha.is_leader()))
        original(node, epoch)

    store.mark_served = spy  # type: ignore[method-assign]
    ha.run_cycle()
    assert calls == [("master-2", 2, False)]
    assert ha.is_leader()


def test_following_a_new_leader_restarts_the_metalogger_with_its_lineage(store: FakeStore,
                                                                         clock: FakeClock) -> None:
    leader, _ = leader_cluster(store, clock, version=100)
    daemons = FakeDaemons(version=100, lineage=0)
    follower = make_ha("master-2", store, clock, daemons)
    follower.run_cycle()
    leader.run_cycle()
    follower.run_cycle()
    assert "restart metalogger lineage=1" in daemons.calls
    assert daemons.lineage_epoch == 1


def test_leaving_leader_keeps_its_lease_until_mfsmaster_stopped(store: FakeStore, clock: FakeClock) -> None:
    """A graceful mfsmaster stop outlasts a short TTL: the lease must not expire meanwhile."""
    ha, _ = leader_cluster(store, clock)
    killed = threading.Event()

    def slow_stop() -> None:
        for _ in range(4):  # 2 s of (fake) time, more than the TTL
            clock.advance(0.5)
            time.sleep(0.3)
            assert store.get_lease().valid(clock.now), "lease expired while mfsmaster stopped"

    result = ha.leave(slow_stop, killed.set)
    assert result == "stopped mfsmaster, then released lease epoch 1"
    assert not killed.is_set() and not ha.is_leader()
    assert store.get_lease().holder is None


def test_leaving_leader_that_cannot_renew_kills_mfsmaster(store: FakeStore, clock: FakeClock) -> None:
    ha, _ = leader_cluster(store, clock)
    killed = threading.Event()
    store.failing = True

    def stuck_stop() -> None:
        clock.advance(2.0)  # past the fencing deadline
        assert killed.wait(5), "mfsmaster was not killed"

    result = ha.leave(stuck_stop, killed.set)
    assert killed.is_set()
    assert result.startswith("stopped mfsmaster; could not release lease epoch 1")


def isolate_and_heal(store: FakeStore, clock: FakeClock, old_changes: int, new_version: int):
    """master-1 leads epoch 1 from change 100 and writes up to ``old_changes`` before it is cut
    off and fenced; master-2 (change ``new_version``) serves epoch 2; the heal lets master-1
    see master-2 as the ready leader."""
    ha1, d1 = leader_cluster(store, clock, version=100)
    d1.version = d1.own_change = old_changes  # written by its mfsmaster, partly never streamed
    d2 = FakeDaemons(version=new_version)
    ha2 = make_ha("master-2", store, clock, d2)
    ha2.run_cycle()
    store.failing = True  # master-1 cannot reach the store any more
    clock.advance(1.6)
    assert ha1.run_cycle() == "self-fenced: could not renew the lease within ttl - safety margin"
    store.failing = False
    clock.advance(0.5)  # the lease (ttl 2) expired
    assert ha2.run_cycle() == (f"promoted self because the lease expired and my change number "
                               f"{new_version} is highest (lease epoch 2)")
    ha2.run_cycle()  # publishes leader_ready and its start version
    return ha1, d1, ha2, d2


def test_old_leader_counts_its_diverging_changes_when_it_follows_the_new_leader(
        store: FakeStore, clock: FakeClock) -> None:
    ha1, _, ha2, _ = isolate_and_heal(store, clock, old_changes=180, new_version=150)
    assert store.members()["master-2"].data["start_version"] == 150
    assert ha2.snapshot()["start_version"] == 150
    assert ha1.run_cycle() == (
        "restarted metalogger to follow new leader master-2 (epoch 2) from a clean slate (my old "
        "files set aside); 30 of my changes of epoch 1 diverge (my last change 180, epoch 2 starts "
        "from 150)")
    entry = ha1.serving_history()[-1]
    assert entry["epoch"] == 1 and entry["diverged_changes"] == 30
    assert entry["diverged"] == {"at": clock.now, "new_epoch": 2, "own_change": 180,
                                 "start_version": 150}
    assert ha1.snapshot()["diverged_changes"] == 30
    assert ha2.serving_history()[-1]["start_version"] == 150
    # counted once: the next leader change finds epoch 1 already counted
    assert ha1.run_cycle() == "no action: following master-2 (lease epoch 2)"
    assert ha1._count_diverged(3, 400) == ""


def test_old_leader_without_diverging_changes_counts_zero(store: FakeStore, clock: FakeClock) -> None:
    ha1, _, _, _ = isolate_and_heal(store, clock, old_changes=150, new_version=150)
    assert ha1.run_cycle().endswith("; 0 of my changes of epoch 1 diverge (my last change 150, "
                                    "epoch 2 starts from 150)")
    assert ha1.serving_history()[-1]["diverged_changes"] == 0


def test_a_follower_that_never_led_counts_nothing(store: FakeStore, clock: FakeClock) -> None:
    isolate_and_heal(store, clock, old_changes=180, new_version=150)
    ha3 = make_ha("master-3", store, clock, FakeDaemons(version=150))
    assert ha3.run_cycle() == ("restarted metalogger to follow new leader master-2 (epoch 2) from "
                               "a clean slate (my old files set aside)")
    assert ha3.snapshot()["diverged_changes"] is None


def test_unknown_start_of_the_new_epoch_is_said_not_guessed(store: FakeStore, clock: FakeClock) -> None:
    ha1, _, _, _ = isolate_and_heal(store, clock, old_changes=180, new_version=150)
    data = dict(store.members()["master-2"].data)
    data.pop("start_version")  # an agent of an older version
    store.set_member("master-2", data, 2.0)
    assert ha1.run_cycle().endswith(
        "; how many of my changes of epoch 1 (up to 180) diverge is unknown (the new leader did "
        "not publish its starting change number)")
    entry = ha1.serving_history()[-1]
    assert entry["diverged_changes"] is None and entry["diverged"]["own_change"] == 180
    assert ha1.run_cycle() == "no action: following master-2 (lease epoch 2)"


class FlakyRestart(FakeDaemons):
    """restart_metalogger raises the first ``failures`` times."""

    def __init__(self, failures: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.failures = failures

    def restart_metalogger(self, lineage: int) -> None:
        if self.failures:
            self.failures -= 1
            self.calls.append("restart metalogger failed")
            raise OSError("mfsmetalogger: cannot open DATA_PATH")
        super().restart_metalogger(lineage)


def test_failed_metalogger_restart_is_logged_said_and_retried(
        store: FakeStore, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    leader, _ = leader_cluster(store, clock, version=100)
    leader.run_cycle()
    daemons = FlakyRestart(failures=1, version=100)
    follower = make_ha("master-2", store, clock, daemons)
    with caplog.at_level(logging.ERROR, logger="mooseng.ha"):
        assert follower.run_cycle() == (
            "could not restart metalogger to follow the leader of epoch 1 (OSError: mfsmetalogger: "
            "cannot open DATA_PATH; traceback logged); retrying on the next cycle")
    [record] = [r for r in caplog.records if "event=action_failed" in r.getMessage()]
    assert record.exc_info is not None and "Traceback" in caplog.text
    assert follower.run_cycle() == ("restarted metalogger to follow new leader master-1 (epoch 1) "
                                    "from a clean slate (my old files set aside)")
    assert daemons.calls.count("restart metalogger failed") == 1
    assert "restart metalogger lineage=1" in daemons.calls
    assert follower.snapshot()["leader_changes"] == 1  # the retry is not a second change
    assert follower.run_cycle() == "no action: following master-1 (lease epoch 1)"


def test_a_metalogger_restart_in_progress_is_not_called_done(store: FakeStore, clock: FakeClock) -> None:
    leader, _ = leader_cluster(store, clock, version=100)
    leader.run_cycle()
    executor = PendingExecutor()
    follower = make_ha("master-2", store, clock, FlakyRestart(failures=1, version=100),
                       executor=executor)
    assert follower.run_cycle() == ("restarting metalogger to follow new leader master-1 (epoch 1) "
                                    "from a clean slate (setting my old files aside)")
    assert follower.run_cycle() == "no action: metalogger restart in progress"
    executor.run_all()  # it fails
    assert follower.run_cycle().startswith("could not restart metalogger to follow the leader of "
                                           "epoch 1 (OSError")
    assert follower.run_cycle().startswith("restarting metalogger to follow new leader master-1")
    executor.run_all()
    assert follower.run_cycle() == "no action: following master-1 (lease epoch 1)"


def test_failed_handover_gives_the_lease_up_and_says_so(store: FakeStore, clock: FakeClock,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    ha1, d1 = leader_cluster(store, clock, version=300)
    ha2 = make_ha("master-2", store, clock, FakeDaemons(version=300))
    ha2.run_cycle()

    def broken_stop() -> None:
        raise RuntimeError("mfsmaster did not stop")

    d1.stop_master = broken_stop  # type: ignore[method-assign]
    executor = PendingExecutor()
    ha1.executor = executor
    assert ha1.request_switchover("master-2")[0] == 202
    clock.advance(0.5)
    assert ha1.run_cycle().startswith("handing over to master-2")
    executor.run_all()
    clock.advance(0.5)
    with caplog.at_level(logging.ERROR, logger="mooseng.ha"):
        assert ha1.run_cycle() == "released lease epoch 1: handover failed: mfsmaster did not stop"
    assert "event=action_failed action='handover'" in caplog.text
    assert not d1.master and store.get_lease().holder is None
