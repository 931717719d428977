"""Disk faults of one chunkserver, run inside its container: ``mooseng disk ...``.

The contract with the host (chaosmoose runs these through ``docker exec``):

    mooseng disk show                   {"tiers": [{"tier", "path", "configured_limit", "limit",
                                                    "used", "removal", "failed"}, ...]}
    mooseng disk limit TIER BYTES       the tier's mfshdd.cfg size limit := BYTES (1 ..
                                        configured size); prints the show JSON
    mooseng disk limit TIER --restore   back to the configured size (MOOSENG_CS_TIER_SIZES)
    mooseng disk removal TIER on|off    the ``*`` (marked for removal) prefix of its line
    mooseng disk fail TIER on|off       make the folder unusable, so MooseFS drops it

An error (unknown tier, bad value, a limit above the configured size) prints
``{"error": "..."}`` on stderr, exits 2 and changes nothing; a change the chunkserver could not
take (mfschunkserver not running, the folder not back after "fail off") prints the same on
stderr and exits 1, after undoing what it changed.

State: limits and removal live in mfshdd.cfg itself (rewritten atomically, then the running
mfschunkserver is reloaded with SIGHUP, what ``mfschunkserver -c CFG reload`` sends to the pid
in its DATA_PATH lock file); a failed tier is recorded in ``$MOOSENG_DATA_DIR/disk-faults.json``
(its original mode) before the fault is applied. A container start writes mfshdd.cfg from the
settings again and heals every recorded fault (:func:`clear_faults`).

How "fail" works, from MooseFS 3.0.117 (mfschunkserver/hddspacemgr.c, mfscommon/main.c):

- mfschunkserver starts as root and drops to ``WORKING_USER = mfs`` before it opens any folder
  (main.c: ``changeugid()`` ~1492 before ``initialize()`` ~1648), and keeps no capability, so
  ``chmod 000`` on the tier folder denies it every path below the folder (root, running this
  command, is not affected). The folder is a volume's mount point, so it cannot be renamed
  away; its mode can be changed.
- "fail on" records the mode, sets 000 and reloads. On reload every mfshdd.cfg line is parsed
  again (``hdd_folders_reinit`` ~7193); for this one ``hdd_parseline`` cannot create
  ``<folder>/.lock`` ("can't create lock file", ~6988) and returns -1, after the line was
  registered. The folder itself is then not taken up again: it gets ``REMOVING_START`` and is
  removed (``hdd_check_folders`` ~2180-2222: its chunks are reported lost to the master, which
  replicates them from the other copies; "folder ... successfully removed"). The line stays,
  and MooseFS reports a line without a usable folder with flags ``damaged + invalid``
  (``2+8``, ``hdd_diskinfo_data`` ~946, what csserv.c answers mfscli's HDD list):
  ``mfscli -SHD`` shows the folder as ``invalid`` with 0 bytes. We wait until the
  chunkserver itself reports the line so.
- Without the reload MooseFS would not notice: it marks a folder ``damaged`` when ``statvfs``
  fails (``hdd_refresh_usage`` ~1589, every 60 s) or after more than
  ``HDD_ERROR_TOLERANCE_COUNT`` (2) EIO/EROFS/ENOENT chunk errors within 600 s (~2268), but
  with mode 000 ``statvfs`` of the folder still works (no search permission is needed on the
  last path element; checked as a non-root user) and EACCES chunk errors are not counted
  (each read chunk would only be reported damaged to the master, one by one).
- "fail off" restores the mode and reloads until the chunkserver reports the line usable
  again (neither damaged nor invalid; scanning is fine): the line parses, the folder is added
  anew and scanned, and its chunks come back (the master drops surplus copies). While MooseFS
  is still removing the folder it refuses it ("is being removed and can not be added again",
  ~6893; the line is then left out), so the reload is repeated for up to 10 s; then
  mfschunkserver is restarted (SIGTERM; the container's supervisor starts it again within a
  second, and the start scans every folder).
- mfschunkserver.cfg sets ``ALLOW_STARTING_WITH_INVALID_DISKS = 1``: otherwise a restart of
  mfschunkserver while a tier is failed would end at once (``hdd_init`` ~7485) and the
  supervisor would restart it in a loop.
- The chunkserver's own view of its folders is what ``mfscli -SHD`` reads from it: the
  ``CLTOCS_HDD_LIST`` request (600; answer 601, ``hdd_diskinfo_data``) on its
  ``CSSERV_LISTEN_HOST:CSSERV_LISTEN_PORT``, asked directly (no master involved). Its pid
  (for SIGHUP and SIGTERM) is the one in ``DATA_PATH/.mfschunkserver.lock`` (written at start,
  main.c ``wdlock`` ~1131), checked against ``/proc/<pid>/comm``. (``/proc/<pid>/fd`` would
  need CAP_SYS_PTRACE: mfschunkserver runs as another user, and Docker does not grant it.)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import socket
import stat
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from mooseng import mfsconfig, settings
from mooseng.tiers import (
    HddLine,
    Tier,
    chunk_bytes,
    configured_tiers,
    empty_tier_line,
    has_chunk,
    is_empty_tier_line,
    line_of,
    parse_hdd_cfg,
    render_hdd_cfg,
)

log = logging.getLogger("mooseng.disks")

STATE_FILE = "disk-faults.json"
LOCK_FILE = ".disks.lock"
PID_FILE = ".mfschunkserver.lock"
FAILED_TIMEOUT = 15.0    # fail on: until the chunkserver reports the line unusable
RELOAD_TIMEOUT = 10.0    # fail off: reloads until it reports the folder usable again
RELOAD_ROUND = 2.5       # ... waiting this long after each reload
RESTART_TIMEOUT = 60.0   # fail off: ... after a restart (the start scans every folder)
POLL = 0.2
KNOWN_AFTER = 150.0      # s a tier must hold chunks before MooseFS's own count is trusted
DRIFT = 64 * 1024 * 1024  # "leave N free": rewritten when N is off by more than a chunk
MISMEASURED_GRACE = 65.0  # s a tier holding chunks may look full before "leave N free"
CLTOCS_HDD_LIST, CSTOCL_HDD_LIST = 600, 601  # MFSCommunication.h, PROTO_BASE 0
FLAG_REMOVAL, FLAG_DAMAGED, FLAG_SCANNING, FLAG_INVALID = 1, 2, 4, 8


class DiskError(ValueError):
    """A request that cannot be done as asked (exit 2; nothing changed)."""


class ChunkserverError(RuntimeError):
    """mfschunkserver did not take a change (exit 1; the change was undone)."""


def usable(flags: int | None) -> bool:
    """The chunkserver lists the folder and it is neither damaged nor invalid."""
    return flags is not None and not flags & (FLAG_DAMAGED | FLAG_INVALID)


def unusable(flags: int | None) -> bool:
    """The chunkserver lists the folder as damaged or invalid."""
    return flags is not None and bool(flags & (FLAG_DAMAGED | FLAG_INVALID))


class Chunkserver(Protocol):
    """The running mfschunkserver, as far as disk changes need it."""

    def reload(self) -> None:
        """Make it read its configuration again; ChunkserverError when it does not run."""

    def folder_flags(self, folder: Path) -> int | None:
        """Its flags for the mfshdd.cfg line of ``folder`` (FLAG_*), None when the line is
        not listed or it does not answer."""

    def restart(self) -> None:
        """Stop it so the supervisor starts it again; ChunkserverError when it does not run."""

    def folder_view(self, folder: Path) -> FolderView | None:
        """How it reports the mfshdd.cfg line of ``folder``; None when the line is not listed
        or it does not answer."""


@dataclass(frozen=True)
class FolderView:
    """One mfshdd.cfg line as the chunkserver itself reports it: its flags (FLAG_*), the
    bytes it counts as used and its total (while a scan runs: progress and 0), and how many
    chunks it holds there."""

    flags: int
    used: int
    total: int
    chunks: int


_VIEW = struct.Struct(">BQLQQL")  # flags errchunkid errtime used total chunks


def parse_hdd_views(payload: bytes) -> dict[str, FolderView]:
    """{folder path without trailing slash: FolderView} of a CSTOCL_HDD_LIST answer (entries
    of ``size:16 pathlen:8 path flags:8 errchunkid:64 errtime:32 used:64 total:64 chunks:32
    stats``, hddspacemgr.c ``hdd_diskinfo_data``); a torn last entry is left out."""
    folders: dict[str, FolderView] = {}
    pos = 0
    while pos + 2 <= len(payload):
        (size,) = struct.unpack_from(">H", payload, pos)
        entry = payload[pos + 2:pos + 2 + size]
        pos += 2 + size
        if not entry or len(entry) < entry[0] + 1 + _VIEW.size:
            break
        path = entry[1:1 + entry[0]].decode("utf-8", "replace")
        flags, _, _, used, total, chunks = _VIEW.unpack_from(entry, 1 + entry[0])
        folders[path.rstrip("/")] = FolderView(flags, used, total, chunks)
    return folders


def read_cfg_value(path: Path, key: str, default: str) -> str:
    """``key``'s value in a MooseFS ``KEY = VALUE`` file, else ``default``."""
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and name.strip() == key:
                return value.strip()
    return default


