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

from chaosmoose import _container, _settings
from chaosmoose._checks import fail as _fail
from chaosmoose._http import Reply, get_all, request
from chaosmoose.ledger import Ledger
from chaosmoose.master import _cluster, overlap
from chaosmoose.workload import _clients, lossbound
from chaosmoose.workload.checker import UNKNOWN

__all__ = [
    "chunk_matrix",
    "cluster_healthy",
    "faulted_masters_rejoined",
    "has_quorum",
    "leader",
    "leader_differs_from_faulted",
    "leader_name",
    "loss_within_crash_window",
    "masters_agree_on_leader",
    "no_leader_overlap",
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


def _health_problems(name: str, body: dict, expected_chunkservers: int,
                     include_overgoal: bool = False) -> list[str]:
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
        states = ("missing", "endangered", "undergoal") + (("overgoal",) if include_overgoal else ())
        for state in states:
            if chunks.get(state, 0):
                problems.append(f"{chunks[state]} chunks {state} but expected 0")
    return problems


def cluster_healthy(expected_chunkservers: int = 3, timeout: float = 0.0,
                    raise_on_unhealthy: bool = True, include_overgoal: bool = False,
                    configuration: Configuration = None, secrets: Secrets = None) -> bool:
    """True when the leader sees ``expected_chunkservers`` chunkservers and a clean matrix.

    Reads ``/cluster`` from the serving leader: the number of connected chunkservers must
    equal ``expected_chunkservers`` and no chunk may be missing, endangered or undergoal
    (nor overgoal, with ``include_overgoal``: copies left over after a chunkserver came
    back). With ``timeout`` > 0, polls once a second until healthy or the time is up.
    """
    expected = _settings.parse_int("expected_chunkservers", expected_chunkservers, minimum=0)
    overgoal = _settings.parse_bool("include_overgoal", include_overgoal)
    wait = _settings.parse_float("timeout", timeout)
    began = time.monotonic()
    deadline = began + wait
    said: list[str] = []
    said_at = 0.0
    while True:
        try:
            name, body = _leader_cluster(configuration, secrets)
            problems = _health_problems(name, body, expected, overgoal)
        except ActivityFailed as exc:
            problems = [str(exc)]
        if not problems:
            if said:
                logger.info("event=cluster_healthy waited=%.1fs", time.monotonic() - began)
            return True
        if time.monotonic() >= deadline:
            return _fail(raise_on_unhealthy, "cluster unhealthy: " + "; ".join(problems))
        now = time.monotonic()
        if not said or (problems != said and now - said_at >= 10.0):
            # A line at the first look and at most every 10 s after, when anything changed:
            # a long wait says what it waited for.
            logger.info("event=cluster_unhealthy after=%.1fs problems=%r", now - began,
                        "; ".join(problems))
            said, said_at = problems, now
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


NO_RUN = {"valid": True, "overlaps": 0, "overlap_s": 0.0, "acknowledged_in_overlaps": 0,
          "leader_changes": [], "note": "nothing in this run yet (no ledger entry, workload or "
                                        "leader watch): no window to check"}


def _overlap_file(configuration: Configuration, secrets: Secrets) -> Path:
    return _settings.run_dir(configuration, secrets) / "leader-overlap.json"


def _watches(configuration: Configuration, secrets: Secrets) -> list[dict]:
    """The summaries ``watch_leaders`` wrote in this run."""
    try:
        lines = _watch_file(configuration, secrets).read_text().splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in lines if line.strip()]


