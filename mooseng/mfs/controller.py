"""The MooseFS daemons of one master container, driven by :mod:`mooseng.ha`.

Exactly one of mfsmaster (leader) or mfsmetalogger (follower) runs. Promotion
follows the measured recipe (see MOOSEFS-NOTES): SIGTERM the metalogger and
wait (it flushes once a second), set stale master files aside, ``mfsmaster -a
restore``, start mfsmaster, wait until it accepts client connections.

With the reply barrier on (``barrier`` given, docs/reply-barrier.md) the leader's
mfsmaster serves clients on the loopback only and the barrier proxy on the public client
port holds every reply until followers' taps acknowledged the change behind it; each
follower runs a tap next to its metalogger, started, stopped and set aside with it. The
barrier starts after mfsmaster accepts connections and before promotion returns (so
before the node reports leader), and is killed before mfsmaster whenever mfsmaster is
fenced or stopped. A frozen mfsmaster keeps its barrier: it releases only replies whose
changes a follower holds, and connections it keeps are not dropped for nothing.

Freezing (SIGSTOP) stops mfsmaster from answering anything without losing its state;
thawing is SIGCONT. A frozen mfsmaster is only ever thawed by :meth:`thaw_master`:
every stop of a frozen one is a SIGKILL (a SIGTERM to a stopped process stays pending
until SIGCONT, and resuming it to let it exit would let it serve meanwhile).
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from mooseng.mfs import files
from mooseng.mfs.barrier import LOOPBACK, BarrierConfig
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
                 metalogger_stop_timeout: float = 10.0, barrier: BarrierConfig | None = None) -> None:
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
        self._frozen = False  # mfsmaster was sent SIGSTOP and not SIGCONT since
        self.barrier = barrier
        # argv is set at each start: it carries the lease epoch
        self.barrier_proxy = Daemon("barrier", []) if barrier else None
        self.tap = Daemon("tap", []) if barrier else None
        self._barrier_epoch: int | None = None  # the epoch the running leader's barrier serves

    @property
    def tap_folder(self) -> Path:
        """The tap's changelog segments: next to DATA_PATH, in the agent's volume."""
        return self.paths.data_path.parent / "tap"

    def _mfsmaster_client_address(self) -> tuple[str, int]:
        """Where mfsmaster itself accepts clients: the public port, or with the barrier on
        its internal loopback port."""
        if self.barrier is None:
            return self.address, self.client_port
        return LOOPBACK, self.barrier.internal_client_port

    # --- state -------------------------------------------------------------
    def master_running(self) -> bool:
        """mfsmaster (ours) is alive."""
        return self.master.running()

    def master_accepts_clients(self) -> bool:
        """mfsmaster runs and accepts TCP connections on the client port of our address (with
        the barrier on: mfsmaster on its internal port, and the barrier, which serves the
        public client port, runs too)."""
        if not self.master.running():
            return False
        if self.barrier_proxy is not None and not (
                self.barrier_proxy.running()
                and accepts_connections(*self._mfsmaster_client_address())):
            return False
        return accepts_connections(self.address, self.client_port)

    def has_metadata(self) -> bool:
        """DATA_PATH holds metadata or changelogs (master or metalogger ones)."""
        return files.has_metadata(self.paths.data_path)

    def change_number(self) -> int:
        """Our metadata change number, read from the changelogs on disk (same measure for
        leader and followers); with the barrier on, the tap's usable segments count too."""
        return files.change_number(self.paths.data_path,
                                   self.tap_folder if self.barrier is not None else None)

    def own_master_change(self) -> int:
        """The last change our own mfsmaster wrote (its ``changelog.N.mfs``), 0 if none."""
        return files.own_master_change(self.paths.data_path)

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
        """Start the metalogger if it does not run (and mfsmaster does not); True if started.
        With the barrier on, a tap that does not run is started too (for the lineage on
        disk: the leader's barrier refuses it until it follows the current epoch)."""
        if self.master.running():
            return False
        if self.tap is not None and not self.tap.running():
            self._start_tap(self.lineage())
        if self.metalogger.running():
            return False
        self.metalogger.start()
        return True

    def _start_tap(self, epoch: int) -> None:
        assert self.tap is not None and self.barrier is not None
        self.tap_folder.mkdir(parents=True, exist_ok=True)
        self.tap.argv = self.barrier.tap_argv(self.address, self.tap_folder, self.paths.data_path,
                                              epoch)
        self.tap.start()

    def _stop_tap(self) -> None:
        if self.tap is not None:
            self.tap.stop("graceful", timeout=self.metalogger_stop_timeout)

    def restart_metalogger(self, lineage: int) -> None:
        """Follow a new leader from a clean slate: stop the metalogger, set every metadata
        file aside (ours may be of an older lineage, and a metalogger that keeps appending to
        an old changelog leaves holes that make a later restore fail), record ``lineage``,
        start the metalogger so it downloads the new leader's metadata. The tap (barrier on)
        goes the same way: stopped, its segments set aside, started for epoch ``lineage``."""
        self.metalogger.stop("graceful", timeout=self.metalogger_stop_timeout)
        self._stop_tap()
        where = files.set_aside(self.paths.data_path, files.METADATA_ANY)
        log.info("event=metalogger_files_aside folder=%s lineage=%s", where, lineage)
        if self.tap is not None:
            tap_aside = files.set_aside(self.tap_folder, files.METADATA_ANY)
            log.info("event=tap_files_aside folder=%s lineage=%s", tap_aside, lineage)
        self.set_lineage(lineage)
        self.metalogger.start()
        if self.tap is not None:
            self._start_tap(lineage)

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
                min_version: int = 0, epoch: int = 0) -> tuple[float, int]:
        """Become the MooseFS leader; return the seconds it took and the change number it
        restored from (measured once the metalogger flushed, before any UNLOCK line is
        appended or mfsmaster writes: where the new lineage starts). ``fresh``: bootstrap
        (the seed is in place, no restore). ``may_start`` is asked, under the same lock
        :meth:`fence` takes, right before mfsmaster starts. ``min_version``: after a planned
        handover, the old leader's last change; checked once the stopped metalogger has
        flushed its buffer to disk (it writes only once a second), and promotion fails when
        we do not hold it. ``epoch``: the lease epoch, which the barrier (when on) serves.

        Before the restore, torn last lines are cut off every changelog (a restore skips such
        a file whole) and, with the barrier on, the tap's usable segments are linked into
        DATA_PATH (they hold what this node acknowledged)."""
        started = time.monotonic()
        code = self.metalogger.stop("graceful", timeout=self.metalogger_stop_timeout)
        log.info("event=promotion_step step=metalogger_stopped code=%s took=%.2fs", code,
                 time.monotonic() - started)
        if self.tap is not None:
            self._stop_tap()
            if not fresh:
                linked = files.link_tap_segments(self.paths.data_path, self.tap_folder)
                for path in linked:
                    chown(path, self.paths.user)
                log.info("event=promotion_step step=tap_segments_linked files=%s",
                         ",".join(p.name for p in linked) or "none")
        for path, cut in files.trim_torn_lines(self.paths.data_path):
            log.warning("event=torn_changelog_line_cut file=%s bytes=%d", path.name, cut)
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
        host, port = self._mfsmaster_client_address()
        while time.monotonic() < deadline:
            if not self.master.running():
                raise PromotionError(f"mfsmaster exited with code {self.master.poll()} while starting")
            if accepts_connections(host, port, timeout=0.2):
                if self.barrier_proxy is not None:
                    self._start_barrier(may_start, epoch, deadline)
                took = time.monotonic() - started
                log.info("event=promotion_step step=mfsmaster_ready took=%.2fs", took)
                return took, have
            time.sleep(0.05)
        raise PromotionError(f"mfsmaster did not accept clients on {host}:{port} "
                             f"within {self.ready_timeout:.0f} s")

    def _start_barrier(self, may_start: Callable[[], bool], epoch: int, deadline: float) -> None:
        """Start the reply barrier for lease ``epoch`` and wait until it serves the public
        client port (under the gate, like mfsmaster: never for a lease already lost)."""
        assert self.barrier_proxy is not None and self.barrier is not None
        with self._master_gate:
            if not may_start():
                raise PromotionAborted("lease lost before the reply barrier started")
            self.barrier_proxy.argv = self.barrier.proxy_argv(self.address, self.client_port, epoch)
            self.barrier_proxy.start()
            self._barrier_epoch = epoch
        while time.monotonic() < deadline:
            if not self.barrier_proxy.running():
                raise PromotionError(f"the reply barrier exited with code "
                                     f"{self.barrier_proxy.poll()} while starting")
            if accepts_connections(self.address, self.client_port, timeout=0.2):
                log.info("event=promotion_step step=barrier_ready epoch=%s", epoch)
                return
            time.sleep(0.05)
        raise PromotionError(f"the reply barrier did not accept clients on "
                             f"{self.address}:{self.client_port} within {self.ready_timeout:.0f} s")

    def ensure_barrier(self) -> bool:
        """Restart the leader's reply barrier (same epoch) if it died while mfsmaster runs
        and is not frozen; True when restarted. Never starts one that promotion did not."""
        if self.barrier_proxy is None:
            return False
        with self._master_gate:
            if (self._barrier_epoch is None or self._frozen or not self.master.running()
                    or self.barrier_proxy.running()):
                return False
            return self.barrier_proxy.keep_running()

    def _kill_barrier(self) -> None:
        """SIGKILL the barrier (held replies are never released; their clients resend)."""
        if self.barrier_proxy is not None:
            self.barrier_proxy.stop("kill")
            self._barrier_epoch = None

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
        """Stop mfsmaster at once (SIGKILL): we may no longer hold the lease. A frozen
        mfsmaster is killed as it is, never resumed first."""
        with self._master_gate:
            self._kill_barrier()
            if self.master.running():
                self.master.stop("kill")
            self._frozen = False

    def freeze_master(self, settle: float = 0.1) -> bool:
        """SIGSTOP mfsmaster: it answers nobody (clients, chunkservers, metaloggers) until
        thawed or killed; its connections and memory stay. Signals are delivered
        asynchronously: returns once the process is seen stopped (or after ``settle``
        seconds), so a time taken afterwards is past its last reply. False when it does not
        run."""
        with self._master_gate:
            if not self.master.signal(signal.SIGSTOP):
                return False
            self._frozen = True
            pid, deadline = self.master.pid, time.monotonic() + settle
            while time.monotonic() < deadline:
                try:
                    if psutil.Process(pid).status() == psutil.STATUS_STOPPED:
                        break
                except psutil.Error:
                    break
                time.sleep(0.001)
            log.warning("event=mfsmaster_frozen pid=%s", pid)
            return True

    def thaw_master(self) -> bool:
        """SIGCONT a frozen mfsmaster; False when it was not frozen or does not run."""
        with self._master_gate:
            if not self._frozen:
                return False
            self._frozen = False
            resumed = self.master.signal(signal.SIGCONT)
            log.info("event=mfsmaster_thawed pid=%s resumed=%s", self.master.pid, resumed)
            return resumed

    def kill_master_now(self) -> None:
        """SIGKILL mfsmaster (and the barrier) even while another thread is stopping it
        gracefully."""
        if self.barrier_proxy is not None:
            self.barrier_proxy.kill_now()
        self.master.kill_now()

    def stop_master(self) -> None:
        """Stop mfsmaster gracefully (planned switchover, shutdown): it flushes to metaloggers.
        A frozen one is killed instead (it cannot flush, and must not resume to try)."""
        with self._master_gate:
            if self._frozen:
                self._kill_barrier()
                self.master.stop("kill")
                self._frozen = False
                return
            self.master.stop("fast", timeout=10.0)
            # after mfsmaster: its last changes reach the taps while it stops, so the barrier
            # may still release the replies they cover
            self._kill_barrier()

    def demote(self) -> None:
        """Become a follower: mfsmaster stopped, the metalogger started. The master's files
        stay until this node follows a new leader (they may still be the newest lineage)."""
        self.stop_master()
        self.metalogger.start()
        if self.tap is not None:
            # what it held is in DATA_PATH since our promotion (linked there): start afresh
            files.set_aside(self.tap_folder, files.METADATA_ANY)
            self._start_tap(self.lineage())

    def stop_all(self) -> None:
        """Stop both daemons gracefully (agent shutdown)."""
        self.stop_master()
        self.metalogger.stop("graceful", timeout=self.metalogger_stop_timeout)
        self._stop_tap()
