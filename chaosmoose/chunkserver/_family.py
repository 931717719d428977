"""The chunkserver family's registration: container faults on chunkservers, a corrupted
chunk copy (``chunk.corrupt``, undone by writing the original bytes back), disk faults
(``disk.fill``, ``disk.removal``, ``disk.fail``: a tier's size limit lowered, its mark for
removal, its failure, each undone through ``mooseng disk`` in the chunkserver container),
and the argument checks of chunkserver activities (``target``, ``copy``, ``chunkserver``,
``avoid`` and ``expect_on`` must name configured chunkservers or a selector, ``tier`` a
configured tier, a fill exactly one of ``percent`` and ``leave_bytes`` in range,
``storage_class`` a MooseFS class name, ``path`` a path on the mount)."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from typing import Any

from chaoslib.exceptions import ActivityFailed

from chaosmoose import _container, _docker, _families, _settings
from chaosmoose._settings import Configuration, Secrets
from chaosmoose.chunkserver import _disks

__all__: list[str] = []  # not an activity module

SELECTORS = {"target": {"random"}, "copy": {"random", "first"}}

CORRUPTION_UNDONE = {"written": "restored the original bytes", "already": "already intact",
                     "gone": "copy gone (MooseFS removed the damaged copy)",
                     "changed": "copy rewritten since (MooseFS replaced it)"}


def uncorrupt(fault: dict[str, Any]) -> str:
    """Write the original bytes back into the chunk file if it still holds the corruption."""
    from chaosmoose.chunkserver import _chunks

    container = _container.container_of(fault)
    state = _docker.container_state(container)
    if state != "running":
        raise ActivityFailed(f"chunkserver container is {state}; start it to undo the corruption")
    result = _chunks.tool(container, ["swap", "--file", fault["file"], "--offset",
                                      str(fault["offset"]), "--expect", fault["corrupted"],
                                      "--data", fault["original"]],
                          f"restoring {fault['file']}")
    return CORRUPTION_UNDONE[result["how"]]


def check_arguments(module: str, func: str, arguments: Mapping[str, Any],
                    configuration: Configuration = None, secrets: Secrets = None) -> list[str]:
    """A ``target`` (or ``copy``) that names no configured chunkserver, a ``client`` that
    names no configured client, a ``signal`` a kill may not send, and the disk, placement
    and storage class arguments described in the module's doc."""
    chunkservers = set(_settings.chunkservers(configuration, secrets))
    problems = []
    if "signal" in arguments and _docker.signal_problem(arguments["signal"]):
        problems.append(_docker.signal_problem(arguments["signal"]))
    clients = _settings.clients(configuration, secrets)
    if arguments.get("client") and arguments["client"] not in clients:
        problems.append(f"client={arguments['client']!r} is not a configured client; expected "
                        f"one of {', '.join(clients)} (or empty: the first)")
    for key, extra in SELECTORS.items():
        allowed = chunkservers | extra
        if key in arguments and arguments[key] not in allowed:
            problems.append(f"{key}={arguments[key]!r} is not a configured chunkserver; "
                            f"expected one of {', '.join(sorted(allowed))}")
    return problems + _disk_problems(module, func, arguments, configuration, secrets)


# Besides the configured names, what ``chunkserver`` and ``tier`` may be, per activity.
CHUNKSERVER_EXTRA = {"fill_disk": ("random",), "mark_disk_for_removal": ("random",),
                     "fail_disk": ("random",), "tier_space": ("",)}
TIER_EXTRA = {"fill_disk": (_disks.ALL_TIERS,), "tier_space": ("",)}
CHUNKSERVER_LISTS = ("avoid", "expect_on")


def _default(module: str, func: str, name: str) -> Any:
    """The default of argument ``name`` of activity ``module.func`` (empty when none)."""
    activity = getattr(importlib.import_module(module), func, None)
    if activity is None or name not in inspect.signature(activity).parameters:
        return inspect.Parameter.empty
    return inspect.signature(activity).parameters[name].default


def _disk_problems(module: str, func: str, arguments: Mapping[str, Any],
                   configuration: Configuration, secrets: Secrets) -> list[str]:
    """The checks of disk, placement and storage class activities (see the module doc)."""
    from chaosmoose.chunkserver import _chunks, _mfs

    chunkservers = _settings.chunkservers(configuration, secrets)
    problems = []
    if "chunkserver" in arguments:
        allowed = [*chunkservers, *CHUNKSERVER_EXTRA.get(func, ())]
        if arguments["chunkserver"] not in allowed:
            shown = ", ".join(repr(a) if a == "" else a for a in allowed)
            problems.append(f"chunkserver={arguments['chunkserver']!r} is not a configured "
                            f"chunkserver; expected one of {shown}")
    for key in CHUNKSERVER_LISTS:
        value = arguments.get(key)
        if not value:
            continue
        try:
            names = _settings.parse_name_list(key, value)
        except _settings.SettingError as exc:
            problems.append(str(exc))
            continue
        unknown = [n for n in names if n not in chunkservers]
        if unknown:
            problems.append(f"{key}={value!r} names {', '.join(unknown)}, not a configured "
                            f"chunkserver; expected some of {', '.join(chunkservers)}")
    if "tier" in arguments:
        problem = _disks.tier_problem(arguments["tier"], configuration, secrets,
                                      TIER_EXTRA.get(func, ()))
        if problem:
            problems.append(problem)
    if func == "fill_disk":
        problem = _disks.fill_problem(arguments.get("percent"), arguments.get("leave_bytes"))
        if problem:
            problems.append(problem)
    if "storage_class" in arguments:
        required = _default(module, func, "storage_class") != ""
        problem = _mfs.class_problem(arguments["storage_class"], required)
        if problem:
            problems.append(problem)
    path = arguments.get("path")
    if path is not None and not (path == "" and _default(module, func, "path") == ""):
        try:
            _chunks.check_path(path)
        except _settings.SettingError as exc:
            problems.append(str(exc))
    return problems


_families.register(__package__,
                   undo={**_container.UNDO, "chunk.corrupt": uncorrupt, **_disks.UNDO},
                   checks=[check_arguments], takes_down=_container.TAKES_DOWN)