def _run_started(histories: dict | None, watches: list[dict], configuration: Configuration,
                 secrets: Secrets) -> tuple[float | None, str]:
    """When this run began, from the run directory: the earliest of its first ledger entry
    (a fault, or the workload's runners), its workload's first record and its first leader
    watch; (None, "") when it holds none of them."""
    run = _settings.run_id(configuration, secrets)
    marks = [(float(r["t"]), "the run's first ledger entry")
             for r in Ledger(_settings.run_dir(configuration, secrets)).records()
             if r.get("event") == "open" and r.get("run") == run
             and isinstance(r.get("t"), (int, float))]
    marks += [(float(r["t"]), "the workload's start") for records in (histories or {}).values()
              for r in records
              if r.get("type") == "start" and isinstance(r.get("t"), (int, float))]
    marks += [(float(w["started"]), "the first leader watch") for w in watches
              if isinstance(w.get("started"), (int, float))]
    return min(marks) if marks else (None, "")


def _serving_histories(configuration: Configuration,
                       secrets: Secrets) -> tuple[dict, set[str], int | None, float]:
    """Every master's serving history (or why it is missing), the masters some /status
    names as lease holder, the highest lease epoch reported, and when they were read."""
    masters = _settings.masters(configuration, secrets)
    replies = get_all(masters, "/status", _settings.http_timeout(configuration, secrets))
    now = time.time()
    serving: dict = {}
    holders: set[str] = set()
    epochs = []
    for name, reply in replies.items():
        if not isinstance(reply, Reply):
            serving[name] = str(reply)
            continue
        history = reply.body.get("serving_history")
        if reply.status != 200 or not isinstance(history, list):
            serving[name] = (f"{name} /status answered HTTP {reply.status} without a "
                             "serving_history list; expected one (an older agent?)")
            continue
        serving[name] = history
        lease = reply.body.get("lease") or {}
        if lease.get("holder"):
            holders.add(lease["holder"])
        if isinstance(lease.get("epoch"), int):
            epochs.append(lease["epoch"])
    return serving, holders, max(epochs, default=None), now


def _describe_overlap(result: dict) -> str:
    first = result["details"][0]
    old, new = first["old"], first["new"]
    return (f"{result['overlaps']} leader overlaps ({result['overlap_s']:.3f} s in all; first: "
            f"{old['node']} epoch {old['epoch']} served {first['seconds']:.3f} s after "
            f"{new['node']} epoch {new['epoch']} started); "
            f"{result['acknowledged_in_overlaps']} acknowledged writes inside them; expected "
            "one serving master at a time")


def no_leader_overlap(raise_on_overlap: bool = True, raise_on_unknown: bool = False,
                      since: float = 0.0, configuration: Configuration = None,
                      secrets: Secrets = None) -> dict:
    """Check that no two masters served client writes at once during this run.

    Reads every master's serving history (``/status`` ``serving_history``) and, when this
    run has a workload, its clients' histories (the run directory's copies once stopped,
    else read from the clients now), and judges them with
    ``chaosmoose.master.overlap.check``. The window starts when the run began, the earliest
    of its first ledger entry (a fault, or the workload's runners), its workload's first
    record and its first leader watch; ``since`` > 0 (epoch seconds) sets it instead; it
    ends now. Returns ``{"valid", "overlaps", "overlap_s", "acknowledged_in_overlaps",
    "details", "leader_changes", "epochs", "missing", "window", ...}``; assert ``overlaps``
    with a range tolerance ``[0, 0]``. ``valid`` is true, false or "unknown" (a master
    without history that may have served, a crashed checker); when unknown, ``overlaps``
    is -1. With ``raise_on_overlap`` an overlap fails the probe (off: logged, the report is
    returned); with ``raise_on_unknown`` an unknown verdict fails it. Before anything in
    this run (and no ``since``): valid, all counts 0. Saved as ``leader-overlap.json`` in
    the run directory.
    """
    strict_overlap = _settings.parse_bool("raise_on_overlap", raise_on_overlap)
    strict_unknown = _settings.parse_bool("raise_on_unknown", raise_on_unknown)
    start = _settings.parse_float("since", since)
    serving, may_have_served, lease_epoch, now = _serving_histories(configuration, secrets)
    watches = _watches(configuration, secrets)
    may_have_served.update(n for w in watches for n in w.get("leaders_seen", []))
    may_have_served.update(f["target"]["service"] for f in _cluster.faulted_masters(
        configuration, secrets) if f.get("role") == "leader")
    histories, histories_error = None, None
    state = _clients.load_state(configuration, secrets)
    if state is not None:
        try:
            histories = _clients.histories(state, configuration, secrets)
        except (ActivityFailed, OSError, ValueError) as exc:
            histories_error = f"workload histories unreadable: {exc}"
    window_from, source = ((start, "the since argument") if start > 0
                           else _run_started(histories, watches, configuration, secrets))
    if window_from is None:
        result = dict(NO_RUN)
    else:
        result = overlap.check(serving, histories, now=now, since=window_from,
                               may_have_served=sorted(may_have_served), lease_epoch=lease_epoch)
        result.setdefault("window", {})["source"] = source
    if histories_error:
        result["operations_error"] = histories_error
    result["run"] = _settings.run_id(configuration, secrets)
    path = _overlap_file(configuration, secrets)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    logger.info("leader overlap: valid=%s overlaps=%s (%s s) acknowledged inside=%s, "
                "%d leader changes", result.get("valid"), result.get("overlaps"),
                result.get("overlap_s"), result.get("acknowledged_in_overlaps"),
                len(result.get("leader_changes") or []))
    if result["valid"] is False:
        _fail(strict_overlap, _describe_overlap(result))
    elif result["valid"] == UNKNOWN and strict_unknown:
        reason = result.get("error") or "; ".join(result.get("unknown_because") or [])
        raise ActivityFailed(f"leader overlap verdict unknown: {reason}; expected a definite "
                             "verdict")
    return result


