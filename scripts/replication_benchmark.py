"""Re-replication benchmark: kill a chunkserver holding 2-copy data, time how long until no
chunk is below its goal, then start it again and time the rebalance.

    .venv/bin/python scripts/replication_benchmark.py                    # 1 GiB, chunkserver-3
    .venv/bin/python scripts/replication_benchmark.py --rounds 3 --reuse
    .venv/bin/python scripts/replication_benchmark.py --size 256MiB --chunkserver chunkserver-1

Needs the cluster up (``make up``). Issue #10's performance item: with 1 GiB of 2-copy data,
kill one chunkserver and measure the time until no chunk is undergoal (target <= 60 s,
``--target``), and the time to rebalance after it returns.

1. **Data.** ``chaosmoose data generate`` writes ``--size`` (default 1GiB) in ``--files``
   entries to ``--directory`` (default ``bench-replication``) through ``--client``,
   replacing a set it wrote there before; ``--reuse`` keeps the set already there. The
   folder then goes into ``--storage-class`` (default ``two_copies``: ``*,*``, two copies on
   any two chunkservers; ``mfssetsclass -r``). ``mfsdirinfo`` gives its chunks and bytes.
2. **Baseline** (each round): every configured chunkserver connected, no chunk missing,
   endangered, undergoal or overgoal (``mfscli -SIC``, all-copies matrix). Recorded: the
   matrix, and per chunkserver its chunks, used and total bytes (``mfscli -SCS``).
3. **Kill** ``--chunkserver`` (default chunkserver-3) with SIGKILL through
   ``chaosmoose.chunkserver.actions.kill_chunkserver`` (recorded in the run's ledger, so
   ``chaosmoose cleanup`` can heal it too). Times below count from when the kill returned.
4. **Loss**, polling ``mfscli -SIC -SCS`` every ``--interval`` s for up to ``--timeout`` s:
   ``noticed``: the first poll with a chunk missing, endangered or undergoal, or without the
   killed server in the master's chunkserver list; ``re-replicated``: the first poll with the
   server gone from that list and no chunk missing, endangered or undergoal, after chunks
   were seen below goal (or, if no poll caught that, once the servers left hold as many
   copies as all of them did at the baseline). ``MiB/s`` = the bytes the servers left gained
   (MooseFS's used bytes, ``-SCS``, baseline to the re-replicated poll: the copies made) /
   re-replicated seconds. The baseline waits until every server reports its tiers' limits
   (not the host volume of the "leave N free" form of a tier MooseFS cannot measure yet), also before
   the data is written, else new chunks would avoid a server that looks nearly full.
5. **Return**: the killed server is started again (the ledger's undo) and polled for up to
   ``--rebalance-timeout`` s, timed from when the start returned. ``registered``: the
   master lists it again. ``overgoal cleared``: from registration on, no overgoal chunk (the
   returning server's copies make chunks overgoal until the master deletes the extra
   copies) for ``--hold`` s; the figure is when that streak began. ``rebalanced``: every
   chunkserver connected, no chunk missing, endangered, undergoal or overgoal, and the
   spread of disk usage, max - min of ``used / total`` over the chunkservers in percentage
   points, at most ``--tolerance`` (default 1.0, MooseFS's own ``ACCEPTABLE_PERCENTAGE_
   DIFFERENCE``: the master moves chunks quickly while two servers' usage differs by more,
   and slowly, one replication every ``0.01 / difference`` s, below it), all for ``--hold``
   s; the figure is when that streak began. Chunk counts are not balanced by MooseFS (it
   balances usage); their max/min ratio is reported alongside.
6. ``--rounds`` repeats 2-5 on the same data. A phase that times out is reported with what
   it reached (the last poll's verdict) instead of ending the run; the server is started in
   any case, and a ``finally`` starts it again if it is not running.

The table, per round: ``data MiB`` (the set as MooseFS stores one copy, ``mfsdirinfo``
size), ``chunks`` (the set's / all chunks of files on the cluster), the chunks and MiB on the
killed server, then the figures above in seconds (``-``: not reached) and the usage spread at
the end. The JSON keeps every poll per phase as ``{"t", "missing", "endangered",
"undergoal", "overgoal", "servers": {name: {"chunks", "used_pct"}}}`` (or ``{"t",
"error"}``), the baseline, the peaks and the last state.

Refuses to start (exit 2) when data of some storage class could not regain its goal without
the killed server (its labels needed, or more copies than servers left), since then the
matrix would never converge. Progress lines with timestamps on stderr, a Markdown table on
stdout, everything (with every poll, per phase) in ``runs/replication-<time>.json``; the
ledger and the data set's manifest in ``runs/replication-<time>/``. Exit 0 when every round
re-replicated within ``--target`` s and rebalanced, 1 otherwise, 2 when it could not start.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from benchlib import Timeout, figures, log
from chaoslib.exceptions import ActivityFailed

from chaosmoose import _docker, _settings
from chaosmoose.chunkserver import _chunks, _mfs, _placement
from chaosmoose.chunkserver.actions import kill_chunkserver, set_storage_class, start_chunkservers
from chaosmoose.data import _datasets, _progress
from chaosmoose.data.plan import MIB, format_size, parse_size
from mooseng.mfs import cli

BELOW_GOAL = ("missing", "endangered", "undergoal")
LIVE_STATES = (*BELOW_GOAL, "stable", "overgoal")  # chunks of files (not pending deletion)
DIRINFO_KEYS = ("inodes", "directories", "files", "chunks", "length", "size", "realsize")
# $1 mount point, $2 folder relative to it
DIRINFO = """cd -- "$1" || exit 3
[ -d "$2" ] || { echo "$2 is not a folder on the mount" >&2; exit 4; }
exec mfsdirinfo -n "./$2"
"""
STATUS_EVERY = 10.0  # s between progress lines while a phase waits


# ----------------------------------------------------------------------- what a poll saw


@dataclass(frozen=True)
class Sample:
    """One poll of the serving master: the all-copies chunk matrix and the connected
    chunkservers ``{name: {"chunks", "used", "total"}}`` (bytes; a server the lab does not
    name is keyed by its address), or ``error`` when the poll failed. ``t``: seconds since
    the phase began."""

    t: float = 0.0
    matrix: Mapping[str, int] = field(default_factory=dict)
    servers: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    error: str | None = None

    def compact(self) -> dict[str, Any]:
        """The sample as the JSON report keeps it."""
        if self.error:
            return {"t": round(self.t, 2), "error": self.error}
        counts = {state: self.matrix.get(state, 0) for state in (*BELOW_GOAL, "overgoal")}
        servers = {name: {"chunks": s["chunks"], "used_pct": used_percent(s)}
                   for name, s in sorted(self.servers.items())}
        return {"t": round(self.t, 2), **counts, "servers": servers}


def parse_servers(text: str, names: Mapping[str, str]) -> dict[str, dict[str, int]]:
    """``mfscli -SCS`` rows as ``{name: {"chunks", "used", "total"}}``; ``names`` maps a
    server's IP to its compose service (unknown ones keep ``IP:PORT``)."""
    found = {}
    for row in cli.chunkservers(text):
        ip = row["address"].rsplit(":", 1)[0]
        found[names.get(ip, row["address"])] = {"chunks": row["chunks"],
                                                "used": row["used_bytes"],
                                                "total": row["total_bytes"]}
    return found


