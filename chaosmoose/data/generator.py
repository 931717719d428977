"""In-container data set writer and reader: ``python3 datagen.py <command> ...``.

Standard library only and self-contained (client containers have no chaoslib): the host
copies this very file to ``/tmp/chaosmoose/datagen.py`` in a client, with the plan or the
manifest next to it, and runs it with ``docker exec``, reading its output as it comes.

Commands:

- ``generate --plan FILE --root DIR``: write every entry of the plan (``chaosmoose.data.plan``)
  under ``DIR``: folders, regular files, sparse files (holes never written), hard and
  symbolic links, each file fsync'ed. A file's bytes depend only on the seed, its path in
  the plan and the offset (SHAKE-128 blocks of 1 MiB), so the same plan writes the same
  bytes anywhere and :func:`entry_sha256` computes a checksum without any data on disk.
  ``DIR`` must be absent, empty, or (with ``--replace``) a folder this command wrote before
  (it holds the marker ``.chaosmoose-data.json``), which is deleted first.
- ``verify --manifest FILE --root DIR``: look at every entry of the manifest and print what
  is there (type, size, SHA-256 when the size is right, inode, link text); a file whose
  read does not finish within ``--file-timeout`` seconds is reported unreadable and the
  next one is read. Classifying is the host's job (``chaosmoose.data.check``).
- ``remove --root DIR``: delete a folder this command wrote (it must hold the marker). On
  MooseFS its trash time is set to 0 first (``mfssettrashtime``, when installed) so the
  deleted data does not linger in the trash; the same when ``--replace`` deletes one.

With ``--mount M`` the command first checks that ``M`` is a mount point (a client whose
MooseFS mount is gone must not fill its own disk). ``--plan``/``--manifest`` files are
deleted once read (``--keep-input`` keeps them).

Output: one JSON object per line on stdout, flushed: ``{"event": "start", "pid", ...}``,
``{"event": "progress", "done", "total", "bytes", "bytes_total", "elapsed"}`` at least every
``--interval`` seconds (also a heartbeat while a write blocks), ``{"event": "entry", ...}``
per entry (generate: the plan's entry with its ``sha256``; verify: what was seen),
then ``{"event": "done", ...}`` or ``{"event": "error", "error", "reason"}``. Exit status 0
when done, 1 on an I/O error or a stall, 2 on bad input (``reason`` ``input``, ``exists``,
``not-ours`` or ``no-mount``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from typing import Any

BLOCK = 1 << 20  # content block: SHAKE-128 of (seed, path, block number)
MARKER = ".chaosmoose-data.json"
_ZEROS = bytes(BLOCK)
_out_lock = threading.Lock()


def emit(obj: dict[str, Any]) -> None:
    """Print one JSON line and flush it (from any thread)."""
    line = json.dumps(obj, sort_keys=True) + "\n"
    with _out_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


class InputError(Exception):
    """Bad input (exit 2) with a machine-readable ``reason``."""

    def __init__(self, message: str, reason: str = "input") -> None:
        super().__init__(message)
        self.reason = reason


# --- content: deterministic bytes from (seed, path, offset) ------------------------------

def block(seed: int, path: str, index: int, length: int = BLOCK) -> bytes:
    """The first ``length`` bytes of content block ``index`` of ``path``."""
    return hashlib.shake_128(f"chaosmoose-data:{seed}:{path}:{index}".encode()).digest(length)


def content(seed: int, path: str, offset: int, length: int) -> bytes:
    """``length`` bytes of ``path``'s content from ``offset`` (holes aside)."""
    if length <= 0:
        return b""
    first, last = offset // BLOCK, (offset + length - 1) // BLOCK
    if first == last:
        start = offset - first * BLOCK
        return block(seed, path, first, start + length)[start:]
    data = b"".join(block(seed, path, i) for i in range(first, last + 1))
    start = offset - first * BLOCK
    return data[start:start + length]


def extents(entry: dict[str, Any]) -> list[tuple[int, int, bool]]:
    """``(offset, length, is_data)`` covering the file in order (holes for sparse files)."""
    size = int(entry["size"])
    parts, pos = [], 0
    for offset, length in sorted((int(o), int(n)) for o, n in entry.get("holes") or []):
        offset, end = max(offset, pos), min(size, offset + length)
        if end <= offset:
            continue
        if offset > pos:
            parts.append((pos, offset - pos, True))
        parts.append((offset, end - offset, False))
        pos = end
    if pos < size:
        parts.append((pos, size - pos, True))
    return parts


def pieces(seed: int, entry: dict[str, Any]):
    """``(offset, bytes or None for a hole piece, length)`` of at most one block each."""
    path = entry["path"]
    for offset, length, is_data in extents(entry):
        end = offset + length
        while offset < end:
            step = min(end - offset, BLOCK - offset % BLOCK)
            yield offset, content(seed, path, offset, step) if is_data else None, step
            offset += step


