"""Fault families are plug-ins: each registers its fault kinds, their undo and its argument checks.

A family is a subpackage ``chaosmoose.<family>`` with a module ``_family.py`` that, when
imported, calls :func:`register` with

- the undo function of every fault kind it records in the ledger (``{"chunk.corrupt":
  uncorrupt}``): it takes the fault as the ledger holds it and returns how it was undone;
  it is idempotent (undoing a healed fault says so and succeeds);
- the kinds that take their target service down while open (``takes_down``: a killed,
  stopped or paused container), counted by the blast-radius guard together with the
  masters any fault records under ``cut_off`` (``[{"service", "role"}]``);
- its argument checks: ``check(module, func, arguments, configuration, secrets)`` returns
  one message per bad argument of an activity of the family (``"node='master-9' is
  unknown; expected one of ..."``), found without touching the cluster. The strict
  control's preflight runs them on every activity whose module is in the family's package.

The core (the ledger, ``_faults``, the strict control, ``chaosmoose cleanup``) only looks
kinds and checks up here and never names a family: :func:`load_all` imports every
``_family`` module among chaosmoose's subpackages. Adding a family adds one package.

Two families may register the same kind with the same undo (container faults are shared by
the master and chunkserver families); a kind registered with a different undo is a
programming error raised at import.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chaoslib.exceptions import ActivityFailed

from chaosmoose._packages import subpackage_modules
from chaosmoose._settings import Configuration, Secrets

logger = logging.getLogger("chaostoolkit")

__all__: list[str] = []  # not an activity module

FAMILY_MODULE = "_family"

Undo = Callable[[dict[str, Any]], str]
ArgumentCheck = Callable[[str, str, Mapping[str, Any], Configuration, Secrets], list[str]]


@dataclass
class Family:
    """What one family registered: its package, fault kinds with their undo, argument checks."""

    package: str
    kinds: dict[str, Undo] = field(default_factory=dict)
    checks: list[ArgumentCheck] = field(default_factory=list)
    takes_down: set[str] = field(default_factory=set)

    def owns(self, module: str) -> bool:
        """Whether ``module`` is the family's package or inside it."""
        return module == self.package or module.startswith(self.package + ".")


FAMILIES: dict[str, Family] = {}
UNDO: dict[str, Undo] = {}
TAKES_DOWN: set[str] = set()
LOAD_ERRORS: dict[str, str] = {}

_lock = threading.RLock()


def _qualname(func: Callable[..., Any]) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


def register(package: str, undo: Mapping[str, Undo] | None = None,
             checks: Iterable[ArgumentCheck] = (), takes_down: Iterable[str] = ()) -> Family:
    """Register a family's fault kinds (``{kind: undo}``), argument checks and the kinds
    that take their target down (``takes_down``); idempotent.

    ``package`` is the family's package (pass ``__package__`` from its ``_family`` module).
    Raises ``ValueError`` when a kind is already registered with a different undo.
    """
    with _lock:
        family = FAMILIES.setdefault(package, Family(package))
        for kind, func in (undo or {}).items():
            known = UNDO.get(kind)
            if known is not None and _qualname(known) != _qualname(func):
                raise ValueError(f"fault kind {kind} of {package} is already registered with "
                                 f"undo {_qualname(known)}, not {_qualname(func)}; expected "
                                 "one undo per kind")
            UNDO[kind] = func
            family.kinds[kind] = func
        family.takes_down.update(takes_down)
        TAKES_DOWN.update(takes_down)
        registered = {_qualname(c) for c in family.checks}
        for check in checks:
            if _qualname(check) not in registered:
                family.checks.append(check)
                registered.add(_qualname(check))
        return family


def family_modules() -> list[str]:
    """Every ``chaosmoose.<family>._family`` module on disk (listed, not imported)."""
    return subpackage_modules(FAMILY_MODULE)


def load_all() -> list[str]:
    """Import every family module (each registers itself); return the ones that loaded.

    A family that fails to import is logged and kept in ``LOAD_ERRORS`` (its faults then
    cannot be undone, saying why); the others still load. Cheap when already loaded, and
    finds a family package added since the last call.
    """
    loaded = []
    with _lock:
        for module in family_modules():
            try:
                importlib.import_module(module)
            except Exception as exc:  # noqa: BLE001 - one broken family must not stop the others
                reason = f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                if LOAD_ERRORS.get(module) != reason:
                    logger.error("fault family %s failed to load: %s", module, reason)
                LOAD_ERRORS[module] = reason
                continue
            LOAD_ERRORS.pop(module, None)
            loaded.append(module)
    return loaded


def undo_for(kind: str) -> Undo | None:
    """The undo function of ``kind`` (loading the families first if it is not known yet)."""
    func = UNDO.get(kind)
    if func is None:
        load_all()
        func = UNDO.get(kind)
    return func


def load_problems() -> list[str]:
    """One sentence per family module that failed to load."""
    return [f"fault family {module} failed to load ({reason}); expected it to import"
            for module, reason in sorted(LOAD_ERRORS.items())]


def argument_problems(module: str, func: str, arguments: Mapping[str, Any],
                      configuration: Configuration = None, secrets: Secrets = None) -> list[str]:
    """What is wrong with one chaosmoose activity's arguments, one sentence each.

    First the generic check every activity gets (``chaosmoose._arguments``: it is an
    activity, no unknown or missing argument, values fit the type hints); when that passes,
    the owning families' checks (choices, names of configured nodes). A check that raises
    ``ActivityFailed`` counts as one problem (its message). Modules outside chaosmoose, and
    chaosmoose modules that are not activity modules, are not checked.
    """
    from chaosmoose import _arguments

    activity_module = (module.startswith("chaosmoose.")
                       and module.rsplit(".", 1)[-1] in ("actions", "probes"))
    if not activity_module and not owned(module):
        return []
    problems = _arguments.signature_problems(module, func, arguments)
    if problems:
        return problems
    for family in list(FAMILIES.values()):
        if not family.owns(module):
            continue
        for check in family.checks:
            try:
                problems += check(module, func, arguments, configuration, secrets) or []
            except ActivityFailed as exc:
                problems.append(str(exc).splitlines()[0])
    return problems


def owned(module: str) -> bool:
    """Whether some registered family owns ``module`` and has argument checks for it."""
    return any(f.owns(module) and f.checks for f in FAMILIES.values())


def markdown_kinds() -> str:
    """The fault kinds of every family that loads, for docs/chaosmoose.md (generated)."""
    import inspect

    load_all()
    rows = ["| kind | registered by | takes its target down | undo |", "|---|---|---|---|"]
    shipped = [f for f in FAMILIES.values() if f.package.startswith("chaosmoose.")]
    for kind in sorted({k for f in shipped for k in f.kinds}):
        owners = sorted(f.package for f in shipped if kind in f.kinds)
        doc = (inspect.getdoc(UNDO[kind]) or "").split("\n\n")[0].replace("\n", " ")
        rows.append(f"| `{kind}` | {', '.join(f'`{o}`' for o in owners)} | "
                    f"{'yes' if kind in TAKES_DOWN else 'no'} | {doc} |")
    return "\n".join(rows)