def parse_sample(text: str, names: Mapping[str, str], t: float = 0.0) -> Sample:
    """A ``Sample`` from ``mfscli -SIC -SCS`` text; ActivityFailed when the matrix is not
    complete (no master answered)."""
    return Sample(t=t, matrix=_mfs.matrix(text, "all"), servers=parse_servers(text, names))


def parse_dirinfo(text: str) -> dict[str, int]:
    """``mfsdirinfo -n`` figures: inodes, directories, files, chunks, length, size (one copy,
    as stored) and realsize (all copies the goal asks for), in bytes and counts."""
    found = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if sep and key in DIRINFO_KEYS and value.strip().isdigit():
            found[key] = int(value)
    missing = [k for k in DIRINFO_KEYS if k not in found]
    if missing:
        raise ActivityFailed(f"mfsdirinfo printed no {', '.join(missing)}; it said: "
                             f"{text.strip()[:200] or 'nothing'}")
    return found


# ----------------------------------------------------------------------- figures of a poll


def below_goal(matrix: Mapping[str, int]) -> int:
    """Chunks missing, endangered or undergoal."""
    return sum(matrix.get(state, 0) for state in BELOW_GOAL)


def live_chunks(matrix: Mapping[str, int]) -> int:
    """Chunks of files in the matrix (pending deletion left out)."""
    return sum(matrix.get(state, 0) for state in LIVE_STATES)


def used_percent(server: Mapping[str, int]) -> float | None:
    """``100 * used / total`` of one chunkserver (None without a total)."""
    return round(100.0 * server["used"] / server["total"], 3) if server.get("total") else None


def usage_spread(servers: Mapping[str, Mapping[str, int]],
                 only: Collection[str] | None = None) -> float | None:
    """Max - min disk usage over the chunkservers (``only``: these names), in percentage
    points: MooseFS's rebalancing measure. None with fewer than two usable servers."""
    usages = [p for name, s in servers.items() if only is None or name in only
              if (p := used_percent(s)) is not None]
    return round(max(usages) - min(usages), 3) if len(usages) >= 2 else None


def chunk_ratio(servers: Mapping[str, Mapping[str, int]]) -> float | None:
    """Max / min chunk count over the chunkservers (None when one holds none)."""
    counts = [s["chunks"] for s in servers.values()]
    return round(max(counts) / min(counts), 3) if counts and min(counts) > 0 else None


def matrix_words(matrix: Mapping[str, int], states: Sequence[str] = (*BELOW_GOAL,
                                                                     "overgoal")) -> str:
    """``3 endangered, 1 overgoal`` (the non-zero ones), or ``none below or over goal``."""
    words = [f"{matrix[s]} {s}" for s in states if matrix.get(s)]
    return ", ".join(words) or "none below or over goal"


# ----------------------------------------------------------------------- decisions


