"""One lookup path for every chaosmoose setting: secrets, then configuration, then environment.

Each setting has a key (as used in an experiment's ``configuration`` or ``secrets``), an
environment variable and a default. Values are parsed explicitly ("false" is false, a
malformed number is an error naming the key, the value and what was expected). Secret
values are never logged.

This module is imported on the host only (it raises chaoslib's ``ActivityFailed``).
"""

from __future__ import annotations

import math
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ActivityFailed

__all__: list[str] = []  # not an activity module

Configuration = Mapping[str, Any] | None
Secrets = Mapping[str, Any] | None


class SettingError(ActivityFailed):
    """A chaosmoose setting is malformed; raised before anything touches the cluster."""


@dataclass(frozen=True)
class Setting:
    """One setting: key, environment variable, default, whether it is secret, meaning."""

    key: str
    env: str
    default: str | None
    doc: str
    secret: bool = False


SETTINGS: dict[str, Setting] = {
    s.key: s
    for s in (
        Setting("mooseng_masters", "CHAOSMOOSE_MASTERS",
                "master-1=http://127.0.0.1:9431,master-2=http://127.0.0.1:9432,"
                "master-3=http://127.0.0.1:9433",
                "Master agents' HTTP APIs as name=url pairs; names are compose service names."),
        Setting("mooseng_clients", "CHAOSMOOSE_CLIENTS", "client-1,client-2,client-3",
                "Client services (compose service names) that run the workload."),
        Setting("mooseng_chunkservers", "CHAOSMOOSE_CHUNKSERVERS",
                "chunkserver-1,chunkserver-2,chunkserver-3",
                "Chunkserver services (compose service names) that chunkserver faults target."),
        Setting("mooseng_mount_root", "CHAOSMOOSE_MOUNT_ROOT", "/mnt",
                "Each client mounts MooseFS at <mount root>/<service name>."),
        Setting("docker_project", "COMPOSE_PROJECT_NAME", "mooseng",
                "Docker compose project whose containers are targeted (by labels)."),
        Setting("mooseng_api_token", "MOOSENG_API_TOKEN", None,
                "Bearer token for POST /switchover (also read from ./.env).", secret=True),
        Setting("mooseng_http_timeout", "CHAOSMOOSE_HTTP_TIMEOUT", "2.0",
                "Timeout of one HTTP request to a master agent (seconds)."),
        Setting("chaosmoose_run_dir", "CHAOSMOOSE_RUN_DIR", "runs/current",
                "Directory of the fault ledger and workload histories (relative to the cwd)."),
        Setting("chaosmoose_runs_dir", "CHAOSMOOSE_RUNS_DIR", "runs",
                "Directory holding every run directory; cleanup, the strict preflight and the "
                "open_faults probe read every faults.jsonl below it."),
        Setting("max_masters_down", "CHAOSMOOSE_MAX_MASTERS_DOWN", "1",
                "Blast-radius guard: most masters a fault may leave down at once, counting "
                "every open fault of every ledger; raise it in an experiment to break quorum."),
        Setting("max_chunkservers_down", "CHAOSMOOSE_MAX_CHUNKSERVERS_DOWN", "1",
                "Blast-radius guard: most chunkservers a fault may leave down at once."),
        Setting("chaosmoose_run_id", "CHAOSMOOSE_RUN_ID", None,
                "Identifier of this run (default: generated once per process)."),
        Setting("logs_service", "CHAOSMOOSE_LOGS_SERVICE", "logs",
                "Compose service of the central log collector (chaosmoose logs, log probes)."),
        Setting("prometheus_url", "CHAOSMOOSE_PROMETHEUS_URL", "http://127.0.0.1:9090",
                "Prometheus base URL (chaosmoose.monitoring probes)."),
        Setting("toxiproxy_url", "CHAOSMOOSE_TOXIPROXY_URL", "http://127.0.0.1:8474",
                "Toxiproxy API that every cluster link passes through (chaosmoose.network)."),
        Setting("evidence_log_lines", "CHAOSMOOSE_EVIDENCE_LOG_LINES", "100000",
                "Most collected log lines a run directory keeps as evidence "
                "(evidence/logs.jsonl.gz, stored at the end of a run): every line of the run's "
                "window up to this many; beyond it every line matching the report's default "
                "pattern and the newest others."),
    )
}


def secret_value(key: str, secrets: Secrets) -> Any:
    """``key`` from the secrets: top level, or in any scope (secrets are a mapping of scopes,
    ``{"mooseng": {"mooseng_api_token": ...}}``); None when absent."""
    if not secrets:
        return None
    if key in secrets and not isinstance(secrets[key], Mapping):
        return secrets[key]
    for scope in secrets.values():
        if isinstance(scope, Mapping) and scope.get(key) is not None:
            return scope[key]
    return None


def _from_dotenv(env_name: str, path: Path = Path(".env")) -> str | None:
    """Read ``NAME=value`` from a .env file (the Makefile writes one at the repo root)."""
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.partition("=")
        if name.strip().removeprefix("export ").strip() == env_name:
            return value.strip().strip("'\"")
    return None


