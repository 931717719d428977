"""``noop``: passes everything (Toxiproxy registers it as a type too)."""

from __future__ import annotations

from mooseng.toxiproxy.toxics.base import Stage


class NoopStage(Stage):
    """Passes data and the end of the stream unchanged."""

    KIND = "noop"
