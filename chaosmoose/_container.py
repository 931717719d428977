"""Faults on compose containers, shared by the families that act on them.

The master and chunkserver families both kill, stop, restart and pause containers; each
registers these kinds with the same undo (``_families.register`` accepts a kind registered
twice with the same function), so either family alone can heal them. A family that records
another kind of fault inside a container (a workload runner, a corrupted chunk file)
records the container with :func:`target_of` and finds it again with :func:`container_of`.
"""

from __future__ import annotations

from typing import Any

from chaosmoose import _docker

__all__: list[str] = []  # not an activity module

KINDS = ("container.kill", "container.stop", "container.pause", "container.restart")
TAKES_DOWN = KINDS  # while open, the service is not serving (blast-radius guard)


def target_of(container: Any, project: str, service: str) -> dict[str, Any]:
    """What a container fault records about its target, enough to find it again."""
    return {"project": project, "service": service, "container": container.id,
            "container_name": container.name}


def container_of(fault: dict[str, Any]) -> Any:
    """The fault's container: the recorded one, or the service's current one if recreated."""
    target = fault["target"]
    return _docker.get_container(target["container"], target["project"], target["service"])


def start(fault: dict[str, Any]) -> str:
    """Start the container again unless it is already running (unpause a paused one)."""
    container = container_of(fault)
    state = _docker.container_state(container)
    if state == "running":
        return "already running"
    if state == "paused":
        container.unpause()
        return "unpaused"
    container.start()
    return "started"


def unpause(fault: dict[str, Any]) -> str:
    """Unpause the container unless it is not paused (a killed one is started)."""
    container = container_of(fault)
    state = _docker.container_state(container)
    if state == "paused":
        container.unpause()
        return "unpaused"
    if state == "running":
        return "already running"
    container.start()
    return f"was {state}; started"


UNDO = {"container.kill": start, "container.stop": start, "container.restart": start,
        "container.pause": unpause}
