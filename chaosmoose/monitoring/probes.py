"""Probes of the lab's Prometheus (``prometheus_url``, default http://127.0.0.1:9090).

They let an experiment check what the monitoring saw, not only what the cluster says:
that every target is scraped, that a PromQL expression has the expected value, and that
the alert rules fire on a fault and resolve after it (an alert that never fires is a
monitoring bug a game day should find). Probes with a ``raise_on_...`` switch raise
``ActivityFailed`` saying what was observed; with the switch off they return False.
"""

import logging
import time

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosmoose import _settings
from chaosmoose._checks import fail as _fail
from chaosmoose.monitoring._prometheus import active_alerts, api_get, instant_query

__all__ = [
    "alerts",
    "no_alert_firing",
    "prometheus_query",
    "prometheus_value",
    "targets_up",
    "wait_for_alert",
    "wait_for_value",
]

logger = logging.getLogger("chaostoolkit")

ALERT_STATES = ("firing", "pending", "resolved")
# documented choices, checked by the strict preflight (chaosmoose._arguments)
ARGUMENT_CHOICES = {"wait_for_alert": {"state": ALERT_STATES}}

def prometheus_query(query: str, configuration: Configuration = None,
                     secrets: Secrets = None) -> list[dict]:
    """Evaluate a PromQL ``query`` now: ``[{"labels": {...}, "value": number}]``.

    A malformed query fails with Prometheus's own reason; an unreachable Prometheus fails
    naming its URL.
    """
    return [s.as_dict() for s in instant_query(query, configuration, secrets)]


def prometheus_value(query: str, raise_on_empty: bool = True, configuration: Configuration = None,
                     secrets: Secrets = None) -> float | None:
    """The single value of a PromQL ``query`` (for example ``sum(mooseng_master_is_leader)``).

    Fails if the result has several series (aggregate it), and, with ``raise_on_empty``,
    if it has none; otherwise an empty result is None.
    """
    samples = instant_query(query, configuration, secrets)
    if len(samples) > 1:
        raise ActivityFailed(f"query {query!r} returned {len(samples)} series; expected one "
                             "(aggregate it, e.g. with sum or max)")
    if not samples:
        _fail(raise_on_empty, f"query {query!r} returned no series")
        return None
    return samples[0].value