@dataclass
class LocalChunkserver:
    """The mfschunkserver of this container: its pid from its DATA_PATH lock file, its own
    folder list from its client port (what ``mfscli -SHD`` asks it)."""

    data_path: Path
    cfg: Path = mfsconfig.CHUNKSERVER_CFG
    proc: Path = Path("/proc")
    timeout: float = 2.0

    def pid(self) -> int | None:
        """The running mfschunkserver's pid, or None."""
        try:
            pid = int((self.data_path / PID_FILE).read_text().strip())
            comm = (self.proc / str(pid) / "comm").read_text().strip()
        except (OSError, ValueError):
            return None
        return pid if comm.startswith("mfschunkserver") else None

    def _signal(self, signum: int, what: str) -> int:
        pid = self.pid()
        if pid is None:
            raise ChunkserverError(f"cannot {what}: mfschunkserver is not running (no live pid in "
                                   f"{self.data_path / PID_FILE})")
        try:
            os.kill(pid, signum)
        except OSError as exc:
            raise ChunkserverError(f"cannot {what} mfschunkserver (pid {pid}): {exc}") from None
        return pid

    def reload(self) -> None:
        self._signal(signal.SIGHUP, "reload")

    def address(self) -> tuple[str, int]:
        """Where the chunkserver serves clients (``*``: every address, so the loopback)."""
        host = read_cfg_value(self.cfg, "CSSERV_LISTEN_HOST", "*")
        port = read_cfg_value(self.cfg, "CSSERV_LISTEN_PORT", "9422")
        return ("127.0.0.1" if host in ("*", "") else host), int(port)

    def hdd_views(self) -> dict[str, FolderView] | None:
        """{folder: FolderView} as the chunkserver reports them; None when it does not answer."""
        try:
            with socket.create_connection(self.address(), timeout=self.timeout) as conn:
                conn.sendall(struct.pack(">LL", CLTOCS_HDD_LIST, 0))
                kind, length = struct.unpack(">LL", _recv(conn, 8))
                if kind != CSTOCL_HDD_LIST:
                    return None
                return parse_hdd_views(_recv(conn, length))
        except (OSError, ValueError, struct.error):
            return None

    def folder_flags(self, folder: Path) -> int | None:
        view = self.folder_view(folder)
        return None if view is None else view.flags

    def folder_view(self, folder: Path) -> FolderView | None:
        views = self.hdd_views()
        return None if views is None else views.get(str(folder).rstrip("/"))

    def restart(self) -> None:
        pid = self._signal(signal.SIGTERM, "restart")
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline and (self.proc / str(pid)).exists():
            time.sleep(POLL)


