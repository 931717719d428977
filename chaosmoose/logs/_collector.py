"""Reading the central log file of the ``logs`` service (rsyslog) through the Docker API.

Each line of ``/var/log/mooseng/all.log`` is ``<RFC 3339 UTC time> <container> <message>``;
times have the same width and zone, so a time window is a string comparison, done inside
the container by awk so that only the window travels.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chaoslib.exceptions import ActivityFailed

from chaosmoose import _docker, _settings
from chaosmoose._settings import Configuration, Secrets

__all__: list[str] = []  # not an activity module

LOG_FILE = "/var/log/mooseng/all.log"
LINE = re.compile(r"^(\S+) (\S+) ?(.*)$")
NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smh])$")


@dataclass(frozen=True)
class LogLine:
    """One collected line: when, which compose service, what."""

    time: str
    service: str
    container: str
    message: str

    def as_dict(self) -> dict[str, str]:
        """JSON-friendly form."""
        return {"time": self.time, "service": self.service, "message": self.message}


def service_of(container: str, project: str) -> str:
    """``mooseng_master-1_1`` (Compose v1) or ``mooseng-master-1-1`` (v2) -> ``master-1``."""
    for sep in ("_", "-"):
        prefix = f"{project}{sep}"
        if container.startswith(prefix):
            rest = container[len(prefix):]
            base, _, index = rest.rpartition(sep)
            if base and index.isdigit():
                return base
    return container


def parse_line(text: str, project: str) -> LogLine | None:
    """A line of the log file, or None for a malformed one."""
    match = LINE.match(text)
    if not match:
        return None
    time, container, message = match.groups()
    return LogLine(time, service_of(container, project), container, message)


def to_utc(value: Any, now: datetime | None = None) -> str:
    """A time bound in the log file's format (UTC, RFC 3339).

    Accepts an ISO 8601 time (``2026-11-26T09:00:00Z``; naive means UTC), a Unix
    timestamp, or a relative ``90s``/``5m``/``2h`` meaning that long before now.
    """
    now = now or datetime.now(UTC)
    if isinstance(value, str) and NUMBER.match(value.strip()):
        value = float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        moment = datetime.fromtimestamp(float(value), UTC)
    elif isinstance(value, str) and RELATIVE.match(value.strip()):
        amount, unit = RELATIVE.match(value.strip()).groups()  # type: ignore[union-attr]
        moment = now - timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours"}[unit]:
                                    float(amount)})
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise _settings.SettingError(
                f"time {value!r} is invalid; expected ISO 8601 (2026-11-26T09:00:00Z), a Unix "
                "timestamp or a relative 90s/5m/2h") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    else:
        raise _settings.SettingError(f"time {value!r} is invalid; expected a time")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def read_window(since: Any = None, until: Any = None, services: list[str] | None = None,
                pattern: str | None = None, limit: int = 10000,
                configuration: Configuration = None, secrets: Secrets = None) -> list[LogLine]:
    """Collected lines in [since, until] (inclusive), of ``services``, matching ``pattern``.

    Returns at most the last ``limit`` lines, oldest first.
    """
    project = _settings.project(configuration, secrets)
    low = to_utc(since) if since not in (None, "") else ""
    high = to_utc(until) if until not in (None, "") else "9999"
    try:
        regex = re.compile(pattern) if pattern else None
    except re.error as exc:
        raise _settings.SettingError(f"pattern {pattern!r} is not a regular expression: {exc}") from None
    service = _settings.get_str("logs_service", configuration, secrets) or "logs"
    container = _docker.find_container(project, service)
    if _docker.container_state(container) != "running":
        raise ActivityFailed(f"the log collector ({service}) is not running; start the cluster "
                             "with `make up`")
    script = (f"awk -v lo={shlex.quote(low)} -v hi={shlex.quote(high)} "
              f"'$1 >= lo && $1 <= hi' {LOG_FILE}")
    code, out, err = _docker.exec_in(container, ["sh", "-c", script])
    if code != 0:
        raise ActivityFailed(f"reading {LOG_FILE} in {container.name} failed: "
                             f"{(err or out).strip()[:200]}")
    wanted = set(services) if services else None
    lines = []
    for text in out.splitlines():
        line = parse_line(text, project)
        if line is None or (wanted is not None and line.service not in wanted):
            continue
        if regex is not None and not regex.search(line.message):
            continue
        lines.append(line)
    return lines[-limit:] if limit > 0 else lines
