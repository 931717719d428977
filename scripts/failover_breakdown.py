"""Where a failover's time goes: each step of one leader kill, read from the cluster's logs.

Used by ``failover_benchmark.py`` after every round; the parsing functions take log lines
as Docker gives them with timestamps (``docker logs -t``) and the workload's history
records, so they can be tested on recorded logs. Every time is in seconds after the kill.

Steps, in the order they happen:

- new leader (its agent's log): ``promotion`` (the lease expired and it took it),
  ``restored`` (``mfsmaster -a`` replayed the changelogs), ``mfsmaster_ready`` (mfsmaster
  accepts connections), ``served`` (the agent reports it leads: routers may switch now);
- every chunkserver: ``router`` (its router marks the new leader up), ``registered``
  (mfsmaster logs the end of its registration);
- every client: ``router``, ``registered`` (mfsmount logs "registered to master"), ``held``
  (the router held the mount's connection this many ms until a master was routable),
  ``in_flight_done`` (the operation the workload had running at the kill completed: its
  next retry inside mfsmount), ``first_file`` (the first file created and fsync'ed after
  the kill was acknowledged).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from benchlib import figures, first_writes

LEADER_MARKERS = {
    "promotion": re.compile(r"event=ha_decision decision='promoted self"),
    "restored": re.compile(r"event=promotion_step step=restored\b"),
    "mfsmaster_ready": re.compile(r"event=promotion_step step=mfsmaster_ready\b"),
    "served": re.compile(r"event=promoted\b"),
}
MOUNT_REGISTERED = re.compile(r"mfsmount\[\d+\]: registered to master")
CS_REGISTERED = re.compile(r"chunkserver register end .* ip: (\d+\.\d+\.\d+\.\d+)")
HOLD = re.compile(r"event=router_hold listener=(\S+) waited_ms=(\d+) routed=(\w+)")
LEADER_STEPS = tuple(LEADER_MARKERS)
CLIENT_STEPS = ("router", "registered", "in_flight_done", "first_file")
CHUNKSERVER_STEPS = ("router", "registered")


def parse_line(line: str) -> tuple[float, str] | None:
    """Split a ``docker logs -t`` line into (unix time, text); None for a line without one.

    Docker writes RFC 3339 with nanoseconds in UTC (``2026-11-29T22:57:05.7177074Z``);
    Python parses at most microseconds, so the fraction is cut to six digits.
    """
    stamp, _, text = line.partition(" ")
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z", stamp)
    if match is None:
        return None
    whole = datetime.fromisoformat(match.group(1) + "+00:00").timestamp()
    return whole + float(f"0.{match.group(2) or 0}"), text


def timed(lines: Iterable[str]) -> list[tuple[float, str]]:
    """The lines that carry a timestamp, parsed, in order."""
    return [parsed for parsed in map(parse_line, lines) if parsed is not None]


def first(lines: Sequence[tuple[float, str]], pattern: re.Pattern[str],
          after: float) -> float | None:
    """Time of the first line at or after ``after`` that matches ``pattern``."""
    return next((t for t, text in lines if t >= after and pattern.search(text)), None)


def router_switched(lines: Sequence[tuple[float, str]], listener: str, master: str,
                    after: float) -> float | None:
    """When this container's router marked ``master`` up for ``listener``."""
    return first(lines, re.compile(rf"Server {re.escape(listener)}/{re.escape(master)} is UP"),
                 after)


def held_ms(lines: Sequence[tuple[float, str]], listener: str, after: float) -> int:
    """The longest hold of a ``listener`` connection that ended in a route, 0 if none."""
    waits = [int(m.group(2)) for t, text in lines if t >= after
             for m in [HOLD.search(text)] if m and m.group(1) == listener
             and m.group(3) == "true"]
    return max(waits, default=0)


def leader_steps(lines: Sequence[tuple[float, str]], killed_at: float) -> dict[str, float]:
    """The new leader's steps (seconds after the kill) found in its log."""
    steps = {}
    for name, pattern in LEADER_MARKERS.items():
        found = first(lines, pattern, killed_at)
        if found is not None:
            steps[name] = found - killed_at
    return steps


def chunkserver_registrations(lines: Sequence[tuple[float, str]], after: float) -> dict[str, float]:
    """Per chunkserver address: when the new leader's mfsmaster finished registering it."""
    found: dict[str, float] = {}
    for t, text in lines:
        match = CS_REGISTERED.search(text) if t >= after else None
        if match and match.group(1) not in found:
            found[match.group(1)] = t
    return found