def _recv(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise OSError("the chunkserver closed the connection")
        data += chunk
    return data


@dataclass
class Disks:
    """The tiers of this chunkserver and the operations of ``mooseng disk``."""

    tiers: list[Tier]
    hdd_cfg: Path
    data_dir: Path
    server: Chunkserver
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    used: Callable[[Path], int] = chunk_bytes
    chmod: Callable[[Path, int], None] = field(default=os.chmod)
    holding_since: dict[str, float] = field(default_factory=dict)  # settle_empty_tiers
    full_since: dict[str, float] = field(default_factory=dict)     # ... and _mismeasured

    @classmethod
    def from_settings(cls) -> Disks:
        """This container's tiers, mfshdd.cfg and running mfschunkserver."""
        layout = mfsconfig.Layout.from_settings()
        return cls(configured_tiers(layout.tiers), mfsconfig.HDD_CFG, layout.data_dir,
                   LocalChunkserver(layout.mfs_data))

    # --- reading ----------------------------------------------------------------------
    def tier(self, name: str) -> Tier:
        """The configured tier ``name``; DiskError naming the known ones otherwise."""
        for tier in self.tiers:
            if tier.name == name:
                return tier
        raise DiskError(f"unknown tier {name!r}; expected one of "
                        f"{', '.join(t.name for t in self.tiers)}")

    def lines(self) -> list[HddLine]:
        """The folder lines of mfshdd.cfg as they are now."""
        try:
            return parse_hdd_cfg(self.hdd_cfg.read_text())
        except OSError as exc:
            raise DiskError(f"cannot read {self.hdd_cfg}: {exc}") from None

    def faults(self) -> dict[str, dict[str, Any]]:
        """{tier: {"mode", "since"}} of the failed tiers."""
        return read_faults(self.data_dir / STATE_FILE)

    def show(self) -> dict[str, Any]:
        """Every tier: configured and current limit, chunk bytes, removal, failed."""
        lines, faults = self.lines(), self.faults()
        rows = []
        for tier in self.tiers:
            line = line_of(lines, tier)
            limit = line.limit if line is not None else None
            if line is not None and is_empty_tier_line(line):
                limit = tier.configured_limit  # an empty tier offered its configured size
            rows.append({"tier": tier.name, "path": str(tier.path),
                         "configured_limit": tier.configured_limit,
                         "limit": limit,
                         "used": self.used(tier.path),
                         "removal": bool(line is not None and line.removal),
                         "failed": tier.name in faults})
        return {"tiers": rows}

    # --- mfshdd.cfg changes ------------------------------------------------------------
    def limit(self, name: str, nbytes: int) -> dict[str, Any]:
        """Set ``name``'s size limit to ``nbytes`` (1 .. its configured size)."""
        tier = self.tier(name)
        if nbytes < 1:
            raise DiskError(f"limit {nbytes} for tier {name} is below 1 byte")
        if nbytes > tier.configured_limit:
            raise DiskError(f"limit {nbytes} for tier {name} is above its configured size "
                            f"{tier.configured_limit} (MOOSENG_CS_TIER_SIZES)")
        return self._change_line(tier, lambda line: replace(line, limit=nbytes, other_size=None))

    def restore_limit(self, name: str) -> dict[str, Any]:
        """Set ``name``'s size limit back to its configured size."""
        tier = self.tier(name)
        return self._change_line(tier, lambda line: replace(line, limit=tier.configured_limit,
                                                            other_size=None))

    def removal(self, name: str, on: bool) -> dict[str, Any]:
        """Mark ``name`` for removal (``*`` prefix) or clear the mark."""
        tier = self.tier(name)
        return self._change_line(tier, lambda line: replace(line, removal=on))

    def _change_line(self, tier: Tier, change: Callable[[HddLine], HddLine]) -> dict[str, Any]:
        with self._locked():
            before = self.lines()
            original = self.hdd_cfg.read_text()
            line = line_of(before, tier) or HddLine(str(tier.path), tier.configured_limit)
            after = [change(line) if entry is line else entry for entry in before]
            if line not in before:
                after.append(change(line))
            if after != before:
                write_atomic(self.hdd_cfg, render_hdd_cfg(after))
                try:
                    self.server.reload()
                except ChunkserverError:
                    write_atomic(self.hdd_cfg, original)
                    raise
            return self.show()

    # --- tiers MooseFS cannot measure yet -------------------------------------------------
    def settle_empty_tiers(self) -> list[str]:
        """Keep every tier in its configured state usable while MooseFS cannot measure it;
        return the tiers whose line changed.

        MooseFS 3.0.117 estimates the use of a size-limited folder from the chunks its
        "known blocks" thread has counted, and from the whole filesystem's ``statvfs`` use
        while that count is 0 (hddspacemgr.c ``hdd_refresh_usage`` ~1614). The thread walks
        a 16M-bucket hash 280 buckets a millisecond (~60 s a pass, ~5930) and counts only
        chunks whose size it knows (``validattr``): every chunk it creates, and every chunk
        a start finds in a folder that has a size limit (``hdd_add_chunk`` stats them,
        ~6114). So a tier that holds chunks when mfschunkserver starts is measured in its
        limit form at once (:func:`mooseng.tiers.start_hdd_lines` writes that form for it),
        but an empty tier, and a tier until its first chunk has been counted, reports the
        host's used bytes: above its limit, full. A fresh cluster could then create no file,
        and the first failover after it left every client without chunk servers for 46 s.

        So a tier in its configured state (configured limit, not marked for removal, not
        failed) that the chunkserver reports full while its chunks fill less than the limit
        (:meth:`_mismeasured`) is written as "leave N free" (:func:`mooseng.tiers.empty_tier_line`:
        MooseFS then offers the configured size minus its chunks' bytes) until MooseFS has
        held chunks there for ``KNOWN_AFTER`` seconds, then gets its limit back; N follows
        the chunks' bytes meanwhile. A tier MooseFS measures is left alone (an earlier
        version wrote every tier of a start in the "leave N free" form for 150 s: the server
        reported the host volume, 98 % used, and the master moved thousands of chunks off it
        and back). A tier a fault changed is left alone too: a filled tier must look full."""
        changed = []
        faults = self.faults()
        now = self.clock()
        for tier in self.tiers:
            if tier.name in faults:
                continue
            line = line_of(self.lines(), tier)
            if line is None or line.removal:
                continue
            view = self.server.folder_view(tier.path)
            holds = view.chunks > 0 if view is not None else has_chunk(tier.path)
            if holds:
                self.holding_since.setdefault(tier.name, now)
            else:
                self.holding_since.pop(tier.name, None)
            configured = tier.configured_limit
            if is_empty_tier_line(line):
                if holds and now - self.holding_since[tier.name] >= KNOWN_AFTER:
                    self._change_line(tier, lambda old, size=configured: replace(
                        old, limit=size, other_size=None) if is_empty_tier_line(old) else old)
                    changed.append(tier.name)
                    continue
            elif line.limit != configured or not self._mismeasured(tier, view, now):
                continue  # a fault's limit, or a limit MooseFS measures (or soon will)
            elif holds:
                self.holding_since[tier.name] = now  # counted again from now on
            wanted = empty_tier_line(tier, self.free_bytes(tier.path), self.used(tier.path))
            if line.limit == configured or _drifted(line, wanted):
                # decided again under the lock: a `mooseng disk` change in between wins
                self._change_line(tier, lambda old, new=wanted, size=configured: replace(
                    new, path=old.path, flags=old.flags)
                    if (old.limit == size or is_empty_tier_line(old)) and not old.removal
                    else old)
                changed.append(tier.name)
        return changed

    def _mismeasured(self, tier: Tier, view: FolderView | None, now: float) -> bool:
        """True when MooseFS reports ``tier`` (in its limit form) full while its chunks fill
        less than the limit: it is measuring the host's disk. When it holds chunks there,
        only once that has lasted ``MISMEASURED_GRACE`` s: right after a start its first
        figures can come before its count (it refreshes them every 60 s, and at once after a
        chunk operation in the folder), and "leave N free" would make the server look 98 %
        full for longer. Without an answer from the chunkserver: when the tier holds no
        chunk file."""
        if view is None:
            return not has_chunk(tier.path)
        full = (view.total == tier.configured_limit and view.used >= view.total
                and self.used(tier.path) + DRIFT < tier.configured_limit)
        if not full:
            self.full_since.pop(tier.name, None)
            return False
        if view.chunks == 0:
            return True  # nothing to count: no chunk would ever be placed on a full tier
        return now - self.full_since.setdefault(tier.name, now) >= MISMEASURED_GRACE

    @staticmethod
    def free_bytes(folder: Path) -> int:
        """Bytes free for an unprivileged writer on the filesystem of ``folder``."""
        info = os.statvfs(folder)
        return info.f_bavail * info.f_frsize

    # --- fail ------------------------------------------------------------------------
    def fail(self, name: str, on: bool) -> dict[str, Any]:
        """Make ``name``'s folder unusable to mfschunkserver, or bring it back."""
        tier = self.tier(name)
        with self._locked():
            if on:
                self._fail_on(tier)
            else:
                self._fail_off(tier)
            return self.show()

    def _fail_on(self, tier: Tier) -> None:
        state = self.data_dir / STATE_FILE
        faults = read_faults(state)
        if tier.name in faults:
            return
        try:
            mode = stat.S_IMODE(os.stat(tier.path).st_mode)
        except OSError as exc:
            raise DiskError(f"tier {tier.name}: cannot stat {tier.path}: {exc}") from None
        if not mode & 0o700:
            mode = 0o755  # already unusable (a fault we lost track of): heal to the default
        faults[tier.name] = {"mode": mode, "since": time.time()}
        write_atomic(state, json.dumps(faults, sort_keys=True) + "\n")  # recorded, then applied
        self.chmod(tier.path, 0)
        try:
            self.server.reload()
        except ChunkserverError:
            self.chmod(tier.path, mode)
            del faults[tier.name]
            write_atomic(state, json.dumps(faults, sort_keys=True) + "\n")
            raise
        self._wait(lambda: unusable(self.server.folder_flags(tier.path)), FAILED_TIMEOUT)

    def _fail_off(self, tier: Tier) -> None:
        state = self.data_dir / STATE_FILE
        faults = read_faults(state)
        if tier.name not in faults:
            return
        self.chmod(tier.path, int(faults[tier.name].get("mode", 0o755)))
        del faults[tier.name]
        write_atomic(state, json.dumps(faults, sort_keys=True) + "\n")

        def back() -> bool:
            return usable(self.server.folder_flags(tier.path))

        deadline = self.clock() + RELOAD_TIMEOUT
        while True:
            try:
                self.server.reload()
            except ChunkserverError:
                return  # not running: the supervisor's next start takes the folder up
            if self._wait(back, RELOAD_ROUND):
                return
            if self.clock() >= deadline:
                break
        self.server.restart()
        if not self._wait(back, RESTART_TIMEOUT):
            raise ChunkserverError(f"tier {tier.name} is usable again but mfschunkserver did not "
                                   f"take {tier.path} back within {RESTART_TIMEOUT:g} s of a "
                                   f"restart")

    def _wait(self, done: Callable[[], bool], timeout: float) -> bool:
        """Poll ``done`` until it is true (True) or ``timeout`` seconds passed (False)."""
        deadline = self.clock() + timeout
        while True:
            if done():
                return True
            if self.clock() >= deadline:
                return False
            self.sleep(POLL)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One disk change at a time in this container."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / LOCK_FILE, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


# --- files -------------------------------------------------------------------------
def write_atomic(path: Path, body: str) -> None:
    """Replace ``path`` with ``body`` in one step (a temporary file renamed over it), mode 644."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w") as handle:
        handle.write(body)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def read_faults(path: Path) -> dict[str, dict[str, Any]]:
    """The failed tiers recorded in ``path`` ({} when there is none or it is unreadable)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def _drifted(line: HddLine, wanted: HddLine) -> bool:
    """True when a "leave N free" line's N is more than ``DRIFT`` from the wanted one."""
    try:
        return abs(int(str(line.other_size)[1:]) - int(str(wanted.other_size)[1:])) > DRIFT
    except ValueError:
        return True


def keep_empty_tiers_open(stop: Any, interval: float = 5.0,
                          factory: Callable[[], Disks] | None = None) -> None:
    """Until ``stop`` (a threading.Event) is set: every ``interval`` s,
    :meth:`Disks.settle_empty_tiers`; a failure is logged and tried again next time (the
    chunkserver may be restarting)."""
    make = factory or Disks.from_settings
    disks: Disks | None = None
    while not stop.wait(interval):
        try:
            disks = disks or make()  # one instance: it remembers since when tiers hold chunks
            changed = disks.settle_empty_tiers()
        except (DiskError, ChunkserverError, OSError) as exc:
            log.warning("event=empty_tier_check_failed error=%r", str(exc))
            continue
        for name in changed:
            log.info("event=empty_tier_settled tier=%s", name)


def clear_faults(tiers: list[Tier], data_dir: Path,
                 chmod: Callable[[Path, int], None] = os.chmod) -> list[str]:
    """At container start: give every failed tier its mode back and forget the faults (the
    start writes mfshdd.cfg from the settings, so every disk change is undone); the healed
    tiers' names."""
    state = data_dir / STATE_FILE
    faults = read_faults(state)
    healed = []
    for tier in tiers:
        if tier.name in faults:
            with contextlib.suppress(OSError):
                chmod(tier.path, int(faults[tier.name].get("mode", 0o755)))
            healed.append(tier.name)
    with contextlib.suppress(FileNotFoundError):
        state.unlink()
    return healed


# --- command line ------------------------------------------------------------------
USAGE = ("usage: mooseng disk show | limit TIER BYTES | limit TIER --restore | "
         "removal TIER on|off | fail TIER on|off")


def parse_on_off(value: str) -> bool:
    """on -> True, off -> False; DiskError otherwise."""
    if value not in ("on", "off"):
        raise DiskError(f"{value!r} is not on or off")
    return value == "on"


def parse_bytes(value: str) -> int:
    """A byte count (``1073741824``, or with a unit: ``512MiB``); DiskError otherwise."""
    try:
        return settings.parse_size(value)
    except ValueError as exc:
        raise DiskError(f"bytes: {exc}") from None


def run(argv: list[str], factory: Callable[[], Disks] | None = None) -> dict[str, Any]:
    """Do what ``argv`` (after ``mooseng disk``) asks; the show JSON. DiskError for a bad
    request (checked before anything is touched), ChunkserverError when mfschunkserver did
    not take the change. ``factory`` gives the Disks (default: this container's)."""
    disks = factory or Disks.from_settings
    match argv:
        case ["show"]:
            return disks().show()
        case ["limit", tier, "--restore"]:
            return disks().restore_limit(tier)
        case ["limit", tier, value]:
            nbytes = parse_bytes(value)
            return disks().limit(tier, nbytes)
        case ["removal", tier, value]:
            on = parse_on_off(value)
            return disks().removal(tier, on)
        case ["fail", tier, value]:
            on = parse_on_off(value)
            return disks().fail(tier, on)
    raise DiskError(f"bad arguments {' '.join(argv)!r}; {USAGE}")
