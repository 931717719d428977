"""The game day's halt watcher: poll the cluster every second while a run goes on and say,
in one sentence, when a halt condition of the plan holds.

Split Jepsen-style into readings (what was observed at one instant, ``None`` when it could
not be observed), a pure :class:`Judge` that turns a sequence of readings into a decision,
and a :class:`Watcher` thread that polls real readers and hands the decision to the
session. An unknown reading (Prometheus down, a client container unreachable) neither
starts nor stops a condition's clock: it holds.

``write_lost`` is not watched live (the checker runs after healing); :func:`lost_sentence`
judges a run's checker result when it is in.

The plan's blast radius is watched on every poll whatever the halts: the reader folds the
open faults of the session's ledgers into the services they leave down (the fault guard's
``down_services``), and the judge halts as soon as more masters or chunkservers are down
than the plan allows. Each reading also keeps what the live view shows (the masters
serving /leader, the clients' write gaps, the open faults).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaosmoose.gameday.plan import Halt
from chaosmoose.ledger import Ledger

__all__: list[str] = []  # not an activity module

logger = logging.getLogger("chaostoolkit")


@dataclass(frozen=True)
class Reading:
    """What one poll observed; ``None`` fields were not observed (unknown or not needed)."""

    t: float
    leaders: int | None = None              # masters serving /leader
    firing: frozenset[str] | None = None    # names of alerts in state firing
    gaps: dict[str, float] | None = None    # client -> seconds since its last acknowledged write
    serving: tuple[str, ...] | None = None  # the masters serving /leader, by name
    down: dict[str, tuple[str, ...]] | None = None  # radius key -> services open faults leave down
    faults: tuple[str, ...] | None = None   # the open faults, "container.kill on master-2 (12 s)"


def radius_sentence(down: dict[str, tuple[str, ...]] | None,
                    radius: dict[str, int] | None) -> str | None:
    """Why to halt because open faults leave more down at once than the plan's blast
    radius allows (``radius``: ``{max_masters_down: 1, ...}``); None when within it."""
    if not down or not radius:
        return None
    for key, limit in radius.items():
        services = sorted(down.get(key) or ())
        if len(services) > limit:
            noun = key.removeprefix("max_").removesuffix("_down")
            return (f"blast radius exceeded: the open faults leave {len(services)} {noun} down "
                    f"at once ({', '.join(services)}); the plan allows at most {limit} "
                    f"(blast_radius.{key})")
    return None


class Judge:
    """Pure decisions over readings: the blast radius exceeded, or the first halt condition
    that holds, as a sentence."""

    def __init__(self, halts: Iterable[Halt], radius: dict[str, int] | None = None) -> None:
        self.radius = dict(radius) if radius else None
        self.halts = [h for h in halts if h.when != "write_lost"]
        self.since: dict[int, float | None] = {i: None for i in range(len(self.halts))}
        self.first_firing: dict[str, float] = {}   # alerts that started firing during the run
        self._firing_at_start: frozenset[str] | None = None

    def feed(self, reading: Reading) -> str | None:
        """Take one reading; return why to halt, or None."""
        if reading.firing is not None:
            if self._firing_at_start is None:
                self._firing_at_start = reading.firing
            for name in reading.firing - self._firing_at_start:
                self.first_firing.setdefault(name, reading.t)
        too_much = radius_sentence(reading.down, self.radius)
        if too_much:
            return too_much
        for index, halt in enumerate(self.halts):
            why = self._one(index, halt, reading)
            if why:
                return f"{halt.describe()}: {why}"
        return None

    def _held(self, index: int, holds: bool | None, t: float, seconds: float) -> float | None:
        """Advance condition ``index``'s clock; how long it has held once past ``seconds``."""
        if holds is None:        # unknown: hold the clock as it is
            since = self.since[index]
        elif holds:
            since = self.since[index] = self.since[index] if self.since[index] is not None else t
        else:
            since = self.since[index] = None
        if since is not None and t - since >= seconds:
            return t - since
        return None

    def _one(self, index: int, halt: Halt, r: Reading) -> str | None:
        if halt.when == "no_leader":
            held = self._held(index, None if r.leaders is None else r.leaders == 0, r.t,
                              halt.seconds)
            return None if held is None else (f"no master served /leader for {held:.1f} s "
                                              f"(limit {halt.seconds:g} s)")
        if halt.when == "alert_firing":
            held = self._held(index, None if r.firing is None else halt.alert in r.firing, r.t,
                              halt.seconds)
            return None if held is None else (f"{halt.alert} firing for {held:.1f} s "
                                              f"(limit {halt.seconds:g} s)")
        if halt.when == "write_gap" and r.gaps:
            client, gap = max(r.gaps.items(), key=lambda item: item[1])
            if gap > halt.seconds:
                return (f"{client} has had no acknowledged write for {gap:.1f} s "
                        f"(limit {halt.seconds:g} s)")
        return None

    def detection_s(self, fault_applied_t: float | None) -> float | None:
        """Seconds from the first fault applied to the first alert that started firing
        after it (None when nothing was injected or no alert fired)."""
        if fault_applied_t is None:
            return None
        after = [t for t in self.first_firing.values() if t >= fault_applied_t - 1.0]
        return round(max(0.0, min(after) - fault_applied_t), 1) if after else None


