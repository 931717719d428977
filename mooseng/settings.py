"""Every environment setting of the cluster side, in one table.

Each setting has a name (``MOOSENG_*``), a default, a parser and a line of
documentation. ``mooseng settings --markdown`` prints the table that the
README carries, so the two cannot drift apart.

A value that does not parse raises :class:`SettingError` naming the variable,
the value and what was expected: containers fail at start with that message
instead of misbehaving later.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass


class SettingError(ValueError):
    """A setting's value is malformed."""


def parse_port(raw: str) -> int:
    """A TCP port number, 1..65535."""
    value = int(raw)
    if not 1 <= value <= 65535:
        raise ValueError("not in 1..65535")
    return value


def parse_positive_float(raw: str) -> float:
    """A number of seconds greater than zero."""
    value = float(raw)
    if not value > 0:
        raise ValueError("not greater than zero")
    return value


def parse_positive_int(raw: str) -> int:
    """A whole number greater than zero."""
    value = int(raw)
    if value <= 0:
        raise ValueError("not greater than zero")
    return value


def parse_bool(raw: str) -> bool:
    """true/false, yes/no, 1/0, on/off (case-insensitive); anything else is an error."""
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("not a boolean (true/false)")


def parse_str(raw: str) -> str:
    """Any string."""
    return raw


def parse_list(raw: str) -> list[str]:
    """A comma-separated list; blanks are dropped."""
    return [item.strip() for item in raw.split(",") if item.strip()]


@dataclass(frozen=True)
class Setting:
    """One environment variable: its name, default, parser and meaning."""

    name: str
    default: str
    parse: Callable[[str], object]
    doc: str
    scope: str

    def expected(self) -> str:
        """The parser's one-line description of an acceptable value."""
        return (self.parse.__doc__ or "a value").strip().splitlines()[0]


SETTINGS: dict[str, Setting] = {}


def define(name: str, default: str, parse: Callable[[str], object], doc: str, scope: str) -> None:
    """Register a setting; names are unique."""
    if name in SETTINGS:
        raise ValueError(f"setting {name} defined twice")
    SETTINGS[name] = Setting(name, default, parse, doc, scope)


# --- every role -----------------------------------------------------------
define("MOOSENG_NODE", "", parse_str, "This container's node name (defaults to the host name).", "all")
define("MOOSENG_MASTERS", "master-1,master-2,master-3", parse_list,
       "Host names of the master containers, in a fixed order.", "all")
define("MOOSENG_API_PORT", "9430", parse_port, "Port of each master agent's HTTP API.", "all")
define("MOOSENG_EXPORTER_PORT", "9450", parse_port,
       "Port of the Prometheus exporter in chunkserver and client containers (GET /metrics).", "all")
define("MOOSENG_LOG_LEVEL", "INFO", parse_str, "Log level of the Python processes.", "all")
define("MOOSENG_DATA_DIR", "/var/lib/mooseng", parse_str,
       "Persistent state of the container (a named volume); MooseFS DATA_PATH is its mfs/ folder.", "all")
# --- MooseFS ports ----------------------------------------------------------
define("MOOSENG_MATOML_PORT", "9419", parse_port, "mfsmaster port for metaloggers.", "master")
define("MOOSENG_MATOCS_PORT", "9420", parse_port, "mfsmaster port for chunkservers.", "master")
define("MOOSENG_MATOCL_PORT", "9421", parse_port, "mfsmaster port for clients (mounts, mfscli).", "master")
define("MOOSENG_ROUTER_ML_PORT", "9519", parse_port,
       "Local leader router port for metaloggers (in master containers).", "router")
define("MOOSENG_ROUTER_CS_PORT", "9520", parse_port,
       "Local leader router port for chunkservers.", "router")
define("MOOSENG_ROUTER_CL_PORT", "9521", parse_port,
       "Local leader router port for clients.", "router")
define("MOOSENG_ROUTER_CHECK_INTERVAL_MS", "250", parse_positive_int,
       "How often the router asks each agent's /leader (milliseconds).", "router")