def entry_sha256(seed: int, entry: dict[str, Any]) -> str:
    """SHA-256 of a file entry's full content (zeros in holes), computed without any I/O."""
    h = hashlib.sha256()
    for _, data, length in pieces(seed, entry):
        h.update(data if data is not None else _ZEROS[:length])
    return h.hexdigest()


# --- shared helpers ----------------------------------------------------------------------

def load_input(path: str, keep: bool) -> dict[str, Any]:
    """The JSON plan or manifest at ``path`` (deleted once read unless ``keep``)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    if not keep:
        try:
            os.unlink(path)
        except OSError:
            pass
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise InputError(f"{path} has no list of entries")
    for entry in data["entries"]:
        rel = entry.get("path") if isinstance(entry, dict) else None
        if (not isinstance(rel, str) or not rel or rel.startswith("/")
                or ".." in rel.split("/") or entry.get("kind") not in
                ("dir", "file", "sparse", "hardlink", "symlink")):
            raise InputError(f"{path}: malformed entry {entry!r}")
    return data


def check_mount(mount: str | None) -> None:
    """Fail (``no-mount``) unless ``mount`` is a mount point."""
    if mount and not os.path.ismount(mount):
        raise InputError(f"{mount} is not a mount point (is the MooseFS mount up?)",
                         "no-mount")


class Meter:
    """Progress counters and the heartbeat thread that prints them every ``interval``."""

    def __init__(self, total: int, bytes_total: int, interval: float, stall: float) -> None:
        self.total, self.bytes_total = total, bytes_total
        self.done = self.bytes = 0
        self.began = time.monotonic()
        self.moved = self.began
        self.interval, self.stall = interval, stall
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def add(self, nbytes: int = 0, entries: int = 0) -> None:
        self.bytes += nbytes
        self.done += entries
        self.moved = time.monotonic()

    def snapshot(self) -> dict[str, Any]:
        return {"event": "progress", "done": self.done, "total": self.total,
                "bytes": self.bytes, "bytes_total": self.bytes_total,
                "elapsed": round(time.monotonic() - self.began, 3)}

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            emit(self.snapshot())
            if self.stall and time.monotonic() - self.moved > self.stall:
                emit({"event": "error", "reason": "stalled",
                      "error": f"no progress for {self.stall:g} s (file system blocked?) "
                               f"after {self.done} of {self.total} entries"})
                os._exit(1)

    def __enter__(self) -> Meter:  # noqa: PYI034
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        emit(self.snapshot())


# --- generate ----------------------------------------------------------------------------

def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def write_file(root: str, seed: int, entry: dict[str, Any], meter: Meter) -> str:
    """Write a regular or sparse file entry; return its SHA-256."""
    path = os.path.join(root, entry["path"])
    h = hashlib.sha256()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for offset, data, length in pieces(seed, entry):
            if data is None:
                h.update(_ZEROS[:length])
            else:
                _write_all(fd, data, offset)
                h.update(data)
            meter.add(length)
        os.ftruncate(fd, int(entry["size"]))  # a trailing hole
        os.fsync(fd)
    finally:
        os.close(fd)
    return h.hexdigest()


def write_entry(root: str, seed: int, entry: dict[str, Any], meter: Meter,
                sums: dict[str, str]) -> int:
    """Create one entry and print it (files with their checksum); return bytes written."""
    path = os.path.join(root, entry["path"])
    kind = entry["kind"]
    if kind == "dir":
        os.makedirs(path, exist_ok=True)
        emit({"event": "entry", **entry})
        return 0
    if kind in ("file", "sparse"):
        sums[entry["path"]] = write_file(root, seed, entry, meter)
        emit({"event": "entry", **entry, "sha256": sums[entry["path"]]})
        return int(entry["size"]) - sum(int(h[1]) for h in entry.get("holes") or [])
    if kind == "hardlink":
        os.link(os.path.join(root, entry["target"]), path)
        emit({"event": "entry", **entry, "sha256": sums.get(entry["target"])})
    else:
        os.symlink(entry["target"], path)
        emit({"event": "entry", **entry})
    return 0


def delete_tree(root: str) -> str:
    """Delete ``root``; on MooseFS first set its trash time to 0 (``mfssettrashtime``), so
    the deleted data is freed at once instead of filling the chunkservers from the trash."""
    how = "deleted"
    tool = shutil.which("mfssettrashtime")
    if tool:
        try:
            done = subprocess.run([tool, "-r", "0", root], capture_output=True, timeout=120,
                                  check=False)
            how = "deleted, trash skipped" if done.returncode == 0 else how
        except (OSError, subprocess.SubprocessError):
            pass
    shutil.rmtree(root)
    return how


def prepare_root(root: str, replace: bool) -> None:
    """Make ``root`` an empty folder, or fail (``exists``/``not-ours``) without touching it."""
    if os.path.lexists(root):
        if not os.path.isdir(root) or os.path.islink(root):
            raise InputError(f"{root} exists and is not a folder", "exists")
        names = os.listdir(root)
        if names:
            ours = MARKER in names
            if not replace:
                raise InputError(f"{root} already holds {len(names)} entries; expected an "
                                 "absent or empty folder (replace it to generate again)",
                                 "exists")
            if not ours:
                raise InputError(f"refusing to replace {root}: it has no {MARKER}, so "
                                 "chaosmoose data generate did not write it", "not-ours")
            delete_tree(root)
    os.makedirs(root, exist_ok=True)


def cmd_generate(args: argparse.Namespace) -> int:
    """Write the plan under ``--root``; print each entry with its checksum."""
    check_mount(args.mount)
    plan = load_input(args.plan, args.keep_input)
    seed = int(plan.get("seed", 0))
    entries = plan["entries"]
    files = [e for e in entries if e["kind"] in ("file", "sparse")]
    total_bytes = sum(int(e["size"]) for e in files)
    prepare_root(args.root, args.replace)
    with open(os.path.join(args.root, MARKER), "w", encoding="utf-8") as f:
        json.dump({k: plan.get(k) for k in ("version", "seed", "size", "files")}, f)
    emit({"event": "start", "pid": os.getpid(), "root": args.root, "total": len(entries),
          "bytes_total": total_bytes})
    sums: dict[str, str] = {}
    written = 0
    with Meter(len(entries), total_bytes, args.interval, args.stall) as meter:
        # folders, then files, then links (their targets exist by then)
        order = {"dir": 0, "file": 1, "sparse": 1, "hardlink": 2, "symlink": 2}
        for entry in sorted(entries, key=lambda e: order[e["kind"]]):
            try:
                written += write_entry(args.root, seed, entry, meter, sums)
            except OSError as exc:
                raise OSError(exc.errno, f"writing {entry['path']}: "
                                         f"{exc.strerror or exc}") from None
            meter.add(entries=1)
        fd = os.open(args.root, os.O_RDONLY)
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)
    elapsed = time.monotonic() - meter.began
    emit({"event": "done", "entries": len(entries), "bytes": total_bytes, "written": written,
          "elapsed": round(elapsed, 3)})
    return 0


# --- verify ------------------------------------------------------------------------------

def observe(root: str, entry: dict[str, Any], meter: Meter | None = None) -> dict[str, Any]:
    """What is at ``entry``'s path: ``type`` (None when absent), and by type ``size``,
    ``sha256`` (files whose size is as expected), ``ino``/``dev``/``nlink``, ``link`` and
    ``resolves`` (symbolic links); ``error`` when it could not be looked at."""
    path = os.path.join(root, entry["path"])
    seen: dict[str, Any] = {"path": entry["path"]}
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return {**seen, "type": None}
    except OSError as exc:
        return {**seen, "type": None, "error": f"{exc.__class__.__name__}: {exc}"}
    try:
        if stat.S_ISLNK(st.st_mode):
            seen.update(type="symlink", link=os.readlink(path))
            try:
                target = os.stat(path)
                seen.update(resolves=True, ino=target.st_ino, dev=target.st_dev)
            except OSError:
                seen["resolves"] = False
        elif stat.S_ISDIR(st.st_mode):
            seen["type"] = "dir"
        elif stat.S_ISREG(st.st_mode):
            seen.update(type="file", size=st.st_size, ino=st.st_ino, dev=st.st_dev,
                        nlink=st.st_nlink)
            if entry["kind"] in ("file", "sparse", "hardlink") and \
                    st.st_size == int(entry.get("size", -1)):
                seen["sha256"] = read_sha256(path, meter)
        else:
            seen["type"] = "other"
    except OSError as exc:
        seen["error"] = f"{exc.__class__.__name__}: {exc}"
    return seen


def read_sha256(path: str, meter: Meter | None) -> str:
    """SHA-256 of the file at ``path``, read in 1 MiB pieces."""
    h = hashlib.sha256()
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while True:
            n = f.readinto(buffer)
            if not n:
                break
            h.update(view[:n])
            if meter is not None:
                meter.add(n)
    return h.hexdigest()


class Reader:
    """Reads entries in a worker thread; one that blocks longer than the timeout is reported
    unreadable and a fresh worker goes on with the next entry (the stuck one is abandoned)."""

    def __init__(self, root: str, entries: list[dict[str, Any]], meter: Meter,
                 timeout: float) -> None:
        self.root, self.entries, self.meter, self.timeout = root, entries, meter, timeout
        self.lock = threading.Lock()
        self.generation = 0
        self.current: tuple[int, float] | None = None
        self.finished = threading.Event()

    def _work(self, start: int, generation: int) -> None:
        for index in range(start, len(self.entries)):
            with self.lock:
                if generation != self.generation:
                    return
                self.current = (index, time.monotonic())
            seen = observe(self.root, self.entries[index], self.meter)
            with self.lock:
                if generation != self.generation:
                    return
                self.current = None
                emit({"event": "entry", **seen})
                self.meter.add(entries=1)
        self.finished.set()

    def _start(self, index: int) -> None:
        threading.Thread(target=self._work, args=(index, self.generation), daemon=True).start()

    def run(self) -> int:
        """Read every entry; return how many timed out."""
        timed_out = 0
        self._start(0)
        while not self.finished.wait(0.1):
            with self.lock:
                current = self.current
                if current is None or time.monotonic() - current[1] < self.timeout:
                    continue
                index = current[0]
                self.generation += 1
                self.current = None
                timed_out += 1
                emit({"event": "entry", "path": self.entries[index]["path"], "type": None,
                      "error": f"read timed out after {self.timeout:g} s"})
                self.meter.add(entries=1)
                self._start(index + 1)
        return timed_out


def unexpected(root: str, known: set[str], limit: int = 100) -> tuple[int, list[str]]:
    """Entries under ``root`` that the manifest does not list (the marker aside)."""
    count, shown = 0, []
    for folder, dirs, files in os.walk(root):
        rel = os.path.relpath(folder, root)
        for name in sorted(dirs) + sorted(files):
            path = name if rel == "." else f"{rel}/{name}"
            if path == MARKER or path in known:
                continue
            count += 1
            if len(shown) < limit:
                shown.append(path)
    return count, shown


def cmd_verify(args: argparse.Namespace) -> int:
    """Look at every manifest entry under ``--root``; print what was seen."""
    check_mount(args.mount)
    manifest = load_input(args.manifest, args.keep_input)
    entries = manifest["entries"]
    size = sum(int(e.get("size", 0)) for e in entries if e["kind"] in ("file", "sparse",
                                                                         "hardlink"))
    root_exists = os.path.isdir(args.root)
    emit({"event": "start", "pid": os.getpid(), "root": args.root, "total": len(entries),
          "bytes_total": size, "root_exists": root_exists})
    with Meter(len(entries), size, args.interval, 0) as meter:
        timed_out = Reader(args.root, entries, meter, args.file_timeout).run()
    count, shown = (unexpected(args.root, {e["path"] for e in entries})
                    if root_exists and not timed_out else (0, []))
    emit({"event": "done", "entries": len(entries), "bytes": meter.bytes,
          "elapsed": round(time.monotonic() - meter.began, 3), "timed_out": timed_out,
          "unexpected": count, "unexpected_paths": shown, "root_exists": root_exists})
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    """Delete a folder that ``generate`` wrote."""
    check_mount(args.mount)
    if not os.path.lexists(args.root):
        emit({"event": "done", "removed": False, "how": "absent"})
        return 0
    if not os.path.isfile(os.path.join(args.root, MARKER)):
        raise InputError(f"refusing to remove {args.root}: it has no {MARKER}", "not-ours")
    emit({"event": "done", "removed": True, "how": delete_tree(args.root)})
    return 0


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(prog="python3 datagen.py")
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate")
    g.add_argument("--plan", required=True)
    g.add_argument("--replace", action="store_true")
    g.add_argument("--stall", type=float, default=300.0,
                   help="fail after this many seconds without progress (0: never)")
    g.set_defaults(func=cmd_generate)
    v = sub.add_parser("verify")
    v.add_argument("--manifest", required=True)
    v.add_argument("--file-timeout", type=float, default=120.0)
    v.set_defaults(func=cmd_verify)
    r = sub.add_parser("remove")
    r.set_defaults(func=cmd_remove)
    for s in (g, v, r):
        s.add_argument("--root", required=True, help="the data set's folder")
        s.add_argument("--mount", default=None, help="must be a mount point")
        s.add_argument("--interval", type=float, default=1.0)
        s.add_argument("--keep-input", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command; report an error as the last JSON line; return the exit status."""
    args = parser().parse_args(argv)
    try:
        return int(args.func(args))
    except InputError as exc:
        emit({"event": "error", "reason": exc.reason, "error": str(exc)})
        return 2
    except OSError as exc:
        emit({"event": "error", "reason": "io", "error": f"{exc.__class__.__name__}: {exc}"})
        return 1


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    os._exit(status)  # an abandoned, blocked reader thread must not keep the process alive
