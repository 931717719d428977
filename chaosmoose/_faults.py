"""Faults as setup / invoke / teardown over the ledger: record, apply, undo.

Every fault kind has one undo function. Rollbacks, ``chaosmoose cleanup`` and a failed
injection all undo through :func:`undo`, so there is one code path that heals. Undo
functions are idempotent: undoing an already healed fault is a no-op that says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from chaoslib.exceptions import ActivityFailed

from chaosmoose import _docker
from chaosmoose.ledger import Ledger

logger = logging.getLogger("chaostoolkit")

__all__: list[str] = []  # not an activity module

Undo = Callable[[dict[str, Any]], str]
UNDO: dict[str, Undo] = {}


def undoer(kind: str) -> Callable[[Undo], Undo]:
    """Register the undo function of a fault kind."""

    def register(func: Undo) -> Undo:
        UNDO[kind] = func
        return func

    return register


def target_of(container: Any, project: str, service: str) -> dict[str, Any]:
    """What a container fault records about its target, enough to find it again."""
    return {"project": project, "service": service, "container": container.id,
            "container_name": container.name}


def _container(fault: dict[str, Any]) -> Any:
    t = fault["target"]
    return _docker.get_container(t["container"], t["project"], t["service"])


@undoer("container.kill")
@undoer("container.stop")
@undoer("container.restart")
def _start(fault: dict[str, Any]) -> str:
    """Start the container again unless it is already running (unpause a paused one)."""
    container = _container(fault)
    state = _docker.container_state(container)
    if state == "running":
        return "already running"
    if state == "paused":
        container.unpause()
        return "unpaused"
    container.start()
    return "started"


@undoer("container.pause")
def _unpause(fault: dict[str, Any]) -> str:
    """Unpause the container unless it is not paused (a killed one is started)."""
    container = _container(fault)
    state = _docker.container_state(container)
    if state == "paused":
        container.unpause()
        return "unpaused"
    if state == "running":
        return "already running"
    container.start()
    return f"was {state}; started"


@undoer("workload.runner")
def _stop_runner(fault: dict[str, Any]) -> str:
    """Stop a detached workload runner inside its client container."""
    from chaosmoose.workload import _clients

    container = _container(fault)
    return _clients.stop_runner(container, fault["state_dir"])


CORRUPTION_UNDONE = {"written": "restored the original bytes", "already": "already intact",
                     "gone": "copy gone (MooseFS removed the damaged copy)",
                     "changed": "copy rewritten since (MooseFS replaced it)"}


@undoer("chunk.corrupt")
def _uncorrupt(fault: dict[str, Any]) -> str:
    """Write the original bytes back into the chunk file if it still holds the corruption."""
    from chaosmoose.chunkserver import _chunks

    container = _container(fault)
    state = _docker.container_state(container)
    if state != "running":
        raise ActivityFailed(f"chunkserver container is {state}; start it to undo the corruption")
    result = _chunks.tool(container, ["swap", "--file", fault["file"], "--offset",
                                      str(fault["offset"]), "--expect", fault["corrupted"],
                                      "--data", fault["original"]],
                          f"restoring {fault['file']}")
    return CORRUPTION_UNDONE[result["how"]]


def undo(ledger: Ledger, fault: dict[str, Any]) -> str:
    """Undo one fault and mark it undone; on failure record why and raise ``ActivityFailed``."""
    func = UNDO.get(fault["kind"])
    if func is None:
        message = f"fault {fault['id']} has kind {fault['kind']} that this version cannot undo"
        ledger.undo_failed(fault["id"], message)
        raise ActivityFailed(message)
    service = fault.get("target", {}).get("service", "?")
    try:
        how = func(fault)
    except Exception as exc:  # noqa: BLE001 - any failure keeps the fault open, with the reason on disk
        message = f"undo of {fault['kind']} on {service} failed: {str(exc).splitlines()[0]}"
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
                            "undone": True, "how": how})
        except ActivityFailed as exc:
            logger.error("%s", exc)
            results.append({"id": fault["id"], "kind": fault["kind"], "service": service,
                            "undone": False, "error": str(exc)})
    return results


def inject(ledger: Ledger, kind: str, target: dict[str, Any], run: str,
           apply: Callable[[], None], **details: Any) -> dict[str, Any]:
    """Record the fault, then apply it. If applying fails, undo at once and raise.

    The fault is on disk before anything touches the target, so a crash between the two
    leaves an open entry that cleanup heals (undo is idempotent).
    """
    fault = ledger.open(kind, target, run, **details)
    try:
        apply()
    except Exception as exc:  # noqa: BLE001 - heal, then report
        reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        try:
            how = undo(ledger, fault)
            logger.warning("%s on %s failed; undone (%s)", kind, target.get("service"), how)
        except ActivityFailed as undo_exc:
            reason += f"; and the undo failed too: {undo_exc}"
        raise ActivityFailed(
            f"{kind} on {target.get('service')} failed: {reason}"
        ) from None
    return fault