def raw(key: str, configuration: Configuration = None, secrets: Secrets = None) -> Any:
    """The raw value of ``key``: secrets, then configuration, then environment, then default."""
    setting = SETTINGS.get(key)
    value = secret_value(key, secrets)
    if value is None and configuration:
        value = configuration.get(key)
    if value is None and setting is not None:
        value = os.environ.get(setting.env)
        if value is None and setting.secret:
            value = _from_dotenv(setting.env)
        if value is None:
            value = setting.default
    return value


def _describe(key: str, value: Any) -> str:
    setting = SETTINGS.get(key)
    return "<secret>" if setting is not None and setting.secret else repr(value)


def get_str(key: str, configuration: Configuration = None, secrets: Secrets = None,
            default: str | None = None) -> str | None:
    """A string setting (``None`` when unset and no default)."""
    value = raw(key, configuration, secrets)
    if value is None:
        return default
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise SettingError(f"setting {key}={_describe(key, value)} is invalid; expected a string")
    return str(value)


def parse_float(key: str, value: Any, minimum: float | None = 0.0) -> float:
    """A number (int, float or numeric string), optionally at least ``minimum``."""
    if isinstance(value, bool):
        raise SettingError(f"{key}={value!r} is invalid; expected a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SettingError(f"{key}={value!r} is invalid; expected a number") from None
    if math.isnan(number) or math.isinf(number):
        raise SettingError(f"{key}={value!r} is invalid; expected a finite number")
    if minimum is not None and number < minimum:
        raise SettingError(f"{key}={value!r} is invalid; expected a number >= {minimum:g}")
    return number


def parse_int(key: str, value: Any, minimum: int | None = 0) -> int:
    """A whole number (int or digit string), optionally at least ``minimum``."""
    if isinstance(value, bool):
        raise SettingError(f"{key}={value!r} is invalid; expected a whole number")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    try:
        number = int(value) if isinstance(value, (int, str)) else None
    except ValueError:
        number = None
    if number is None:
        raise SettingError(f"{key}={value!r} is invalid; expected a whole number")
    if minimum is not None and number < minimum:
        raise SettingError(f"{key}={value!r} is invalid; expected a whole number >= {minimum}")
    return number


def parse_bool(key: str, value: Any) -> bool:
    """true/false, yes/no, on/off, 1/0 (case-insensitive) or a JSON boolean; nothing else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
    raise SettingError(f"{key}={value!r} is invalid; expected a boolean (true/false)")


def parse_name_list(key: str, value: Any) -> list[str]:
    """A comma-separated list (or JSON list) of unique non-empty names."""
    if isinstance(value, str):
        items = [item.strip() for item in value.split(",")]
    elif isinstance(value, (list, tuple)):
        items = [str(item).strip() for item in value]
    else:
        raise SettingError(f"{key}={value!r} is invalid; expected a comma-separated list")
    names = [item for item in items if item]
    if not names:
        raise SettingError(f"{key}={value!r} is invalid; expected at least one name")
    if len(set(names)) != len(names):
        raise SettingError(f"{key}={value!r} is invalid; names must be unique")
    return names


def parse_masters(value: Any, key: str = "mooseng_masters") -> dict[str, str]:
    """``name=url,name=url`` (or a JSON mapping) into an ordered ``{name: url}``."""
    if isinstance(value, Mapping):
        pairs = [(str(k).strip(), str(v).strip()) for k, v in value.items()]
    elif isinstance(value, str):
        pairs = []
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            name, sep, url = item.partition("=")
            if not sep:
                raise SettingError(
                    f"{key}: entry {item!r} has no '=url' part; "
                    "expected name=http://host:port[,name=http://host:port...]"
                )
            pairs.append((name.strip(), url.strip()))
    else:
        raise SettingError(f"{key}={value!r} is invalid; expected name=url pairs")
    masters: dict[str, str] = {}
    for name, url in pairs:
        if not name:
            raise SettingError(f"{key}: an entry has an empty name; expected name=url")
        if not url.startswith(("http://", "https://")) or len(url) < 10:
            raise SettingError(
                f"{key}: {name} has URL {url!r}; expected http://host:port"
            )
        if name in masters:
            raise SettingError(f"{key}: {name} is listed twice; names must be unique")
        masters[name] = url.rstrip("/")
    if not masters:
        raise SettingError(f"{key}={value!r} is invalid; expected at least one name=url pair")
    return masters


def masters(configuration: Configuration = None, secrets: Secrets = None) -> dict[str, str]:
    """The configured master agents, ``{name: base url}`` in configured order."""
    return parse_masters(raw("mooseng_masters", configuration, secrets))


def clients(configuration: Configuration = None, secrets: Secrets = None) -> list[str]:
    """The configured client services."""
    return parse_name_list("mooseng_clients", raw("mooseng_clients", configuration, secrets))


def chunkservers(configuration: Configuration = None, secrets: Secrets = None) -> list[str]:
    """The configured chunkserver services."""
    return parse_name_list("mooseng_chunkservers",
                           raw("mooseng_chunkservers", configuration, secrets))


def mount_point(client: str, configuration: Configuration = None,
                secrets: Secrets = None) -> str:
    """Where ``client`` mounts MooseFS inside its container."""
    root = get_str("mooseng_mount_root", configuration, secrets) or "/mnt"
    if not root.startswith("/"):
        raise SettingError(f"mooseng_mount_root={root!r} is invalid; expected an absolute path")
    return f"{root.rstrip('/')}/{client}"


def project(configuration: Configuration = None, secrets: Secrets = None) -> str:
    """The docker compose project name."""
    name = get_str("docker_project", configuration, secrets) or ""
    if not name.strip() or any(c.isspace() for c in name):
        raise SettingError(f"docker_project={name!r} is invalid; expected a compose project name")
    return name


def http_timeout(configuration: Configuration = None, secrets: Secrets = None) -> float:
    """Timeout of one request to a master agent, seconds (> 0)."""
    value = parse_float("mooseng_http_timeout", raw("mooseng_http_timeout", configuration,
                                                    secrets))
    if value <= 0:
        raise SettingError(f"mooseng_http_timeout={value!r} is invalid; expected a number > 0")
    return value


def toxiproxy_url(configuration: Configuration = None, secrets: Secrets = None) -> str:
    """The Toxiproxy API base URL (``toxiproxy_url``), without a trailing slash."""
    url = (get_str("toxiproxy_url", configuration, secrets) or "").strip().rstrip("/")
    if not url.startswith(("http://", "https://")) or len(url) < 10 or " " in url:
        raise SettingError(f"toxiproxy_url={url!r} is invalid; expected http://host:port")
    return url


def api_token(configuration: Configuration = None, secrets: Secrets = None) -> str | None:
    """The switchover token (never logged)."""
    return get_str("mooseng_api_token", configuration, secrets)


def run_dir(configuration: Configuration = None, secrets: Secrets = None) -> Path:
    """The run directory holding the ledger and workload histories (created on demand)."""
    value = get_str("chaosmoose_run_dir", configuration, secrets) or "runs/current"
    return Path(value)


def runs_dir(configuration: Configuration = None, secrets: Secrets = None) -> Path:
    """The directory below which every run directory (and its ledger) lives."""
    value = get_str("chaosmoose_runs_dir", configuration, secrets) or "runs"
    if not value.strip():
        raise SettingError(f"chaosmoose_runs_dir={value!r} is invalid; expected a directory")
    return Path(value)


def evidence_log_lines(configuration: Configuration = None, secrets: Secrets = None) -> int:
    """Most log lines stored as a run's evidence (``evidence_log_lines``, >= 1)."""
    return parse_int("evidence_log_lines", raw("evidence_log_lines", configuration, secrets),
                     minimum=1)


def max_down(key: str, configuration: Configuration = None, secrets: Secrets = None) -> int:
    """A blast-radius limit (``max_masters_down``, ``max_chunkservers_down``): a whole
    number >= 0."""
    return parse_int(key, raw(key, configuration, secrets))


def blast_radius_limits(configuration: Configuration = None,
                        secrets: Secrets = None) -> dict[str, tuple[int, list[str]]]:
    """``{setting key: (limit, services it counts)}`` for the blast-radius guard."""
    return {"max_masters_down": (max_down("max_masters_down", configuration, secrets),
                                 list(masters(configuration, secrets))),
            "max_chunkservers_down": (max_down("max_chunkservers_down", configuration, secrets),
                                      chunkservers(configuration, secrets))}


def _max_down_settings(configuration: Configuration = None, secrets: Secrets = None) -> None:
    for key in ("max_masters_down", "max_chunkservers_down"):
        max_down(key, configuration, secrets)


_PROCESS_RUN_ID = f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def run_id(configuration: Configuration = None, secrets: Secrets = None) -> str:
    """This run's identifier: configured, or generated once per process (one ``chaos run``)."""
    value = get_str("chaosmoose_run_id", configuration, secrets)
    if value is None:
        return _PROCESS_RUN_ID
    if not value or "/" in value or value.startswith(".") or any(c.isspace() for c in value):
        raise SettingError(f"chaosmoose_run_id={value!r} is invalid; expected a plain name")
    return value


def validate_all(configuration: Configuration = None, secrets: Secrets = None) -> list[str]:
    """Parse every setting; return one message per malformed value (empty when all good)."""
    errors = []
    for check in (masters, clients, chunkservers, project, http_timeout, run_dir, runs_dir,
                  run_id, toxiproxy_url, _max_down_settings, evidence_log_lines):
        try:
            check(configuration, secrets)
        except SettingError as exc:
            errors.append(str(exc))
    try:
        for client in clients(configuration, secrets):
            mount_point(client, configuration, secrets)
    except SettingError as exc:
        if str(exc) not in errors:
            errors.append(str(exc))
    return errors


def markdown_table() -> str:
    """The settings table for docs and the README."""
    rows = ["| key | env | default | meaning |", "|---|---|---|---|"]
    for s in SETTINGS.values():
        default = "(none)" if s.default is None else f"`{s.default}`"
        rows.append(f"| `{s.key}` | `{s.env}` | {default} | {s.doc} |")
    return "\n".join(rows)
