"""The changelog tap: one more metalogger on a follower, one that acknowledges.

It registers with the leader's mfsmaster like mfsmetalogger (through the follower's
metalogger route, so a partition cuts it), appends every change line to its own changelog
file in mfsmetalogger's text format, makes the batch durable (``sync``), and then tells
the leader's barrier the highest change it holds without a hole (``ack``).

Its files are named ``changelog_ml_back.<100+segment>.mfs`` in their own folder: a name
``mfsmaster -a`` merges (mfsmaster/changelog.c ``changelog_checkname``) and that
mfsmetalogger never writes, renames or deletes (it uses changelog_ml.N and
changelog_ml_back.0/1), so promotion links them into DATA_PATH as they are.

Acknowledged means restorable: the tap acknowledges what the follower's own metalogger files
covered when it started (``anchor``: metadata file, flushed changelog lines, fdatasync'ed
first), and its own lines only while its current segment starts right after what those
files cover, so that metalogger files plus tap files restore every acknowledged change
without a hole.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from mooseng.barrier import protocol

log = logging.getLogger("mooseng.barrier.tap")

SEGMENT_BASE = 100
SEGMENT_NAME = re.compile(r"^changelog_ml_back\.(\d+)\.mfs$")
SYNC_MODES = ("fsync", "write")


class ChangelogFile:
    """The tap's changelog segments: append batches, make them durable, know what is held."""

    def __init__(self, folder: Path, sync: str = "fsync") -> None:
        if sync not in SYNC_MODES:
            raise ValueError(f"sync is {sync!r} but should be one of {', '.join(SYNC_MODES)}")
        self.folder = folder
        self.sync = sync
        folder.mkdir(parents=True, exist_ok=True)
        self.segment = max(self.segments(), default=SEGMENT_BASE - 1)
        self.first = 0   # first change of the current segment (0: segment empty)
        self.last = 0    # last change written to the current segment
        self._fd: int | None = None
        if self.segment >= SEGMENT_BASE:
            path = self.path(self.segment)
            self.last = protocol.last_version_in_changelog(path)
            self.first = _first_version(path)
            self._truncate_partial_line(path)
        self.syncs = 0

    def segments(self) -> list[int]:
        found = []
        for entry in self.folder.iterdir():
            match = SEGMENT_NAME.match(entry.name)
            if match and int(match.group(1)) >= SEGMENT_BASE:
                found.append(int(match.group(1)))
        return sorted(found)

    def path(self, segment: int) -> Path:
        return self.folder / f"changelog_ml_back.{segment}.mfs"

    def new_segment(self) -> None:
        """Start a new file (after a hole in the stream: lines in one file must be contiguous
        for the restore to use them)."""
        self.close()
        self.segment = max(self.segment + 1, SEGMENT_BASE)
        self.first = self.last = 0

    def append(self, entries: list[protocol.LogEntry]) -> None:
        """Write ``entries`` (contiguous, after ``last``) and make them durable per ``sync``."""
        if not entries:
            return
        if self._fd is None:
            self.segment = max(self.segment, SEGMENT_BASE)
            self._fd = os.open(self.path(self.segment), os.O_WRONLY | os.O_CREAT | os.O_APPEND,
                               0o644)
        data = b"".join(entry.line() for entry in entries)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if self.sync == "fsync":
            os.fdatasync(self._fd)
            self.syncs += 1
        if not self.first:
            self.first = entries[0].version
        self.last = entries[-1].version

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @staticmethod
    def _truncate_partial_line(path: Path) -> None:
        data = path.read_bytes()
        cut = data.rfind(b"\n") + 1
        if cut != len(data):
            with path.open("r+b") as handle:
                handle.truncate(cut)


def _first_version(path: Path) -> int:
    try:
        with path.open("rb") as handle:
            head = handle.readline()
    except OSError:
        return 0
    number, sep, _ = head.partition(b": ")
    return int(number) if sep and number.isdigit() else 0


