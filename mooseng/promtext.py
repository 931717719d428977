"""Prometheus text exposition format 0.0.4: one small writer shared by every /metrics."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    """A label value with backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def labels_text(labels: Mapping[str, str]) -> str:
    """``{a="x",b="y"}``, or an empty string for no labels."""
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{_escape(str(value))}"' for key, value in labels.items()) + "}"


def _number(value: float) -> str:
    """A sample value at full precision (``%g`` would round byte counts to 6 digits)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class MetricsText:
    """Collects metric families and renders them; a family with no samples is left out."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def add(self, name: str, kind: str, help_text: str,
            samples: Iterable[tuple[Mapping[str, str], float]]) -> None:
        """Add one family: ``kind`` is gauge or counter; samples are (labels, value)."""
        rows = [f"{name}{labels_text(labels)} {_number(value)}" for labels, value in samples
                if isinstance(value, (int, float))]
        if not rows:
            return
        self._lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *rows]

    def gauge(self, name: str, help_text: str, value: float, **labels: str) -> None:
        """Add a family with a single sample."""
        self.add(name, "gauge", help_text, [(labels, value)])

    def text(self) -> str:
        """The whole exposition, newline-terminated."""
        return "\n".join(self._lines) + "\n"
