"""The workload family's registration: a detached runner in a client is a fault
(``workload.runner``) whose undo stops it; the argument checks of workload activities
(``clients`` must name configured clients)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaosmoose import _container, _families, _settings
from chaosmoose._settings import Configuration, Secrets

__all__: list[str] = []  # not an activity module


def stop_runner(fault: dict[str, Any]) -> str:
    """Stop a detached workload runner inside its client container."""
    from chaosmoose.workload import _clients

    return _clients.stop_runner(_container.container_of(fault), fault["state_dir"])


def check_arguments(module: str, func: str, arguments: Mapping[str, Any],
                    configuration: Configuration = None, secrets: Secrets = None) -> list[str]:
    """``clients`` naming a client that is not configured."""
    problems = []
    if arguments.get("clients"):
        known = _settings.clients(configuration, secrets)
        wanted = _settings.parse_name_list("clients", arguments["clients"])
        unknown = [c for c in wanted if c not in known]
        if unknown:
            problems.append(f"clients={arguments['clients']!r} names {', '.join(unknown)}, not "
                            f"a configured client; expected some of {', '.join(known)}")
    return problems


_families.register(__package__, undo={"workload.runner": stop_runner},
                   checks=[check_arguments])