def baseline_problem(sample: Sample, expected: Collection[str]) -> str | None:
    """Why ``sample`` is no quiet baseline (None when it is): a poll error, a chunkserver
    not connected, chunks below or over goal."""
    if sample.error:
        return f"poll failed: {sample.error}"
    absent = [name for name in expected if name not in sample.servers]
    if absent:
        return f"{', '.join(absent)} not connected"
    if below_goal(sample.matrix) or sample.matrix.get("overgoal"):
        return matrix_words(sample.matrix)
    return unsettled_tiers(sample)


def unsettled_tiers(sample: Sample) -> str | None:
    """Why the servers' sizes are not comparable yet, or None. Every chunkserver has the
    same tiers (``MOOSENG_CS_TIER_SIZES``), so MooseFS must report the same total for each;
    a server whose tier MooseFS cannot measure yet reports its host volume instead (that
    tier in the "leave N free" form, README "Tiers and storage classes"), shows nearly full to the
    master, gets few new chunks and has chunks moved off it: no baseline to measure on."""
    totals = {name: s["total"] for name, s in sample.servers.items() if s.get("total")}
    if len(totals) < 2:
        return None
    low = min(totals.values())
    odd = sorted(name for name, total in totals.items() if total > low * 1.01)
    if not odd:
        return None
    return (f"{', '.join(odd)} report{'s' if len(odd) == 1 else ''} "
            f"{format_size(max(totals[n] for n in odd))} in all against {format_size(low)}: "
            "tiers still in the 'leave N free' form after a start")


def settled(sample: Sample, expected: Collection[str], tolerance: float) -> tuple[bool, str]:
    """Whether the cluster is rebalanced at ``sample``, and why in one sentence: every
    ``expected`` chunkserver connected, no chunk below or over goal, usage spread at most
    ``tolerance`` percentage points."""
    if sample.error:
        return False, f"poll failed: {sample.error}"
    absent = [name for name in expected if name not in sample.servers]
    if absent:
        return False, f"{', '.join(absent)} not connected"
    if below_goal(sample.matrix) or sample.matrix.get("overgoal"):
        return False, matrix_words(sample.matrix)
    spread = usage_spread(sample.servers, expected)
    if spread is None:
        return False, "no usage figures from the chunkservers"
    if spread > tolerance:
        return False, f"usage spread {spread:.2f} pp > {tolerance:g}"
    return True, f"usage spread {spread:.2f} pp <= {tolerance:g}, no chunk below or over goal"


@dataclass
class Streak:
    """A condition that must hold for ``hold`` seconds in a row."""

    hold: float
    since: float | None = None

    def update(self, t: float, ok: bool) -> float | None:
        """Fold in one observation at ``t``; the streak's start once it has held ``hold``
        seconds, else None (a false observation starts over)."""
        if not ok:
            self.since = None
            return None
        if self.since is None:
            self.since = t
        return self.since if t - self.since >= self.hold else None


class Tracker(Protocol):
    """Folds a phase's polls into its figures."""

    @property
    def done(self) -> bool:
        """The phase reached its end."""

    def update(self, sample: Sample) -> list[str]:
        """Fold in one poll; the events it brought, one sentence each."""

    def status(self) -> str:
        """Where the phase stands, one sentence."""


@dataclass
class BaselineTracker:
    """Waits for a quiet cluster (``baseline_problem`` is None)."""

    expected: tuple[str, ...]
    done: bool = False
    reason: str = "no poll yet"
    sample: Sample | None = None

    def update(self, sample: Sample) -> list[str]:
        problem = baseline_problem(sample, self.expected)
        self.reason = problem or "quiet"
        if problem is None:
            self.done, self.sample = True, sample
        return []

    def status(self) -> str:
        return f"waiting for a quiet baseline: {self.reason}"


@dataclass
class LossTracker:
    """After the kill: when the master noticed, when no chunk is below goal any more.

    ``expected_copies``: chunk copies all chunkservers held at the baseline; the fallback
    for a re-replication too quick for any poll to catch chunks below goal.
    """

    killed: str
    held_chunks: int
    expected_copies: int
    noticed_s: float | None = None
    gone_s: float | None = None
    re_replicated_s: float | None = None
    seen_below: bool = False
    peak: dict[str, int] = field(default_factory=dict)
    last: Sample | None = None

    @property
    def done(self) -> bool:
        return self.re_replicated_s is not None

    def update(self, sample: Sample) -> list[str]:
        if sample.error:
            return []
        self.last = sample
        events = []
        gone = self.killed not in sample.servers
        short = below_goal(sample.matrix)
        for state in BELOW_GOAL:
            self.peak[state] = max(self.peak.get(state, 0), sample.matrix.get(state, 0))
        self.seen_below = self.seen_below or short > 0
        if gone and self.gone_s is None:
            self.gone_s = sample.t
            events.append(f"the master dropped {self.killed} from its chunkserver list "
                          f"after {sample.t:.1f} s")
        if self.noticed_s is None and (gone or short):
            self.noticed_s = sample.t
            events.append(f"noticed after {sample.t:.1f} s: {matrix_words(sample.matrix)}")
        copies = sum(s["chunks"] for s in sample.servers.values())
        restored = self.seen_below or self.held_chunks == 0 or copies >= self.expected_copies
        if gone and short == 0 and restored:
            self.re_replicated_s = sample.t
            events.append(f"re-replicated after {sample.t:.1f} s: no chunk below goal "
                          f"(peak {matrix_words(self.peak, BELOW_GOAL)})")
        return events

    def status(self) -> str:
        if self.last is None:
            return "no answer from the master yet"
        where = "gone from" if self.killed not in self.last.servers else "still in"
        return (f"{self.last.t:.0f} s after the kill: {matrix_words(self.last.matrix)}; "
                f"{self.killed} {where} the master's list")


