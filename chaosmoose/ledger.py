"""The crash-safe fault ledger: every fault is on disk before it is applied.

The ledger is an append-only JSON-lines file (``<run dir>/faults.jsonl``). Each line is an
event about one fault:

- ``{"event": "open", "id": ..., "kind": "container.pause", "target": {...}, ...}`` is
  written and fsync'ed *before* the fault is applied;
- ``{"event": "undone", "id": ..., "how": "unpaused"}`` after it was undone;
- ``{"event": "undo_failed", "id": ..., "error": ...}`` when an undo attempt failed (the
  fault stays open).

Replaying the file folds these events into the current state of every fault, so
``chaosmoose cleanup`` can undo what is still open even after the run was killed with
SIGKILL. A torn last line (a crash in the middle of a write) is skipped. A record that
is not one of these events in the right shape (an ``open`` without ``kind``, a ``target``
that is not an object, a ``target.service`` or ``cut_off`` service that is not a name, an
``id`` that is not a string, a garbled line in the middle) is
skipped too and reported in ``Ledger.problems``, so one bad line never hides the others.

Every run directory holds its own ledger (``make experiment`` and game days give each run
one under ``runs/``); :func:`ledgers_under` finds them all. This module is standard library
only.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

logger = logging.getLogger("chaostoolkit")

__all__: list[str] = []  # not an activity module

LEDGER_FILE = "faults.jsonl"
EVENTS = ("open", "applied", "undone", "undo_failed")

_lock = threading.Lock()


def _now() -> tuple[float, str]:
    t = time.time()
    return t, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def new_id() -> str:
    """A fresh fault id (12 hex digits)."""
    return uuid.uuid4().hex[:12]


class Ledger:
    """One run directory's fault ledger."""

    def __init__(self, run_dir: Path | str) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LEDGER_FILE
        self.problems: list[str] = []  # bad records of the last read, one sentence each

    def _append(self, record: dict[str, Any]) -> None:
        """Append one record and fsync it (and the directory when the file is new)."""
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        with _lock:
            new = not self.path.exists()
            self.run_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                # a crash may have left a torn line without newline: start on a fresh line
                size = os.fstat(fd).st_size
                if size:
                    with open(self.path, "rb") as tail:
                        tail.seek(size - 1)
                        if tail.read(1) != b"\n":
                            line = b"\n" + line
                os.write(fd, line)
                os.fsync(fd)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            if new:
                dir_fd = os.open(self.run_dir, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)

    def open(self, kind: str, target: dict[str, Any], run: str, fault_id: str | None = None,
             **details: Any) -> dict[str, Any]:
        """Record a fault about to be applied; return the open fault (with its ``id``).

        ``fault_id`` (from :func:`new_id`) is for a caller that names what it creates after
        the fault; by default a fresh id is drawn.
        """
        t, at = _now()
        record = {"event": "open", "id": fault_id or new_id(), "kind": kind,
                  "target": target, "run": run, "t": t, "at": at, **details}
        self._append(record)
        logger.info("ledger: fault %s %s on %s opened", record["id"], kind,
                    target.get("service", target))
        return self._fold([record])[0]

    def applied(self, fault_id: str) -> float:
        """Record that an opened fault is now fully in place (``applied_t`` of the fault);
        return that time."""
        t, at = _now()
        self._append({"event": "applied", "id": fault_id, "t": t, "at": at})
        return t

    def close(self, fault_id: str, how: str) -> None:
        """Mark a fault undone, saying how."""
        t, at = _now()
        self._append({"event": "undone", "id": fault_id, "how": how, "t": t, "at": at})
        logger.info("ledger: fault %s undone (%s)", fault_id, how)

    def undo_failed(self, fault_id: str, error: str) -> None:
        """Record a failed undo attempt; the fault stays open."""
        t, at = _now()
        self._append({"event": "undo_failed", "id": fault_id, "error": error, "t": t, "at": at})

    def records(self) -> list[dict[str, Any]]:
        """Every well-formed record, in file order.

        A torn last line (a crash mid-write) is skipped with a warning; every other bad
        record is skipped and described in ``self.problems`` (reset on each read).
        """
        self.problems = []
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            self.problems.append(f"{self.path} cannot be read ({exc.__class__.__name__}: "
                                 f"{exc.strerror or exc}); expected a JSON-lines file")
            return []
        lines = data.splitlines()
        records = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                if number == len(lines) and not data.endswith(b"\n"):
                    logger.warning("ledger %s line %d is torn (a crash mid-write); skipped",
                                   self.path, number)
                else:
                    self.problems.append(f"{self.path} line {number} is not JSON; skipped")
                continue
            wrong = malformed(record)
            if wrong:
                self.problems.append(f"{self.path} line {number} {wrong}; skipped")
                continue
            records.append(record)
        return records

    @staticmethod
    def _fold(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Fold events into faults: ``state`` is open or undone, plus undo details."""
        faults: dict[str, dict[str, Any]] = {}
        for record in records:
            event = record["event"]
            if event == "open":
                fault = {k: v for k, v in record.items() if k != "event"}
                fault.update(state="open", undo_errors=[])
                faults[record["id"]] = fault
            elif record["id"] in faults:
                fault = faults[record["id"]]
                if event == "applied":
                    fault.update(applied_t=record.get("t"), applied_at=record.get("at"))
                elif event == "undone":
                    fault.update(state="undone", how=record.get("how"),
                                 undone_t=record.get("t"), undone_at=record.get("at"))
                elif event == "undo_failed":
                    fault["undo_errors"].append(record.get("error"))
        return list(faults.values())

    def faults(self, run: str | None = None, kinds: Iterable[str] | None = None,
               state: str | None = None) -> list[dict[str, Any]]:
        """Faults in the order they were opened, optionally filtered by run, kind and state."""
        wanted = set(kinds) if kinds is not None else None
        return [
            f for f in self._fold(self.records())
            if (run is None or f.get("run") == run)
            and (wanted is None or f["kind"] in wanted)
            and (state is None or f["state"] == state)
        ]

    def open_faults(self, run: str | None = None,
                    kinds: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Faults not yet undone."""
        return self.faults(run=run, kinds=kinds, state="open")


def malformed(record: Any) -> str | None:
    """What is wrong with one ledger record (``None`` when it is well-formed)."""
    if not isinstance(record, dict):
        return f"is {type(record).__name__}, expected a JSON object"
    event = record.get("event")
    if event not in EVENTS:
        return f"has event {event!r}; expected one of {', '.join(EVENTS)}"
    if not isinstance(record.get("id"), str) or not record["id"]:
        return f"({event}) has id {record.get('id')!r}; expected a non-empty string"
    if event == "open":
        if not isinstance(record.get("kind"), str) or not record["kind"]:
            return (f"(open {record['id']}) has kind {record.get('kind')!r}; "
                    "expected a fault kind such as container.pause")
        if not isinstance(record.get("target"), dict):
            return (f"(open {record['id']}) has target {record.get('target')!r}; "
                    "expected an object such as {\"service\": ...}")
        return _malformed_services(record)
    return None


_CUT_EXAMPLE = '[{"service": "master-1", "role": "leader"}]'


def _malformed_services(record: dict[str, Any]) -> str | None:
    """What is wrong with the services an ``open`` record names: ``target.service`` (when
    given) and every item of ``cut_off`` (when given) must be a service name."""
    service = record["target"].get("service")
    if "service" in record["target"] and not isinstance(service, str):
        return (f"(open {record['id']}) has target service {service!r}; "
                "expected a service name such as master-1")
    cut_off = record.get("cut_off")
    if cut_off is None:
        return None
    if not isinstance(cut_off, list):
        return f"(open {record['id']}) has cut_off {cut_off!r}; expected a list such as {_CUT_EXAMPLE}"
    for item in cut_off:
        if not isinstance(item, dict) or not isinstance(item.get("service"), str):
            return (f"(open {record['id']}) has cut_off item {item!r}; expected an object "
                    f"with a service name such as {_CUT_EXAMPLE[1:-1]}")
    return None


def ledgers_under(root: Path | str, *also: Path | str) -> list[Ledger]:
    """The ledger of every run directory below ``root`` (any depth), plus ``also``.

    Each directory once (by resolved path), sorted by path; ``root`` may not exist.
    """
    found: dict[Path, Path] = {}
    root = Path(root)
    candidates = [p.parent for p in root.glob(f"**/{LEDGER_FILE}")] if root.is_dir() else []
    for folder in [*candidates, *map(Path, also)]:
        found.setdefault(folder.resolve(), folder)
    return [Ledger(folder) for _, folder in sorted(found.items())]
