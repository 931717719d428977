"""The loss bound of a leader cut off from its followers, judged from the records.

MooseFS replies to a client before the change reaches any metalogger, so a leader cut off
from every follower acknowledges changes no follower will have until it stops serving:
its agent freezes mfsmaster once no follower has answered for ``freeze_after`` seconds
(checked every ``contact_check_interval``), or fences it when the lease runs out. The
documented bound (README, "What a fault can lose") is therefore a window in time:

    every lost acknowledged write was in flight at or acknowledged after the cut (less
    ``IN_FLIGHT_S``, the changelog's way to the followers) and
    invoked before the cut-off leader stopped serving, and that moment came at most
    ``freeze_after + contact_check_interval + heartbeat`` after the cut was in place
    (``ttl - safety_margin + contact_check_interval`` with the freeze switched off).

``judge`` checks both halves for each partition that cut a leader off. Pure: it takes the
ledger's partition faults, the masters' serving histories and the checker's lost writes.

The window arithmetic shared with crashes (``IN_FLIGHT_S``, which write lies inside a
window) is in :mod:`chaosmoose.workload.lossbound`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from chaosmoose.workload import lossbound

IN_FLIGHT_S = lossbound.IN_FLIGHT_S
_inside = lossbound.inside
_placed = lossbound.placed

# pysyncobj's heartbeat (appendEntriesPeriod) is min(0.1, raft_min_timeout / 4): at most this.
HEARTBEAT_MAX_S = 0.1


def bound_s(timing: Mapping[str, Any]) -> float:
    """The documented window for the agent timing that ``/status`` reports."""
    if timing.get("freeze_after") is not None:
        return (float(timing["freeze_after"]) + float(timing["contact_check_interval"])
                + HEARTBEAT_MAX_S)
    return (float(timing["ttl"]) - float(timing["safety_margin"])
            + float(timing.get("contact_check_interval") or 0.05))


def stopped_serving(history: Sequence[Mapping[str, Any]], after: float) -> tuple[float, str] | None:
    """When the epoch serving at ``after`` stopped serving (first freeze, fence or step-down
    after it), with how; None when no epoch of this history served then or it never
    stopped."""
    for entry in history:
        start = entry.get("served_from")
        if start is None or start > after:
            continue
        ends = [(f["frozen_at"], "frozen") for f in entry.get("freezes") or []
                if f.get("frozen_at") is not None and f["frozen_at"] >= after]
        ends += [(entry[key], how) for key, how in (("fenced_at", "fenced"),
                                                    ("stepped_down_at", "stepped down"))
                 if entry.get(key) is not None and entry[key] >= after]
        if ends:
            return min(ends)
    return None


def judge(partitions: Sequence[Mapping[str, Any]],
          histories: Mapping[str, Sequence[Mapping[str, Any]]],
          timing: Mapping[str, Mapping[str, Any]],
          lost_ops: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Check every lost write against the windows of the partitions that cut a leader off.

    ``partitions``: ledger faults with ``t`` (opened), ``applied_t`` and ``cut_off``
    entries ``{"service", "role"}``; ``histories``: serving history per master;
    ``timing``: ``/status`` timing per master; ``lost_ops``: ``{"client", "seq", "f",
    "acked_t"}``. Returns ``{"valid", "lost", "outside", "windows", "outside_ops"}``:
    ``valid`` is False when a lost write lies outside every window or a window is longer
    than its bound, "unknown" when a cut-off leader's end cannot be found.
    """
    windows, problems, unknown = [], [], []
    for fault in partitions:
        leaders = [c["service"] for c in fault.get("cut_off") or [] if c.get("role") == "leader"]
        for leader in leaders:
            opened = float(fault["t"])
            applied = float(fault.get("applied_t") or opened)
            stop = stopped_serving(histories.get(leader) or [], applied)
            limit = bound_s(timing.get(leader) or {}) if timing.get(leader) else None
            if stop is None or limit is None:
                unknown.append(f"{leader}: no serving history or timing covers the cut at "
                               f"{applied:.3f}")
                continue
            window = {"fault": fault.get("id"), "leader": leader, "opened_t": opened,
                      "applied_t": applied, "stopped_t": stop[0], "stopped_by": stop[1],
                      "window_s": round(stop[0] - applied, 3), "bound_s": round(limit, 3)}
            windows.append(window)
            if window["window_s"] > limit:
                problems.append(f"{leader} {stop[1]} {window['window_s']:.3f} s after the cut; "
                                f"expected within {limit:.3f} s")
    outside = [op for op in lost_ops if not any(_inside(op, w) for w in windows)]
    if outside:
        problems.append(f"{len(outside)} lost writes were acknowledged outside every cut "
                        "window")
    valid: bool | str = not problems
    if valid and unknown and lost_ops:
        valid = "unknown"
    return {"valid": valid, "lost": len(lost_ops), "outside": len(outside),
            "in_flight_s": IN_FLIGHT_S,
            "windows": windows, "problems": problems, "unknown_because": unknown,
            "outside_ops": [_placed(op, windows) for op in outside[:20]]}
