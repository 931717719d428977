"""The acknowledged-write checker: a pure function from histories and digests to a verdict.

Inputs:

- histories: ``{client: [record, ...]}`` as written by the runner (invoke/ok/fail/info);
- digests: ``{reader: digest | Exception}``, what each client read back after recovery
  (``runner.digest``), or why it could not.

An operation is *acknowledged* when it completed ``ok`` (or timed out but later completed
ok: ``late_outcome == "ok"``; the application saw success, only late). Each acknowledged
write is judged per reader: **intact** (present with the right checksum), **lost**
(absent) or **corrupt** (present, wrong checksum); the write's verdict is the worst over
readers (corrupt, then lost, then intact); ``by_f`` splits the counts into file creations
(``write-file``) and appends (``append``). Writes whose outcome is unknown (``info``) are
never lost; if present they count as *recovered*. Files nobody attempted are *unexpected*.
A file a reader could not read (an error, or a read that blocked: ``blocked_reads``)
makes an acknowledged write *unreadable*, and the verdict unknown; for a write of
unknown outcome it changes nothing.

Validity follows Jepsen: true, false or "unknown"; combined, false beats unknown beats
true; a checker that crashes gives unknown. When the verdict is unknown, ``lost`` and
``corrupt`` are -1 so a tolerance of 0 cannot pass by accident.

Standard library only.
"""

from __future__ import annotations

import itertools
import traceback
from collections.abc import Iterable, Mapping
from typing import Any

Valid = bool | str  # True, False or "unknown"
UNKNOWN = "unknown"


def combine(valids: Iterable[Valid]) -> Valid:
    """Combine verdicts: false beats unknown beats true (an empty set is true)."""
    values = list(valids)
    if any(v is False for v in values):
        return False
    if any(v is not True for v in values):
        return UNKNOWN
    return True


def acknowledged_ops(history: Iterable[Mapping[str, Any]]) -> tuple[list[dict], list[dict]]:
    """Split a client's history into (acknowledged writes, writes of unknown outcome)."""
    invoked: dict[int, dict] = {}
    final: dict[int, str] = {}
    late: dict[int, str] = {}
    acked_at: dict[int, float | None] = {}
    for rec in history:
        kind, seq = rec.get("type"), rec.get("seq")
        if seq is None or rec.get("f") not in ("write-file", "append"):
            continue
        if kind == "invoke":
            invoked[seq] = dict(rec)
        elif kind in ("ok", "fail") or (kind == "info" and not rec.get("late")):
            final[seq] = kind
            if kind == "ok":
                acked_at[seq] = rec.get("t")
        elif kind == "info" and rec.get("late"):
            late[seq] = rec.get("late_outcome") or "unknown"
            acked_at.setdefault(seq, rec.get("t"))
    acked, unknown = [], []
    for seq, op in invoked.items():
        outcome = final.get(seq, "info")
        if outcome == "ok" or (outcome == "info" and late.get(seq) == "ok"):
            acked.append({**op, "late": outcome != "ok", "acked_t": acked_at.get(seq)})
        elif outcome == "info":
            unknown.append(op)
    return acked, unknown


def _verdict(op: Mapping[str, Any], digest: Mapping[str, Any]) -> str:
    """intact, lost or corrupt for one write as one reader sees it."""
    if op["f"] == "write-file":
        entry = digest.get("files", {}).get(op["path"])
        if entry is None:
            return "lost"
        if "error" in entry:
            return "unreadable"
        return "intact" if entry.get("sha256") == op["sha256"] else "corrupt"
    state = digest.get("records", {}).get(op["client"], {}).get(str(op["seq"]))
    return state or "lost"


def unavailability(histories: Mapping[str, list[Mapping[str, Any]]]) -> dict[str, Any]:
    """The longest window with no successful write, across all clients (merged: any
    client's write closes the window; see :func:`unavailability_by_client` for each).

    The window runs from the workload's first start (or previous ``ok``) to the next ``ok``
    (or the last end). Returns seconds and the window bounds (epoch seconds).
    """
    starts, ends, oks = [], [], []
    for records in histories.values():
        for rec in records:
            if rec.get("type") == "start":
                starts.append(rec["t"])
            elif rec.get("type") == "end":
                ends.append(rec["t"])
            elif rec.get("type") == "ok" and rec.get("f") in ("write-file", "append"):
                oks.append(rec["t"])
    points = sorted(oks)
    if not starts and not points:
        return {"longest_s": 0.0, "from": None, "to": None}
    begin = min(starts) if starts else points[0]
    finish = max(ends) if ends else (points[-1] if points else begin)
    marks = [begin, *points, max(finish, points[-1] if points else finish)]
    best = (0.0, begin, begin)
    for a, b in itertools.pairwise(marks):
        if b - a > best[0]:
            best = (b - a, a, b)
    return {"longest_s": round(best[0], 3), "from": best[1], "to": best[2]}


