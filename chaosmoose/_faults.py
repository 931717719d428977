"""Faults as setup / invoke / teardown over the ledger: record, apply, undo.

Every fault kind has one undo function, registered by the family that records the kind
(see ``chaosmoose._families``; this module names no family). Rollbacks, ``chaosmoose
cleanup`` and a failed injection all undo through :func:`undo`, so there is one code path
that heals. Undo functions are idempotent: undoing an already healed fault is a no-op that
says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from chaoslib.exceptions import ActivityFailed

from chaosmoose import _families, _settings
from chaosmoose._settings import Configuration, Secrets
from chaosmoose.ledger import Ledger, ledgers_under

logger = logging.getLogger("chaostoolkit")

__all__: list[str] = []  # not an activity module


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text.strip() else exc.__class__.__name__


def every_ledger(configuration: Configuration = None, secrets: Secrets = None) -> list[Ledger]:
    """Every run's ledger: each ``faults.jsonl`` below the runs directory, and this run's.

    ``make experiment`` and game days give each run its own directory under ``runs/``; a
    killed one leaves its open faults there, so whatever asks "is anything open?" reads all.
    """
    return ledgers_under(_settings.runs_dir(configuration, secrets),
                         _settings.run_dir(configuration, secrets))


def describe(ledger: Ledger, fault: dict[str, Any]) -> str:
    """``container.pause on master-2 (run dir runs/x, run <id>, since <at>)``."""
    return (f"{fault['kind']} on {fault['target'].get('service', '?')} (run dir "
            f"{ledger.run_dir}, run {fault.get('run', '?')}, since {fault.get('at', '?')})")


def undo(ledger: Ledger, fault: dict[str, Any]) -> str:
    """Undo one fault and mark it undone; on failure record why and raise ``ActivityFailed``."""
    func = _families.undo_for(fault["kind"])
    if func is None:
        message = (f"fault {fault['id']} has kind {fault['kind']} that this version cannot "
                   "undo (no loaded fault family registers it)")
        broken = _families.load_problems()
        if broken:
            message += f" ({'; '.join(broken)})"
        ledger.undo_failed(fault["id"], message)
        raise ActivityFailed(message)
    service = fault.get("target", {}).get("service", "?")
    try:
        how = func(fault)
    except Exception as exc:  # noqa: BLE001 - any failure keeps the fault open, reason on disk
        message = f"undo of {fault['kind']} on {service} failed: {_first_line(exc)}"
        ledger.undo_failed(fault["id"], message)
        raise ActivityFailed(message) from None
    ledger.close(fault["id"], how)
    return how


def undo_each(ledger: Ledger, faults: list[dict[str, Any]], role: str) -> list[dict[str, Any]]:
    """Rollback helper: undo ``faults`` newest first; ``[{role: service, "kind", "how"}]``.

    Every fault is tried; if any undo failed, raise ``ActivityFailed`` with all the reasons.
    """
    results, errors = [], []
    for fault in reversed(faults):
        try:
            how = undo(ledger, fault)
            results.append({role: fault["target"]["service"], "kind": fault["kind"], "how": how})
        except ActivityFailed as exc:
            errors.append(str(exc))
    if errors:
        raise ActivityFailed("; ".join(errors))
    return results


def undo_open(ledger: Ledger, run: str | None = None,
              kinds: list[str] | None = None) -> list[dict[str, Any]]:
    """Undo every open fault (newest first); return one result per fault, never raising."""
    results = []
    for fault in reversed(ledger.open_faults(run=run, kinds=kinds)):
        service = fault.get("target", {}).get("service", "?")
        try:
            how = undo(ledger, fault)
            results.append({"id": fault["id"], "kind": fault["kind"], "service": service,
                            "run": fault.get("run"), "undone": True, "how": how})
        except ActivityFailed as exc:
            logger.error("%s", exc)
            results.append({"id": fault["id"], "kind": fault["kind"], "service": service,
                            "run": fault.get("run"), "undone": False, "error": str(exc)})
    return results


def down_services(fault: dict[str, Any]) -> list[str]:
    """The services a fault leaves down while it is open: its target when its family
    registered the kind under ``takes_down``, and every service under ``cut_off``."""
    down = []
    if fault["kind"] in _families.TAKES_DOWN and fault["target"].get("service"):
        down.append(fault["target"]["service"])
    for item in fault.get("cut_off") or []:
        service = item.get("service") if isinstance(item, dict) else None
        if service and service not in down:
            down.append(service)
    return down


def blast_radius_problem(kind: str, target: dict[str, Any], details: dict[str, Any],
                         configuration: Configuration = None,
                         secrets: Secrets = None) -> str | None:
    """Why this fault would take more masters or chunkservers down at once than the
    settings allow (``max_masters_down``, ``max_chunkservers_down``), counting every
    fault open in any run's ledger; ``None`` when it may go ahead. A malformed ledger
    record is skipped with a warning that names it (cleanup reports it too)."""
    _families.load_all()
    new = down_services({"kind": kind, "target": target, **details})
    if not new:
        return None
    already: dict[str, str] = {}
    for ledger in every_ledger(configuration, secrets):
        for fault in ledger.open_faults():
            for service in down_services(fault):
                already.setdefault(service, f"{service} by {describe(ledger, fault)}")
        for problem in ledger.problems:
            logger.warning("ledger: %s (not counted in the blast radius)", problem)
    limits = _settings.blast_radius_limits(configuration, secrets)
    for key, (limit, services) in limits.items():
        down = sorted({s for s in [*new, *already] if s in services})
        if len(down) <= limit or not any(s in services for s in new):
            continue
        group = key.removeprefix("max_").removesuffix("_down")
        others = "; ".join(already[s] for s in down if s in already)
        return (f"blast radius: {kind} on {target.get('service', '?')} would leave "
                f"{len(down)} {group} down at once ({', '.join(down)}"
                + (f"; already down: {others}" if others else "")
                + f"); expected at most {limit} ({key}): raise {key} in the experiment's "
                "configuration to break quorum on purpose")
    return None


def inject(ledger: Ledger, kind: str, target: dict[str, Any], run: str,
           apply: Callable[[], None], fault_id: str | None = None,
           configuration: Configuration = None, secrets: Secrets = None,
           **details: Any) -> dict[str, Any]:
    """Check the blast radius, record the fault, then apply it. If applying fails, undo at
    once and raise.

    A fault that would leave more masters or chunkservers down at once than the settings
    allow (``max_masters_down``, ``max_chunkservers_down``, counting the faults open in
    every ledger) fails before it is recorded. The fault is on disk before anything touches the target, so a crash between the two
    leaves an open entry that cleanup heals (undo is idempotent); once applied, an
    ``applied`` record says when it was fully in place. A family that names what
    it creates after the fault (``fault_id`` from ``chaosmoose.ledger.new_id()``) passes the id in.
    """
    too_much = blast_radius_problem(kind, target, details, configuration, secrets)
    if too_much:
        raise ActivityFailed(too_much)
    fault = ledger.open(kind, target, run, fault_id=fault_id, **details)
    try:
        apply()
    except Exception as exc:  # noqa: BLE001 - heal, then report
        reason = _first_line(exc)
        try:
            how = undo(ledger, fault)
            logger.warning("%s on %s failed; undone (%s)", kind, target.get("service"), how)
        except ActivityFailed as undo_exc:
            reason += f"; and the undo failed too: {undo_exc}"
        raise ActivityFailed(
            f"{kind} on {target.get('service')} failed: {reason}"
        ) from None
    fault["applied_t"] = ledger.applied(fault["id"])  # fully in place (a partition's cut)
    return fault