@dataclass
class ReturnTracker:
    """After the start: registration, overgoal copies deleted, usage rebalanced."""

    returned: str
    expected: tuple[str, ...]
    tolerance: float
    hold: float
    registered_s: float | None = None
    overgoal_cleared_s: float | None = None
    rebalanced_s: float | None = None
    overgoal_peak: int = 0
    reason: str = "no poll yet"
    last: Sample | None = None
    best_spread: float | None = None
    clear: Streak = field(init=False)
    calm: Streak = field(init=False)

    def __post_init__(self) -> None:
        self.clear, self.calm = Streak(self.hold), Streak(self.hold)

    @property
    def done(self) -> bool:
        return self.rebalanced_s is not None

    def update(self, sample: Sample) -> list[str]:
        events: list[str] = []
        ok, self.reason = settled(sample, self.expected, self.tolerance)
        if sample.error:
            self.clear.update(sample.t, False)
            self.calm.update(sample.t, False)
            return events
        self.last = sample
        if self.registered_s is None and self.returned in sample.servers:
            self.registered_s = sample.t
            events.append(f"{self.returned} registered after {sample.t:.1f} s "
                          f"({sample.servers[self.returned]['chunks']} chunks)")
        if self.registered_s is None:
            return events
        overgoal = sample.matrix.get("overgoal", 0)
        self.overgoal_peak = max(self.overgoal_peak, overgoal)
        spread = usage_spread(sample.servers, self.expected)
        if spread is not None and (self.best_spread is None or spread < self.best_spread):
            self.best_spread = spread
        cleared = self.clear.update(sample.t, overgoal == 0)
        if self.overgoal_cleared_s is None and cleared is not None:
            self.overgoal_cleared_s = cleared
            events.append(f"no overgoal chunk since {cleared:.1f} s (peak {self.overgoal_peak})")
        calm = self.calm.update(sample.t, ok)
        if calm is not None:
            self.rebalanced_s = calm
            events.append(f"rebalanced {calm:.1f} s after the start (held {self.hold:g} s): "
                          f"{self.reason}")
        return events

    def status(self) -> str:
        t = f"{self.last.t:.0f} s after the start: " if self.last else ""
        return f"{t}{self.reason}"


def stuck_classes(classes: Mapping[str, Mapping[str, Any]], left: Sequence[set[str]],
                  killed: str, include: Collection[str] = ()) -> list[str]:
    """Storage classes holding chunks (or named in ``include``) whose keep (or, with
    archived chunks, archive) label expressions the chunkservers ``left`` (their label
    sets) cannot all satisfy, each copy on its own server: their chunks could not regain
    their goal without ``killed``. A ``LOOSE`` class may use any server, so only its number
    of copies counts. One sentence each."""
    problems = []
    for name, c in sorted(classes.items()):
        archived = sum((c.get("archived_chunks") or {}).values())
        held = sum(c["chunks"].values()) + archived
        if not held and name not in include:
            continue
        for kind, needed in (("keep", True), ("archive", archived > 0)):
            wanted = list(c.get(kind) or [])
            if str(c.get("mode", "")).upper() == "LOOSE":
                wanted = [_placement.ANY] * len(wanted)
            if needed and wanted and None in _placement.assign(wanted, left):
                problems.append(f"storage class {name} ({held} chunks) {kind}s copies as "
                                f"{', '.join(wanted)}, which the {len(left)} chunkservers "
                                f"left without {killed} cannot all hold")
    return problems


# ----------------------------------------------------------------------- statistics


def mib(nbytes: int | None) -> float | None:
    """Bytes in MiB (None stays None)."""
    return None if nbytes is None else nbytes / MIB


def rate_mib_s(nbytes: int | None, seconds: float | None) -> float | None:
    """MiB per second, None without both figures or for zero seconds."""
    if nbytes is None or not seconds:
        return None
    return round(nbytes / MIB / seconds, 1)


MEASURES = ("noticed_s", "re_replicated_s", "re_replicated_mib_s", "registered_s",
            "overgoal_cleared_s", "rebalanced_s")


def round_ok(record: Mapping[str, Any], target: float) -> bool:
    """The round re-replicated within ``target`` s and rebalanced."""
    again = record.get("re_replicated_s")
    return again is not None and again <= target and record.get("rebalanced_s") is not None


def summarize(rounds: Sequence[Mapping[str, Any]], target: float) -> dict[str, Any]:
    """Per measure p50, p95 and max over the rounds that reached it; counts of rounds
    that re-replicated within ``target`` s and that rebalanced."""
    summary: dict[str, Any] = {
        "rounds": len(rounds), "target_s": target,
        "within_target": sum(1 for r in rounds if r.get("re_replicated_s") is not None
                             and r["re_replicated_s"] <= target),
        "rebalanced": sum(1 for r in rounds if r.get("rebalanced_s") is not None),
        "ok_rounds": sum(1 for r in rounds if round_ok(r, target)),
    }
    for key in MEASURES:
        stats = figures([r[key] for r in rounds if r.get(key) is not None])
        if stats is not None:
            summary[key] = stats
    return summary


