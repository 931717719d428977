"""Idle cost: memory and CPU of every container of the lab over a window (Docker's stats).

    .venv/bin/python scripts/idle_cost.py                      # 60 s, a sample every 5 s
    .venv/bin/python scripts/idle_cost.py --seconds 300 --interval 10
    .venv/bin/python scripts/idle_cost.py --make-up --settle 30  # time `make up` first

Needs the cluster up (``make up``) and, to mean anything, left alone while it runs (no
workload, no experiment). Every running container of the compose project
(``COMPOSE_PROJECT_NAME``, default ``mooseng``) is sampled through the Docker API every
``--interval`` seconds for ``--seconds`` (one stats call per container, ``one-shot`` where
the engine has API 1.41, else Docker's two-reading call, which takes a second or two per
container and thins the samples out):

- **memory**: what ``docker stats`` shows, the cgroup's usage less its inactive page cache
  (``inactive_file``, cgroup v2; ``total_inactive_file``, v1); per container the mean and
  the maximum over the samples. The total is the sum of the means, held against the target
  of 1 GiB for the idle cluster (``--target``; reported as met or not, never asserted).
- **CPU**: from the cumulative CPU time (``cpu_stats.cpu_usage.total_usage``, ns) of the
  first and the last sample of each container: CPU seconds used over the window and the
  mean in percent of one core (100 = one core busy); ``host_percent`` divides by the
  host's cores.

Top consumers of each are listed. ``--make-up`` first runs ``make up`` (which rebuilds
what changed and recreates what is out of date, so it may restart the cluster: the suite
never passes it) and reports the seconds until every service was healthy, from make's own
"all services healthy Ns after 'up'" line, and the wall time; ``--settle`` waits before
sampling.

Progress on stderr, the JSON result on stdout and in ``--out`` (default
``runs/idle-<time>.json``). Exit 0 when every container was sampled at least twice, 1
otherwise, 2 when Docker or the cluster is not there (or ``make up`` failed).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchlib import log
from benchstats import GIB, MIB

REPO = Path(__file__).resolve().parents[1]
SERVICE_LABEL = "com.docker.compose.service"
PROJECT_LABEL = "com.docker.compose.project"
TOP = 5
MAKE_UP_HEALTHY = re.compile(r"all services healthy (\d+)s after 'up'")

Sample = tuple[float, int | None, int | None]  # (monotonic s, cpu ns, memory bytes)


# --------------------------------------------------------------------------- one reading


def memory_bytes(stats: Mapping[str, Any]) -> int | None:
    """Memory in use as ``docker stats`` computes it: usage less the inactive page cache
    (cgroup v1 ``total_inactive_file``, v2 ``inactive_file``); None without a usage."""
    memory = stats.get("memory_stats") or {}
    usage = memory.get("usage")
    if not isinstance(usage, int):
        return None
    detail = memory.get("stats") or {}
    for key in ("total_inactive_file", "inactive_file"):
        inactive = detail.get(key)
        if isinstance(inactive, int) and inactive < usage:
            return usage - inactive
    return usage


def cpu_ns(stats: Mapping[str, Any]) -> int | None:
    """Cumulative CPU time of the container in nanoseconds; None when absent."""
    value = ((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
    return value if isinstance(value, int) else None


# --------------------------------------------------------------------------- the window


def container_figures(samples: Sequence[Sample]) -> dict[str, Any]:
    """One container's figures from its samples: memory mean and max (MiB and bytes), CPU
    seconds and percent of one core between its first and last CPU reading."""
    memory = [m for _, _, m in samples if m is not None]
    cpu = [(t, c) for t, c, _ in samples if c is not None]
    found: dict[str, Any] = {"samples": len(samples),
                             "memory_mean_bytes": round(sum(memory) / len(memory))
                             if memory else None,
                             "memory_max_bytes": max(memory) if memory else None,
                             "cpu_seconds": None, "cpu_percent": None, "window_s": None}
    if found["memory_mean_bytes"] is not None:
        found["memory_mean_mib"] = round(found["memory_mean_bytes"] / MIB, 1)
    if len(cpu) >= 2:
        (t0, c0), (t1, c1) = cpu[0], cpu[-1]
        if t1 > t0 and c1 >= c0:
            used = (c1 - c0) / 1e9
            found.update(cpu_seconds=round(used, 3), window_s=round(t1 - t0, 2),
                         cpu_percent=round(100 * used / (t1 - t0), 2))
    return found


def summarize(samples: Mapping[str, Sequence[Sample]], cores: int | None,
              target: int = GIB) -> dict[str, Any]:
    """Per container figures, totals, the memory target and the top consumers."""
    containers = {name: container_figures(s) for name, s in sorted(samples.items())}
    memory = sum(c["memory_mean_bytes"] or 0 for c in containers.values())
    memory_max = sum(c["memory_max_bytes"] or 0 for c in containers.values())
    cpu = sum(c["cpu_percent"] or 0.0 for c in containers.values())
    by_memory = sorted(containers, key=lambda n: containers[n]["memory_mean_bytes"] or 0,
                       reverse=True)
    by_cpu = sorted(containers, key=lambda n: containers[n]["cpu_percent"] or 0.0,
                    reverse=True)
    return {
        "containers": containers,
        "total": {"containers": len(containers), "memory_bytes": memory,
                  "memory_mib": round(memory / MIB, 1), "memory_max_sum_bytes": memory_max,
                  "cpu_percent": round(cpu, 2),
                  "host_percent": round(cpu / cores, 2) if cores else None},
        "target_memory_bytes": target,
        "memory_met": memory <= target if containers else None,
        "top_memory": [{"service": n, "memory_mib": containers[n].get("memory_mean_mib")}
                       for n in by_memory[:TOP]],
        "top_cpu": [{"service": n, "cpu_percent": containers[n]["cpu_percent"]}
                    for n in by_cpu[:TOP]],
    }


def summary_lines(result: Mapping[str, Any]) -> list[str]:
    """The result in a few lines for the terminal."""
    total = result["total"]
    met = {True: "met", False: "NOT met", None: "not judged"}[result["memory_met"]]
    lines = [(f"{total['containers']} containers: memory {total['memory_mib']} MiB (target "
             f"<= {result['target_memory_bytes'] / MIB:.0f} MiB: {met}), CPU "
             f"{total['cpu_percent']} % of one core ({total['host_percent']} % of the host)")]
    lines.append("top memory: " + ", ".join(f"{t['service']} {t['memory_mib']} MiB"
                                            for t in result["top_memory"]))
    breakdown = (result.get("memory_by_process") or {}).get("by_command") or {}
    if breakdown:
        lines.append("resident memory by command: " + ", ".join(
            f"{name} {e['rss_mib']} MiB ({e['processes']} in {len(e['containers'])})"
            for name, e in list(breakdown.items())[:TOP + 1]))
    lines.append("top CPU: " + ", ".join(f"{t['service']} {t['cpu_percent']} %"
                                         for t in result["top_cpu"]))
    return lines


# --------------------------------------------------------------------------- the cluster


def service_of(container: Any) -> str:
    """The compose service of a container (its name when it has no service label)."""
    return (container.labels or {}).get(SERVICE_LABEL) or container.name


def read_stats(container: Any) -> dict[str, Any]:
    """One stats reading: one-shot where the engine has it, else Docker's two-reading call."""
    import docker

    try:
        return container.stats(stream=False, one_shot=True)
    except (docker.errors.InvalidVersion, docker.errors.APIError, TypeError):
        return container.stats(stream=False)


