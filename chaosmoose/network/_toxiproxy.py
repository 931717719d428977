"""A small client of the Toxiproxy 2.x HTTP API: proxies and toxics, with timeouts.

Only the documented API is used (``GET /version``, ``GET /proxies``, ``POST
/proxies/{proxy}/toxics``, ``DELETE /proxies/{proxy}/toxics/{toxic}``), so the server may be
the official one or a compatible one. Every failure raises :class:`ToxiproxyError` (an
``ActivityFailed``) saying what was attempted, on which proxy and toxic, what the server
answered (its ``error`` field) and what was expected.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests
from chaoslib.exceptions import ActivityFailed

from chaosmoose import _settings
from chaosmoose._http import _reason
from chaosmoose._settings import Configuration, Secrets

__all__: list[str] = []  # not an activity module

CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 3.0


class ToxiproxyError(ActivityFailed):
    """Toxiproxy did not answer, or refused a request (with its reason)."""


@dataclass(frozen=True)
class Toxic:
    """One toxic on one proxy, as Toxiproxy reports it."""

    proxy: str
    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, proxy: str, body: dict[str, Any]) -> Toxic:
        """A toxic from its JSON (missing fields take Toxiproxy's defaults)."""
        return cls(proxy, str(body.get("name", "")), str(body.get("type", "")),
                   str(body.get("stream", "downstream")), float(body.get("toxicity", 1.0)),
                   dict(body.get("attributes") or {}))

    def as_dict(self) -> dict[str, Any]:
        """``{proxy, name, type, stream, toxicity, attributes}``."""
        return {"proxy": self.proxy, "name": self.name, "type": self.type,
                "stream": self.stream, "toxicity": self.toxicity,
                "attributes": dict(self.attributes)}


@dataclass(frozen=True)
class Proxy:
    """One proxy: name, listen and upstream addresses, whether enabled, its toxics."""

    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[Toxic, ...] = ()

    @classmethod
    def from_json(cls, name: str, body: dict[str, Any]) -> Proxy:
        """A proxy from its JSON (as ``GET /proxies`` lists it)."""
        name = str(body.get("name") or name)
        toxics = tuple(Toxic.from_json(name, t) for t in body.get("toxics") or []
                       if isinstance(t, dict))
        return cls(name, str(body.get("listen", "")), str(body.get("upstream", "")),
                   bool(body.get("enabled", True)), toxics)


class Toxiproxy:
    """The Toxiproxy API at ``url``; every request is bounded by connect and read timeouts."""

    def __init__(self, url: str, timeout: tuple[float, float] = (CONNECT_TIMEOUT, READ_TIMEOUT),
                 session: requests.Session | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()

    def _call(self, method: str, path: str, what: str, expected: tuple[int, ...],
              payload: dict[str, Any] | None = None) -> requests.Response:
        """One request; a connection failure or an unexpected status raises ToxiproxyError."""
        try:
            response = self.session.request(method, self.url + path, json=payload,
                                            timeout=self.timeout)
        except requests.RequestException as exc:
            reason = _reason(exc, sum(self.timeout))
            raise ToxiproxyError(f"Toxiproxy at {self.url} unreachable while {what}: "
                                 f"{reason}") from None
        if response.status_code not in expected:
            raise ToxiproxyError(
                f"Toxiproxy at {self.url} refused {what} with HTTP {response.status_code}: "
                f"{_error_of(response)}; expected HTTP {' or '.join(map(str, expected))}")
        return response

    def _json(self, response: requests.Response, what: str) -> Any:
        try:
            return response.json()
        except (ValueError, json.JSONDecodeError):
            raise ToxiproxyError(f"Toxiproxy at {self.url} answered {what} with HTTP "
                                 f"{response.status_code} but no JSON: "
                                 f"{response.text[:80]!r}") from None

    def version(self) -> str:
        """The server's version string (``GET /version``)."""
        response = self._call("GET", "/version", "reading its version", (200,))
        text = response.text.strip()
        try:
            body = response.json()
        except ValueError:
            return text
        return str(body.get("version", text)) if isinstance(body, dict) else str(body)

    def proxies(self) -> dict[str, Proxy]:
        """Every proxy by name, with its toxics (``GET /proxies``)."""
        what = "listing proxies"
        body = self._json(self._call("GET", "/proxies", what, (200,)), what)
        if isinstance(body, dict):
            items = [(str(k), v) for k, v in body.items() if isinstance(v, dict)]
        elif isinstance(body, list):
            items = [(str(v.get("name", "")), v) for v in body if isinstance(v, dict)]
        else:
            raise ToxiproxyError(f"Toxiproxy at {self.url} answered {what} with "
                                 f"{type(body).__name__}; expected a JSON object of proxies")
        proxies = [Proxy.from_json(name, value) for name, value in items]
        return {p.name: p for p in proxies if p.name}

    def add_toxic(self, proxy: str, name: str, type: str, stream: str, toxicity: float,
                  attributes: dict[str, Any]) -> Toxic:
        """Create toxic ``name`` on ``proxy`` (``POST /proxies/{proxy}/toxics``)."""
        what = f"adding toxic {name!r} ({type}, {stream}) to proxy {proxy!r}"
        payload = {"name": name, "type": type, "stream": stream, "toxicity": toxicity,
                   "attributes": attributes}
        response = self._call("POST", f"/proxies/{quote(proxy, safe='')}/toxics", what,
                              (200, 201), payload)
        body = self._json(response, what)
        return Toxic.from_json(proxy, body if isinstance(body, dict) else payload)

    def remove_toxic(self, proxy: str, name: str) -> bool:
        """Delete toxic ``name`` of ``proxy``; False when it (or the proxy) was already gone."""
        what = f"removing toxic {name!r} from proxy {proxy!r}"
        response = self._call("DELETE",
                              f"/proxies/{quote(proxy, safe='')}/toxics/{quote(name, safe='')}",
                              what, (200, 204, 404))
        return response.status_code != 404


def _error_of(response: requests.Response) -> str:
    """The server's ``error`` field, else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return repr(response.text[:120]) if response.text else "(empty body)"
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])
    return repr(response.text[:120])


def client(configuration: Configuration = None, secrets: Secrets = None) -> Toxiproxy:
    """The Toxiproxy of the settings (``toxiproxy_url``)."""
    return Toxiproxy(_settings.toxiproxy_url(configuration, secrets))
