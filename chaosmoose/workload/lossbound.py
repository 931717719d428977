"""Which lost writes a fault of the leader can explain: windows in time, judged from records.

MooseFS acknowledges a change to the client before its changelog line reaches any
metalogger (the followers' copy). A leader that stops serving abruptly, killed, stopped,
paused or cut off from its followers, therefore takes with it the changes it acknowledged
whose lines were still in its buffers or on their way. What a fault can lose is a window
in time around it, not a count: a lost write must have been acknowledged after the fault
began (less ``IN_FLIGHT_S``) and invoked before the leader stopped serving. The
partitions' windows (:mod:`chaosmoose.network._loss`) end at the cut-off leader's freeze
or fence; a crash's window ends when the fault was in place (the process dead or frozen).
With the reply barrier (``MOOSENG_BARRIER``) no window opens: replies wait for a follower.

Pure functions of ledger faults and the checker's lost writes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__: list[str] = []  # not an activity module

# A changelog line leaves the leader on its next main-loop pass and then passes the
# Toxiproxy relay: a change acknowledged shortly before a fault began can still be on its
# way when the fault drops it. Measured on 2 cores: lost writes acknowledged up to 0.074 s
# before a cut was complete with the machine quiet, and one more than 0.05 s before the
# cut began under the CI suite's load. This much before a fault counts as inside.
IN_FLIGHT_S = 0.25


def inside(op: Mapping[str, Any], window: Mapping[str, Any]) -> bool:
    """A lost write belongs to a fault's window when the faulted leader could have handled
    it: invoked before that leader stopped serving, acknowledged after the fault began less
    ``IN_FLIGHT_S`` (an operation in flight when the leader stopped may complete later,
    after mfsmount resent it to the new leader, and still miss what the old one did)."""
    invoked, acked = op.get("invoked_t"), op.get("acked_t")
    if invoked is None or acked is None:
        return False
    return invoked <= window["stopped_t"] and acked >= window["opened_t"] - IN_FLIGHT_S


def crash_windows(faults: Sequence[Mapping[str, Any]], kinds: Sequence[str]
                  ) -> list[dict[str, Any]]:
    """One window per ledger fault of ``kinds`` that hit the leader: from the fault's start
    (``t``) to when it was in place (``applied_t``; a fault never applied gives none)."""
    windows = []
    for fault in faults:
        if fault.get("kind") not in kinds or fault.get("role") != "leader":
            continue
        if fault.get("applied_t") is None:
            continue
        service = (fault.get("target") or {}).get("service", "?")
        opened, stopped = float(fault["t"]), float(fault["applied_t"])
        windows.append({"fault": fault.get("id"), "kind": fault["kind"], "leader": service,
                        "opened_t": opened, "stopped_t": stopped,
                        "window_s": round(stopped - opened, 3)})
    return windows


def judge_crashes(faults: Sequence[Mapping[str, Any]], kinds: Sequence[str],
                  lost_ops: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Check every lost (or partly lost) write against the crash windows of ``faults``.

    Returns ``{"valid", "lost", "outside", "in_flight_s", "windows", "problems",
    "outside_ops"}``: ``valid`` is False when a lost write lies outside every window (with
    no crash of the leader in the run, every lost write does)."""
    windows = crash_windows(faults, kinds)
    outside = [op for op in lost_ops if not any(inside(op, w) for w in windows)]
    problems = []
    if outside:
        problems.append(f"{len(outside)} lost writes were acknowledged outside every crash "
                        f"window ({len(windows)} crashes of the leader in the run)")
    return {"valid": not problems, "lost": len(lost_ops), "outside": len(outside),
            "in_flight_s": IN_FLIGHT_S, "windows": windows, "problems": problems,
            "outside_ops": [placed(op, windows) for op in outside[:20]]}


def placed(op: Mapping[str, Any], windows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A lost write outside every window, with its times relative to the nearest cut (when
    it was invoked against the leader's stop, acknowledged against the cut's start), so a
    failure says on which side of which window it fell."""
    placed = dict(op)
    if windows and op.get("acked_t") is not None and op.get("invoked_t") is not None:
        nearest = min(windows, key=lambda w: abs(float(op["acked_t"]) - w["opened_t"]))
        placed["fault"] = nearest["fault"]
        placed["acked_minus_cut_s"] = round(float(op["acked_t"]) - nearest["opened_t"], 3)
        placed["invoked_minus_stop_s"] = round(float(op["invoked_t"]) - nearest["stopped_t"], 3)
    return placed
