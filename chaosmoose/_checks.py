"""The one way probes report a failed check: raise, or log and return False."""

from __future__ import annotations

import logging

from chaoslib.exceptions import ActivityFailed

__all__: list[str] = []  # not an activity module

logger = logging.getLogger("chaostoolkit")


def fail(raise_on: bool, message: str) -> bool:
    """Raise ``ActivityFailed(message)`` when ``raise_on``; otherwise log it and return False.

    Probes that feed tolerances take a ``raise_on_...`` switch and report through this.
    """
    if raise_on:
        raise ActivityFailed(message)
    logger.warning("%s", message)
    return False
