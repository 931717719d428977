"""``python3 -m mooseng.toxiproxy``: the server, with toxiproxy-server's flags.

Flags take one or two dashes, as Go's flag package does (``-host=0.0.0.0`` or
``--host 0.0.0.0``); ``TOXIPROXY_HOST``, ``TOXIPROXY_PORT`` and ``TOXIPROXY_CONFIG`` are the
defaults when a flag is absent. Proxies in the config file (the list ``POST /populate``
takes) start before the API listens; an entry that fails is logged and skipped, but an
unreadable or malformed file exits with status 1, as does an API port that cannot be bound.
SIGTERM and SIGINT stop the server cleanly (exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import logging.handlers
import os
import queue
import random
import signal
import sys
from typing import Any

from mooseng.toxiproxy import SERVER_NAME, TOXIPROXY_VERSION, log_event
from mooseng.toxiproxy.api import ApiServer
from mooseng.toxiproxy.proxy import ProxyRegistry

log = logging.getLogger("mooseng.toxiproxy")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line, with the environment variables as defaults."""
    parser = argparse.ArgumentParser(
        prog="python3 -m mooseng.toxiproxy", allow_abbrev=False,
        description="Toxiproxy-2.x-compatible TCP fault proxy (HTTP API on --port).")
    parser.add_argument("-host", "--host", default=os.environ.get("TOXIPROXY_HOST", "localhost"),
                        help="API listen host (env TOXIPROXY_HOST; default localhost)")
    parser.add_argument("-port", "--port", type=int,
                        default=os.environ.get("TOXIPROXY_PORT", "8474"),
                        help="API listen port (env TOXIPROXY_PORT; default 8474)")
    parser.add_argument("-config", "--config", default=os.environ.get("TOXIPROXY_CONFIG", ""),
                        help="JSON list of proxies to create at start (env TOXIPROXY_CONFIG)")
    parser.add_argument("-seed", "--seed", type=int, default=None,
                        help="seed for the toxics' randomness (toxicity, jitter, slicer)")
    parser.add_argument("-log-level", "--log-level",
                        default=os.environ.get("LOG_LEVEL", "info"),
                        choices=["debug", "info", "warning", "error"], type=str.lower,
                        help="log level (env LOG_LEVEL; default info)")
    parser.add_argument("-version", "--version", action="store_true",
                        help="print the version and exit")
    # Accepted for command-line compatibility with toxiproxy-server; no metrics here.
    parser.add_argument("-proxy-metrics", "--proxy-metrics", action="store_true",
                        help=argparse.SUPPRESS)
    parser.add_argument("-runtime-metrics", "--runtime-metrics", action="store_true",
                        help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def setup_logging(level: str) -> logging.handlers.QueueListener:
    """One line per event to stderr through a queue, so a slow stderr cannot stall the
    event loop. Returns the listener (stop it to flush)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s: %(message)s"))
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, handler)
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(records)]
    root.setLevel(getattr(logging, level.upper()))
    listener.start()
    return listener


def read_config(path: str) -> list[Any]:
    """The proxy list in ``path`` (OSError or ValueError if unreadable or malformed)."""
    with open(path, encoding="utf-8") as handle:
        entries = json.load(handle)
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a JSON list of proxies, got "  # noqa: TRY004
                         f"{type(entries).__name__}")
    return entries


async def serve(host: str, port: int, entries: list[Any]) -> int:
    """Load ``entries``, serve the API on (host, port) until SIGTERM/SIGINT; exit status."""
    registry = ProxyRegistry()
    if entries:
        failures = await registry.load(entries)
        log_event(log, logging.WARNING if failures else logging.INFO, "config_loaded",
                  proxies=len(entries) - len(failures), failed=len(failures))
    api = ApiServer(registry)
    try:
        await api.start(host, port)
    except OSError as exc:
        log_event(log, logging.ERROR, "api_listen_failed", host=host, port=port, error=str(exc))
        await registry.close()
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log_event(log, logging.INFO, "shutdown", proxies=len(registry.proxies))
    await api.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the server; the process exit status."""
    args = parse_args(argv)
    if args.version:
        print(f"toxiproxy-server version {TOXIPROXY_VERSION} ({SERVER_NAME})")
        return 0
    listener = setup_logging(args.log_level)
    try:
        if args.seed is not None:
            random.seed(args.seed)
        log_event(log, logging.INFO, "starting", version=TOXIPROXY_VERSION, server=SERVER_NAME,
                  pid=os.getpid(), config=args.config or None)
        entries: list[Any] = []
        if args.config:
            try:
                entries = read_config(args.config)
            except (OSError, ValueError) as exc:
                log_event(log, logging.ERROR, "config_unreadable", config=args.config,
                          error=str(exc))
                return 1
        return asyncio.run(serve(args.host, args.port, entries))
    finally:
        listener.stop()


if __name__ == "__main__":
    sys.exit(main())
