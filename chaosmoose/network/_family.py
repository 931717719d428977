"""The network family's registration: its fault kinds, their undo (delete exactly the
recorded toxics), and the preflight check of every network activity's arguments.

``network.partition`` and ``network.toxic`` faults record the Toxiproxy URL and every
``{proxy, name}`` of the toxics they create (names ``chaosmoose-<fault id>-<type>-<stream>``)
before creating any, so undo deletes exactly those; a toxic or proxy already gone (HTTP 404)
counts as healed, so undo is idempotent.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chaoslib.exceptions import ActivityFailed

from chaosmoose import _families
from chaosmoose._settings import Configuration, Secrets
from chaosmoose.network import _plan, _toxiproxy

__all__: list[str] = []  # not an activity module

PARTITION_KIND = "network.partition"
TOXIC_KIND = "network.toxic"
KINDS = (PARTITION_KIND, TOXIC_KIND)
TOXIC_PREFIX = "chaosmoose-"


def remove_toxics(fault: dict[str, Any]) -> str:
    """Delete every toxic the fault recorded; one already gone counts as removed."""
    target = fault["target"]
    server = _toxiproxy.Toxiproxy(target["url"])
    toxics = target.get("toxics") or []
    removed = gone = 0
    errors = []

    def remove(toxic: dict[str, Any]) -> bool | str:
        try:
            return server.remove_toxic(toxic["proxy"], toxic["name"])
        except _toxiproxy.ToxiproxyError as exc:
            return str(exc)

    # In parallel, so that a partition heals at nearly one instant, as it was cut.
    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(remove, toxics))
    for outcome in outcomes:
        if isinstance(outcome, str):
            errors.append(outcome)
        elif outcome:
            removed += 1
        else:
            gone += 1
    if errors:
        raise ActivityFailed(f"{len(errors)} of {len(toxics)} toxics still in place "
                             f"(removed {removed}): {errors[0]}")
    if not removed:
        return f"already healed ({gone} toxics were gone)"
    return f"removed {removed} toxics" + (f" ({gone} already gone)" if gone else "")


def check_arguments(module: str, func: str, arguments: Mapping[str, Any],
                    configuration: Configuration = None, secrets: Secrets = None) -> list[str]:
    """Run the activity's own argument check (``_plan.<func>``) on the experiment's arguments.

    Missing arguments take the activity's defaults, exactly as when it runs; roles are
    checked by name only (they are resolved when the activity fires).
    """
    check = getattr(_plan, func, None)
    if module not in (f"{__package__}.actions", f"{__package__}.probes") or check is None:
        return []
    activities = importlib.import_module(module)
    if func not in getattr(activities, "__all__", ()):
        return []  # not an activity: Chaos Toolkit's own validation reports it
    activity = getattr(activities, func)
    try:
        bound = inspect.signature(activity).bind_partial(**arguments)
    except TypeError as exc:
        return [f"{func}: {exc}"]
    bound.apply_defaults()
    given = {k: v for k, v in bound.arguments.items() if k not in ("configuration", "secrets")}
    check(_plan.topology(configuration, secrets), **given)
    return []


_families.register(__package__, undo={kind: remove_toxics for kind in KINDS},
                   checks=[check_arguments])