def _timed_read(container: Any, read: Callable[[Any], Mapping[str, Any]],
                clock: Callable[[], float]) -> tuple[float, Mapping[str, Any], str | None]:
    """One reading with the time it came back, or the error instead (one lost reading
    does not end the window: the next may work)."""
    try:
        stats = read(container)
    except Exception as exc:  # noqa: BLE001 - reported by the caller, sampling goes on
        return clock(), {}, str(exc)
    return clock(), stats, None


def sample_window(containers: Sequence[Any], seconds: float, interval: float,
                  read: Callable[[Any], Mapping[str, Any]] = read_stats,
                  clock: Callable[[], float] = time.monotonic,
                  sleep: Callable[[float], None] = time.sleep) -> dict[str, list[Sample]]:
    """Sample every container every ``interval`` s for ``seconds`` (a first and a last
    round in any case); a failed reading is left out."""
    samples: dict[str, list[Sample]] = {service_of(c): [] for c in containers}
    started = clock()
    rounds = 0
    while True:
        began = clock()
        # In parallel: this engine answers a one-shot reading in ms for the first container
        # of a burst and in about 1 s for each further one (measured on Docker 20.10).
        with ThreadPoolExecutor(max_workers=max(1, len(containers))) as pool:
            readings = list(pool.map(lambda c: _timed_read(c, read, clock), containers))
        for container, (at, stats, error) in zip(containers, readings):
            if error is not None:
                log(f"no stats from {service_of(container)}: {error}")
                continue
            samples[service_of(container)].append((at, cpu_ns(stats), memory_bytes(stats)))
        rounds += 1
        elapsed = clock() - started
        if elapsed >= seconds:
            return samples
        if rounds % max(1, int(15 / max(interval, 0.1))) == 0:
            log(f"sampled {rounds} rounds, {elapsed:.0f} of {seconds:g} s")
        sleep(max(0.0, min(interval - (clock() - began), seconds - elapsed)))


