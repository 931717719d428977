"""Network faults through Toxiproxy against the compose cluster, with the real ``chaos run``.

Every link to a master passes through its own proxy (toxiproxy/README.md). These tests
cut and slow those links and check what the cluster does: the partition experiments pass
under strict mode with their checker counts and the leader-overlap check, one cut link
stops exactly that link, a short isolation heals without a leader change, a frozen leader
never answers /leader 200, and bad input touches nothing.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse

import pytest
import requests

from chaosmoose.ledger import Ledger
from tests.cluster.test_30_experiments import (
    EXPERIMENTS,
    chaos_run,
    probe_output,
    variant,
)

pytestmark = pytest.mark.cluster

TOXIPROXY = "http://127.0.0.1:8474"
MASTER_URLS = {"master-1": "http://127.0.0.1:9431", "master-2": "http://127.0.0.1:9432",
               "master-3": "http://127.0.0.1:9433"}


def after_probe(journal: dict, func: str) -> object:
    """The output of the steady-state-after probe calling ``func``."""
    for run in journal["steady_states"]["after"]["probes"]:
        if run["activity"]["provider"]["func"] == func:
            return run.get("output")
    raise AssertionError(f"no probe calling {func} ran after the method")


def checker(journal: dict) -> dict:
    return after_probe(journal, "check_acknowledged_writes")


def active_toxics() -> list[str]:
    proxies = requests.get(f"{TOXIPROXY}/proxies", timeout=5).json()
    return [f"{name}/{t['name']}" for name, p in proxies.items() for t in p["toxics"]]


@pytest.mark.parametrize("name", ["leader-isolation", "leader-isolation-raft-only",
                                  "majority-partition", "chunkserver-partition",
                                  "client-latency", "flaky-raft"])
def test_network_experiment_passes(name, run_dir, tmp_path, cluster):
    path = EXPERIMENTS / f"{name}.json"
    if name == "flaky-raft":  # 20 s of flaky Raft instead of the experiment's 60 (CI time)
        path = variant(tmp_path, name, lambda e: e["configuration"].update(flaky_seconds=20))
    code, journal, wall, tail = chaos_run(path, run_dir, timeout=900)
    print(f"{name}: exit {code} in {wall:.1f} s")
    assert code == 0, tail
    assert journal["status"] == "completed" and journal["deviated"] is False
    assert journal["chaosmoose"]["strict"]["violations"] == []
    report = checker(journal)
    print(f"{name}: checker " + json.dumps({k: report.get(k) for k in (
        "acknowledged", "intact", "lost", "corrupt", "by_f", "unavailability")}))
    assert report["acknowledged"] > 0
    runs = {r["activity"]["name"]: r for r in journal["run"]}
    names = [p["activity"]["name"] for p in journal["steady_states"]["after"]["probes"]]
    if "lost-writes-only-inside-the-cut-window" in names:
        window = after_probe(journal, "loss_within_cut_window")
        print(f"{name}: loss window {json.dumps(window)[:800]}")
        assert window["outside"] == 0 and window["valid"] is True and window["windows"]
    else:
        assert report["lost"] == 0 and report["corrupt"] == 0
        assert report["intact"] == report["acknowledged"]
    if "no-two-leaders-served-at-once" in names:
        overlap = probe_output(journal, "after", "no-two-leaders-served-at-once")
        print(f"{name}: leader overlap {json.dumps(overlap)[:600]}")
        assert overlap["overlaps"] == 0
    assert Ledger(run_dir).open_faults() == []
    assert active_toxics() == []
    if name in ("leader-isolation", "leader-isolation-raft-only", "majority-partition"):
        cut = next(r for r in journal["run"] if r["activity"]["provider"]["module"]
                   == "chaosmoose.network.actions")
        old = cut["output"]["roles"]["leader"]
        new = next(r for r in journal["run"] if r["activity"]["name"].startswith(
            ("wait-for-a-new-leader", "majority-elects")))["output"]
        assert new["name"] != old, f"{old} still leads after it was cut off"
        print(f"{name}: {old} cut off, {new['name']} serves after {new['waited_s']} s")
    if name == "chunkserver-partition":
        assert runs["chunks-regain-goal-on-two-chunkservers"]["output"] is True
        assert runs["chunkserver-3-rejoins-and-overgoal-copies-go"]["output"] is True
    if name == "client-latency":
        slow = runs["client-2s-master-ping-shows-the-delay"]["output"]
        fast = runs["other-clients-pings-stay-low"]["output"]
        print(f"client-latency: client-2 ping {slow['value']} s, others max {fast['value']} s")
        assert slow["value"] >= 0.25 and fast["value"] <= 0.1


def _proxy(name: str) -> str:
    return f"{TOXIPROXY}/proxies/{urllib.parse.quote(name, safe='')}"


def _leader(cluster) -> str:
    deadline = time.monotonic() + 60
    while (leader := cluster.leader()) is None:
        assert time.monotonic() < deadline, "no single leader"
        time.sleep(0.5)
    return leader


def test_a_timeout_toxic_on_one_link_stops_exactly_that_link(cluster):
    """Cut client-2's two links to the leader (its mount's and its router's check): client-2
    cannot write, client-1 and client-3 can; after removing the toxics client-2 writes."""
    from chaosmoose.workload.probes import clients_can_write

    leader = _leader(cluster)
    names = [f"client-2>{leader}:cl", f"client-2>{leader}:api"]
    made = []
    try:
        for name in names:
            for stream in ("upstream", "downstream"):
                reply = requests.post(f"{_proxy(name)}/toxics", timeout=5, json={
                    "name": f"test-cut-{stream}", "type": "timeout", "stream": stream,
                    "attributes": {"timeout": 0}})
                assert reply.status_code == 200, reply.text
                made.append((name, f"test-cut-{stream}"))
        assert clients_can_write(timeout=10, clients="client-1,client-3")
        began = time.monotonic()
        assert clients_can_write(timeout=3, clients="client-2", raise_on_failure=False) is False
        # The probe keeps its timeout although client-2's write is stuck in its mount (once
        # 151 s: the runner could not exit while a thread waited on a FUSE flush).
        assert time.monotonic() - began < 30
        assert cluster.leader() == leader  # nothing else noticed
    finally:
        for name, toxic in made:
            requests.delete(f"{_proxy(name)}/toxics/{toxic}", timeout=5)
    assert clients_can_write(timeout=60, clients="client-2")


def _watch_leader(url: str, stop: threading.Event,
                  seen: list[tuple[float, float, int]]) -> None:
    """Poll ``/leader``; each answer is kept with the times its request was sent and its
    answer received.

    The agent decides somewhere in between: a request sent before a freeze may be answered
    200 after it, and one sent just before a thaw may be answered 200 after the thaw. Only
    a 200 whose whole round trip lies inside a freeze shows a frozen master serving.
    """
    while not stop.is_set():
        sent = time.time()
        try:
            status = requests.get(f"{url}/leader", timeout=0.5).status_code
        except requests.RequestException:
            status = 0
        seen.append((sent, time.time(), status))
        time.sleep(0.02)


def _serving_history(name: str) -> list[dict]:
    return requests.get(f"{MASTER_URLS[name]}/status", timeout=5).json()["serving_history"]


@pytest.mark.parametrize("hold, leader_change", [(0.2, False), (5.0, True)])
def test_isolation_shorter_than_the_lease_keeps_the_leader_and_a_frozen_leader_never_serves(
        hold, leader_change, run_dir, tmp_path, cluster):
    """Isolate the leader from the other masters for ``hold`` seconds with the workload on.

    Short (0.2 s): the fence deadline is 1.2 s after the last successful renewal, which
    can be up to 0.3 s before the cut (renewals every 0.25 s; one in flight at the cut
    fails). Adding and removing the toxics stretches a 0.2 s hold to about 0.45 s, so the
    links are back 0.45-0.75 s after that renewal, leaving 0.45 s or more for the next
    loop's renewal (up to 0.25 s away, then a Raft round): the leader may freeze at 0.4 s,
    then followers answer again, a renewal succeeds and it thaws; same leader, same epoch,
    nothing lost. (A 0.45 s hold, stretched to 0.7 s, left 0.23 s once in CI: too little
    on a loaded 2-core machine, and the leader fenced, as it must.) Long (5 s): it
    freezes, fences, another master takes over. Either way /leader of the cut-off master
    never answers 200 while its serving history says it is frozen.
    """
    def short_cut(experiment: dict) -> None:
        method = experiment["method"]
        cut = next(a for a in method if a["name"].startswith("isolate"))
        cut["provider"]["arguments"]["duration"] = hold
        if not leader_change:
            # Only the links that decide freeze, thaw and fence (Raft: contact and lease
            # renewals) and carry the changelog (ml): 8 toxics instead of 36, so that every
            # link is cut for about ``hold`` (36 toxics took up to 0.5 s to add and as long
            # to remove on this 2-core machine, which stretched a 0.45 s cut to 1.4 s).
            cut["provider"]["arguments"]["kinds"] = "raft,ml"
        cut["pauses"] = {"after": 3}
        experiment["method"] = [method[0], cut, *[a for a in method if a["name"] in (
            "stop-workload", "repair-files-of-unacknowledged-writes")]]
        if not leader_change:  # the leader stays: drop what expects it replaced
            probes = experiment["steady-state-hypothesis"]["probes"]
            experiment["steady-state-hypothesis"]["probes"] = [
                p for p in probes if p["name"] != "leader-differs-from-the-cut-off-one"]
            experiment["rollbacks"] = [r for r in experiment["rollbacks"]
                                       if r["name"] != "cut-off-master-rejoined-as-follower"]

    leader = _leader(cluster)
    epoch_before = requests.get(f"{MASTER_URLS[leader]}/status", timeout=5).json()["lease"]["epoch"]
    seen: list[tuple[float, float, int]] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_leader, args=(MASTER_URLS[leader], stop, seen))
    watcher.start()
    try:
        code, journal, _, tail = chaos_run(variant(tmp_path, "leader-isolation", short_cut),
                                           run_dir, timeout=600)
    finally:
        stop.set()
        watcher.join()
    assert code == 0, tail
    [fault] = [f for f in Ledger(run_dir).faults() if f["kind"] == "network.partition"]
    print(f"isolation {hold} s: links cut from {fault['t']:.3f} to {fault['undone_t']:.3f} "
          f"({fault['undone_t'] - fault['t']:.3f} s from the first toxic to the last removal; "
          f"all in place for {fault['undone_t'] - fault['applied_t']:.3f} s)")
    report = checker(journal)
    print(f"isolation {hold} s: checker {json.dumps({k: report.get(k) for k in ('acknowledged', 'lost', 'by_f')})}")
    history = [e for e in _serving_history(leader) if e["epoch"] >= epoch_before]
    freezes = [f for e in history for f in e["freezes"]]
    if leader_change:
        assert freezes, f"{leader} never froze: {history}"
    for entry in history:
        for freeze in entry["freezes"]:  # frozen until thawed, or until the epoch ended
            end = (freeze["thawed_at"] or entry.get("fenced_at") or entry.get("stepped_down_at")
                   or float("inf"))
            served = [(sent, got) for sent, got, status in seen
                      if freeze["frozen_at"] < sent and got < end and status == 200]
            assert served == [], f"/leader answered 200 while frozen: {served[:5]}"
    now_leader = _leader(cluster)
    epoch_after = requests.get(f"{MASTER_URLS[now_leader]}/status", timeout=5).json()["lease"]["epoch"]
    if leader_change:
        assert now_leader != leader or epoch_after > epoch_before
        assert any(e.get("fenced_at") for e in history)
    else:
        # The epoch serving at the cut must outlive the heal by more than a lease: the cut
        # caused no leader change. A fence later than that is not the cut's doing (on this
        # 2-core machine a loaded leader can miss renewals with no fault at all: README,
        # Known problems); it is printed, not blamed on the partition.
        [cut_epoch] = [e for e in history if e["epoch"] == epoch_before]
        ended = cut_epoch.get("fenced_at") or cut_epoch.get("stepped_down_at")
        ttl = requests.get(f"{MASTER_URLS[leader]}/status", timeout=5).json()["timing"]["ttl"]
        assert ended is None or ended > fault["undone_t"] + ttl, (
            f"epoch {epoch_before} of {leader} ended {ended - fault['undone_t']:.2f} s after the "
            f"heal: {cut_epoch}")
        if (now_leader, epoch_after) != (leader, epoch_before):
            print(f"isolation {hold} s: later leader change, not caused by the cut: epoch "
                  f"{epoch_before} ended {ended - fault['undone_t']:.2f} s after the heal; now "
                  f"{now_leader} epoch {epoch_after}")
        assert all(f["thawed_at"] for f in cut_epoch["freezes"]
                   if f["frozen_at"] <= fault["undone_t"] + ttl)
        assert report["lost"] == 0 and report["intact"] == report["acknowledged"]


@pytest.mark.parametrize("arguments, message", [
    ({"node": "master-9", "nodes": "masters"}, "master-9"),
    ({"node": "leader", "nodes": "masters", "kinds": "smoke"}, "smoke"),
])
def test_a_partition_with_bad_arguments_touches_nothing(arguments, message, run_dir, tmp_path,
                                                        cluster):
    def bad_cut(experiment: dict) -> None:
        cut = next(a for a in experiment["method"] if a["name"].startswith("isolate"))
        cut["provider"]["arguments"] = arguments

    leader = _leader(cluster)
    code, journal, _, tail = chaos_run(variant(tmp_path, "leader-isolation", bad_cut), run_dir)
    assert code == 1, tail
    assert journal["status"] == "interrupted" and journal["run"] == []
    assert message in tail
    assert Ledger(run_dir).faults() == []
    assert active_toxics() == []
    assert cluster.leader() == leader


def test_killing_toxiproxy_cuts_every_link_and_the_cluster_recovers_when_it_returns(cluster):
    """The proxy is part of the system under test: its crash is a full partition of every
    proxied link. When it comes back (restarted with nothing but itself) every listener is
    back, one leader serves and every client writes again."""
    from chaosmoose.workload.probes import clients_can_write

    proxy = cluster.container("toxiproxy")
    proxy.kill()
    try:
        deadline = time.monotonic() + 20
        while any(requests.get(f"{u}/leader", timeout=1).status_code == 200
                  for u in MASTER_URLS.values()):
            assert time.monotonic() < deadline, "a master still serves with every link cut"
            time.sleep(0.2)
    finally:
        proxy.start()
    began = time.monotonic()
    deadline = began + 10
    while True:
        try:
            if len(requests.get(f"{TOXIPROXY}/proxies", timeout=1).json()) >= 50:
                break
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, "toxiproxy's listeners not back within 10 s"
        time.sleep(0.1)
    print(f"toxiproxy: proxies back {time.monotonic() - began:.2f} s after start")
    _leader(cluster)
    assert clients_can_write(timeout=120)
    cluster.wait_healthy(timeout=180)
