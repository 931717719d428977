"""The leader-overlap checker: a pure function from serving histories to a verdict.

The invariants (the issue): at no instant do two masters accept client writes, and no
write is acknowledged by an old leader after a newer leader started serving.

Inputs:

- serving: ``{master: [epoch entry, ...]}``, each master's ``serving_history`` from its
  agent's ``/status`` (``mooseng/history.py``: ``{epoch, node, served_from, freezes:
  [{frozen_at, thawed_at}], fenced_at, stepped_down_at, reason}``), or, for a master whose
  history could not be read, the reason (a string or an exception);
- operations: ``{client: [record, ...]}``, the workload histories as the runner writes
  them (invoke / ok / fail / info), optional;
- now: when the histories were read (an epoch still open serves until then);
- since / until: the run's window (``until`` defaults to ``now``); only what intersects it
  is judged. Times are wall clock, shared by masters and clients (one host kernel).

**Serving intervals** of one epoch: ``[served_from, first frozen_at)``, ``[thawed_at, next
frozen_at)``, ..., up to the epoch's end: ``fenced_at`` or ``stepped_down_at`` (the
earlier), or ``now`` while the epoch is open. A freeze that was never thawed ends serving
at its ``frozen_at`` (a frozen mfsmaster acknowledges nothing and is killed, not thawed).

**Overlaps**: every pair of intervals of different epochs (or of one epoch number on two
nodes, which the lease forbids) that share a stretch of time of positive length, and whose
shared stretch intersects the window. For each, the *acknowledged* client writes (``ok``,
or ``info`` that completed ``ok`` late) whose ``[invoke, ok]`` window intersects the
overlap: either master may have acknowledged them, so they are the writes an old leader
could have acknowledged after a newer one served.

**Leader changes**: consecutive epochs (by number) in the window: when the old epoch
stopped serving (``stopped_at``, with how: frozen, fenced, stepped_down, open), its raw
frozen / fenced / stepped-down times, the new epoch's ``served_from``, and the ``gap_s``
between them (negative: the two overlapped), and the old epoch's ``diverged_changes`` (its
own metadata changes beyond where the new epoch started, set aside when it rejoined).

**Validity** follows Jepsen and ``chaosmoose.workload.checker``: true, false or "unknown";
false beats unknown beats true. False when any overlap. Unknown when a master's history is
missing and it may have served in the window: it is named in ``may_have_served`` (a lease
holder, a leader seen serving), or the other masters' histories leave a lease epoch of the
window unaccounted for (between the first epoch of the window and ``lease_epoch``), or no
available epoch covers the window's start (an older epoch of the missing master could still
serve). A checker that crashes gives unknown. When the verdict is unknown, ``overlaps`` and
``acknowledged_in_overlaps`` are -1 so a ``[0, 0]`` tolerance cannot pass by accident (the
counts seen are kept as ``overlaps_seen`` and ``acknowledged_in_overlaps_seen``).

Standard library only.
"""

from __future__ import annotations

import itertools
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chaosmoose.workload.checker import UNKNOWN, Valid, combine

WRITES = ("write-file", "append")
MAX_LISTED_OPS = 20  # acknowledged operations listed per overlap (all are counted)


@dataclass(frozen=True)
class Interval:
    """One stretch of time during which ``node`` served lease ``epoch`` (``[start, end)``)."""

    node: str
    epoch: int
    start: float
    end: float
    ended_by: str  # frozen, fenced, stepped_down or open

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"node": self.node, "epoch": self.epoch, "start": self.start, "end": self.end,
                "ended_by": self.ended_by}


def epoch_end(entry: Mapping[str, Any], now: float) -> tuple[float, str]:
    """When the epoch ended and how: the earlier of fenced / stepped down, else (now, open)."""
    ends = [(float(entry[key]), how) for key, how in (("fenced_at", "fenced"),
                                                       ("stepped_down_at", "stepped_down"))
            if entry.get(key) is not None]
    return min(ends) if ends else (now, "open")


def serving_intervals(entry: Mapping[str, Any], now: float) -> list[Interval]:
    """The intervals during which one folded epoch entry served, oldest first.

    Serving starts at ``served_from``, stops at each ``frozen_at``, resumes at the matching
    ``thawed_at`` and ends at the epoch's end (or ``now``). Empty stretches are left out.
    """
    node, epoch = str(entry.get("node")), int(entry["epoch"])
    end, how = epoch_end(entry, now)
    intervals: list[Interval] = []
    resumed: float | None = float(entry["served_from"])
    freezes = sorted((f for f in entry.get("freezes") or [] if f.get("frozen_at") is not None),
                     key=lambda f: float(f["frozen_at"]))
    for freeze in freezes:
        frozen = float(freeze["frozen_at"])
        if resumed is not None:
            stop = min(frozen, end)
            if stop > resumed:
                intervals.append(Interval(node, epoch, resumed, stop,
                                          "frozen" if frozen < end else how))
            resumed = None
        if freeze.get("thawed_at") is not None:
            resumed = max(float(freeze["thawed_at"]), frozen)
    if resumed is not None and end > resumed:
        intervals.append(Interval(node, epoch, resumed, end, how))
    return intervals