def process_rows(top: Mapping[str, Any]) -> list[tuple[str, int]]:
    """``(command, RSS bytes)`` per process from Docker's ``top`` with ``-o pid,rss,comm``."""
    titles = [t.upper() for t in top.get("Titles") or []]
    if "RSS" not in titles or "COMMAND" not in titles:
        return []
    rss_at, comm_at = titles.index("RSS"), titles.index("COMMAND")
    rows = []
    for proc in top.get("Processes") or []:
        try:
            rows.append((str(proc[comm_at]), int(proc[rss_at]) * 1024))
        except (IndexError, ValueError):
            continue
    return rows


def memory_by_process(tops: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Where the memory goes: resident memory summed per command over every container
    (``{command: {"processes", "rss_mib", "containers"}}``, largest first) and the
    largest process of each container."""
    by_command: dict[str, dict[str, Any]] = {}
    largest: dict[str, dict[str, Any]] = {}
    for service, top in sorted(tops.items()):
        rows = process_rows(top)
        for command, rss in rows:
            entry = by_command.setdefault(command, {"processes": 0, "rss_bytes": 0,
                                                    "containers": []})
            entry["processes"] += 1
            entry["rss_bytes"] += rss
            if service not in entry["containers"]:
                entry["containers"].append(service)
        if rows:
            command, rss = max(rows, key=lambda r: r[1])
            largest[service] = {"command": command, "rss_mib": round(rss / MIB, 1)}
    ordered = dict(sorted(by_command.items(), key=lambda kv: -kv[1]["rss_bytes"]))
    for entry in ordered.values():
        entry["rss_mib"] = round(entry.pop("rss_bytes") / MIB, 1)
    return {"by_command": ordered, "largest_per_container": largest}


def read_tops(containers: Sequence[Any]) -> dict[str, Mapping[str, Any]]:
    """Docker's ``top`` of each container with resident memory (a failure leaves it out)."""
    tops = {}
    for container in containers:
        try:
            tops[service_of(container)] = container.top(ps_args="-o pid,rss,comm")
        except Exception as exc:  # noqa: BLE001 - the breakdown is extra; go on
            log(f"no process list from {service_of(container)}: {exc}")
    return tops


def make_up() -> dict[str, Any]:
    """Run ``make up``; its wall time and the healthy-after figure make printed."""
    log("make up (may rebuild images and recreate containers)")
    started = time.monotonic()
    done = subprocess.run(["make", "--no-print-directory", "up"], cwd=REPO,
                          capture_output=True, text=True, check=False)
    wall = round(time.monotonic() - started, 1)
    if done.returncode:
        tail = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        raise RuntimeError(f"make up exited {done.returncode}: {tail[:300]}")
    found = MAKE_UP_HEALTHY.search(done.stdout)
    seconds = float(found.group(1)) if found else wall
    log(f"make up: every service healthy {seconds:g} s after 'up' ({wall} s wall)")
    return {"seconds": seconds, "wall_s": wall, "from_make": bool(found)}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line; exits 2 on a bad value."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("--seconds", type=float, default=60.0, help="window (default 60)")
    p.add_argument("--interval", type=float, default=5.0,
                   help="seconds between samples (default 5)")
    p.add_argument("--target", type=float, default=1.0,
                   help="memory target of the idle cluster, GiB (default 1)")
    p.add_argument("--make-up", action="store_true",
                   help="run and time `make up` first (may restart the cluster)")
    p.add_argument("--settle", type=float, default=0.0,
                   help="seconds to wait before sampling (default 0)")
    p.add_argument("--out", help="JSON result (default runs/idle-<time>.json)")
    args = p.parse_args(argv)
    if not 1 <= args.seconds <= 3600:
        p.error("--seconds must be between 1 and 3600")
    if not 0.5 <= args.interval <= args.seconds:
        p.error("--interval must be between 0.5 and --seconds")
    if args.target <= 0 or not 0 <= args.settle <= 3600:
        p.error("--target must be > 0 and --settle between 0 and 3600")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Sample; print and write the JSON; see the module for the exit status."""
    args = parse_args(argv)
    import docker

    from chaosmoose import _settings

    run = time.strftime("idle-%Y%m%dT%H%M%S")
    out = Path(args.out or f"runs/{run}.json")
    command = "scripts/idle_cost.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    result: dict[str, Any] = {"benchmark": "idle", "run": run, "command": command,
                              "seconds": args.seconds, "interval": args.interval,
                              "make_up": None}
    try:
        if args.make_up:
            result["make_up"] = make_up()
        client = docker.from_env(timeout=60)
        project = _settings.project(None, None)
        containers = client.containers.list(filters={"label": f"{PROJECT_LABEL}={project}"})
    except Exception as exc:  # noqa: BLE001 - Docker or the cluster is not there: exit 2
        log(f"cannot start: {str(exc).splitlines()[0] if str(exc) else repr(exc)}")
        return 2
    if not containers:
        log(f"cannot start: no running container of compose project {project}; expected the "
            "cluster (make up)")
        return 2
    if args.settle:
        log(f"settling {args.settle:g} s")
        time.sleep(args.settle)
    cores = docker_host_cores(client)
    log(f"run={run} project={project} containers={len(containers)} seconds={args.seconds:g} "
        f"interval={args.interval:g}")
    result["project"] = project
    result["started"] = time.time()
    try:
        samples = sample_window(containers, args.seconds, args.interval)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    result.update(summarize(samples, cores, round(args.target * GIB)))
    result["memory_by_process"] = memory_by_process(read_tops(containers))
    result["host"] = {"cores": cores}
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(result, indent=2)
    out.write_text(text + "\n")
    print(text)
    for line in summary_lines(result):
        log(line)
    log(f"result: {out}")
    thin = [n for n, c in result["containers"].items() if c["cpu_percent"] is None]
    if thin:
        log(f"fewer than two readings from {', '.join(thin)}")
    return 1 if thin else 0


def docker_host_cores(client: Any) -> int | None:
    """The cores of the machine the containers run on (Docker's ``NCPU``; this machine's
    when the engine does not say)."""
    try:
        cores = client.info().get("NCPU")
    except Exception:  # noqa: BLE001 - fall back to this machine's view
        cores = None
    return cores if isinstance(cores, int) and cores > 0 else os.cpu_count()


if __name__ == "__main__":
    sys.exit(main())