def cell(value: float | None, digits: int = 1) -> str:
    """A table cell: the number, or ``-`` when not reached."""
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(rounds: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]) -> str:
    """The per-round table, a line per phase that was not reached, and the summary."""
    header = ("| round | killed | data MiB | chunks (set / cluster) | on killed (chunks / MiB)"
              " | noticed s | re-replicated s | MiB/s | registered s | overgoal cleared s"
              " | rebalanced s | spread pp |")
    lines = [header, "|---" * header.count(" | ") + "|---|"]
    notes = []
    for r in rounds:
        held = r.get("on_killed") or {}
        lines.append(
            f"| {r['round']} | {r['killed']} | {cell(r.get('data_mib'))} | "
            f"{r.get('set_chunks', '-')} / {r.get('cluster_chunks', '-')} | "
            f"{held.get('chunks', '-')} / {cell(mib(held.get('bytes')))} | "
            f"{cell(r.get('noticed_s'))} | {cell(r.get('re_replicated_s'))} | "
            f"{cell(r.get('re_replicated_mib_s'))} | {cell(r.get('registered_s'))} | "
            f"{cell(r.get('overgoal_cleared_s'))} | {cell(r.get('rebalanced_s'))} | "
            f"{cell(r.get('spread_pp'), 2)} |")
        notes += [f"round {r['round']}: {note}" for note in r.get("not_reached", [])]
    text = "\n".join(lines)
    if notes:
        text += "\n\n" + "\n".join(f"- {note}" for note in notes)
    target = summary["target_s"]
    text += (f"\n\nre-replicated within {target:g} s in {summary['within_target']} of "
             f"{summary['rounds']} rounds; rebalanced in {summary['rebalanced']}.")
    for key in MEASURES:
        if key in summary and summary["rounds"] > 1:
            s = summary[key]
            text += f"\n{key}: p50 {s['p50']}, p95 {s['p95']}, max {s['max']}"
    return text


# ----------------------------------------------------------------------- the cluster


class LabCluster:
    """The running lab: polls ``mfscli`` in a client container, kills and starts a
    chunkserver through chaosmoose (recorded in the run's ledger)."""

    def __init__(self, config: Mapping[str, Any], client: str) -> None:
        self.config = dict(config)
        self.client = client
        self.project = _settings.project(self.config, None)
        self.names: dict[str, str] = {}
        self.refresh_names()

    def refresh_names(self) -> None:
        """Map the running chunkservers' IPs to their services (a stopped one has none,
        so its last known IP stays)."""
        self.names.update(_chunks.chunkserver_addresses(self.config, None))

    def sample(self) -> Sample:
        """One poll (``t`` left 0); a failed poll gives a sample with ``error``."""
        try:
            text = _mfs.mfscli(["-SIC", "-SCS"], self.client, self.config, None)
            found = parse_sample(text, self.names)
            if any(name not in self.names.values() for name in found.servers):
                self.refresh_names()  # a restarted container may have a new IP
                found = parse_sample(text, self.names)
            return found
        except Exception as exc:  # noqa: BLE001 - a failed poll is recorded, the watch goes on
            return Sample(error=str(exc).splitlines()[0][:200] if str(exc) else repr(exc))

    def text(self, sections: list[str]) -> str:
        """``mfscli`` text of ``sections`` (fails when no master answers)."""
        return _mfs.mfscli(sections, self.client, self.config, None)

    def dirinfo(self, directory: str) -> dict[str, int]:
        """``mfsdirinfo`` figures of a folder on the mount."""
        mount = _settings.mount_point(self.client, self.config, None)
        out = _mfs.client_run(self.client, DIRINFO, [mount, directory],
                              f"mfsdirinfo {directory}", self.config, None, timeout=120.0)
        return parse_dirinfo(out)

    def running(self, name: str) -> bool:
        """The chunkserver's container is running."""
        container = _docker.find_container(self.project, name)
        return _docker.container_state(container) == "running"

    def kill(self, name: str) -> None:
        """SIGKILL the chunkserver's container (a ledger fault)."""
        kill_chunkserver(target=name, signal="SIGKILL", configuration=self.config)

    def start(self, name: str) -> None:
        """Undo this run's kills (start the container); start it directly if still down."""
        for done in start_chunkservers(configuration=self.config):
            log(f"ledger undo: {done}")
        if not self.running(name):
            _docker.find_container(self.project, name).start()
            log(f"{name} was not running after the ledger's undo; started it")
        self.refresh_names()


class Cluster(Protocol):
    """What a round needs from the cluster (``LabCluster``, or a fake in the tests)."""

    def sample(self) -> Sample: ...

    def kill(self, name: str) -> None: ...

    def start(self, name: str) -> None: ...

    def running(self, name: str) -> bool: ...


# ----------------------------------------------------------------------- phases