define("MOOSENG_RECONNECT_DELAY", "1", parse_positive_int,
       "MASTER_RECONNECTION_DELAY of metaloggers and chunkservers (seconds).", "all")
# --- master HA agent (mooseng agent) -------------------------------------------
define("MOOSENG_TTL", "1.5", parse_positive_float,
       "Leader lease time to live (seconds); a dead leader is replaced about this long after it died.",
       "master")
define("MOOSENG_LOOP_WAIT", "0.25", parse_positive_float,
       "Seconds between two HA decisions; the lease holder renews once per loop.", "master")
define("MOOSENG_RETRY_TIMEOUT", "0.25", parse_positive_float,
       "Upper bound of one Raft store call (seconds); loop_wait + 2*retry_timeout must be <= ttl.",
       "master")
define("MOOSENG_SAFETY_MARGIN", "0.3", parse_positive_float,
       "The holder stops mfsmaster if it could not renew for ttl minus this many seconds.", "master")
define("MOOSENG_RAFT_PORT", "9440", parse_port, "Port of the agents' Raft (pysyncobj) links.", "master")
define("MOOSENG_RAFT_MIN_TIMEOUT", "0.3", parse_positive_float,
       "Raft election timeout, lower bound (seconds).", "master")
define("MOOSENG_RAFT_MAX_TIMEOUT", "0.6", parse_positive_float,
       "Raft election timeout, upper bound (seconds).", "master")
define("MOOSENG_RAFT_PASSWORD", "", parse_str,
       "Shared secret encrypting Raft links (generated into .env by make); the agent refuses to "
       "start without it.", "master")
define("MOOSENG_API_TOKEN", "", parse_str,
       "Bearer token for POST /switchover; empty refuses every switchover.", "master")
define("MOOSENG_REPLICA_MAX_LAG", "200", parse_positive_int,
       "A follower whose change number is more than this behind the leader is not a healthy replica.",
       "master")
# --- chunkserver --------------------------------------------------------------
define("MOOSENG_CS_PORT", "9422", parse_port, "Chunkserver port for clients and replication.", "chunkserver")
define("MOOSENG_CS_LABELS", "", parse_str,
       "Storage class labels of this chunkserver (MooseFS LABELS, e.g. A or A,B).", "chunkserver")
define("MOOSENG_CS_TIERS", "fast,bulk", parse_list,
       "Storage tier folders under $MOOSENG_DATA_DIR/tiers (one volume each), listed in mfshdd.cfg.",
       "chunkserver")
define("MOOSENG_CS_LEAVE_SPACE", "64MiB", parse_str,
       "HDD_LEAVE_SPACE_DEFAULT: space left free on every tier.", "chunkserver")
# --- client -------------------------------------------------------------------
define("MOOSENG_MOUNT_POINT", "", parse_str,
       "Where the client mounts MooseFS (default /mnt/<node name>).", "client")
define("MOOSENG_MOUNT_SUBFOLDER", "/", parse_str,
       "MooseFS folder to mount (mfsmount -S).", "client")


def read(name: str, environ: Mapping[str, str] | None = None) -> object:
    """Return the parsed value of setting ``name`` from ``environ`` (default: os.environ).

    Raises SettingError naming the variable when the value does not parse.
    """
    env = os.environ if environ is None else environ
    setting = SETTINGS[name]
    raw = env.get(name, setting.default)
    try:
        return setting.parse(raw)
    except ValueError as exc:
        raise SettingError(
            f"{name}={raw!r} is invalid ({exc}); expected {setting.expected()}"
        ) from None


def validate(scope: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """Check every setting of ``scope`` (and the ``all`` scope); return the error messages."""
    errors = []
    for setting in SETTINGS.values():
        if setting.scope in ("all", scope) or scope == "*":
            try:
                read(setting.name, environ)
            except SettingError as exc:
                errors.append(str(exc))
    return errors


def markdown_table() -> str:
    """The README's settings table."""
    rows = ["| variable | default | scope | meaning |", "|---|---|---|---|"]
    for s in SETTINGS.values():
        rows.append(f"| `{s.name}` | `{s.default}` | {s.scope} | {s.doc} |")
    return "\n".join(rows)
