"""``python -m mooseng.barrier tap|proxy``: run one side of the reply barrier."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from mooseng.barrier import protocol
from mooseng.barrier.proxy import ReplyBarrier
from mooseng.barrier.tap import SYNC_MODES, Tap


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host, int(port)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m mooseng.barrier")
    sub = top.add_subparsers(dest="command", required=True)
    tap = sub.add_parser("tap", help="follower side: persist and acknowledge the changelog")
    tap.add_argument("--master", type=_address, required=True,
                     help="mfsmaster's metalogger port (through the follower's router)")
    tap.add_argument("--ack", type=_address, action="append", default=[],
                     help="a barrier's ack port (repeatable)")
    tap.add_argument("--folder", type=Path, required=True, help="where the tap's changelogs go")
    tap.add_argument("--anchor-dir", type=Path,
                     help="the follower metalogger's DATA_PATH (acks wait until the tap's "
                          "segment starts right after what it covers)")
    tap.add_argument("--node", default="follower")
    tap.add_argument("--epoch", type=int, default=0)
    tap.add_argument("--sync", choices=SYNC_MODES, default="fsync")
    proxy = sub.add_parser("proxy", help="leader side: hold replies until a follower acks")
    proxy.add_argument("--master", type=_address, required=True, help="mfsmaster's client port")
    proxy.add_argument("--listen", type=_address, required=True, help="where clients connect")
    proxy.add_argument("--ack-listen", type=_address, required=True, help="where taps connect")
    proxy.add_argument("--off", action="store_true", help="frame and forward only (no holding)")
    proxy.add_argument("--quorum", type=int, default=1, help="followers that must ack")
    proxy.add_argument("--hold-timeout", type=float, default=10.0,
                       help="close a client connection whose reply waits longer (0: never)")
    proxy.add_argument("--max-in-flight", type=int, default=4, help="INFO probes in flight")
    proxy.add_argument("--epoch", type=int, default=0)
    return top


async def _run(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if args.command == "tap":
        anchor = None
        if args.anchor_dir:
            sync = args.sync == "fsync"
            anchor = lambda: protocol.covered_version(args.anchor_dir, sync=sync)
        tap = Tap(args.master, args.ack, args.folder, args.node, args.sync, anchor,
                  epoch=args.epoch)
        task = asyncio.create_task(tap.run())
        await stop.wait()
        task.cancel()
        logging.getLogger("mooseng.barrier.tap").info(
            "event=tap_stopped received=%d batches=%d syncs=%d acked=%d", tap.received,
            tap.batches, tap.file.syncs, tap.acked)
        return
    barrier = ReplyBarrier(args.master, args.listen, args.ack_listen, enabled=not args.off,
                           quorum=args.quorum, hold_timeout=args.hold_timeout,
                           max_in_flight=args.max_in_flight, epoch=args.epoch)
    await barrier.start()
    await stop.wait()
    await barrier.stop()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s",
                        stream=sys.stderr)
    asyncio.run(_run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