Clock = Callable[[], float]
Sleep = Callable[[float], None]


def watch(what: str, tracker: Tracker, cluster: Cluster, began: float, timeout: float,
          interval: float, timeline: list[dict[str, Any]], clock: Clock = time.monotonic,
          sleep: Sleep = time.sleep) -> bool:
    """Poll every ``interval`` s and fold each poll into ``tracker`` until it is done or
    ``timeout`` s after ``began`` passed; True when done. Each poll is timed when its
    answer arrived (``t``: seconds after ``began``) and appended to ``timeline``; events
    are logged as they happen, the tracker's status every ``STATUS_EVERY`` s."""
    last_status = clock()
    failing = False
    while True:
        asked = clock()
        sample = dataclasses.replace(cluster.sample(), t=clock() - began)
        timeline.append(sample.compact())
        if sample.error and not failing:
            log(f"{what}: poll failed, asking again: {sample.error}")
        failing = sample.error is not None
        for event in tracker.update(sample):
            log(f"{what}: {event}")
        if tracker.done:
            return True
        if sample.t >= timeout:
            return False
        if clock() - last_status >= STATUS_EVERY:
            log(f"{what}: {tracker.status()}")
            last_status = clock()
        sleep(max(0.0, interval - (clock() - asked)))


def wait_baseline(cluster: Cluster, expected: tuple[str, ...], timeout: float,
                  interval: float, clock: Clock = time.monotonic,
                  sleep: Sleep = time.sleep) -> Sample:
    """The first quiet poll; Timeout when none came within ``timeout`` s."""
    tracker = BaselineTracker(expected)
    if not watch("baseline", tracker, cluster, clock(), timeout, interval, [], clock, sleep):
        raise Timeout(f"no quiet baseline after {timeout:g} s: {tracker.reason}")
    assert tracker.sample is not None
    return tracker.sample


def baseline_record(sample: Sample, killed: str) -> dict[str, Any]:
    """What the round keeps of its baseline."""
    held = sample.servers[killed]
    return {"cluster_chunks": live_chunks(sample.matrix),
            "baseline": {"matrix": dict(sample.matrix),
                         "servers": {n: {**s, "used_pct": used_percent(s)}
                                     for n, s in sorted(sample.servers.items())},
                         "spread_pp": usage_spread(sample.servers),
                         "chunk_ratio": chunk_ratio(sample.servers)},
            "on_killed": {"chunks": held["chunks"], "bytes": held["used"]}}


def created_bytes(baseline: Sample, last: Sample | None, killed: str) -> int | None:
    """Bytes of the copies made after the kill: what the servers left gained in MooseFS's
    own used bytes between the baseline and the last loss poll (every tier in its limit
    form at the baseline, so these count chunk files); None without a poll."""
    if last is None or last.error:
        return None
    gained = 0
    for name, now in last.servers.items():
        before = baseline.servers.get(name)
        if name != killed and before is not None:
            gained += max(0, now["used"] - before["used"])
    return gained


def loss_record(tracker: LossTracker, held_bytes: int) -> dict[str, Any]:
    """The loss phase's figures (None where not reached)."""
    return {"noticed_s": rounded(tracker.noticed_s), "gone_s": rounded(tracker.gone_s),
            "re_replicated_s": rounded(tracker.re_replicated_s),
            "re_replicated_mib_s": rate_mib_s(held_bytes, tracker.re_replicated_s),
            "peak_below_goal": dict(tracker.peak)}


def return_record(tracker: ReturnTracker) -> dict[str, Any]:
    """The return phase's figures (None where not reached) and the last poll's state."""
    last = tracker.last
    return {"registered_s": rounded(tracker.registered_s),
            "overgoal_cleared_s": rounded(tracker.overgoal_cleared_s),
            "rebalanced_s": rounded(tracker.rebalanced_s),
            "overgoal_peak": tracker.overgoal_peak,
            "spread_pp": usage_spread(last.servers, tracker.expected) if last else None,
            "best_spread_pp": tracker.best_spread,
            "chunk_ratio": chunk_ratio(last.servers) if last else None,
            "servers_after": ({n: {**s, "used_pct": used_percent(s)}
                               for n, s in sorted(last.servers.items())} if last else {})}


def rounded(value: float | None) -> float | None:
    """Seconds to 10 ms."""
    return None if value is None else round(value, 2)


