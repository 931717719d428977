"""A small Prometheus HTTP API client: timeouts, and errors that say what failed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import requests
from chaoslib.exceptions import ActivityFailed

from chaosmoose import _settings
from chaosmoose._http import _reason
from chaosmoose._settings import Configuration, Secrets

__all__: list[str] = []  # not an activity module


class PrometheusError(ActivityFailed):
    """Prometheus did not answer, or refused the request (with its reason)."""


@dataclass(frozen=True)
class Sample:
    """One element of an instant vector."""

    labels: dict[str, str]
    value: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (NaN and infinities as strings)."""
        value: Any = self.value if math.isfinite(self.value) else str(self.value)
        return {"labels": self.labels, "value": value}


def base_url(configuration: Configuration = None, secrets: Secrets = None) -> str:
    """The configured Prometheus URL (``prometheus_url``), checked."""
    url = (_settings.get_str("prometheus_url", configuration, secrets) or "").rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise _settings.SettingError(
            f"prometheus_url={url!r} is invalid; expected http://host:port")
    return url


def api_get(path: str, params: dict[str, str] | None = None, configuration: Configuration = None,
            secrets: Secrets = None) -> Any:
    """GET ``/api/v1/<path>`` and return its ``data``; raise PrometheusError naming the cause."""
    url = base_url(configuration, secrets)
    timeout = _settings.http_timeout(configuration, secrets)
    try:
        response = requests.get(f"{url}/api/v1/{path}", params=params, timeout=timeout)
    except requests.RequestException as exc:
        raise PrometheusError(f"Prometheus at {url} unreachable: {_reason(exc, timeout)}") from None
    try:
        body = response.json()
    except ValueError:
        raise PrometheusError(
            f"Prometheus at {url} answered /api/v1/{path} with HTTP {response.status_code} and "
            f"no JSON: {response.text[:120]!r}") from None
    if body.get("status") != "success":
        what = f" for query {params['query']!r}" if params and "query" in params else ""
        raise PrometheusError(
            f"Prometheus at {url} refused /api/v1/{path}{what}: "
            f"{body.get('errorType', 'error')}: {body.get('error', response.text[:200])}")
    return body.get("data")


def instant_query(query: str, configuration: Configuration = None,
                  secrets: Secrets = None) -> list[Sample]:
    """Evaluate ``query`` now; a scalar result is one sample without labels."""
    if not isinstance(query, str) or not query.strip():
        raise _settings.SettingError(f"query={query!r} is invalid; expected a PromQL expression")
    data = api_get("query", {"query": query}, configuration, secrets)
    kind, result = data.get("resultType"), data.get("result")
    if kind == "vector":
        return [Sample(dict(item.get("metric", {})), float(item["value"][1])) for item in result]
    if kind == "scalar":
        return [Sample({}, float(result[1]))]
    raise PrometheusError(f"query {query!r} gave a {kind} result; expected an instant vector or "
                          "a scalar")


def active_alerts(configuration: Configuration = None, secrets: Secrets = None) -> list[dict]:
    """Alerts pending or firing now: ``[{"name", "state", "labels", "active_at"}]``."""
    data = api_get("alerts", None, configuration, secrets)
    return [{"name": a["labels"].get("alertname"), "state": a.get("state"),
             "labels": a.get("labels", {}), "active_at": a.get("activeAt")}
            for a in data.get("alerts", [])]


def range_query(query: str, start: float, end: float, step: float,
                configuration: Configuration = None, secrets: Secrets = None) -> list[tuple[float, float]]:
    """Points ``(unix time, value)`` of a single-series ``query`` over [start, end]
    (the first series if there are several; empty if none)."""
    data = api_get("query_range", {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}",
                                   "step": f"{step:.3f}"}, configuration, secrets)
    if data.get("resultType") != "matrix":
        raise PrometheusError(f"range query {query!r} gave a {data.get('resultType')} result")
    result = data.get("result") or []
    if not result:
        return []
    return [(float(t), float(v)) for t, v in result[0].get("values", [])]
