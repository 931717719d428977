"""Failover benchmark: kill the leader N times, measure how long until clients write again.

    .venv/bin/python scripts/failover_benchmark.py --kills 10

Needs the cluster up (``make up``). A checksummed workload (chaosmoose's runner) writes
through every client throughout, one fsync'ed operation every ``--interval`` seconds. Each
round waits for a steady cluster (one leader, every master healthy, followers' /replica
200), kills the leader's container with SIGKILL, and measures:

- ``leader``: kill -> a different master answers /leader with 200;
- ``first write`` (the RTO): kill -> the first acknowledged file creation, on any client,
  *invoked after* Docker reports the container stopped (so the old leader cannot have
  acknowledged it; creating a file needs the master, while an append to an open chunk may
  complete on the chunkservers alone, so appends do not count);
- ``all clients``: kill -> every client has had such a write;
- ``breakdown``: where that time went, per node, from the cluster's own logs (see
  ``failover_breakdown.py``): the new leader's promotion steps, each chunkserver's and
  each client's router switch and registration with the new leader, the client's
  operation that was running at the kill, and its first file.

The killed master is started again and must rejoin before the next round. At the end the
checker re-reads everything from every client and counts lost and corrupt acknowledged
writes. Prints one line per round and a summary (p50, p95, max).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import requests
from benchlib import Timeout, figures, histories_now, leaders, log, steady, wait, writes_everywhere
from failover_breakdown import describe, round_breakdown, summarize

from chaosmoose import _docker, _settings
from chaosmoose.chunkserver._chunks import chunkserver_addresses
from chaosmoose.workload.actions import start_workload, stop_workload
from chaosmoose.workload.probes import check_acknowledged_writes


def running(container: Any) -> bool:
    """The container is still running (reloaded from the Docker API)."""
    container.reload()
    return container.status == "running"


def collect_logs(containers: dict[str, Any], since: float) -> dict[str, list[str]]:
    """Each container's log lines since ``since`` (unix time), with Docker's timestamps."""
    return {name: container.logs(timestamps=True, since=since).decode(errors="replace")
            .splitlines() for name, container in containers.items()}


def breakdown(project: str, config: dict[str, Any], killed_at: float, dead_at: float,
              new_leader: str) -> dict[str, Any]:
    """The steps of this round (``failover_breakdown.round_breakdown``)."""
    names = [new_leader, *_settings.chunkservers(config, None), *_settings.clients(config, None)]
    containers = {name: _docker.find_container(project, name) for name in names}
    return round_breakdown(killed_at, dead_at, new_leader, collect_logs(containers, killed_at - 1),
                           chunkserver_addresses(config, None), histories_now(config))


def main() -> int:
    """Run the benchmark; exit 0 when every round recovered and nothing was lost."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--interval", type=float, default=0.05, help="workload op interval (s)")
    parser.add_argument("--settle", type=float, default=3.0,
                        help="seconds of steady cluster before each kill")
    args = parser.parse_args()
    run = time.strftime("bench-%Y%m%dT%H%M%S")
    config = {"chaosmoose_run_dir": f"runs/{run}", "chaosmoose_run_id": run}
    masters = _settings.masters(config, None)
    project = _settings.project(config, None)
    status = requests.get(f"{next(iter(masters.values()))}/status", timeout=2).json()
    timing = status.get("timing", {})
    log(f"run={run} kills={args.kills} masters={','.join(masters)} "
        f"timing={json.dumps(timing, sort_keys=True)}")
    wait("a steady cluster", lambda: steady(masters), 120)
    start_workload(interval=args.interval, op_timeout=60, max_seconds=3600, configuration=config)
    rounds = []
    try:
        for number in range(1, args.kills + 1):
            leader = wait("a steady cluster", lambda: steady(masters), 180)
            time.sleep(args.settle)
            leader = wait("a steady cluster", lambda: steady(masters), 60)
            container = _docker.find_container(project, leader)
            killed_at = time.time()
            container.kill()
            dead_at = wait("the killed master's container to stop",
                           lambda c=container: not running(c) and time.time(), 30, step=0.01)
            new = wait("a new leader",
                       lambda old=leader: [m for m in leaders(masters) if m != old], 60)
            leader_s = time.time() - killed_at
            try:
                firsts = wait("writes on every client",
                              lambda since=dead_at: writes_everywhere(config, since), 120,
                              step=0.5)
            except Timeout as exc:
                log(f"round={number} killed={leader} new_leader={new[0]} leader={leader_s:.2f}s "
                    f"STALLED: {exc}")
                rounds.append({"killed": leader, "killed_at": killed_at, "new": new[0],
                               "leader_s": leader_s, "stalled": True})
                container.start()
                continue
            first_s = min(firsts.values()) - killed_at
            all_s = max(firsts.values()) - killed_at
            steps = breakdown(project, config, killed_at, dead_at, new[0])
            rounds.append({"killed": leader, "killed_at": killed_at, "new": new[0],
                           "leader_s": leader_s,
                           "first_write_s": first_s, "all_clients_s": all_s,
                           "breakdown": steps})
            log(f"round={number} killed={leader} new_leader={new[0]} leader={leader_s:.2f}s "
                f"first_write={first_s:.2f}s all_clients={all_s:.2f}s")
            for line in describe(steps):
                log(line)
            container.start()
    finally:
        stop_workload(configuration=config)
        for name in masters:  # leave no master down
            _docker.find_container(project, name).start()
    wait("the killed master to rejoin", lambda: steady(masters), 180)
    report = check_acknowledged_writes(configuration=config)
    summary = {"rounds": len(rounds), "lost": report.get("lost"), "corrupt": report.get("corrupt"),
               "acknowledged": report.get("acknowledged"), "valid": report.get("valid")}
    summary["stalled_rounds"] = sum(1 for r in rounds if r.get("stalled"))
    summary["timing"] = timing
    for key in ("leader_s", "first_write_s", "all_clients_s"):
        stats = figures([r[key] for r in rounds if key in r])
        if stats is not None:
            summary[key] = stats
    summary["breakdown"] = summarize([r["breakdown"] for r in rounds if "breakdown" in r])
    Path(f"runs/{run}/benchmark.json").write_text(json.dumps({**summary, "per_round": rounds}, indent=2))
    print(json.dumps(summary, indent=2))
    ok = report.get("lost") == 0 and report.get("corrupt") == 0 and not summary["stalled_rounds"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
