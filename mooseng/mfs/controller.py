"""The MooseFS daemons of one master container, driven by :mod:`mooseng.ha`.

Exactly one of mfsmaster (leader) or mfsmetalogger (follower) runs. Promotion
follows the measured recipe (see MOOSEFS-NOTES): SIGTERM the metalogger and
wait (it flushes once a second), set stale master files aside, ``mfsmaster -a
restore``, start mfsmaster, wait until it accepts client connections.
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mooseng.mfs import files
from mooseng.supervisor import Daemon

log = logging.getLogger("mooseng.mfs")


class PromotionError(RuntimeError):
    """A promotion step failed; the message says which and why."""


class PromotionAborted(PromotionError):
    """The lease was lost while promoting; mfsmaster was not started."""


@dataclass(frozen=True)
class MfsPaths:
    """Fixed by the image: configs rendered by the entrypoint, DATA_PATH, the empty seed."""

    master_cfg: Path = Path("/etc/mfs/mfsmaster.cfg")
    metalogger_cfg: Path = Path("/etc/mfs/mfsmetalogger.cfg")
    data_path: Path = Path("/var/lib/mooseng/mfs")
    empty_metadata: Path = Path("/var/lib/mfs/metadata.mfs.empty")
    user: str = "mfs"


def chown(path: Path, user: str) -> None:
    """Give ``path`` to ``user`` when it exists (the daemons run as mfs)."""
    try:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    except (KeyError, PermissionError):
        pass


def accepts_connections(host: str, port: int, timeout: float = 0.3) -> bool:
    """True when a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class MfsController:
    """Start, stop, promote and demote the local MooseFS daemons."""

    def __init__(self, paths: MfsPaths, address: str, client_port: int = 9421,
                 ready_timeout: float = 15.0, restore_timeout: float = 60.0,
                 metalogger_stop_timeout: float = 10.0) -> None:
        self.paths = paths
        self.address = address
        self.client_port = client_port
        self.ready_timeout = ready_timeout
        self.restore_timeout = restore_timeout
        self.metalogger_stop_timeout = metalogger_stop_timeout
        self.master = Daemon("mfsmaster", ["mfsmaster", "-c", str(paths.master_cfg), "-f", "start"])
        self.metalogger = Daemon("mfsmetalogger",
                                 ["mfsmetalogger", "-c", str(paths.metalogger_cfg), "-f", "start"])
        self._master_gate = threading.Lock()

    # --- state -------------------------------------------------------------
    def master_running(self) -> bool:
        """mfsmaster (ours) is alive."""
        return self.master.running()

    def master_accepts_clients(self) -> bool:
        """mfsmaster runs and accepts TCP connections on the client port of our address."""
        return self.master.running() and accepts_connections(self.address, self.client_port)

    def metalogger_running(self) -> bool:
        """mfsmetalogger (ours) is alive."""
        return self.metalogger.running()

    def has_metadata(self) -> bool:
        """DATA_PATH holds metadata or changelogs (master or metalogger ones)."""
        return files.has_metadata(self.paths.data_path)

    def change_number(self, leader: bool) -> int:
        """Our metadata change number, read from the changelogs on disk (same measure for
        leader and followers; ``leader`` is accepted for the protocol and ignored)."""
        return files.change_number(self.paths.data_path)

    @property
    def lineage_file(self) -> Path:
        """Where the lineage epoch is kept: next to DATA_PATH, in the agent's volume."""
        return self.paths.data_path.parent / "lineage"

    def lineage(self) -> int:
        """The lease epoch whose leader's metadata DATA_PATH holds."""
        return files.read_lineage(self.lineage_file)

    def set_lineage(self, epoch: int) -> None:
        """Record that DATA_PATH now holds the lineage of lease ``epoch``."""
        files.write_lineage(self.lineage_file, epoch)

    def daemon_info(self) -> dict[str, Any]:
        """{name, pid, state} of the daemon that should run (mfsmaster if it runs, else the metalogger)."""
        daemon = self.master if self.master.running() else self.metalogger
        pid = daemon.pid
        return {"name": daemon.name, "pid": pid, "state": "running" if pid else "stopped"}

    # --- follower ------------------------------------------------------------
    def ensure_metalogger(self) -> bool:
        """Start the metalogger if it does not run (and mfsmaster does not); True if started."""
        if self.metalogger.running() or self.master.running():
            return False
        self.metalogger.start()
        return True

    def restart_metalogger(self, lineage: int) -> None:
        """Follow a new leader from a clean slate: stop the metalogger, set every metadata
        file aside (ours may be of an older lineage, and a metalogger that keeps appending to
        an old changelog leaves holes that make a later restore fail), record ``lineage``,
        start the metalogger so it downloads the new leader's metadata."""
        self.metalogger.stop("graceful", timeout=self.metalogger_stop_timeout)
        where = files.set_aside(self.paths.data_path, files.METADATA_ANY)
        log.info("event=metalogger_files_aside folder=%s lineage=%s", where, lineage)
        self.set_lineage(lineage)
        self.metalogger.start()

    # --- leader ----------------------------------------------------------------
    def bootstrap(self) -> None:
        """Seed a brand-new file system: copy the empty metadata into DATA_PATH."""
        if self.has_metadata():
            raise PromotionError("refusing to bootstrap: DATA_PATH already holds metadata")
        self.paths.data_path.mkdir(parents=True, exist_ok=True)
        target = self.paths.data_path / "metadata.mfs"
        shutil.copyfile(self.paths.empty_metadata, target)
        chown(target, self.paths.user)
        log.info("event=bootstrap_metadata file=%s", target)

    def promote(self, may_start: Callable[[], bool], fresh: bool = False,
                min_version: int = 0) -> float:
        """Become the MooseFS leader; return the seconds it took. ``fresh``: bootstrap
        (the seed is in place, no restore). ``may_start`` is asked, under the same lock
        :meth:`fence` takes, right before mfsmaster starts. ``min_version``: after a planned
        handover, the old leader's last change; checked once the stopped metalogger has
        flushed its buffer to disk (it writes only once a second), and promotion fails when
        we do not hold it."""
        started = time.monotonic()
        code = self.metalogger.stop("graceful", timeout=self.metalogger_stop_timeout)
        log.info("event=promotion_step step=metalogger_stopped code=%s took=%.2fs", code,
                 time.monotonic() - started)
        have = files.change_number(self.paths.data_path)
        if have < min_version:
            raise PromotionError(f"my change number {have} is behind the old leader's last "
                                 f"change {min_version}")
        if not fresh:
            # DATA_PATH holds one lineage only (see restart_metalogger), so the master's own
            # files, when present, are the newest of it: restore from everything.
            self._restore_releasing_write_locks()
        with self._master_gate:
            if not may_start():
                raise PromotionAborted("lease lost before mfsmaster started")
            self.master.start()
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if not self.master.running():
                raise PromotionError(f"mfsmaster exited with code {self.master.poll()} while starting")
            if accepts_connections(self.address, self.client_port, timeout=0.2):
                took = time.monotonic() - started
                log.info("event=promotion_step step=mfsmaster_ready took=%.2fs", took)
                return took
            time.sleep(0.05)
        raise PromotionError(f"mfsmaster did not accept clients on {self.address}:{self.client_port} "
                             f"within {self.ready_timeout:.0f} s")

    def _restore_releasing_write_locks(self) -> None:
        """Restore, first appending ``UNLOCK`` for chunk writes the old leader never saw end.

        Those writes died with the old leader; restored as they are, their chunks stay
        locked for up to two minutes and the writing client blocks that long (measured:
        60-130 s). Unlocking them is what mfsmaster does when the lock times out: the
        client redoes its write from its buffer. Should the restore refuse the added lines,
        they are cut off again and the restore runs on the files as they were."""
        data_path = self.paths.data_path
        now = time.time()
        chunks = files.stale_write_locks(data_path, now)
        undo = files.append_unlocks(data_path, chunks, now) if chunks else None
        if undo is not None:
            log.info("event=write_locks_released chunks=%s file=%s", ",".join(map(str, chunks)),
                     undo[0].name)
        try:
            self._restore()
        except PromotionError as exc:
            if undo is None:
                raise
            log.warning("event=write_lock_release_refused reason=%r action='restore without it'",
                        str(exc))
            files.undo_append(*undo)
            self._restore()

    def _restore(self) -> None:
        """``mfsmaster -a -c CFG restore``: rebuild metadata.mfs from the best metadata file
        and every changelog in DATA_PATH (metalogger's and, if any, the master's own)."""
        argv = ["mfsmaster", "-a", "-c", str(self.paths.master_cfg), "restore"]
        begun = time.monotonic()
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self.restore_timeout,
                                  check=False, start_new_session=True)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PromotionError(f"mfsmaster restore failed: {exc}") from None
        output = (done.stdout + done.stderr).strip().splitlines()
        if done.returncode != 0:
            log.warning("event=restore_failed output=%r", " | ".join(output[-6:]))
            raise PromotionError(f"mfsmaster restore exited with code {done.returncode}: "
                                 f"{output[-1] if output else 'no output'}")
        log.info("event=promotion_step step=restored took=%.2fs", time.monotonic() - begun)

    def fence(self) -> None:
        """Stop mfsmaster at once (SIGKILL): we may no longer hold the lease."""
        with self._master_gate:
            if self.master.running():
                self.master.stop("kill")

    def kill_master_now(self) -> None:
        """SIGKILL mfsmaster even while another thread is stopping it gracefully."""
        self.master.kill_now()

    def stop_master(self) -> None:
        """Stop mfsmaster gracefully (planned switchover, shutdown): it flushes to metaloggers."""
        with self._master_gate:
            self.master.stop("fast", timeout=10.0)

    def demote(self) -> None:
        """Become a follower: mfsmaster stopped, the metalogger started. The master's files
        stay until this node follows a new leader (they may still be the newest lineage)."""
        self.stop_master()
        self.metalogger.start()

    def stop_all(self) -> None:
        """Stop both daemons gracefully (agent shutdown)."""
        self.stop_master()
        self.metalogger.stop("graceful", timeout=self.metalogger_stop_timeout)