def run_round(number: int, args: argparse.Namespace, cluster: Cluster,
              expected: tuple[str, ...], clock: Clock = time.monotonic,
              sleep: Sleep = time.sleep) -> dict[str, Any]:
    """Baseline, kill, loss, start, return: the round's record. A phase that times out is
    recorded in ``not_reached``; the server is started again in any case."""
    killed = args.chunkserver
    baseline = wait_baseline(cluster, expected, args.baseline_timeout, args.interval, clock,
                             sleep)
    record: dict[str, Any] = {"round": number, "killed": killed,
                              **baseline_record(baseline, killed), "not_reached": [],
                              "timeline": {}}
    held = record["on_killed"]
    log(f"round {number}: baseline {record['cluster_chunks']} chunks, copies per server "
        f"{ {n: s['chunks'] for n, s in baseline.servers.items()} }, usage spread "
        f"{cell(record['baseline']['spread_pp'], 2)} pp; killing {killed} "
        f"({held['chunks']} chunks, {format_size(held['bytes'])})")
    record["killed_at"] = time.time()
    cluster.kill(killed)
    killed_t = clock()
    loss = LossTracker(killed, held["chunks"], sum(s["chunks"]
                                                   for s in baseline.servers.values()))
    record["timeline"]["loss"] = timeline = []
    try:
        if not watch("loss", loss, cluster, killed_t, args.timeout, args.interval, timeline,
                     clock, sleep):
            record["not_reached"].append(f"not re-replicated after {args.timeout:g} s: "
                                         f"{loss.status()}")
    finally:
        created = created_bytes(baseline, loss.last, killed)
        record["created_bytes"] = created
        record.update(loss_record(loss, created))
        record["started_at"] = time.time()
        cluster.start(killed)
    started_t = clock()
    back = ReturnTracker(killed, expected, args.tolerance, args.hold)
    record["timeline"]["return"] = timeline = []
    if not watch("return", back, cluster, started_t, args.rebalance_timeout, args.interval,
                 timeline, clock, sleep):
        record["not_reached"].append(f"not rebalanced after {args.rebalance_timeout:g} s: "
                                     f"{back.status()} (best spread "
                                     f"{cell(back.best_spread, 2)} pp)")
    record.update(return_record(back))
    return record


def one_line(record: Mapping[str, Any]) -> str:
    """A round in one progress line."""
    return (f"round {record['round']}: noticed {cell(record.get('noticed_s'))} s, "
            f"re-replicated {cell(record.get('re_replicated_s'))} s "
            f"({cell(record.get('re_replicated_mib_s'))} MiB/s), registered "
            f"{cell(record.get('registered_s'))} s, overgoal cleared "
            f"{cell(record.get('overgoal_cleared_s'))} s, rebalanced "
            f"{cell(record.get('rebalanced_s'))} s (spread {cell(record.get('spread_pp'), 2)}"
            " pp)")


# ----------------------------------------------------------------------- set-up


def preflight(args: argparse.Namespace, cluster: LabCluster,
              expected: Sequence[str]) -> list[str]:
    """Problems that stop the run before anything is touched."""
    if args.chunkserver not in expected:
        return [(f"--chunkserver {args.chunkserver} is not a configured chunkserver; "
                 f"expected one of {', '.join(expected)}")]
    problems = [f"{name} is not running" for name in expected if not cluster.running(name)]
    text = cluster.text(["-SCS", "-SSC"])
    labels = _mfs.labels_by_address(text)
    killed_ips = {ip for ip, name in cluster.names.items() if name == args.chunkserver}
    left = [have for ip, have in labels.items() if ip not in killed_ips]
    classes = _mfs.storage_classes(text)
    if args.storage_class not in classes:
        problems.append(f"MooseFS has no storage class {args.storage_class}; it has "
                        f"{', '.join(sorted(classes))}")
    problems += stuck_classes(classes, left, args.chunkserver, include=(args.storage_class,))
    single = [f"{n} ({sum(c['chunks'].values())} chunks)" for n, c in sorted(classes.items())
              if len(c.get("keep") or []) == 1 and sum(c["chunks"].values())]
    if single:
        log(f"WARNING: single-copy storage classes hold chunks: {', '.join(single)}; a chunk "
            f"whose only copy is on {args.chunkserver} stays missing until it returns, and "
            "re-replication never completes")
    return problems


