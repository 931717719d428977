"""The serving history of one master: every lease epoch it served, on local disk.

An append-only file of JSON lines, one event a line (``served``, ``frozen``, ``thawed``,
``fenced``, ``stepped_down``, ``diverged``), under the agent's data directory, so it survives agent
restarts. A leader-overlap checker compares these intervals, across masters, with the
clients' operation timestamps: times are wall clock (``time.time()``), which every
container shares with the clients (one host kernel).

Folded per epoch, an entry reads::

    {"epoch": 3, "node": "master-1", "served_from": 1732000000.125, "start_version": 41233,
     "freezes": [{"frozen_at": ..., "thawed_at": ... or None}],
     "fenced_at": None, "stepped_down_at": 1732000042.5, "reason": "handover to master-2",
     "diverged_changes": 0, "diverged": {"at": ..., "new_epoch": 4, "own_change": 41300,
                                         "start_version": 41300}}

``start_version`` is this node's change number when its mfsmaster began serving the epoch.
``diverged_changes`` is set when this node, after the epoch, first follows a newer leader:
how many of its own changes (its mfsmaster's changelog) lie beyond the change number that
newer leader's epoch started from. Those changes never reached the new lineage; they are
set aside with the node's files (``DATA_PATH/aside/``). None until counted, and when the
new leader did not publish where it started (``diverged`` then says so).

Times are recorded on the wide side: ``served_from`` once mfsmaster accepts clients,
``frozen_at`` after SIGSTOP was sent, ``thawed_at`` before SIGCONT is sent, the end after
mfsmaster is gone. An epoch still open when the agent starts again (the agent died) is
closed with the start time, the latest it can have ended. Lines are written without
fsync (they survive the agent, not the host, and fencing never waits for a disk); a failed
write is logged and never stops the agent.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

log = logging.getLogger("mooseng.history")

KEEP_EPOCHS = 200
RESTART_REASON = "agent restarted without recording the end: it ended at the latest at this time"


class ServingHistory:
    """The epochs this node served, folded from an append-only JSON-lines file
    (``path`` None: in memory only, for tests)."""

    def __init__(self, node: str, path: Path | None = None, now: float | None = None) -> None:
        self.node = node
        self.path = path
        self._epochs: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()  # the HA loop, the watchdog and actions all record
        self._cut_line = False  # the file ends inside a line (a crash mid-write)
        if path is not None and path.exists():
            self._load(path)
        if now is not None:
            for epoch, entry in list(self._epochs.items()):
                if _open(entry):
                    self.ended(epoch, now, "stepped_down", RESTART_REASON)

    # ------------------------------------------------------------------ write side
    def served(self, epoch: int, at: float, start_version: int | None = None) -> None:
        """mfsmaster of lease ``epoch`` accepts clients from ``at``, starting from change
        number ``start_version``."""
        self._append({"event": "served", "epoch": epoch, "at": at, "start_version": start_version})

    def diverged(self, epoch: int, at: float, changes: int | None, own_change: int,
                 start_version: int | None, new_epoch: int) -> None:
        """After serving ``epoch``, ``changes`` of this node's own changes (up to
        ``own_change``) lay beyond ``start_version``, where ``new_epoch`` began; None when
        the new leader did not say where it began."""
        self._append({"event": "diverged", "epoch": epoch, "at": at, "changes": changes,
                      "own_change": own_change, "start_version": start_version,
                      "new_epoch": new_epoch})

    def frozen(self, epoch: int, at: float) -> None:
        """mfsmaster was stopped (SIGSTOP) at ``at``."""
        self._append({"event": "frozen", "epoch": epoch, "at": at})

    def thawed(self, epoch: int, at: float) -> None:
        """mfsmaster resumed (SIGCONT) at ``at``."""
        self._append({"event": "thawed", "epoch": epoch, "at": at})

    def ended(self, epoch: int, at: float, how: str, reason: str) -> None:
        """mfsmaster of ``epoch`` is gone since ``at``; ``how`` is fenced or stepped_down.
        Ignored for an epoch this node never served (e.g. fenced while promoting)."""
        if how not in ("fenced", "stepped_down"):
            raise ValueError(f"unknown end {how!r}; expected fenced or stepped_down")
        self._append({"event": how, "epoch": epoch, "at": at, "reason": reason}, only_open=True)

    def _append(self, event: dict[str, Any], only_open: bool = False) -> None:
        event["node"] = self.node
        with self._lock:
            if only_open:
                entry = self._epochs.get(event["epoch"])
                if entry is None or not _open(entry):
                    return
            self._fold(event)
            if self.path is None:
                return
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "a", encoding="utf-8") as out:
                    out.write(("\n" if self._cut_line else "") + json.dumps(event, sort_keys=True)
                              + "\n")
                self._cut_line = False
            except OSError as exc:
                log.warning("event=serving_history_write_failed file=%s reason=%r", self.path,
                            str(exc))

    # ------------------------------------------------------------------- read side
    def entries(self, limit: int = 50) -> list[dict[str, Any]]:
        """The last ``limit`` epochs, oldest first (copies)."""
        with self._lock:
            chosen = list(self._epochs.values())[-limit:]
            return [{**e, "freezes": [dict(f) for f in e["freezes"]],
                     "diverged": dict(e["diverged"]) if e["diverged"] else None} for e in chosen]

    # ------------------------------------------------------------------- folding
    def _load(self, path: Path) -> None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("event=serving_history_read_failed file=%s reason=%r", path, str(exc))
            return
        self._cut_line = bool(text) and not text.endswith("\n")
        lines = text.splitlines()
        for number, line in enumerate(lines, 1):
            try:
                self._fold(json.loads(line))
            except (ValueError, KeyError, TypeError):  # a line cut short by a crash
                log.warning("event=serving_history_bad_line file=%s line=%d", path, number)

    def _fold(self, event: dict[str, Any]) -> None:
        epoch, kind, at = int(event["epoch"]), event["event"], float(event["at"])
        if kind == "served":
            self._epochs[epoch] = {"epoch": epoch, "node": event.get("node", self.node),
                                   "served_from": at, "start_version": event.get("start_version"),
                                   "freezes": [], "fenced_at": None, "stepped_down_at": None,
                                   "reason": None, "diverged_changes": None, "diverged": None}
            while len(self._epochs) > KEEP_EPOCHS:
                self._epochs.popitem(last=False)
            return
        entry = self._epochs.get(epoch)
        if entry is None:
            return
        if kind == "frozen":
            entry["freezes"].append({"frozen_at": at, "thawed_at": None})
        elif kind == "thawed":
            if entry["freezes"] and entry["freezes"][-1]["thawed_at"] is None:
                entry["freezes"][-1]["thawed_at"] = at
        elif kind == "diverged":
            entry["diverged_changes"] = event.get("changes")
            entry["diverged"] = {k: event.get(k) for k in ("at", "new_epoch", "own_change",
                                                           "start_version")}
        elif kind in ("fenced", "stepped_down"):
            entry[f"{kind}_at"] = at
            entry["reason"] = event.get("reason")


def _open(entry: dict[str, Any]) -> bool:
    return entry["fenced_at"] is None and entry["stepped_down_at"] is None
