#!/usr/bin/env python3
"""Load an agent's HTTP API the way issue 13 (item 8) measured it, with bounded effort.

Against one agent URL (default the leader's published port, http://127.0.0.1:9431):
``--stalled`` connections that send half a request and stop, then ``--clients`` concurrent
GETs of ``--path`` (one fresh connection each). Meanwhile a router-like checker asks the
lease holder's ``/leader`` every 250 ms with a 1 s timeout (HAProxy's ``timeout check``).
Before and after, every agent's ``/status`` is read: lease epoch, holder, leader changes and
freezes must not move.

Prints the latency figures as JSON (p50, p90, max, failures, missed checks, stalled
connections the server cut) and exits 0 when every request took under ``--budget`` seconds,
none failed, no check was missed and the lease did not move; else 1. Stdlib only; every
loop is bounded.

    scripts/api_load.py --url http://127.0.0.1:9431 --clients 200 --stalled 50
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import sys
import threading
import time
import urllib.parse

AGENTS = ["http://127.0.0.1:9431", "http://127.0.0.1:9432", "http://127.0.0.1:9433"]


def get(url: str, path: str, timeout: float) -> tuple[int, bytes]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        return answer.status, answer.read()
    finally:
        conn.close()


def cluster_state(agents: list[str]) -> dict[str, object]:
    state: dict[str, object] = {}
    for url in agents:
        try:
            _, body = get(url, "/status", 3.0)
            data = json.loads(body)
            state[url] = {"holder": data["lease"]["holder"], "epoch": data["lease"]["epoch"],
                          "leader_changes": data["leader_changes"], "freezes": data["freezes"]}
        except (OSError, ValueError, KeyError) as exc:
            state[url] = {"error": str(exc)}
    return state


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=AGENTS[0], help="the agent to load")
    parser.add_argument("--agents", default=",".join(AGENTS), help="every agent, for /status")
    parser.add_argument("--path", default="/status")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--stalled", type=int, default=50)
    parser.add_argument("--budget", type=float, default=1.0)
    args = parser.parse_args()
    agents = args.agents.split(",")
    before = cluster_state(agents)
    holder_url = next((u for u in agents if get_ok(u, "/leader")), args.url)

    stop = threading.Event()
    checks = {"sent": 0, "missed": 0}

    def checker() -> None:
        while not stop.wait(0.25):
            checks["sent"] += 1
            try:
                if get(holder_url, "/leader", 1.0)[0] != 200:
                    checks["missed"] += 1
            except OSError:
                checks["missed"] += 1

    parts = urllib.parse.urlsplit(args.url)
    stalled = []
    for _ in range(args.stalled):
        sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
        sock.sendall(b"GET /status HTTP/1.1\r\nHost: x\r\n")  # never finished
        stalled.append(sock)
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(args.clients)

    def client() -> None:
        barrier.wait()
        began = time.monotonic()
        try:
            status = get(args.url, args.path, 10.0)[0]
            error = None if status == 200 else f"status {status}"
        except OSError as exc:
            error = repr(exc)
        with lock:
            latencies.append(time.monotonic() - began)
            if error:
                failures.append(error)

    watch = threading.Thread(target=checker, daemon=True)
    watch.start()
    threads = [threading.Thread(target=client, daemon=True) for _ in range(args.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    time.sleep(1.0)
    stop.set()
    watch.join(3)
    cut = 0
    for sock in stalled:
        sock.settimeout(5)
        try:
            cut += sock.recv(1) == b""
        except TimeoutError:
            pass  # still held open by the server
        except OSError:
            cut += 1  # reset
        sock.close()
    after = cluster_state(agents)
    result = {"url": args.url, "path": args.path, "clients": args.clients, "stalled": args.stalled,
              "p50_s": round(percentile(latencies, 0.5), 3),
              "p90_s": round(percentile(latencies, 0.9), 3),
              "max_s": round(max(latencies, default=float("nan")), 3),
              "failures": failures[:10], "failed": len(failures),
              "router_checks": checks["sent"], "router_checks_missed": checks["missed"],
              "stalled_cut_by_server": cut, "lease_before": before, "lease_after": after}
    print(json.dumps(result, indent=1))
    moved = any(before.get(u) != after.get(u) for u in agents)
    ok = (not failures and result["max_s"] < args.budget and not checks["missed"] and not moved)
    print(f"{'PASS' if ok else 'FAIL'}: max {result['max_s']} s (budget {args.budget} s), "
          f"{len(failures)} failed, {checks['missed']} of {checks['sent']} router checks missed, "
          f"lease {'moved' if moved else 'unchanged'}", file=sys.stderr)
    return 0 if ok else 1


def get_ok(url: str, path: str) -> bool:
    try:
        return get(url, path, 2.0)[0] == 200
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