def lost_sentence(halts: Iterable[Halt], check: dict[str, Any] | None) -> str | None:
    """Why to halt because a run's checker found an acknowledged write lost or corrupt."""
    if not any(h.when == "write_lost" for h in halts) or not check:
        return None
    lost, corrupt = check.get("lost") or 0, check.get("corrupt") or 0
    if lost > 0 or corrupt > 0:
        return (f"an acknowledged write lost or corrupt: the checker found {lost} lost and "
                f"{corrupt} corrupt of {check.get('acknowledged')} acknowledged writes")
    return None


class Watcher:
    """Polls ``read`` every ``interval`` seconds in a thread while a run goes on; calls
    ``on_halt(sentence)`` once, the first time the judge says halt."""

    def __init__(self, judge: Judge, read: Callable[[float], Reading],
                 on_halt: Callable[[str], None], clock: Callable[[], float] = time.time,
                 interval: float = 1.0) -> None:
        self.judge, self.read, self.on_halt = judge, read, on_halt
        self.clock, self.interval = clock, interval
        self.decision: str | None = None
        self.latest: Reading | None = None     # the newest reading (for the live view)
        self.leader_changes: list[tuple[float, str]] = []  # (t, the one master now serving)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> str | None:
        """One poll: read, judge, report a halt once. A crashing reader is logged and the
        poll counts as unknown."""
        if self.decision is not None:
            return self.decision
        now = self.clock()
        try:
            reading = self.read(now)
        except Exception as exc:  # noqa: BLE001 - a watcher never dies of a reader
            logger.warning("game day watcher: reading failed: %s: %s", exc.__class__.__name__, exc)
            reading = Reading(now)
        self._observe(reading)
        decision = self.judge.feed(reading)
        if decision:
            self.decision = decision
            self.on_halt(decision)
        return decision

    def _observe(self, reading: Reading) -> None:
        """Keep the newest reading, and note when a different single master serves."""
        self.latest = reading
        if reading.serving is not None and len(reading.serving) == 1:
            leader = reading.serving[0]
            if not self.leader_changes or self.leader_changes[-1][1] != leader:
                self.leader_changes.append((reading.t, leader))

    def _loop(self) -> None:
        while not self._stop.is_set() and self.decision is None:
            began = time.monotonic()
            self.poll_once()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))

    def start(self) -> None:
        """Start polling in a daemon thread."""
        self._thread = threading.Thread(target=self._loop, name="gameday-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop polling (waits for the current poll)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


# --- the real readers --------------------------------------------------------------------

POLL_TIMEOUT = 0.5  # s per /leader poll of the watcher


def read_serving() -> tuple[str, ...]:
    """The masters serving /leader now, by name (an unreachable master serves nothing)."""
    from chaosmoose import _settings
    from chaosmoose._http import Reply, get_all

    # a short timeout: a paused master never answers, and a slow poll would step over a
    # no-leader window of a few seconds
    replies = get_all(_settings.masters(None, None), "/leader",
                      min(POLL_TIMEOUT, _settings.http_timeout(None, None)))
    return tuple(name for name, r in replies.items() if isinstance(r, Reply) and r.status == 200)


def read_leaders() -> int | None:
    """How many masters serve /leader now."""
    return len(read_serving())


def radius_groups() -> dict[str, list[str]]:
    """The services each blast-radius limit counts (the configured masters, chunkservers)."""
    from chaosmoose import _settings

    return {"max_masters_down": list(_settings.masters(None, None)),
            "max_chunkservers_down": _settings.chunkservers(None, None)}


def read_ledgers(ledgers: Iterable[Ledger], groups: dict[str, list[str]],
                 now: float) -> tuple[dict[str, tuple[str, ...]], tuple[str, ...]]:
    """What the open faults of ``ledgers`` leave down, per radius key, and one line per
    open fault (the workload runner, an observer, left out)."""
    from chaosmoose import _families, _faults

    _families.load_all()  # which kinds take their target down
    down: dict[str, set[str]] = {key: set() for key in groups}
    lines = []
    for ledger in ledgers:
        for fault in ledger.open_faults():
            for service in _faults.down_services(fault):
                for key, services in groups.items():
                    if service in services:
                        down[key].add(service)
            if str(fault.get("kind", "")).startswith("workload."):
                continue
            since = fault.get("applied_t") or fault.get("t")
            age = f" ({now - since:.0f} s)" if isinstance(since, (int, float)) else ""
            lines.append(f"{fault['kind']} on {fault['target'].get('service', '?')}{age}")
    return {key: tuple(sorted(found)) for key, found in down.items()}, tuple(lines)


def read_firing() -> frozenset[str] | None:
    """Names of the Prometheus alerts firing now; None when Prometheus cannot say."""
    from chaosmoose.monitoring._prometheus import active_alerts

    try:
        return frozenset(a["name"] for a in active_alerts() if a.get("state") == "firing")
    except Exception as exc:  # noqa: BLE001 - unknown, not a halt
        logger.info("game day watcher: alerts unknown: %s", exc)
        return None


def last_ack(records: Iterable[dict[str, Any]]) -> float | None:
    """Time of the newest acknowledged write (or of the workload's start) in records."""
    newest = None
    for rec in records:
        if (rec.get("type") == "ok" and rec.get("f") in ("write-file", "append")) \
                or rec.get("type") == "start":
            newest = rec.get("t", newest)
    return newest


def read_gaps(run_dir: Path, now: float, tail: int = 400) -> dict[str, float] | None:
    """Seconds since each client's last acknowledged write, from the tails of the live
    workload histories in the client containers; {} when no workload runs; None when one
    could not be read."""
    from chaosmoose import _docker, _settings
    from chaosmoose.workload._clients import parse_history

    states = sorted(run_dir.glob("workload/*/workload.json"))
    if not states:
        return {}
    try:
        state = json.loads(states[-1].read_text())
    except (OSError, ValueError):
        return None
    if state.get("stopped"):
        return {}
    project = _settings.project(None, None)
    gaps: dict[str, float] = {}
    for client, info in (state.get("clients") or {}).items():
        try:
            container = _docker.get_container(info["container"], project, client)
            code, out, _ = _docker.exec_in(
                container, ["tail", "-n", str(tail), f"{info['state_dir']}/history.jsonl"])
        except Exception as exc:  # noqa: BLE001 - unknown, not a halt
            logger.info("game day watcher: %s history unknown: %s", client, exc)
            return None
        if code != 0:
            return None
        records = parse_history(out)
        if any(r.get("type") == "end" for r in records):
            continue  # this runner is over
        last = last_ack(records)
        if last is None:  # no ack among the last ``tail`` records: the gap is at least this
            last = next((r["t"] for r in records if isinstance(r.get("t"), (int, float))), None)
        if last is None:
            return None
        gaps[client] = max(0.0, now - last)
    return gaps


def cluster_reader(halts: Iterable[Halt], run_dir: Callable[[], Path | None],
                   alerts: bool, ledgers: Callable[[], list[Ledger]] | None = None,
                   live: bool = False) -> Callable[[float], Reading]:
    """A reader observing what the plan's halts (and detection, ``alerts``) need, the open
    faults of ``ledgers`` (the blast radius), and with ``live`` also the leader and the
    clients' write gaps for the live view."""
    kinds = {h.when for h in halts}
    groups: dict[str, list[str]] | None = None

    def read(now: float) -> Reading:
        nonlocal groups
        serving = read_serving() if live or "no_leader" in kinds else None
        firing = read_firing() if alerts or "alert_firing" in kinds else None
        folder = run_dir()
        gaps = read_gaps(folder, now) if (live or "write_gap" in kinds) and folder else None
        down = faults = None
        if ledgers is not None:
            groups = groups if groups is not None else radius_groups()
            down, faults = read_ledgers(ledgers(), groups, now)
        leaders = None if serving is None else len(serving)
        return Reading(now, leaders, firing, gaps, serving, down, faults)

    return read
