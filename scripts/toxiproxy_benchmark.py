#!/usr/bin/env python3
"""Benchmark the Toxiproxy-compatible server (mooseng.toxiproxy) on loopback.

One run starts the server as a subprocess (``python3 -m mooseng.toxiproxy``) and an
upstream process (a sink that counts bytes, an echo server), then measures:

(a) bulk throughput: 64 KiB writes for ``--seconds`` through one proxy without toxics vs a
    direct connection to the same sink (ratio; target >= 0.5 of direct);
(b) 1-byte request/response round trips through the proxy vs direct (p50/p99; target: the
    proxy adds < 1 ms at p50);
(c) idle CPU of the server process with ``--idle-proxies`` proxies loaded, CPU seconds over
    ``--idle-seconds`` (from /proc/<pid>/stat; the script needs only the standard library).

Progress goes to stderr; the JSON result to stdout (and ``--out FILE``). Only loopback
addresses are used; every loop is bounded in time or count.

    scripts/toxiproxy_benchmark.py --seconds 3 --out /tmp/toxiproxy-bench.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BLOCK = 64 * 1024


def progress(message: str) -> None:
    """One progress line on stderr."""
    print(f"[toxiproxy-bench] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    """A loopback port free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- the upstream process: sink and echo ---------------------------------------------------


def _serve_forever(listener: socket.socket, handler: Callable[[socket.socket], None]) -> None:
    """Accept on ``listener`` and run ``handler`` per connection in a thread."""
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=handler, args=(conn,), daemon=True).start()


def _sink(conn: socket.socket) -> None:
    """Read and discard until EOF, then answer the byte count (8 bytes, big-endian)."""
    buffer = bytearray(1 << 20)
    total = 0
    with conn:
        while received := conn.recv_into(buffer):
            total += received
        conn.sendall(struct.pack("!Q", total))


def _echo(conn: socket.socket) -> None:
    """Echo until EOF."""
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)


def upstream_main(pipe: Connection) -> None:
    """Upstream process body: sink and echo listeners; their ports go back on ``pipe``."""
    listeners = []
    for handler in (_sink, _echo):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        listeners.append(listener)
        threading.Thread(target=_serve_forever, args=(listener, handler), daemon=True).start()
    pipe.send([listener.getsockname()[1] for listener in listeners])
    pipe.recv()  # until the benchmark says stop (or closes the pipe)


# --- the server under test -----------------------------------------------------------------


def api(url: str, method: str, path: str, body: Any = None) -> Any:
    """One JSON call to the server's API."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        payload = response.read()
    return json.loads(payload) if payload else None


def start_server(api_port: int) -> subprocess.Popen[bytes]:
    """``python3 -m mooseng.toxiproxy`` on 127.0.0.1:``api_port``, once it answers."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen(
        [sys.executable, "-m", "mooseng.toxiproxy", "-host=127.0.0.1", f"-port={api_port}",
         "-log-level=warning"], env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            api(f"http://127.0.0.1:{api_port}", "GET", "/version")
            return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}") from None
            time.sleep(0.05)
    process.kill()
    raise TimeoutError("server did not answer within 20 s")


# --- measurements --------------------------------------------------------------------------


