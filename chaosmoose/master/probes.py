"""Probes of the MooseNG masters, through their agents' HTTP APIs.

Probes that feed tolerances return a value and have a ``raise_on_...`` switch: with the
switch on (the default) a failed check raises ``ActivityFailed`` saying what was observed
and what was expected; with it off the probe returns False and logs why.
"""

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosmoose import _settings
from chaosmoose._checks import fail as _fail
from chaosmoose._http import Reply, get_all, request
from chaosmoose.master import _cluster

__all__ = [
    "chunk_matrix",
    "cluster_healthy",
    "faulted_masters_rejoined",
    "has_quorum",
    "leader",
    "leader_differs_from_faulted",
    "leader_name",
    "masters_agree_on_leader",
    "no_second_leader_served",
    "node_role",
    "wait_for_leader",
    "watch_leaders",
]

logger = logging.getLogger("chaostoolkit")



def leader(raise_on_no_leader: bool = True, configuration: Configuration = None,
           secrets: Secrets = None) -> dict:
    """The master serving as leader now: ``{"name", "epoch", "url"}``.

    Selects the one master answering 200 on ``/leader``. Fails when none or several do
    (with ``raise_on_no_leader`` false, returns ``{"name": None, ...}`` and the list of
    serving masters instead).
    """
    view = _cluster.snapshot(configuration, secrets)
    try:
        name = _cluster.single_leader(view)
    except ActivityFailed as exc:
        _fail(raise_on_no_leader, str(exc))
        return {"name": None, "epoch": None, "url": None, "serving": view.serving()}
    return {"name": name, "epoch": view.epoch_of(name), "url": view.masters[name]}


def leader_name(configuration: Configuration = None, secrets: Secrets = None) -> str:
    """The name of the one master serving as leader now; fails when none or several."""
    return _cluster.single_leader(_cluster.snapshot(configuration, secrets))


def node_role(name: str, configuration: Configuration = None, secrets: Secrets = None) -> str:
    """The role master ``name`` reports on /status (leader, follower, promoting, ...).

    Fails when ``name`` is not a configured master or its API is unreachable.
    """
    masters = _settings.masters(configuration, secrets)
    if name not in masters:
        raise ActivityFailed(f"master {name!r} is not configured; expected one of "
                             f"{', '.join(masters)}")
    reply = request(name, masters[name], "/status", _settings.http_timeout(configuration,
                                                                           secrets))
    role = reply.body.get("role")
    if reply.status != 200 or not isinstance(role, str):
        raise ActivityFailed(f"{name} /status answered HTTP {reply.status} without a role; "
                             "expected 200 with a role")
    return role


def masters_agree_on_leader(min_reachable: int = 2, raise_on_disagreement: bool = True,
                            configuration: Configuration = None,
                            secrets: Secrets = None) -> bool:
    """True when all reachable masters name the same lease holder and only it serves /leader.

    At least ``min_reachable`` masters must answer. Fails (or returns False) when a master
    reports another holder or none, or when the serving master is not the agreed holder.
    """
    view = _cluster.snapshot(configuration, secrets)
    reachable = view.reachable()
    if len(reachable) < min_reachable:
        return _fail(raise_on_disagreement,
                     f"only {len(reachable)} masters reachable ({view.unreachable()}); "
                     f"expected at least {min_reachable}")
    holders = {n: view.lease(n).get("holder") for n in reachable}
    distinct = set(holders.values())
    if len(distinct) != 1 or None in distinct:
        seen = ", ".join(f"{n} says {h or 'nobody'}" for n, h in holders.items())
        return _fail(raise_on_disagreement,
                     f"masters disagree on the lease holder ({seen}); expected one holder")
    holder = distinct.pop()
    serving = view.serving()
    if serving != [holder]:
        return _fail(raise_on_disagreement,
                     f"{', '.join(serving) or 'no master'} serving /leader but the lease "
                     f"holder is {holder}; expected only {holder} to serve")
    return True


def has_quorum(raise_on_no_quorum: bool = True, configuration: Configuration = None,
               secrets: Secrets = None) -> bool:
    """True when a majority of the configured masters answer and report Raft quorum."""
    view = _cluster.snapshot(configuration, secrets)
    needed = len(view.masters) // 2 + 1
    with_quorum = []
    for name in view.reachable():
        raft = view.status[name].body.get("raft") or {}  # type: ignore[union-attr]
        if raft.get("has_quorum") is True:
            with_quorum.append(name)
    if len(with_quorum) >= needed:
        return True
    others = [n for n in view.masters if n not in with_quorum]
    return _fail(raise_on_no_quorum,
                 f"{len(with_quorum)} of {len(view.masters)} masters report Raft quorum "
                 f"(not: {', '.join(others)}); expected at least {needed}")


def _leader_cluster(configuration: Configuration, secrets: Secrets) -> tuple[str, dict]:
    view = _cluster.snapshot(configuration, secrets)
    name = _cluster.single_leader(view)
    reply = request(name, view.masters[name], "/cluster",
                    _settings.http_timeout(configuration, secrets))
    if reply.status != 200:
        raise ActivityFailed(f"{name} /cluster answered HTTP {reply.status}; expected 200")
    return name, reply.body