class Tap:
    """Follow one mfsmaster's changelog stream, persist it, acknowledge it."""

    def __init__(self, master: tuple[str, int], acks: list[tuple[str, int]], folder: Path,
                 node: str, sync: str = "fsync", anchor: Callable[[], int] | None = None,
                 reconnect_delay: float = 1.0, timeout_s: int = 10, epoch: int = 0) -> None:
        self.master = master
        self.ack_targets = acks
        self.node = node
        self.file = ChangelogFile(folder, sync)
        self.anchor = anchor          # highest change the follower's metalogger files cover
        self.reconnect_delay = reconnect_delay
        self.timeout_s = timeout_s
        self.epoch = epoch
        self.anchored = False
        self.base = 0                 # covered by the metalogger's files when we started
        self.acked = 0                # what we last announced
        self._ack_writers: dict[tuple[str, int], asyncio.StreamWriter] = {}
        self.received = 0
        self._last_read = 0.0
        self.batches = 0

    # --- what may be acknowledged -------------------------------------------------------
    def ackable(self) -> int:
        """The highest change a restore from metalogger files plus our segment reaches."""
        if self.file.last and not self.anchored:
            covered = self.anchor() if self.anchor is not None else 0
            if self.file.first and covered >= self.file.first - 1:
                self.anchored = True
                log.info("event=tap_anchored first=%d covered=%d", self.file.first, covered)
        return max(self.base, self.file.last if self.anchored else 0)

    def next_version(self) -> int:
        """Where to ask the master to resume: after our segment, else after what the
        follower's metalogger files already cover (then that is acknowledged at once: a
        caught-up follower must not wait for the next change to confirm the current one);
        0 (stream from now on) when we know nothing."""
        if self.file.last:
            return self.file.last + 1
        covered = self.anchor() if self.anchor is not None else 0
        self.base = max(self.base, covered)
        return covered + 1 if covered else 0

    def accept(self, entries: list[protocol.LogEntry]) -> None:
        """Persist the contiguous part of a batch; a hole starts a new, unanchored segment."""
        batch: list[protocol.LogEntry] = []
        for entry in entries:
            expected = self.file.last + 1 if self.file.last else 0
            if batch:
                expected = batch[-1].version + 1
            if expected and entry.version < expected:
                continue  # resent after reconnect: already held
            if expected and entry.version > expected:
                log.warning("event=tap_hole expected=%d got=%d action=new_segment", expected,
                            entry.version)
                self.file.append(batch)
                batch = []
                self.file.new_segment()
                self.anchored = False
            batch.append(entry)
        self.file.append(batch)

    # --- loops ----------------------------------------------------------------------------
    async def run(self) -> None:
        ackers = [asyncio.create_task(self._ack_loop(target)) for target in self.ack_targets]
        ackers.append(asyncio.create_task(self.recheck_anchor()))
        try:
            while True:
                try:
                    await self._follow_once()
                except (OSError, asyncio.IncompleteReadError, protocol.ProtocolError) as exc:
                    log.warning("event=tap_disconnected master=%s:%d reason=%r", *self.master,
                                str(exc))
                await asyncio.sleep(self.reconnect_delay)
        finally:
            for task in ackers:
                task.cancel()
            self.file.close()

    async def _follow_once(self) -> None:
        reader, writer = await asyncio.open_connection(*self.master)
        watchdog = asyncio.create_task(self._keepalive(writer))
        try:
            start = self.next_version()
            writer.write(protocol.register_metalogger(self.timeout_s, start))
            await writer.drain()
            log.info("event=tap_registered master=%s:%d next_version=%d", *self.master, start)
            self._announce()
            framer = protocol.Framer(protocol.MAX_PAYLOAD)
            while True:
                data = await reader.read(1 << 20)
                if not data:
                    raise ConnectionError("master closed the connection")
                self._last_read = time.monotonic()
                entries = []
                for frame in framer.feed(data):
                    if frame.kind == protocol.MATOAN_METACHANGES_LOG:
                        entry = protocol.parse_metachanges(frame.payload)
                        if entry is not None:
                            entries.append(entry)
                if entries:
                    self.received += len(entries)
                    self.batches += 1
                    self.accept(entries)
                    self._announce()
        finally:
            watchdog.cancel()
            writer.close()

    async def _keepalive(self, writer: asyncio.StreamWriter) -> None:
        """Send NOPs (mfsmaster drops a metalogger silent for its timeout) and drop a master
        silent for ours (it sends NOPs every timeout/3)."""
        self._last_read = time.monotonic()
        while True:
            await asyncio.sleep(self.timeout_s / 3)
            writer.write(protocol.pack(protocol.ANTOAN_NOP))
            if time.monotonic() - self._last_read > self.timeout_s:
                log.warning("event=tap_master_silent seconds=%d action=reconnect", self.timeout_s)
                writer.transport.abort()
                return

    def _announce(self) -> None:
        version = self.ackable()
        if version > self.acked:
            self.acked = version
            for target, ack_writer in list(self._ack_writers.items()):
                try:
                    ack_writer.write(protocol.ack(version))
                except (OSError, RuntimeError):
                    self._ack_writers.pop(target, None)

    async def _ack_loop(self, target: tuple[str, int]) -> None:
        """Keep a connection to one barrier; (re)send the current ack on connect."""
        while True:
            try:
                reader, writer = await asyncio.open_connection(*target)
                writer.write(protocol.hello(self.node, self.epoch) + protocol.ack(self.acked))
                await writer.drain()
                self._ack_writers[target] = writer
                log.info("event=tap_ack_connected barrier=%s:%d acked=%d", *target, self.acked)
                while True:  # the barrier never sends; notice a closed connection
                    if not await reader.read(4096):
                        break
                    # ignore anything it sends
            except OSError as exc:
                log.debug("event=tap_ack_connect_failed barrier=%s:%d reason=%r", *target,
                          str(exc))
            self._ack_writers.pop(target, None)
            await asyncio.sleep(self.reconnect_delay)

    async def recheck_anchor(self, interval: float = 0.5) -> None:
        """Until anchored, look at the metalogger files again (they flush once a second)."""
        while True:
            await asyncio.sleep(interval)
            if not self.anchored:
                self._announce()
