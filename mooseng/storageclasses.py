"""The lab's MooseFS storage classes, defined here and nowhere else, and who creates them.

Labels are per chunkserver in MooseFS 3.0.117 (``LABELS`` in mfschunkserver.cfg: letters
separated by ``,`` or ``;``, masterconn.c ``masterconn_parselabels``), not per folder, so a class
places copies on chunkservers, never on one tier folder of a chunkserver (the chunkserver
picks the folder itself, by free space). docker-compose.yml gives every chunkserver an
identity label and a tier role label: chunkserver-1 ``A,F``, chunkserver-2 ``B,F`` (fast
servers), chunkserver-3 ``C,S`` (the bulk server). A class's label expression lists one
term per copy (``F,S``: one copy on an F server, one on an S server; ``*`` any server);
letters written together must all be carried by the server (mfsclient/labelparser.c).

``tiered`` creates both copies on fast servers, keeps one on a fast and one on the bulk server,
and keeps archived chunks (files whose ctime is older than ``-d`` days; the unit is days in
3.0.117: mfsmaster/filesystem.c ``arch_delay * 86400``, mfsscadmin's ``-d``) with one copy on
the bulk server; ``mfssetarchive FILE`` archives at once. With a single bulk server the second
archived copy must sit on a fast server (a chunkserver holds one copy of a chunk), so archived
placement equals ``keep`` here; one more S-labelled chunkserver would let both go to bulk.

Who creates them: a client, not the leading master. ``mfsscadmin`` reaches the master only
through a mount whose export has the ``admin`` flag (it reads the mount's master address and
session, mfstools.c ``master_prepare_conn``); masters run no mount and should not get FUSE
privileges for it, while every client already mounts with ``admin`` (mfsexports.cfg). Classes
live in the metadata (changelog ``SCSET``), so they survive a failover; a promotion from a
lagging metalogger could still lose a class made just before, which is why every client
checks again every ``MOOSENG_SCLASS_CHECK_INTERVAL`` seconds (and at mount time) and creates
the missing ones. Creating is idempotent: "Class name already in use" (MooseFS's answer when
another client was faster) counts as success. An existing class is never changed.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("mooseng.storageclasses")

NAME = re.compile(r"[A-Za-z0-9_-]{1,255}")
LABEL_EXPR = re.compile(r"[A-Za-z0-9*,;+|&()\[\]]+")
MODES = {"std": "d", "strict": "s", "loose": "l"}  # mfsscadmin -m
EXISTS_MARKERS = ("already in use", "already exists")
TOOL_TIMEOUT = 10.0


class StorageClassError(ValueError):
    """A class definition MooseFS would not accept."""


@dataclass(frozen=True)
class StorageClass:
    """One storage class: ``keep`` (and optional ``create``/``archive``) label expressions as
    mfsscadmin takes them, ``archive_days`` (whole days, 1..49710), mode std/strict/loose."""

    name: str
    keep: str
    purpose: str
    create: str | None = None
    archive: str | None = None
    archive_days: int | None = None
    mode: str = "std"

    def __post_init__(self) -> None:
        if not NAME.fullmatch(self.name):
            raise StorageClassError(f"storage class name {self.name!r} is invalid; expected "
                                    f"letters, digits, _ and - only")
        for what, expr in (("keep", self.keep), ("create", self.create), ("archive", self.archive)):
            if expr is not None and not LABEL_EXPR.fullmatch(expr):
                raise StorageClassError(f"storage class {self.name}: {what} labels {expr!r} are "
                                        f"not a label expression such as F,S")
        if (self.archive is None) != (self.archive_days is None):
            raise StorageClassError(f"storage class {self.name}: archive labels and archive_days "
                                    f"go together (mfsscadmin -A needs -d)")
        if self.archive_days is not None and not 1 <= self.archive_days <= 49710:
            raise StorageClassError(f"storage class {self.name}: archive_days "
                                    f"{self.archive_days} is not 1..49710")
        if self.mode not in MODES:
            raise StorageClassError(f"storage class {self.name}: mode {self.mode!r} is not one of "
                                    f"{', '.join(MODES)}")

    def create_argv(self, mount: Path) -> list[str]:
        """``mfsscadmin MOUNT create ... NAME``."""
        argv = ["mfsscadmin", str(mount), "create"]
        if self.mode != "std":
            argv += ["-m", MODES[self.mode]]
        if self.create is not None:
            argv += ["-C", self.create]
        argv += ["-K", self.keep]
        if self.archive is not None:
            argv += ["-A", self.archive, "-d", str(self.archive_days)]
        return [*argv, self.name]


CLASSES: tuple[StorageClass, ...] = (
    StorageClass("two_copies", keep="*,*", purpose="2 copies on any two chunkservers"),
    StorageClass("fast_only", keep="F,F", purpose="both copies on the fast servers"),
    StorageClass("fast_and_bulk", keep="F,S",
                 purpose="one copy on a fast server, one on the bulk server"),
    StorageClass("tiered", create="F,F", keep="F,S", archive="S,*", archive_days=1,
                 purpose="written to two fast servers, then kept on fast + bulk; archived "
                         "(ctime older than 1 day, or mfssetarchive) with a copy on bulk"),
)


def markdown_table(classes: Iterable[StorageClass] = CLASSES) -> str:
    """The README's table of classes."""
    rows = ["| class | create | keep | archive | meaning |", "|---|---|---|---|---|"]
    for sc in classes:
        archive = f"`{sc.archive}` after {sc.archive_days} d" if sc.archive else "-"
        rows.append(f"| `{sc.name}` | `{sc.create or sc.keep}` | `{sc.keep}` | {archive} | "
                    f"{sc.purpose} |")
    return "\n".join(rows)