def wait_for_value(query: str, minimum: float | None = None, maximum: float | None = None,
                   timeout: float = 60.0, raise_on_timeout: bool = True,
                   configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Poll a single-valued ``query`` until its value is within [minimum, maximum].

    Returns ``{"value", "waited_s", "ok"}``; on timeout fails with the last value seen
    (or returns ``ok: false`` with ``raise_on_timeout`` off).
    """
    if minimum is None and maximum is None:
        raise _settings.SettingError("wait_for_value needs minimum, maximum or both")
    low = None if minimum is None else _settings.parse_float("minimum", minimum, None)
    high = None if maximum is None else _settings.parse_float("maximum", maximum, None)
    wait = _settings.parse_float("timeout", timeout)
    began = time.monotonic()
    value = None
    while True:
        value = prometheus_value(query, False, configuration, secrets)
        inside = value is not None and (low is None or value >= low) and (high is None or value <= high)
        waited = round(time.monotonic() - began, 2)
        if inside:
            return {"value": value, "waited_s": waited, "ok": True}
        if waited >= wait:
            _fail(raise_on_timeout, f"query {query!r} stayed outside [{low}, {high}] for "
                                    f"{wait:g} s; last value {value}")
            return {"value": value, "waited_s": waited, "ok": False}
        time.sleep(1.0)


def targets_up(job: str | None = None, raise_on_down: bool = True,
               configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Scrape targets by health: ``{"up": [node...], "down": {node: last error}}``.

    With ``job`` only that scrape job (mooseng-master, mooseng-chunkserver,
    mooseng-client). Fails when a target is down (unless ``raise_on_down`` is off) or
    when no target matches.
    """
    data = api_get("targets", {"state": "active"}, configuration, secrets)
    up: list[str] = []
    down: dict[str, str] = {}
    for target in data.get("activeTargets", []):
        labels = target.get("labels", {})
        if job is not None and labels.get("job") != job:
            continue
        name = labels.get("node") or labels.get("instance", "?")
        if target.get("health") == "up":
            up.append(name)
        else:
            down[name] = target.get("lastError") or target.get("health", "unknown")
    result = {"up": sorted(up), "down": down}
    if not up and not down:
        raise ActivityFailed(f"Prometheus has no active target{f' in job {job!r}' if job else ''}")
    if down:
        _fail(raise_on_down, f"targets down: {down}")
    return result


def alerts(include_pending: bool = False, configuration: Configuration = None,
           secrets: Secrets = None) -> list[dict]:
    """Alerts firing now, and pending ones too with ``include_pending``.

    Each is ``{"name", "state", "labels", "active_at"}``.
    """
    wanted = {"firing", "pending"} if include_pending else {"firing"}
    return [a for a in active_alerts(configuration, secrets) if a["state"] in wanted]


def no_alert_firing(ignore: list[str] | None = None, raise_on_alert: bool = True,
                    configuration: Configuration = None, secrets: Secrets = None) -> bool:
    """True when no alert fires, except those named in ``ignore``.

    A steady-state probe: a cluster that pages before the experiment is not steady.
    """
    skip = set(_settings.parse_name_list("ignore", ignore)) if ignore else set()
    firing = [a for a in alerts(False, configuration, secrets) if a["name"] not in skip]
    if firing:
        names = ", ".join(sorted({f"{a['name']}({a['labels'].get('node', '')})" for a in firing}))
        return _fail(raise_on_alert, f"alerts firing: {names}")
    return True


def wait_for_alert(name: str, state: str = "firing", node: str | None = None,
                   timeout: float = 90.0, raise_on_timeout: bool = True,
                   configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Wait until alert ``name`` (for ``node``, if given) reaches ``state``.

    ``state`` is ``firing``, ``pending`` (pending or firing) or ``resolved`` (neither).
    Returns ``{"name", "state", "waited_s", "ok"}``. Use it to prove that the monitoring
    notices the fault an experiment injects, and that the alert clears after rollback.
    """
    if state not in ALERT_STATES:
        raise _settings.SettingError(f"state={state!r} is invalid; expected firing, pending or "
                                     "resolved")
    if not isinstance(name, str) or not name:
        raise _settings.SettingError(f"name={name!r} is invalid; expected an alert name")
    _check_alert_exists(name, configuration, secrets)
    wait = _settings.parse_float("timeout", timeout)
    began = time.monotonic()
    while True:
        matching = [a for a in active_alerts(configuration, secrets) if a["name"] == name
                    and (node is None or a["labels"].get("node") == node)]
        states = {a["state"] for a in matching}
        reached = (("firing" in states) if state == "firing" else
                   bool(states) if state == "pending" else not states)
        waited = round(time.monotonic() - began, 2)
        if reached:
            return {"name": name, "state": state, "waited_s": waited, "ok": True}
        if waited >= wait:
            _fail(raise_on_timeout, f"alert {name}{f' for {node}' if node else ''} did not reach "
                                    f"{state} within {wait:g} s (now: {sorted(states) or 'inactive'})")
            return {"name": name, "state": state, "waited_s": waited, "ok": False}
        time.sleep(1.0)


def _check_alert_exists(name: str, configuration: Configuration, secrets: Secrets) -> None:
    """Fail at once on an alert name no rule defines (a typo would otherwise wait it out)."""
    groups = api_get("rules", {"type": "alert"}, configuration, secrets).get("groups", [])
    known = {rule.get("name") for group in groups for rule in group.get("rules", [])}
    if name not in known:
        raise _settings.SettingError(
            f"no alert rule named {name!r}; Prometheus knows: {', '.join(sorted(known)) or 'none'}")