def stopped_serving(entry: Mapping[str, Any], now: float) -> tuple[float, str]:
    """When the epoch served for the last time, and why it stopped (frozen, fenced, ...)."""
    intervals = serving_intervals(entry, now)
    if not intervals:
        return float(entry["served_from"]), "frozen"
    return intervals[-1].end, intervals[-1].ended_by


def acknowledged_windows(history: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each acknowledged write of one client's history with its ``invoked`` and ``acked``
    times (``late``: it timed out, then completed ok)."""
    invoked: dict[Any, Mapping[str, Any]] = {}
    acked: dict[Any, tuple[float, bool]] = {}
    for rec in history:
        seq = rec.get("seq")
        if seq is None or rec.get("f") not in WRITES:
            continue
        kind = rec.get("type")
        if kind == "invoke":
            invoked[seq] = rec
        elif kind == "ok":
            acked[seq] = (float(rec["t"]), False)
        elif kind == "info" and rec.get("late") and rec.get("late_outcome") == "ok":
            acked.setdefault(seq, (float(rec["t"]), True))
    return [{"client": op.get("client"), "seq": seq, "f": op.get("f"), "path": op.get("path"),
             "invoked": float(op["t"]), "acked": acked[seq][0], "late": acked[seq][1]}
            for seq, op in invoked.items() if seq in acked]


def _entries(serving: Mapping[str, Any]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Every available epoch entry (node filled in) and the masters whose history is missing."""
    entries: list[dict[str, Any]] = []
    missing: dict[str, str] = {}
    for master, history in serving.items():
        if isinstance(history, (list, tuple)):
            entries += [{**e, "node": e.get("node") or master} for e in history]
        else:
            missing[master] = str(history) or "history unavailable"
    return entries, missing


def _active_at(entry: Mapping[str, Any], t: float, now: float) -> bool:
    return float(entry["served_from"]) <= t <= epoch_end(entry, now)[0]


def _suspects(missing: Mapping[str, str], entries: Sequence[Mapping[str, Any]],
              since: float | None, now: float, may_have_served: Iterable[str],
              unaccounted: Sequence[int]) -> list[str]:
    """Why each missing master may have served in the window (empty: it cannot have)."""
    if not missing:
        return []
    named = set(may_have_served)
    covered = since is not None and any(_active_at(e, since, now) for e in entries)
    reasons = []
    for master, why in sorted(missing.items()):
        if master in named:
            reasons.append(f"{master} has no history ({why}) and is known to have served")
        elif unaccounted:
            reasons.append(f"{master} has no history ({why}) and lease epochs "
                           f"{', '.join(map(str, unaccounted))} are served by no other master")
        elif not covered:
            reasons.append(f"{master} has no history ({why}) and no other master's epoch "
                           "covers the window's start")
    return reasons


def _leader_changes(epochs: Sequence[Mapping[str, Any]], now: float) -> list[dict[str, Any]]:
    changes = []
    ordered = sorted(epochs, key=lambda e: (int(e["epoch"]), float(e["served_from"])))
    for old, new in itertools.pairwise(ordered):
        stopped, how = stopped_serving(old, now)
        frozen = [f["frozen_at"] for f in old.get("freezes") or []
                  if f.get("frozen_at") is not None and f.get("thawed_at") is None]
        served = float(new["served_from"])
        changes.append({
            "old": {"node": old["node"], "epoch": int(old["epoch"])},
            "new": {"node": new["node"], "epoch": int(new["epoch"])},
            "old_stopped_at": stopped, "old_stopped_by": how,
            "old_frozen_at": frozen[-1] if frozen else None,
            "old_fenced_at": old.get("fenced_at"), "old_stepped_down_at": old.get("stepped_down_at"),
            "old_diverged_changes": old.get("diverged_changes"),
            "new_served_from": served, "gap_s": round(served - stopped, 6),
            "epochs_between": list(range(int(old["epoch"]) + 1, int(new["epoch"]))),
        })
    return changes


def _check(serving: Mapping[str, Any], operations: Mapping[str, Sequence[Mapping[str, Any]]] | None,
           now: float, since: float | None, until: float | None,
           may_have_served: Iterable[str], lease_epoch: int | None) -> dict[str, Any]:
    until = now if until is None else until
    entries, missing = _entries(serving)
    intervals = [i for e in entries for i in serving_intervals(e, now)]
    lower = float("-inf") if since is None else since
    in_window = [e for e in entries
                 if float(e["served_from"]) < until and epoch_end(e, now)[0] > lower]
    window_intervals = [i for i in intervals if i.start < until and i.end > lower]
    acked = [op for history in (operations or {}).values() for op in acknowledged_windows(history)]
    overlaps = []
    ordered = sorted(window_intervals, key=lambda i: (i.start, i.epoch, i.node))
    for n, a in enumerate(ordered):
        for b in ordered[n + 1:]:
            if b.start >= a.end:
                break
            if (a.epoch, a.node) == (b.epoch, b.node):
                continue
            start, end = max(a.start, b.start), min(a.end, b.end)
            if end <= start or end <= lower or start >= until:
                continue
            old, new = sorted((a, b), key=lambda i: (i.epoch, i.start))
            inside = [op for op in acked if op["invoked"] < end and op["acked"] > start]
            overlaps.append({"old": old.as_dict(), "new": new.as_dict(), "from": start,
                             "to": end, "seconds": round(end - start, 6),
                             "acknowledged": len(inside),
                             "operations": sorted(inside, key=lambda o: o["acked"])
                             [:MAX_LISTED_OPS]})
    present = {int(e["epoch"]) for e in entries}
    unaccounted: list[int] = []
    if in_window:
        first = min(int(e["epoch"]) for e in in_window)
        last = max([int(e["epoch"]) for e in in_window] + [lease_epoch or 0])
        unaccounted = [n for n in range(first, last + 1) if n not in present]
    suspects = _suspects(missing, entries, since, now, may_have_served, unaccounted)
    acked_in = {(op["client"], op["seq"]) for ov in overlaps for op in acked
                if op["invoked"] < ov["to"] and op["acked"] > ov["from"]}
    valids: list[Valid] = [not overlaps]
    if suspects:
        valids.append(UNKNOWN)
    return {
        "valid": combine(valids),
        "overlaps": len(overlaps),
        "overlap_s": round(sum(o["seconds"] for o in overlaps), 6),
        "max_overlap_s": max((o["seconds"] for o in overlaps), default=0.0),
        "acknowledged_in_overlaps": len(acked_in),
        "details": overlaps,
        "leader_changes": _leader_changes(in_window, now),
        "epochs": [{"node": e["node"], "epoch": int(e["epoch"]),
                    "served_from": float(e["served_from"]),
                    "stopped_at": stopped_serving(e, now)[0],
                    "stopped_by": stopped_serving(e, now)[1],
                    "intervals": [[i.start, i.end] for i in serving_intervals(e, now)]}
                   for e in sorted(in_window, key=lambda e: (int(e["epoch"]), e["node"]))],
        "masters": {m: ("missing" if m in missing else len(h)) for m, h in serving.items()},
        "missing": missing,
        "unaccounted_epochs": unaccounted,
        "unknown_because": suspects,
        "operations": None if operations is None else {"clients": len(operations),
                                                       "acknowledged": len(acked)},
        "window": {"from": since, "to": until, "now": now},
    }


def check(serving: Mapping[str, Any],
          operations: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
          now: float = 0.0, since: float | None = None, until: float | None = None,
          may_have_served: Iterable[str] = (), lease_epoch: int | None = None) -> dict[str, Any]:
    """Judge the masters' serving histories (see the module); never raises.

    Returns ``{"valid", "overlaps", "overlap_s", "max_overlap_s",
    "acknowledged_in_overlaps", "details", "leader_changes", "epochs", "masters",
    "missing", "unaccounted_epochs", "unknown_because", "operations", "window"}``.
    """
    try:
        result = _check(serving, operations, now, since, until, tuple(may_have_served),
                        lease_epoch)
    except Exception as exc:  # noqa: BLE001 - a crashing checker gives unknown
        return {"valid": UNKNOWN, "overlaps": -1, "acknowledged_in_overlaps": -1,
                "error": f"checker crashed: {exc.__class__.__name__}: {exc}",
                "traceback": traceback.format_exc(limit=5)}
    if result["valid"] == UNKNOWN:
        result["overlaps_seen"] = result["overlaps"]
        result["acknowledged_in_overlaps_seen"] = result["acknowledged_in_overlaps"]
        result["overlaps"] = result["acknowledged_in_overlaps"] = -1
    return result