def unavailability_by_client(histories: Mapping[str, list[Mapping[str, Any]]]
                             ) -> dict[str, dict[str, Any]]:
    """The longest window with no successful write of each client on its own.

    A client's window runs from its start (or previous ``ok``) to its next ``ok``, or to its
    end; a client with no end (its runner hung or was killed) is open until the last record
    of any client, so a client that hung while the others wrote shows its whole silence.
    """
    stamps = [rec["t"] for records in histories.values() for rec in records
              if isinstance(rec.get("t"), (int, float))]
    last_seen = max(stamps, default=None)
    result = {}
    for client, records in histories.items():
        start = next((r["t"] for r in records if r.get("type") == "start"), None)
        end = next((r["t"] for r in reversed(records) if r.get("type") == "end"), None)
        oks = sorted(r["t"] for r in records
                     if r.get("type") == "ok" and r.get("f") in ("write-file", "append"))
        begin = start if start is not None else (oks[0] if oks else None)
        if begin is None:
            result[client] = {"longest_s": 0.0, "from": None, "to": None}
            continue
        finish = end if end is not None else last_seen
        marks = [begin, *oks, max(finish, oks[-1] if oks else begin)]
        best = (0.0, begin, begin)
        for a, b in itertools.pairwise(marks):
            if b - a > best[0]:
                best = (b - a, a, b)
        result[client] = {"longest_s": round(best[0], 3), "from": best[1], "to": best[2]}
    return result


def _check(histories: Mapping[str, list[Mapping[str, Any]]],
           digests: Mapping[str, Any]) -> dict[str, Any]:
    acked: list[dict] = []
    unknown: list[dict] = []
    counts: dict[str, int] = {}
    for records in histories.values():
        a, u = acknowledged_ops(records)
        acked += a
        unknown += u
        for rec in records:
            kind = rec.get("type")
            if kind in ("invoke", "ok", "fail", "info"):
                counts[kind] = counts.get(kind, 0) + 1
    readers = {r: d for r, d in digests.items() if not isinstance(d, BaseException)
               and "error" not in d}
    reader_errors = {r: str(d if isinstance(d, BaseException) else d["error"])
                     for r, d in digests.items() if r not in readers}
    result: dict[str, Any] = {
        "acknowledged": len(acked), "late_acknowledged": sum(1 for o in acked if o["late"]),
        "intact": 0, "lost": 0, "corrupt": 0, "unreadable": 0,
        "indeterminate": len(unknown), "recovered": 0, "unexpected": 0,
        "by_f": {f: {"acknowledged": 0, "intact": 0, "lost": 0, "corrupt": 0}
                 for f in ("write-file", "append")},
        "ops": counts, "readers": {r: {"lost": 0, "corrupt": 0} for r in readers},
        "reader_errors": reader_errors, "examples": [], "lost_ops": [], "corrupt_ops": [],
        "blocked_reads": {r: list(d["blocked"]) for r, d in readers.items() if d.get("blocked")},
        "unavailability": unavailability(histories),
        "unavailability_by_client": unavailability_by_client(histories),
    }
    for op in acked:
        per_f = result["by_f"].setdefault(op["f"], {"acknowledged": 0, "intact": 0, "lost": 0,
                                                    "corrupt": 0})
        per_f["acknowledged"] += 1
        verdicts = {r: _verdict(op, d) for r, d in readers.items()}
        for reader, verdict in verdicts.items():
            if verdict in ("lost", "corrupt"):
                result["readers"][reader][verdict] += 1
        for worst in ("corrupt", "lost", "unreadable", "intact"):
            if worst in verdicts.values():
                break
        else:
            continue  # no reader could judge it
        result[worst] += 1
        if worst in per_f:
            per_f[worst] += 1
        if worst in ("lost", "corrupt"):  # every one, with its times: a loss bound is
            result[f"{worst}_ops"].append({   # judged on them
                "client": op["client"], "seq": op["seq"], "f": op["f"],
                "invoked_t": op.get("t"), "acked_t": op.get("acked_t")})
        if worst != "intact" and len(result["examples"]) < 10:
            result["examples"].append({"verdict": worst, "client": op["client"],
                                       "seq": op["seq"], "f": op["f"],
                                       "path": op.get("path"), "readers": verdicts})
    for op in unknown:
        if any(_verdict(op, d) == "intact" for d in readers.values()):
            result["recovered"] += 1
    attempted = {op["path"] for records in histories.values() for op in records
                 if op.get("type") == "invoke" and op.get("f") == "write-file"}
    seen = {path for d in readers.values() for path in d.get("files", {})}
    result["unexpected"] = len(seen - attempted)
    valids: list[Valid] = [result["lost"] == 0 and result["corrupt"] == 0]
    if reader_errors or result["unreadable"] or not readers:
        valids.append(UNKNOWN)
    result["valid"] = combine(valids)
    return result


def check(histories: Mapping[str, list[Mapping[str, Any]]],
          digests: Mapping[str, Any]) -> dict[str, Any]:
    """Classify every acknowledged write; never raises (a crash gives valid "unknown")."""
    try:
        result = _check(histories, digests)
    except Exception as exc:  # noqa: BLE001 - a crashing checker gives unknown
        return {"valid": UNKNOWN, "lost": -1, "corrupt": -1, "intact": 0, "acknowledged": -1,
                "error": f"checker crashed: {exc.__class__.__name__}: {exc}",
                "traceback": traceback.format_exc(limit=5)}
    if result["valid"] == UNKNOWN:
        result["lost_seen"], result["corrupt_seen"] = result["lost"], result["corrupt"]
        result["lost"] = result["corrupt"] = -1
        for per_f in result["by_f"].values():
            per_f["lost_seen"], per_f["corrupt_seen"] = per_f["lost"], per_f["corrupt"]
            per_f["lost"] = per_f["corrupt"] = -1
    return result
