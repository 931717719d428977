"""MooseFS files in DATA_PATH: change numbers, metadata presence, setting stale files aside."""

from __future__ import annotations

import os
import re
import shutil
import struct
import time
from pathlib import Path

MASTER_FILE = re.compile(r"^(metadata\.mfs.*|changelog\.\d+\.mfs|metadata\.crc)$")
ML_CHANGELOG = re.compile(r"^changelog_ml(_back)?\.\d+\.mfs$")
ANY_CHANGELOG = re.compile(r"^changelog(_ml(_back)?)?\.\d+\.mfs$")
METADATA_ANY = re.compile(r"^(metadata(_ml)?\.mfs(\.back(\.\d+)?)?|changelog(_ml(_back)?)?\.\d+\.mfs)$")
TAIL_BYTES = 8192
KEEP_ASIDE = 5  # set-aside folders kept for forensics; older ones are deleted


def last_change(path: Path) -> int:
    """The change number on the last complete line of a changelog (``41233: ts|OP(...)``); 0 if none."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - TAIL_BYTES))
            tail = handle.read()
    except OSError:
        return 0
    lines = tail.split(b"\n")
    complete = lines[:-1]  # the part after the last newline is still being written
    for line in reversed(complete):
        head = line.split(b":", 1)[0].strip()
        if head.isdigit() and b":" in line:
            return int(head)
    return 0


def metadata_header_version(path: Path) -> int:
    """The version in a metadata file header (``MFSM 2.0`` + 8-byte big-endian version); 0 if none."""
    try:
        with path.open("rb") as handle:
            header = handle.read(16)
    except OSError:
        return 0
    if len(header) < 16 or not header.startswith(b"MFSM"):
        return 0
    return struct.unpack(">Q", header[8:16])[0]


def change_number(data_path: Path, tap_folder: Path | None = None) -> int:
    """The highest change this node holds, leader or follower alike: the last line of any
    changelog in DATA_PATH (the master's ``changelog.N.mfs`` or the metalogger's
    ``changelog_ml*.mfs``), else the version in a metadata file header, else 0. With
    ``tap_folder`` (reply barrier on), also the last change of the tap segments a restore
    can use (:func:`tap_segments`): what this follower acknowledged counts in the choice.

    Read from files, not from ``mfscli``, so leader and followers are measured the same
    way and the number is never stale."""
    best = 0
    if tap_folder is not None:
        best = tap_segments(data_path, tap_folder)[1]
    try:
        names = os.listdir(data_path)
    except OSError:
        return best
    for name in names:
        if ANY_CHANGELOG.match(name):
            best = max(best, last_change(data_path / name))
    if best == 0:
        for name in ("metadata.mfs", "metadata.mfs.back", "metadata_ml.mfs", "metadata_ml.mfs.back"):
            best = max(best, metadata_header_version(data_path / name))
    return best


def trim_torn_lines(data_path: Path) -> list[tuple[Path, int]]:
    """Cut the incomplete last line off every changelog in DATA_PATH; return (file, bytes cut)
    for each file cut.

    ``mfsmaster -a`` skips a changelog that does not end in a newline *entirely* (its last
    version reads as 0: "garbage at the end of file", mfsmaster/changelog.c), so one torn
    line, left by a metalogger killed between two stdio flushes, would drop every change of
    that file from the restore. The torn line itself was never complete anywhere on disk."""
    cut = []
    try:
        names = sorted(n for n in os.listdir(data_path) if ANY_CHANGELOG.match(n))
    except OSError:
        return []
    for name in names:
        path = data_path / name
        try:
            with path.open("rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                if size == 0:
                    continue
                handle.seek(size - 1)
                if handle.read(1) == b"\n":
                    continue
                keep, chunk_end = 0, size
                while chunk_end > 0:  # find the last newline, reading backwards
                    start = max(0, chunk_end - TAIL_BYTES)
                    handle.seek(start)
                    found = handle.read(chunk_end - start).rfind(b"\n")
                    if found >= 0:
                        keep = start + found + 1
                        break
                    chunk_end = start
            os.truncate(path, keep)
        except OSError:
            continue
        cut.append((path, size - keep))
    return cut


TAP_SEGMENT = re.compile(r"^changelog_ml_back\.(\d+)\.mfs$")
TAP_SEGMENT_BASE = 100  # the tap numbers its files from 100 (mooseng.barrier.tap)


def first_change(path: Path) -> int:
    """The change number on the first line of a changelog; 0 if none."""
    try:
        with path.open("rb") as handle:
            line = handle.readline()
    except OSError:
        return 0
    head, sep, _ = line.partition(b": ")
    return int(head) if sep and head.isdigit() and line.endswith(b"\n") else 0


def restore_coverage(data_path: Path) -> int:
    """The highest change a restore from DATA_PATH reaches at least: the best metadata file's
    version minus one (a header holds the number of the *next* change), or the last
    complete line of a changelog."""
    best = 0
    for name in ("metadata.mfs", "metadata.mfs.back", "metadata_ml.mfs", "metadata_ml.mfs.back"):
        best = max(best, metadata_header_version(data_path / name) - 1)
    try:
        names = os.listdir(data_path)
    except OSError:
        return best
    for name in names:
        if ANY_CHANGELOG.match(name):
            best = max(best, last_change(data_path / name))
    return best


def tap_segments(data_path: Path, tap_folder: Path) -> tuple[list[Path], int]:
    """The reply barrier tap's files (``changelog_ml_back.1NN.mfs`` in ``tap_folder``) that a
    restore from DATA_PATH can use, and the change they reach (0 when none).

    A restore fails on a hole between change files, so only segments that continue, in
    order, from what DATA_PATH covers count: a segment that starts after a hole (the tap
    lost the stream and its anchor) is left out, and so is everything after it."""
    try:
        numbered = sorted((int(m.group(1)), tap_folder / n) for n in os.listdir(tap_folder)
                          if (m := TAP_SEGMENT.match(n)) and int(m.group(1)) >= TAP_SEGMENT_BASE)
    except OSError:
        return [], 0
    covered = restore_coverage(data_path)
    usable, reached = [], 0
    for _number, path in numbered:
        first, last = first_change(path), last_change(path)
        if not first or not last:
            continue
        if first > covered + 1:
            break
        usable.append(path)
        covered = max(covered, last)
        reached = covered
    return usable, reached


def link_tap_segments(data_path: Path, tap_folder: Path) -> list[Path]:
    """Put the usable tap segments (:func:`tap_segments`) into DATA_PATH under their own
    names (``mfsmaster -a`` merges ``changelog_ml_back.N.mfs``; mfsmetalogger never uses
    N >= 100): a hard link, or a copy across file systems; an older file of that name is
    replaced. Returns the files placed in DATA_PATH."""
    placed = []
    for source in tap_segments(data_path, tap_folder)[0]:
        target = data_path / source.name
        try:
            if target.exists() and os.path.samefile(source, target):
                placed.append(target)
                continue
        except OSError:
            pass
        staging = data_path / f".{source.name}.tmp"
        try:
            staging.unlink()
        except FileNotFoundError:
            pass
        try:
            os.link(source, staging)
        except OSError:
            shutil.copy2(source, staging)
        os.replace(staging, target)
        placed.append(target)
    return placed


MASTER_CHANGELOG = re.compile(r"^changelog\.\d+\.mfs$")


def own_master_change(data_path: Path) -> int:
    """The last change this node's own mfsmaster wrote: the last line of its changelogs
    (``changelog.N.mfs``, not the metalogger's ``changelog_ml*``, which after a demotion may
    already hold a newer leader's changes under the same numbers); 0 if it wrote none."""
    try:
        names = os.listdir(data_path)
    except OSError:
        return 0
    return max((last_change(data_path / n) for n in names if MASTER_CHANGELOG.match(n)), default=0)


# A changelog line that locks a chunk for writing (``WRITE(inode,index,...):chunk``) or
# releases it (``UNLOCK(chunk)``); mfsmaster logs UNLOCK when the client's write ends.
WRITE_LOCK_LINE = re.compile(rb"^(\d+): (\d+)\|(?:WRITE\([^\n]*\):(\d+)|UNLOCK\((\d+)\))[ \t\r]*$",
                             re.MULTILINE)
LOCK_TIMEOUT_S = 120  # mfsmaster's chunk write lock, restored from a WRITE line with its timestamp


def stale_write_locks(data_path: Path, now: float) -> list[int]:
    """Chunks that a ``WRITE`` in the changelogs locked and no ``UNLOCK`` released, whose lock
    (the line's timestamp + LOCK_TIMEOUT_S) has not expired at ``now``.

    After a failover these are writes the old leader never saw end; a master restored from
    the changelogs keeps them locked for up to two minutes, and the client whose write was
    in flight waits that long."""
    lines: dict[int, tuple[int, int | None, int | None]] = {}
    for path in sorted(data_path.iterdir()) if data_path.is_dir() else []:
        if not ANY_CHANGELOG.match(path.name):
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        for match in WRITE_LOCK_LINE.finditer(data):
            written, released = match.group(3), match.group(4)
            lines[int(match.group(1))] = (int(match.group(2)), int(written) if written else None,
                                          int(released) if released else None)
    locked: dict[int, int] = {}
    for change in sorted(lines):
        stamp, written, released = lines[change]
        if written is not None:
            locked[written] = stamp
        elif released is not None:
            locked.pop(released, None)
    return sorted(chunk for chunk, stamp in locked.items() if stamp + LOCK_TIMEOUT_S > now)


def append_unlocks(data_path: Path, chunks: list[int], now: float) -> tuple[Path, int] | None:
    """Append ``UNLOCK(chunk)`` lines after the newest change, to the changelog holding it;
    return (that file, its size before) so the caller can undo, or None when there is no
    changelog or its last line is incomplete."""
    changelogs = [p for p in data_path.iterdir() if ANY_CHANGELOG.match(p.name)]
    if not changelogs or not chunks:
        return None
    target = max(changelogs, key=last_change)
    newest = last_change(target)
    size = target.stat().st_size
    with target.open("rb") as handle:
        handle.seek(max(0, size - 1))
        if newest == 0 or handle.read(1) != b"\n":
            return None
    body = "".join(f"{newest + i}: {int(now)}|UNLOCK({chunk})\n" for i, chunk in enumerate(chunks, 1))
    with target.open("ab") as handle:
        handle.write(body.encode())
        handle.flush()
        os.fsync(handle.fileno())
    return target, size


def undo_append(target: Path, size: int) -> None:
    """Cut ``target`` back to ``size`` bytes (undo :func:`append_unlocks`)."""
    os.truncate(target, size)


def read_lineage(path: Path) -> int:
    """The lease epoch whose leader's metadata lineage DATA_PATH holds (0 if unknown)."""
    try:
        return int(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def write_lineage(path: Path, epoch: int) -> None:
    """Persist the lineage epoch (write to a temporary file, fsync, rename)."""
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as handle:
        handle.write(f"{epoch}\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def has_metadata(data_path: Path) -> bool:
    """True when DATA_PATH (not its aside/ folder) holds any metadata or changelog file."""
    try:
        return any(METADATA_ANY.match(name) for name in os.listdir(data_path))
    except OSError:
        return False


def set_aside(data_path: Path, pattern: re.Pattern[str] = MASTER_FILE, now: float | None = None) -> Path | None:
    """Move files matching ``pattern`` into ``DATA_PATH/aside/<utc timestamp>/``; return that
    folder, or None when there was nothing to move. The ``_ml`` files stay."""
    try:
        names = sorted(n for n in os.listdir(data_path) if pattern.match(n))
    except OSError:
        return None
    if not names:
        return None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    target = data_path / "aside" / stamp
    suffix = 1
    while target.exists():
        suffix += 1
        target = data_path / "aside" / f"{stamp}-{suffix}"
    target.mkdir(parents=True)
    for name in names:
        shutil.move(str(data_path / name), str(target / name))
    prune_aside(data_path / "aside")
    return target


def prune_aside(aside: Path, keep: int = KEEP_ASIDE) -> None:
    """Delete all but the ``keep`` newest folders under ``aside`` (names sort by time)."""
    try:
        folders = sorted(p for p in aside.iterdir() if p.is_dir())
    except OSError:
        return
    for old in folders[:-keep] if keep > 0 else folders:
        shutil.rmtree(old, ignore_errors=True)
