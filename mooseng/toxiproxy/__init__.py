"""A Toxiproxy-2.x-compatible TCP fault proxy on asyncio, for images without the Go binary.

``python3 -m mooseng.toxiproxy -host 0.0.0.0 -port 8474 -config /etc/toxiproxy/proxies.json``
serves Toxiproxy's HTTP API (``api.py``) over a registry of proxies (``proxy.py``); each
accepted connection runs one task owning a pump per direction (``link.py``) that applies
the proxy's toxics (``toxics/``) to the bytes on their way through.

Logs are one line per event, ``key=value`` pairs after ``event=``; a line about a
connection starts with ``peer=<client address>``.
"""

from __future__ import annotations

import json
import logging

# The Toxiproxy release whose HTTP API this server speaks (GET /version answers it).
TOXIPROXY_VERSION = "2.12.0"
SERVER_NAME = "mooseng-toxiproxy"


def _quote(value: object) -> str:
    """``value`` as one log token: bare when it has no space, quote or ``=``, else JSON."""
    text = value if isinstance(value, str) else str(value)
    if text == "" or any(ch.isspace() or ch in '"=' for ch in text):
        return json.dumps(text)
    return text


def format_event(event: str, **fields: object) -> str:
    """``[peer=... ]event=<event> key=value ...``; the peer leads a connection's line."""
    parts = []
    if "peer" in fields:
        parts.append(f"peer={_quote(fields.pop('peer'))}")
    parts.append(f"event={_quote(event)}")
    parts += [f"{key}={_quote(value)}" for key, value in fields.items() if value is not None]
    return " ".join(parts)


def log_event(logger: logging.Logger, level: int, event: str, **fields: object) -> None:
    """Log one event line at ``level`` (formatted only when the level is enabled)."""
    if logger.isEnabledFor(level):
        logger.log(level, "%s", format_event(event, **fields))
