"""The master family's registration: container faults on masters, and the argument checks
of master activities (a target, switchover ``to`` or probe ``name`` must be a configured
master; ``target`` may also be a role resolved at run time)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaosmoose import _container, _docker, _families, _settings
from chaosmoose._settings import Configuration, Secrets
from chaosmoose.master._cluster import ROLE_TARGETS

__all__: list[str] = []  # not an activity module

TARGET_ARGUMENTS = ("target", "to", "name")


def check_arguments(module: str, func: str, arguments: Mapping[str, Any],
                    configuration: Configuration = None, secrets: Secrets = None) -> list[str]:
    """``target``, ``to`` and ``name`` arguments that name no configured master; a
    ``signal`` a kill may not send."""
    masters = _settings.masters(configuration, secrets)
    problems = []
    if "signal" in arguments and _docker.signal_problem(arguments["signal"]):
        problems.append(_docker.signal_problem(arguments["signal"]))
    for key in TARGET_ARGUMENTS:
        if key not in arguments:
            continue
        value = arguments[key]
        if key == "to" and value == "":
            continue
        allowed = set(masters) | (set(ROLE_TARGETS) if key == "target" else set())
        if value not in allowed:
            problems.append(f"{key}={value!r} is not a configured master; expected one of "
                            f"{', '.join(sorted(allowed))}")
    return problems


_families.register(__package__, undo=_container.UNDO, checks=[check_arguments],
                   takes_down=_container.TAKES_DOWN)