def _health_problems(name: str, body: dict, expected_chunkservers: int) -> list[str]:
    problems = []
    chunkservers = body.get("chunkservers")
    if chunkservers is None:
        problems.append(f"chunkservers unknown ({body.get('chunks_error', 'no reason given')})")
    elif len(chunkservers) != expected_chunkservers:
        problems.append(f"{len(chunkservers)} chunkservers connected to {name} but "
                        f"expected {expected_chunkservers}")
    chunks = body.get("chunks")
    if chunks is None:
        problems.append(f"chunk matrix unknown ({body.get('chunks_error', 'no reason given')})")
    else:
        for state in ("missing", "endangered", "undergoal"):
            if chunks.get(state, 0):
                problems.append(f"{chunks[state]} chunks {state} but expected 0")
    return problems


def cluster_healthy(expected_chunkservers: int = 3, timeout: float = 0.0,
                    raise_on_unhealthy: bool = True, configuration: Configuration = None,
                    secrets: Secrets = None) -> bool:
    """True when the leader sees ``expected_chunkservers`` chunkservers and a clean matrix.

    Reads ``/cluster`` from the serving leader: the number of connected chunkservers must
    equal ``expected_chunkservers`` and no chunk may be missing, endangered or undergoal.
    With ``timeout`` > 0, polls once a second until healthy or the time is up.
    """
    expected = _settings.parse_int("expected_chunkservers", expected_chunkservers, minimum=0)
    wait = _settings.parse_float("timeout", timeout)
    deadline = time.monotonic() + wait
    while True:
        try:
            name, body = _leader_cluster(configuration, secrets)
            problems = _health_problems(name, body, expected)
        except ActivityFailed as exc:
            problems = [str(exc)]
        if not problems:
            return True
        if time.monotonic() >= deadline:
            return _fail(raise_on_unhealthy, "cluster unhealthy: " + "; ".join(problems))
        time.sleep(1.0)


