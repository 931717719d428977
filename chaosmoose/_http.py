"""A small HTTP helper for the master agents' APIs: timeouts and errors that say what failed."""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import requests
from chaoslib.exceptions import ActivityFailed

logger = logging.getLogger("chaostoolkit")

__all__: list[str] = []  # not an activity module


class MasterUnreachable(ActivityFailed):
    """A master agent's API did not answer (refused, timed out, reset)."""


@dataclass(frozen=True)
class Reply:
    """One answer of a master agent: HTTP status and decoded JSON body (``{}`` when none)."""

    name: str
    url: str
    status: int
    body: dict[str, Any]


def _reason(exc: requests.RequestException, timeout: float) -> str:
    """A short human reason for a requests failure."""
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout:g} s"
    text = str(exc)
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError) or "Connection refused" in str(cause):
            return "connection refused"
        if isinstance(cause, ConnectionResetError):
            return "connection reset"
        cause = cause.__cause__ or cause.__context__
        if cause is not None and cause is exc:
            break
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "host name does not resolve"
    if "Connection refused" in text:
        return "connection refused"
    return text.splitlines()[0][:200] if text else exc.__class__.__name__


def request(name: str, base_url: str, path: str, timeout: float, method: str = "GET",
            payload: dict[str, Any] | None = None, token: str | None = None) -> Reply:
    """Call ``method base_url+path`` on master ``name``; any HTTP status is returned.

    Raises :class:`MasterUnreachable` ("master-2 API at http://127.0.0.1:9432 unreachable:
    connection refused") when no HTTP answer arrives, and ``ActivityFailed`` when the body
    is not JSON although the status says success.
    """
    url = base_url.rstrip("/") + path
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        response = requests.request(method, url, json=payload, headers=headers,
                                    timeout=timeout)
    except requests.RequestException as exc:
        raise MasterUnreachable(
            f"{name} API at {base_url} unreachable: {_reason(exc, timeout)}"
        ) from None
    body: dict[str, Any] = {}
    if response.content and method != "HEAD":
        try:
            decoded = response.json()
        except (ValueError, json.JSONDecodeError):
            if response.status_code < 300:
                raise ActivityFailed(
                    f"{name} API at {base_url} answered {path} with HTTP "
                    f"{response.status_code} but the body is not JSON: "
                    f"{response.text[:80]!r}"
                ) from None
            decoded = {"error": response.text[:200]}
        body = decoded if isinstance(decoded, dict) else {"value": decoded}
    return Reply(name, base_url, response.status_code, body)


def get_all(masters: dict[str, str], path: str, timeout: float) -> dict[str, Reply | Exception]:
    """GET ``path`` on every master concurrently; unreachable ones map to their exception."""

    def one(item: tuple[str, str]) -> Reply | Exception:
        name, url = item
        try:
            return request(name, url, path, timeout)
        except ActivityFailed as exc:
            return exc

    with ThreadPoolExecutor(max_workers=max(1, len(masters))) as pool:
        results = list(pool.map(one, masters.items()))
    return dict(zip(masters, results))