# --- ensuring them -----------------------------------------------------------------
Runner = Callable[[list[str]], tuple[int, str]]


def run_tool(argv: list[str], timeout: float = TOOL_TIMEOUT) -> tuple[int, str]:
    """(exit code, stdout + stderr) of a MooseFS tool; (-1, reason) when it did not run or
    timed out."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return -1, f"{argv[0]} did not answer within {timeout:g} s"
    except OSError as exc:
        return -1, f"{argv[0]}: {exc}"
    return done.returncode, done.stdout + done.stderr


def first_line(text: str) -> str:
    """The first non-blank line of a tool's output (for a log line)."""
    return next((line.strip() for line in text.splitlines() if line.strip()), "no output")[:200]


def parse_list(text: str) -> list[str]:
    """Class names from ``mfsscadmin MOUNT list`` (one name per line; mfstools.c ``list_sc``)."""
    return [line.strip() for line in text.splitlines() if line.strip()]


@dataclass
class EnsureResult:
    """One check: classes that were there, that this check created, and the failures
    (``listing`` when the list itself failed)."""

    present: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    raced: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Every class exists now."""
        return not self.failed


def ensure(mount: Path, run: Runner = run_tool,
           classes: Iterable[StorageClass] = CLASSES) -> EnsureResult:
    """List the classes through ``mount`` and create the missing ones."""
    result = EnsureResult()
    code, out = run(["mfsscadmin", str(mount), "list"])
    if code != 0:
        result.failed["listing"] = first_line(out)
        return result
    existing = set(parse_list(out))
    for sc in classes:
        if sc.name in existing:
            result.present.append(sc.name)
            continue
        code, out = run(sc.create_argv(mount))
        if code == 0:
            result.created.append(sc.name)
        elif any(marker in out.lower() for marker in EXISTS_MARKERS):
            result.raced.append(sc.name)
        else:
            result.failed[sc.name] = first_line(out)
    return result


class SclassKeeper:
    """A client's thread that keeps the classes in place: a check as soon as the mount is
    up, then one every ``interval`` seconds (``retry`` seconds after a failed one). Runs off
    the supervisor loop because mfsscadmin can block while no master answers."""

    def __init__(self, mount: Path, interval: float, run: Runner = run_tool,
                 ready: Callable[[], bool] | None = None, retry: float = 5.0,
                 classes: Iterable[StorageClass] = CLASSES) -> None:
        self.mount = mount
        self.interval = interval
        self.retry = min(retry, interval)
        self.run = run
        self.ready = ready or (lambda: os.path.ismount(mount))
        self.classes = tuple(classes)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ensured_once = False

    def check(self) -> EnsureResult | None:
        """One check with its log lines; None when the mount is not up."""
        if not self.ready():
            log.debug("event=sclass_check_skipped mount=%s reason='mount not up'", self.mount)
            return None
        result = ensure(self.mount, self.run, self.classes)
        for name in result.created:
            log.info("event=sclass_created name=%s mount=%s", name, self.mount)
        for name in result.raced:
            log.info("event=sclass_exists name=%s reason='created elsewhere meanwhile'", name)
        for name, reason in result.failed.items():
            log.warning("event=sclass_check_failed name=%s reason=%r", name, reason)
        if result.ok and (not self._ensured_once or result.created):
            log.info("event=sclass_ensured classes=%s created=%s", ",".join(
                sc.name for sc in self.classes), ",".join(result.created) or "-")
            self._ensured_once = True
        return result

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                result = self.check()
            except Exception:  # the keeper must outlive one bad check
                log.exception("event=sclass_check_error mount=%s", self.mount)
                result = None
            self._stop.wait(self.interval if result is not None and result.ok else self.retry)

    def start(self) -> None:
        """Check in a daemon thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._loop, name="sclass-keeper", daemon=True)
        self._thread.start()
        log.info("event=sclass_keeper_started mount=%s interval_s=%g", self.mount, self.interval)

    def stop(self) -> None:
        """End the thread (a running check is not waited for)."""
        self._stop.set()
