"""The game day's resilience score (documented in docs/chaosmoose.md; keep them in step).

Each experiment run scores out of 100:

- 0 if it did not pass (strict mode: failed, deviated, interrupted or halted), or if the
  checker found any acknowledged write lost or corrupt: losing data is never partly fine;
- otherwise 100, minus 1 point per second that the longest gap without an acknowledged
  write (the checker's ``unavailability.longest_s``) exceeds 5 s, but never below 50.

The session's score is the mean over the runs that were started, rounded to an integer.
"""

from __future__ import annotations

from typing import Any

__all__: list[str] = []  # not an activity module

GRACE_S = 5.0
FLOOR = 50.0


def run_score(passed: bool, check: dict[str, Any] | None) -> float:
    """Score of one experiment run, 0..100."""
    if not passed:
        return 0.0
    if check and ((check.get("lost") or 0) > 0 or (check.get("corrupt") or 0) > 0):
        return 0.0
    longest = float(((check or {}).get("unavailability") or {}).get("longest_s") or 0.0)
    return max(FLOOR, 100.0 - max(0.0, longest - GRACE_S))


def session_score(scores: list[float]) -> int:
    """Mean of the run scores (0 when nothing ran)."""
    return round(sum(scores) / len(scores)) if scores else 0
