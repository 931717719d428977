"""Which of chaosmoose's subpackages hold a module of a given name (standard library only).

Discovery by convention: an activity package holds ``probes.py`` / ``actions.py``, a fault
family holds ``_family.py``. Listing them here (without importing the packages) lets the
package list grow by adding a folder, with no core file naming it.
"""

from __future__ import annotations

import os
import pkgutil

__all__: list[str] = []  # not an activity module


def subpackage_modules(stem: str) -> list[str]:
    """``chaosmoose.<package>.<stem>`` for every subpackage that has a module ``stem``.

    Subpackages are taken from every folder of ``chaosmoose.__path__`` in name order; a
    subpackage is listed, not imported.
    """
    import chaosmoose

    found: list[str] = []
    for info in sorted(pkgutil.iter_modules(chaosmoose.__path__), key=lambda i: i.name):
        folder = getattr(info.module_finder, "path", None)
        if not info.ispkg or folder is None:
            continue
        inside = {m.name for m in pkgutil.iter_modules([os.path.join(folder, info.name)])}
        if stem in inside:
            found.append(f"chaosmoose.{info.name}.{stem}")
    return found