def connect(port: int) -> socket.socket:
    """A TCP_NODELAY connection to 127.0.0.1:``port``."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def bulk(port: int, seconds: float) -> dict[str, float]:
    """Write 64 KiB blocks for ``seconds`` to the sink at ``port``; MB/s once the sink
    confirmed every byte."""
    block = b"\x00" * BLOCK
    with connect(port) as sock:
        started = time.monotonic()
        deadline = started + seconds
        sent = 0
        while time.monotonic() < deadline:
            sock.sendall(block)
            sent += BLOCK
        sock.shutdown(socket.SHUT_WR)
        ack = b""
        while len(ack) < 8:
            chunk = sock.recv(8 - len(ack))
            if not chunk:
                raise RuntimeError("sink closed without its count")
            ack += chunk
        elapsed = time.monotonic() - started
    received = struct.unpack("!Q", ack)[0]
    if received != sent:
        raise RuntimeError(f"sink counted {received} bytes, {sent} were sent")
    return {"bytes": sent, "seconds": round(elapsed, 3), "mb_per_s": round(sent / elapsed / 1e6, 1)}


def round_trips(port: int, count: int, warmup: int = 200) -> dict[str, float]:
    """``count`` 1-byte request/response round trips to the echo at ``port`` (ms)."""
    samples = []
    with connect(port) as sock:
        for index in range(warmup + count):
            started = time.perf_counter_ns()
            sock.sendall(b"x")
            if sock.recv(1) != b"x":
                raise RuntimeError("echo answered wrongly")
            if index >= warmup:
                samples.append((time.perf_counter_ns() - started) / 1e6)
    samples.sort()
    return {"count": count, "p50_ms": round(statistics.median(samples), 4),
            "p99_ms": round(samples[int(len(samples) * 0.99) - 1], 4),
            "max_ms": round(samples[-1], 4)}


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of process ``pid`` (from /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    """Resident memory of process ``pid`` in MiB (from /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def idle_cpu(pid: int, seconds: float) -> dict[str, float]:
    """CPU seconds the process used over ``seconds`` of idling, and its RSS."""
    before = cpu_seconds(pid)
    time.sleep(seconds)
    used = cpu_seconds(pid) - before
    return {"seconds": seconds, "cpu_seconds": round(used, 4),
            "cpu_percent": round(100 * used / seconds, 3), "rss_mib": rss_mib(pid)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole benchmark; the result document."""
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    upstream = context.Process(target=upstream_main, args=(child,), daemon=True)
    upstream.start()
    sink_port, echo_port = parent.recv()
    api_port = free_port()
    progress(f"upstream sink :{sink_port} echo :{echo_port}; starting server on :{api_port}")
    server = start_server(api_port)
    url = f"http://127.0.0.1:{api_port}"
    try:
        sink_proxy = api(url, "POST", "/proxies", {"name": "bench>sink", "listen": "127.0.0.1:0",
                                                   "upstream": f"127.0.0.1:{sink_port}"})
        echo_proxy = api(url, "POST", "/proxies", {"name": "bench>echo", "listen": "127.0.0.1:0",
                                                   "upstream": f"127.0.0.1:{echo_port}"})
        sink_proxy_port = int(sink_proxy["listen"].rsplit(":", 1)[1])
        echo_proxy_port = int(echo_proxy["listen"].rsplit(":", 1)[1])

        throughput: dict[str, Any] = {"direct": [], "proxied": []}
        for round_index in range(args.rounds):
            for label, port in (("direct", sink_port), ("proxied", sink_proxy_port)):
                progress(f"bulk {label} round {round_index + 1}/{args.rounds}: "
                         f"{args.seconds} s of {BLOCK // 1024} KiB writes")
                throughput[label].append(bulk(port, args.seconds))
        direct_mbs = statistics.median(each["mb_per_s"] for each in throughput["direct"])
        proxied_mbs = statistics.median(each["mb_per_s"] for each in throughput["proxied"])
        throughput.update(direct_mb_per_s=direct_mbs, proxied_mb_per_s=proxied_mbs,
                          ratio=round(proxied_mbs / direct_mbs, 3))

        progress(f"round trips: {args.round_trips} direct, then through the proxy")
        latency = {"direct": round_trips(echo_port, args.round_trips),
                   "proxied": round_trips(echo_proxy_port, args.round_trips)}
        latency["added_p50_ms"] = round(latency["proxied"]["p50_ms"]
                                        - latency["direct"]["p50_ms"], 4)
        latency["added_p99_ms"] = round(latency["proxied"]["p99_ms"]
                                        - latency["direct"]["p99_ms"], 4)

        progress(f"loading {args.idle_proxies} idle proxies, then {args.idle_seconds} s idle")
        populate = [{"name": f"idle-{index}>master-{index % 3 + 1}:cl", "listen": "127.0.0.1:0",
                     "upstream": f"127.0.0.1:{echo_port}"} for index in range(args.idle_proxies)]
        api(url, "POST", "/populate", populate)
        time.sleep(1.0)
        idle = idle_cpu(server.pid, args.idle_seconds)
        idle["proxies"] = len(api(url, "GET", "/proxies"))
    finally:
        server.terminate()
        server.wait(10)
        parent.send("stop")
        upstream.join(5)
        if upstream.is_alive():
            upstream.kill()

    return {
        "benchmark": "mooseng.toxiproxy",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_1m": round(os.getloadavg()[0], 2)},
        "throughput": throughput,
        "round_trip": latency,
        "idle": idle,
        "targets": {
            "throughput_ratio_at_least_0.5": throughput["ratio"] >= 0.5,
            "added_p50_under_1_ms": latency["added_p50_ms"] < 1.0,
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, print JSON; 0 when the targets are met, else 1."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="duration of each bulk throughput run (default 3)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="bulk runs per path, median taken (default 2)")
    parser.add_argument("--round-trips", type=int, default=3000,
                        help="1-byte round trips per path (default 3000)")
    parser.add_argument("--idle-proxies", type=int, default=70,
                        help="proxies loaded for the idle CPU measurement (default 70)")
    parser.add_argument("--idle-seconds", type=float, default=10.0,
                        help="idle measurement window (default 10)")
    parser.add_argument("--out", type=Path, help="also write the JSON result here")
    args = parser.parse_args(argv)
    result = run(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
        progress(f"wrote {args.out}")
    return 0 if all(result["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