def loss_within_crash_window(raise_on_outside: bool = True,
                             configuration: Configuration = None,
                             secrets: Secrets = None) -> dict:
    """Check that every acknowledged write lost in this run fell in a crash of the leader.

    MooseFS acknowledges a change before its changelog line reaches a follower's
    metalogger, so a leader killed, stopped or paused can take with it the changes it
    acknowledged in its last moments (none with the reply barrier, ``MOOSENG_BARRIER``).
    The documented bound (README, "What a fault can lose"): every lost (or partly lost,
    "corrupt") write was acknowledged at most ``IN_FLIGHT_S`` (0.25 s) before such a fault
    of this run's ledger began, and invoked before the fault was in place. Run it after
    ``check_acknowledged_writes``. Returns ``{"valid", "lost", "outside", "windows",
    "problems", "outside_ops"}``; assert ``outside`` with a ``[0, 0]`` range. Fails (with
    ``raise_on_outside``; off: logs, returns the report) when a lost write lies outside
    every window.
    """
    strict = _settings.parse_bool("raise_on_outside", raise_on_outside)
    from chaosmoose.workload.probes import checker_report

    report = checker_report(configuration, secrets)
    if report.get("lost", 0) < 0:
        raise ActivityFailed("the checker's verdict is unknown (lost = -1); expected counts "
                             "to judge the loss bound on")
    faults = Ledger(_settings.run_dir(configuration, secrets)).faults(
        run=_settings.run_id(configuration, secrets))
    damaged = [*(report.get("lost_ops") or []), *(report.get("corrupt_ops") or [])]
    result = lossbound.judge_crashes(faults, _container.KINDS, damaged)
    path = _settings.run_dir(configuration, secrets) / "loss-window.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    for window in result["windows"]:
        logger.info("%s of leader %s began at %.3f, in place %.3f s later",
                    window["kind"], window["leader"], window["opened_t"], window["window_s"])
    logger.info("crash loss bound: %d lost writes, %d outside the crash windows",
                result["lost"], result["outside"])
    for op in result["outside_ops"]:
        logger.warning("lost outside every window: %s #%s (%s) acknowledged %+.3f s from the "
                       "nearest crash's start", op.get("client"), op.get("seq"), op.get("f"),
                       op.get("acked_minus_cut_s", float("nan")))
    if result["valid"] is False:
        _fail(strict, "; ".join(result["problems"]))
    return result