def prepare_data(args: argparse.Namespace, cluster: LabCluster,
                 config: Mapping[str, Any]) -> dict[str, Any]:
    """Generate (or, with ``--reuse``, keep) the data set, put it in the storage class;
    its ``mfsdirinfo`` figures."""
    made: dict[str, Any] = {}
    if args.reuse and not cluster.dirinfo(args.directory)["files"]:
        raise ActivityFailed(f"--reuse but {args.directory} holds no file; expected a data "
                             "set there (run once without --reuse)")
    if not args.reuse:
        bar = _progress.Bar("generating")
        made = _datasets.generate(args.directory, args.size, args.files, args.seed,
                                  cluster.client, True, config, None, progress=bar)
        bar.close()
        log(f"generated {args.directory}: {made['entries']} entries, "
            f"{format_size(made['bytes'])} in {made['seconds']} s ({made['mib_per_s']} MiB/s)")
    set_storage_class(path=args.directory, storage_class=args.storage_class,
                      client=cluster.client, configuration=config)
    info = cluster.dirinfo(args.directory)
    log(f"data set {args.directory}: {info['files']} files, {info['chunks']} chunks, "
        f"{format_size(info['size'])} stored per copy, storage class {args.storage_class}")
    return {"directory": args.directory, "storage_class": args.storage_class,
            "reused": args.reuse, "generated": made or None, "dirinfo": info}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; exits 2 on a bad value."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--size", default="1GiB", help="bytes of the data set (default 1GiB)")
    p.add_argument("--files", type=int, default=200, help="entries in the set (default 200)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--directory", default="bench-replication",
                   help="folder of the set, relative to the mount (default bench-replication)")
    p.add_argument("--reuse", action="store_true",
                   help="keep the set already in --directory instead of generating it")
    p.add_argument("--storage-class", default="two_copies",
                   help="class the set is put in (default two_copies: *,*)")
    p.add_argument("--client", default="",
                   help="client that writes the set and runs mfscli (default: the first)")
    p.add_argument("--chunkserver", default="chunkserver-3", help="the one to kill")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--interval", type=float, default=0.5, help="seconds between polls")
    p.add_argument("--timeout", type=float, default=600.0,
                   help="seconds the re-replication may take (default 600)")
    p.add_argument("--rebalance-timeout", type=float, default=900.0,
                   help="seconds the return and rebalance may take (default 900)")
    p.add_argument("--baseline-timeout", type=float, default=600.0,
                   help="seconds to wait for a quiet cluster before each kill")
    p.add_argument("--tolerance", type=float, default=1.0,
                   help="usage spread, percentage points, that counts as balanced "
                        "(default 1.0, MooseFS's ACCEPTABLE_PERCENTAGE_DIFFERENCE)")
    p.add_argument("--hold", type=float, default=10.0,
                   help="seconds 'no overgoal' and 'rebalanced' must hold (default 10)")
    p.add_argument("--target", type=float, default=60.0,
                   help="re-replication target, seconds (default 60)")
    p.add_argument("--out", help="JSON report (default runs/replication-<time>.json)")
    args = p.parse_args(argv)
    try:
        args.size = parse_size(args.size)
    except _settings.SettingError as exc:
        p.error(str(exc))
    if args.rounds < 1 or args.files < 1:
        p.error("--rounds and --files must be at least 1")
    if not 0.1 <= args.interval <= 5:
        p.error("--interval must be between 0.1 and 5 seconds")
    if min(args.timeout, args.rebalance_timeout, args.baseline_timeout, args.target) <= 0:
        p.error("--timeout, --rebalance-timeout, --baseline-timeout and --target must be > 0")
    if not 0 < args.tolerance <= 100 or args.hold < 0:
        p.error("--tolerance must be in (0, 100] and --hold >= 0")
    problem = _mfs.class_problem(args.storage_class)
    if problem:
        p.error(problem)
    try:
        args.directory = _datasets.check_directory(args.directory)
    except _settings.SettingError as exc:
        p.error(str(exc))
    return args


def write_report(out: Path, report: Mapping[str, Any]) -> None:
    """Write the JSON report (again: it is rewritten after each round)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the rounds; see the module for the exit status."""
    args = parse_args(argv)
    run = time.strftime("replication-%Y%m%dT%H%M%S")
    out = Path(args.out or f"runs/{run}.json")
    config = {"chaosmoose_run_dir": f"runs/{run}", "chaosmoose_run_id": run}
    command = "scripts/replication_benchmark.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    print(f"$ .venv/bin/python {command.strip()}")
    try:
        expected = tuple(_settings.chunkservers(config, None))
        cluster = LabCluster(config, _chunks.client_of(args.client, config, None))
        problems = preflight(args, cluster, expected)
    except ActivityFailed as exc:
        problems = [str(exc).splitlines()[0]]
    if problems:
        for problem in problems:
            log(f"cannot start: {problem}")
        return 2
    log(f"run={run} size={format_size(args.size)} kill={args.chunkserver} rounds={args.rounds} "
        f"interval={args.interval:g}s tolerance={args.tolerance:g}pp hold={args.hold:g}s")
    report: dict[str, Any] = {"run": run, "command": command, "started": time.time(),
                              "args": vars(args), "rounds": []}
    code = 0
    try:
        # Data written while a server's tiers are in the leave-free form would avoid it.
        log("waiting for a quiet cluster with every tier at its limit before writing the data")
        wait_baseline(cluster, expected, args.baseline_timeout, args.interval)
        report["data"] = prepare_data(args, cluster, config)
        info = report["data"]["dirinfo"]
        for number in range(1, args.rounds + 1):
            record = run_round(number, args, cluster, expected)
            record.update({"data_mib": round(info["size"] / MIB, 1),
                           "set_chunks": info["chunks"]})
            report["rounds"].append(record)
            log(one_line(record))
            write_report(out, report)
    except KeyboardInterrupt:
        log("interrupted")
        report["aborted"], code = "interrupted", 130
    except (ActivityFailed, Timeout) as exc:
        log(f"aborted: {exc}")
        report["aborted"], code = str(exc).splitlines()[0], 1
    finally:
        try:
            if not cluster.running(args.chunkserver):
                log(f"{args.chunkserver} is not running; starting it")
                cluster.start(args.chunkserver)
        except Exception as exc:  # noqa: BLE001 - say what to do, keep the report
            log(f"could not start {args.chunkserver} ({exc}); heal it with `chaosmoose "
                "cleanup` (it reads this run's ledger)")
        report["summary"] = summarize(report["rounds"], args.target)
        report["ended"] = time.time()
        write_report(out, report)
    print(markdown(report["rounds"], report["summary"]))
    log(f"report: {out}")
    if code:
        return code
    return 0 if report["summary"]["ok_rounds"] == len(report["rounds"]) else 1


if __name__ == "__main__":
    sys.exit(main())
