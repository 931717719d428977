"""Probes of the aggregated logs (the ``logs`` service): what the daemons and agents said."""

from chaoslib.types import Configuration, Secrets

from chaosmoose import _settings
from chaosmoose.logs._collector import read_window

__all__ = ["log_lines"]


def log_lines(pattern: str = "", services: list[str] | None = None, since: str = "5m",
              until: str = "", limit: int = 200, configuration: Configuration = None,
              secrets: Secrets = None) -> list:
    """Log lines of the lab matching the regular expression ``pattern``.

    ``services`` narrows to compose services (``["master-1", "master-2"]``); ``since`` and
    ``until`` take ISO 8601 times, Unix timestamps or relative ``90s``/``5m``/``2h``.
    Returns up to ``limit`` newest lines, oldest first: ``[{"time", "service",
    "message"}]``. Use a tolerance on the length to require (or forbid) an event, e.g.
    ``event=fenced`` on the masters.
    """
    names = _settings.parse_name_list("services", services) if services else None
    count = _settings.parse_int("limit", limit, minimum=1)
    return [line.as_dict() for line in read_window(since, until or None, names, pattern or None,
                                                    count, configuration, secrets)]