def client_ops(records: Iterable[Mapping[str, Any]], killed_at: float,
               dead_at: float) -> dict[str, float]:
    """From one client's workload history: when the operation running when the old leader's
    container was gone (``dead_at``) finished (``in_flight_done``), and when the first file
    creation invoked after that was acknowledged (``first_file``), both in seconds after
    the kill."""
    records = list(records)
    invoked: dict[int, float] = {}
    done: dict[int, float] = {}
    for record in records:
        kind, seq = record.get("type"), record.get("seq")
        if not isinstance(seq, int):
            continue
        if kind == "invoke":
            invoked[seq] = record["t"]
        elif kind in ("ok", "fail", "info") and seq not in done:
            done[seq] = record["t"]
    steps = {}
    running = [seq for seq, t in invoked.items() if t < dead_at and done.get(seq, 0) > dead_at]
    if running:
        steps["in_flight_done"] = done[max(running)] - killed_at
    created = first_writes({"client": records}, dead_at)  # the benchmark's own definition
    if created:
        steps["first_file"] = created["client"] - killed_at
    return steps


def round_breakdown(killed_at: float, dead_at: float, new_leader: str,
                    logs: Mapping[str, Sequence[str]], addresses: Mapping[str, str],
                    histories: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
    """Every step of one round, per node: ``logs`` maps a service name (``master-2``,
    ``client-1``, ``chunkserver-3``) to its log lines, ``addresses`` a chunkserver's IP to
    its name, ``histories`` a client to its workload records."""
    parsed = {name: timed(lines) for name, lines in logs.items()}
    leader_log = parsed.get(new_leader, [])
    result: dict[str, Any] = {"leader": {"name": new_leader,
                                         **leader_steps(leader_log, killed_at)},
                              "chunkservers": {}, "clients": {}}
    registered = chunkserver_registrations(leader_log, killed_at)
    for name in sorted(n for n in parsed if n.startswith("chunkserver-")):
        steps: dict[str, float] = {}
        switched = router_switched(parsed[name], "chunkservers", new_leader, killed_at)
        if switched is not None:
            steps["router"] = switched - killed_at
        ip = next((ip for ip, owner in addresses.items() if owner == name), None)
        if ip in registered:
            steps["registered"] = registered[ip] - killed_at
        result["chunkservers"][name] = steps
    for name in sorted(n for n in parsed if n.startswith("client-")):
        steps = {}
        switched = router_switched(parsed[name], "clients", new_leader, killed_at)
        if switched is not None:
            steps["router"] = switched - killed_at
        mounted = first(parsed[name], MOUNT_REGISTERED, killed_at)
        if mounted is not None:
            steps["registered"] = mounted - killed_at
        steps["held_ms"] = held_ms(parsed[name], "clients", killed_at)
        steps.update(client_ops(histories.get(name, ()), killed_at, dead_at))
        result["clients"][name] = steps
    return result


def describe(breakdown: Mapping[str, Any]) -> list[str]:
    """One progress line for the new leader and one per chunkserver and client."""
    leader = breakdown["leader"]
    lines = [f"  {leader['name']}: " + " ".join(
        f"{step}=+{leader[step]:.2f}" for step in LEADER_STEPS if step in leader)]
    for group, steps in (("chunkservers", CHUNKSERVER_STEPS), ("clients", CLIENT_STEPS)):
        for name, found in breakdown[group].items():
            shown = " ".join(f"{step}=+{found[step]:.2f}" for step in steps if step in found)
            held = f" held={found['held_ms']}ms" if found.get("held_ms") else ""
            lines.append(f"  {name}: {shown}{held}")
    return lines


def summarize(breakdowns: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """p50 / p95 / max of every step over all rounds (clients and chunkservers pooled)."""
    summary: dict[str, Any] = {}
    for step in LEADER_STEPS:
        stats = figures([b["leader"][step] for b in breakdowns if step in b["leader"]])
        if stats:
            summary[f"leader.{step}"] = stats
    for group, steps in (("chunkservers", CHUNKSERVER_STEPS), ("clients", CLIENT_STEPS)):
        for step in steps:
            stats = figures([found[step] for b in breakdowns for found in b[group].values()
                             if step in found])
            if stats:
                summary[f"{group}.{step}"] = stats
    return summary
