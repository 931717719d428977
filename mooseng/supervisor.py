"""Child processes the containers supervise: MooseFS daemons and the leader router.

A :class:`Daemon` owns one child started with ``subprocess.Popen``. Identity is
checked by start time (psutil) so a reused PID is never signalled. Stop modes
are named and map to signals: ``graceful`` (SIGTERM, wait), ``fast`` (SIGTERM,
shorter wait, then SIGKILL) and ``kill`` (SIGKILL). Agent variables
(``MOOSENG_*``) are removed from children's environments.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field

import psutil

log = logging.getLogger("mooseng.supervisor")

STOP_MODES = {"graceful": 30.0, "fast": 5.0, "kill": 0.0}


def child_environment(extra: dict[str, str] | None = None, keep_settings: bool = False) -> dict[str, str]:
    """The environment for a child: ours without MOOSENG_* variables (unless
    ``keep_settings``, for our own Python children), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if keep_settings or not k.startswith("MOOSENG_")}
    env.update(extra or {})
    return env


@dataclass
class Daemon:
    """One supervised child process."""

    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    keep_settings: bool = False
    restarts: int = 0
    _popen: subprocess.Popen | None = field(default=None, repr=False)
    _create_time: float | None = field(default=None, repr=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def pid(self) -> int | None:
        """The child's PID while it runs, else None."""
        with self._lock:
            return self._popen.pid if self.running() else None

    def start(self) -> None:
        """Start the child unless it already runs."""
        with self._lock:
            if self.running():
                return
            self._popen = subprocess.Popen(
                self.argv, env=child_environment(self.env, self.keep_settings), start_new_session=True,
            )
            try:
                self._create_time = psutil.Process(self._popen.pid).create_time()
            except psutil.Error:
                self._create_time = None
            log.info("event=daemon_started daemon=%s pid=%s argv=%r", self.name, self._popen.pid,
                     " ".join(self.argv))

    def poll(self) -> int | None:
        """Reap the child if it exited; return its exit code, or None while it runs or never ran."""
        with self._lock:
            if self._popen is None:
                return None
            return self._popen.poll()

    def running(self) -> bool:
        """True while the child we started is alive (and is still the same process)."""
        with self._lock:
            if self._popen is None or self._popen.poll() is not None:
                return False
            try:
                proc = psutil.Process(self._popen.pid)
                same = self._create_time is None or abs(proc.create_time() - self._create_time) < 0.01
                return same and proc.status() != psutil.STATUS_ZOMBIE
            except psutil.Error:
                return False

    def signal(self, signum: int) -> bool:
        """Send ``signum`` to the child; False when it does not run."""
        with self._lock:
            if not self.running():
                return False
            os.kill(self._popen.pid, signum)
            return True

    def kill_now(self) -> None:
        """SIGKILL the child at once, without the lock (another thread may be waiting in
        :meth:`stop` for it to exit)."""
        popen = self._popen
        if popen is None or popen.returncode is not None:
            return
        try:
            os.kill(popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def stop(self, mode: str = "graceful", timeout: float | None = None) -> int | None:
        """Stop the child in ``mode`` (graceful, fast, kill); return its exit code.

        graceful and fast send SIGTERM and wait up to ``timeout`` (default per
        mode) before SIGKILL; kill sends SIGKILL at once.
        """
        if mode not in STOP_MODES:
            raise ValueError(f"unknown stop mode {mode!r}; expected one of {sorted(STOP_MODES)}")
        wait = STOP_MODES[mode] if timeout is None else timeout
        with self._lock:
            if not self.running():
                return self.poll()
            started = time.monotonic()
            self.signal(signal.SIGKILL if mode == "kill" else signal.SIGTERM)
            try:
                code = self._popen.wait(timeout=wait if mode != "kill" else 10)
            except subprocess.TimeoutExpired:
                log.warning("event=daemon_stop_timeout daemon=%s pid=%s waited=%.1fs action=SIGKILL",
                            self.name, self._popen.pid, wait)
                self.signal(signal.SIGKILL)
                code = self._popen.wait(timeout=10)
            log.info("event=daemon_stopped daemon=%s mode=%s code=%s took=%.2fs", self.name, mode, code,
                     time.monotonic() - started)
            return code

    def keep_running(self) -> bool:
        """Restart the child if it died unexpectedly; True when a restart happened."""
        with self._lock:
            if self._popen is None or self.running():
                return False
            code = self.poll()
            self.restarts += 1
            log.warning("event=daemon_died daemon=%s code=%s restarts=%d action=restart", self.name,
                        code, self.restarts)
            self.start()
            return True