def chunk_matrix(configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """The leader's chunk health matrix (missing, endangered, undergoal, stable, overgoal)."""
    name, body = _leader_cluster(configuration, secrets)
    chunks = body.get("chunks")
    if chunks is None:
        raise ActivityFailed(f"{name} could not read the chunk matrix: "
                             f"{body.get('chunks_error', 'no reason given')}")
    return chunks


def wait_for_leader(timeout: float = 30.0, exclude_faulted: bool = True,
                    configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Wait until exactly one master serves /leader; return ``{"name", "epoch", "waited_s"}``.

    With ``exclude_faulted`` a master faulted earlier in this run (killed, stopped, paused)
    does not count: the probe waits for a *new* leader. Fails after ``timeout`` seconds.
    """
    wait = _settings.parse_float("timeout", timeout)
    excluded = sorted({f["target"]["service"] for f in _cluster.faulted_masters(
        configuration, secrets)}) if exclude_faulted else []
    started = time.monotonic()
    last = "no answer yet"
    while True:
        view = _cluster.snapshot(configuration, secrets)
        serving = view.serving()
        if len(serving) == 1 and serving[0] not in excluded:
            name = serving[0]
            waited = round(time.monotonic() - started, 3)
            logger.info("leader is %s (epoch %s) after %.1f s", name, view.epoch_of(name), waited)
            return {"name": name, "epoch": view.epoch_of(name), "waited_s": waited,
                    "excluded": excluded}
        last = view.describe_leader_replies()
        if time.monotonic() - started >= wait:
            raise ActivityFailed(
                f"no new leader within {wait:g} s (last /leader answers: {last}); expected "
                f"exactly one master serving" + (f" other than {', '.join(excluded)}"
                                                 if excluded else "")
            )
        time.sleep(0.25)


def leader_differs_from_faulted(raise_on_same_leader: bool = True,
                                configuration: Configuration = None,
                                secrets: Secrets = None) -> bool:
    """True when the current leader is not a master that was leader when faulted in this run.

    Vacuously true before any master fault of this run (so it can sit in a steady-state
    hypothesis that runs before and after the method). Fails when there is no single leader.
    """
    old = [f["target"]["service"] for f in _cluster.faulted_masters(configuration, secrets)
           if f.get("role") == "leader"]
    if not old:
        return True
    current = _cluster.single_leader(_cluster.snapshot(configuration, secrets))
    if current in old:
        return _fail(raise_on_same_leader,
                     f"{current} is leader again but was the leader faulted in this run; "
                     "expected a different leader")
    return True


def faulted_masters_rejoined(timeout: float = 60.0, require_replica: bool = True,
                             raise_on_not_rejoined: bool = True,
                             configuration: Configuration = None,
                             secrets: Secrets = None) -> bool:
    """True when every master faulted in this run is back as a follower.

    A master is back when its /status role is ``follower`` and (with ``require_replica``)
    its /replica answers 200, i.e. its metalogger follows the leader. Polls until
    ``timeout`` seconds. Vacuously true when no master was faulted in this run.
    """
    wait = _settings.parse_float("timeout", timeout)
    names = sorted({f["target"]["service"] for f in _cluster.faulted_masters(configuration,
                                                                            secrets)})
    if not names:
        return True
    masters = _settings.masters(configuration, secrets)
    http_timeout = _settings.http_timeout(configuration, secrets)
    deadline = time.monotonic() + wait
    while True:
        pending = {}
        for name in names:
            subset = {name: masters[name]}
            status = get_all(subset, "/status", http_timeout)[name]
            if not isinstance(status, Reply):
                pending[name] = "unreachable"
                continue
            role = status.body.get("role")
            if role != "follower":
                pending[name] = f"role {role}"
                continue
            if require_replica:
                replica = get_all(subset, "/replica", http_timeout)[name]
                if not isinstance(replica, Reply) or replica.status != 200:
                    pending[name] = "follower but /replica not 200"
        if not pending:
            return True
        if time.monotonic() >= deadline:
            seen = ", ".join(f"{n} {why}" for n, why in pending.items())
            return _fail(raise_on_not_rejoined,
                         f"faulted masters not rejoined after {wait:g} s ({seen}); "
                         "expected each to be a follower with /replica 200")
        time.sleep(1.0)


def _watch_file(configuration: Configuration, secrets: Secrets) -> Path:
    run = _settings.run_id(configuration, secrets)
    return _settings.run_dir(configuration, secrets) / "leader-watch" / f"{run}.jsonl"


def watch_leaders(duration: float = 20.0, interval: float = 0.2,
                  configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Poll every master's /leader for ``duration`` seconds and report any second leader.

    Meant to run in the background (``"background": true``) around a fault. Each round asks
    all masters at once (timeout ``interval`` + 0.3 s, so a paused master does not stall the
    round). Two kinds of violation are recorded: two masters serving /leader in the same
    round (overlap) and a master serving /leader with an epoch lower than one already
    served (a stale leader). Returns the summary, also appended to the run directory so
    ``no_second_leader_served`` can check it in the hypothesis.
    """
    total = _settings.parse_float("duration", duration)
    step = _settings.parse_float("interval", interval)
    if step <= 0:
        raise ActivityFailed(f"interval={interval!r} is invalid; expected a number > 0")
    masters = _settings.masters(configuration, secrets)
    started = time.time()
    summary: dict = {"started": started, "duration_s": total, "rounds": 0,
                     "max_serving_at_once": 0, "overlaps": [], "stale": [],
                     "leaders_seen": [], "max_epoch": None}
    max_epoch = None
    with ThreadPoolExecutor(max_workers=len(masters)) as pool:
        while time.time() - started < total:
            round_start = time.time()
            futures = {n: pool.submit(_leader_reply, n, u, step + 0.3)
                       for n, u in masters.items()}
            serving = {}
            for name, future in futures.items():
                reply = future.result()
                if isinstance(reply, Reply) and reply.status == 200:
                    serving[name] = reply.body.get("epoch")
            summary["rounds"] += 1
            summary["max_serving_at_once"] = max(summary["max_serving_at_once"], len(serving))
            if len(serving) > 1:
                summary["overlaps"].append({"t": round_start, "serving": serving})
            for name, epoch in serving.items():
                if name not in summary["leaders_seen"]:
                    summary["leaders_seen"].append(name)
                if isinstance(epoch, int):
                    if max_epoch is not None and epoch < max_epoch:
                        summary["stale"].append({"t": round_start, "name": name,
                                                 "epoch": epoch, "max_epoch": max_epoch})
                    max_epoch = epoch if max_epoch is None else max(max_epoch, epoch)
            time.sleep(max(0.0, step - (time.time() - round_start)))
    summary["max_epoch"] = max_epoch
    summary["ended"] = time.time()
    summary["second_leader_served"] = bool(summary["overlaps"] or summary["stale"])
    path = _watch_file(configuration, secrets)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as out:
        out.write(json.dumps(summary) + "\n")
    if summary["second_leader_served"]:
        logger.error("a second leader served during the watch: %d overlaps, %d stale answers",
                     len(summary["overlaps"]), len(summary["stale"]))
    return summary


def _leader_reply(name: str, url: str, timeout: float) -> Reply | Exception:
    try:
        return request(name, url, "/leader", timeout)
    except ActivityFailed as exc:
        return exc


def no_second_leader_served(raise_on_split_brain: bool = True,
                            configuration: Configuration = None,
                            secrets: Secrets = None) -> bool:
    """True when no leader watch of this run saw two leaders or a stale one serving.

    Reads the summaries written by ``watch_leaders``; vacuously true when none ran yet.
    """
    path = _watch_file(configuration, secrets)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return True
    for line in lines:
        summary = json.loads(line)
        if summary.get("second_leader_served"):
            first = (summary["overlaps"] or summary["stale"])[0]
            return _fail(raise_on_split_brain,
                         f"a second leader served during the fault ({len(summary['overlaps'])} "
                         f"overlapping rounds, {len(summary['stale'])} stale answers; first: "
                         f"{first}); expected one leader at a time")
    return True
