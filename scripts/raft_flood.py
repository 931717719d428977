#!/usr/bin/env python3
"""Flood a master's Raft port as a peer without the password (issue 13, item 7).

Raft is reachable only on the masters' own network (``<project>_raft``: masters and
Toxiproxy), so run it in a master container to see the flood guard (stdlib only):

    docker compose exec -T master-2 python3 - --watch < scripts/raft_flood.py

From a chunkserver or client container every connection ends ``unreachable`` (the holder's
Raft alias does not resolve there, or nothing answers): that is the network isolation.

It finds the lease holder (GET /leader on each agent, ``--masters``), then opens
``--connections`` TCP connections to its Raft port (``--port``, 9440) at its Raft-network
alias ``<holder>.<--raft-domain>`` (``raft``; empty: the plain name), announces a
``--megabytes`` MiB frame on each and sends it, while polling the holder's /status every
100 ms. Prints JSON: bytes each connection could send before the agent cut it, and what
the agents did meanwhile (lease epoch and holder before and after, decisions seen that say
a renewal failed or the node fenced, freezes). Exits 0 when the lease stayed with the same
holder and epoch and no renewal failure was seen; else 1.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import threading
import time
import urllib.request


def status(api: str) -> dict:
    with urllib.request.urlopen(f"{api}/status", timeout=2) as reply:
        return json.loads(reply.read())


def leads(api: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api}/leader", timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


def flood(host: str, port: int, size: int, result: dict) -> None:
    sent, chunk = 0, b"\xa5" * 65536
    began = time.monotonic()
    try:
        sock = socket.create_connection((host, port), timeout=10)
    except OSError as exc:
        result.update(outcome=f"unreachable ({type(exc).__name__}: {exc})", sent_bytes=0,
                      seconds=round(time.monotonic() - began, 3))
        return
    try:
        with sock:
            sock.sendall(struct.pack("i", size))
            while sent < size:
                sock.sendall(chunk)
                sent += len(chunk)
        result["outcome"] = "all sent"
    except OSError as exc:
        result["outcome"] = f"cut ({type(exc).__name__})"
    result.update(sent_bytes=sent, seconds=round(time.monotonic() - began, 3))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--masters", default="master-1,master-2,master-3")
    parser.add_argument("--api-port", type=int, default=9430)
    parser.add_argument("--port", type=int, default=9440, help="the agents' Raft port")
    parser.add_argument("--raft-domain", default="raft",
                        help="Raft-network alias suffix (MOOSENG_RAFT_DOMAIN); empty: plain name")
    parser.add_argument("--megabytes", type=int, default=32)
    parser.add_argument("--connections", type=int, default=3)
    parser.add_argument("--watch-seconds", type=float, default=10.0)
    parser.add_argument("--watch", action="store_true", help="(kept for the documented command)")
    args = parser.parse_args()
    apis = {m: f"http://{m}:{args.api_port}" for m in args.masters.split(",")}
    holder = next((m for m, api in apis.items() if leads(api)), None)
    if holder is None:
        print("no master answers /leader with 200; nothing to flood", file=sys.stderr)
        return 1
    before = status(apis[holder])["lease"]
    results = [{} for _ in range(args.connections)]
    target = f"{holder}.{args.raft_domain}" if args.raft_domain else holder
    threads = [threading.Thread(target=flood, args=(target, args.port, args.megabytes << 20, r))
               for r in results]
    seen: dict[str, set[str]] = {m: set() for m in apis}
    freezes = {m: None for m in apis}
    for thread in threads:
        thread.start()
    ends = time.monotonic() + args.watch_seconds
    polls = 0
    while time.monotonic() < ends:
        for master, api in apis.items():
            try:
                data = status(api)
            except OSError:
                seen[master].add("(agent unreachable)")
                continue
            decision = data.get("last_decision", "")
            if "renewal failed" in decision or "self-fenced" in decision or "froze" in decision:
                seen[master].add(decision)
            freezes[master] = data.get("freezes")
        polls += 1
        time.sleep(0.1)
    for thread in threads:
        thread.join(30)
    after = status(apis[holder])["lease"]
    moved = (before["holder"], before["epoch"]) != (after["holder"], after["epoch"])
    troubled = {m: sorted(d) for m, d in seen.items() if d}
    print(json.dumps({"target": f"{target}:{args.port}", "floods": results,
                      "lease_before": before, "lease_after": after, "polls": polls,
                      "troubled_decisions": troubled, "freezes": freezes}, indent=1))
    ok = not moved and not troubled
    print(f"{'PASS' if ok else 'FAIL'}: lease {'moved' if moved else 'unchanged'}, "
          f"{sum(len(d) for d in troubled.values())} renewal/fence/freeze decisions seen",
          file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
