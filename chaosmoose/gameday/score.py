"""The game day's resilience score (documented in the README and docs/chaosmoose.md, and
printed in every session report; keep them in step with FORMULA).

Each experiment run scores out of 100:

- a **halted** run (a signal or a halt condition stopped it) is not scored: it is reported
  as halted, and the session's mean leaves it out;
- **data safety** first: 0 if the checker found any acknowledged write lost or corrupt, or
  could not tell (its verdict unknown): losing data is never partly fine;
- 0 if the run did not pass (strict mode: failed, deviated, interrupted);
- otherwise ``100 x availability x recovery x detection``, each factor in 0..1:

  - availability, from the **worst client** (not the merged stream of all clients, where
    two busy clients hide a third that hung): ``1 - (gap - grace) / budget`` clamped to
    0..1, where ``gap`` is that client's longest time without an acknowledged write;
  - recovery: ``min(1, target / longest recovery wait)`` over the probes that waited for the
    cluster to recover (``waited_s``); 1 when none waited;
  - detection: ``min(1, target / detection time)`` where detection time runs from the first
    fault in place to the first alert that started firing after it; 0.5 when no alert fired;
    1 when the plan sets no detection target.

The session's score is the mean over the scored runs, rounded to an integer.
"""

from __future__ import annotations

from typing import Any

__all__: list[str] = []  # not an activity module

DEFAULT_TARGETS: dict[str, float | None] = {"recovery_s": 30.0, "detection_s": None,
                                            "write_gap_grace_s": 5.0, "write_gap_budget_s": 60.0}
UNDETECTED = 0.5


def formula(targets: dict[str, float | None] | None = None) -> str:
    """The score's formula in one paragraph, with this plan's targets."""
    t = {**DEFAULT_TARGETS, **(targets or {})}
    detection = ("detection = 1 (no detection target)" if t["detection_s"] is None else
                 f"detection = min(1, {t['detection_s']:g} s / time from the first fault to "
                 f"the first new alert firing), {UNDETECTED:g} when no alert fired")
    return (f"A halted run is not scored. Any acknowledged write lost or corrupt (or a checker "
            f"that could not tell) scores 0, and so does a run that did not pass. Otherwise "
            f"score = 100 x availability x recovery x detection, where availability = "
            f"1 - (worst client's longest write gap - {t['write_gap_grace_s']:g} s) / "
            f"{t['write_gap_budget_s']:g} s, clamped to 0..1 (the worst client, not the merged "
            f"stream); recovery = min(1, {t['recovery_s']:g} s / longest recovery wait), 1 when "
            f"nothing waited; {detection}. The session scores the mean over the scored runs.")


def worst_client_gap(check: dict[str, Any] | None) -> tuple[str | None, float]:
    """(client, seconds) of the longest write gap of any one client; falls back to the
    merged stream for a checker result without per-client figures."""
    check = check or {}
    per_client = check.get("unavailability_by_client") or {}
    if per_client:
        client, gap = max(((c, float(u.get("longest_s") or 0.0)) for c, u in per_client.items()),
                          key=lambda item: item[1])
        return client, gap
    return None, float((check.get("unavailability") or {}).get("longest_s") or 0.0)


def run_score(verdict: str, check: dict[str, Any] | None,
              recovery: list[tuple[str, float]] | None = None,
              detection_s: float | None = None,
              targets: dict[str, float | None] | None = None) -> tuple[float | None, dict]:
    """Score of one run (None when halted) and its parts, each with the reason."""
    t = {**DEFAULT_TARGETS, **(targets or {})}
    if verdict == "HALTED":
        return None, {"why": "halted, not scored"}
    lost, corrupt = (check or {}).get("lost") or 0, (check or {}).get("corrupt") or 0
    if lost > 0 or corrupt > 0:
        return 0.0, {"why": f"data loss: {lost} lost and {corrupt} corrupt acknowledged writes"}
    if lost < 0 or corrupt < 0:
        return 0.0, {"why": "data safety unknown: the checker could not judge every write"}
    if verdict != "PASSED":
        return 0.0, {"why": f"did not pass ({verdict})"}
    client, gap = worst_client_gap(check)
    grace, budget = float(t["write_gap_grace_s"] or 0.0), float(t["write_gap_budget_s"] or 1.0)
    availability = min(1.0, max(0.0, 1.0 - (gap - grace) / budget))
    waits = [w for _, w in recovery or []]
    worst_wait = max(waits, default=0.0)
    rec = 1.0 if worst_wait <= 0 else min(1.0, float(t["recovery_s"] or 0.0) / worst_wait)
    if t["detection_s"] is None:
        det = 1.0
    elif detection_s is None:
        det = UNDETECTED
    else:
        det = 1.0 if detection_s <= 0 else min(1.0, float(t["detection_s"]) / detection_s)
    score = round(100.0 * availability * rec * det, 1)
    who = f"{client}'s" if client else "the"
    return score, {"availability": round(availability, 3), "recovery": round(rec, 3),
                   "detection": round(det, 3), "worst_client": client, "worst_gap_s": gap,
                   "worst_recovery_s": worst_wait or None, "detection_s": detection_s,
                   "why": (f"{who} longest write gap {gap:.1f} s, longest recovery wait "
                           f"{worst_wait:.1f} s, detection "
                           f"{'-' if detection_s is None else f'{detection_s:.1f} s'}")}


def session_score(scores: list[float | None]) -> int:
    """Mean of the scored runs (0 when none was scored)."""
    scored = [s for s in scores if s is not None]
    return round(sum(scored) / len(scored)) if scored else 0
