"""Prometheus exposition of every /metrics (agents and exporters), on prometheus_client.

The library is Debian's python3-prometheus-client in the image (0.16 in bookworm); the host
venv gets it from PyPI (setup.cfg). What a server exports is a list of collectors in
prometheus_client's own custom-collector contract (:class:`Collector`): an object whose
``collect()`` returns or yields metric families. :func:`family` and :func:`gauge` build
those families from ``(labels, value)`` samples; :class:`Exposition` is one server's own
``CollectorRegistry`` (never the library's global one, so no process or platform figures
creep in) rendered by ``generate_latest``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

log = logging.getLogger("mooseng.metrics")

# What generate_latest writes: text format 0.0.4. (prometheus_client's CONTENT_TYPE_LATEST
# names format 1.0.0 from release 0.2x on, while bookworm's 0.16 names 0.0.4.)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Sample = tuple[Mapping[str, str], float]


class Collector(Protocol):
    """prometheus_client's custom collector: ``collect()`` gives the metric families
    (``GaugeMetricFamily``, ``CounterMetricFamily``, ...) of one scrape."""

    def collect(self) -> Iterable[Metric]: ...


def family(name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> Metric:
    """A ``gauge`` or ``counter`` family of ``(labels, value)`` samples; a sample whose value
    is not a number (None: not known) is left out. A counter's name must end in ``_total``,
    as exposed (prometheus_client keeps it without the suffix and writes it back)."""
    if kind == "counter" and not name.endswith("_total"):
        raise ValueError(f"counter {name} must end in _total")
    rows = [(labels, value) for labels, value in samples if isinstance(value, (int, float))]
    label_names = list(dict.fromkeys(key for labels, _ in rows for key in labels))
    if kind == "counter":
        metric: Metric = CounterMetricFamily(name, help_text, labels=label_names)
    elif kind == "gauge":
        metric = GaugeMetricFamily(name, help_text, labels=label_names)
    else:
        raise ValueError(f"metric kind {kind!r} of {name}: expected gauge or counter")
    for labels, value in rows:
        metric.add_metric([str(labels.get(key, "")) for key in label_names], float(value))
    return metric


def gauge(name: str, help_text: str, value: float | None, **labels: str) -> Metric:
    """A gauge family with a single sample (none if ``value`` is None)."""
    return family(name, "gauge", help_text, [(labels, value)])  # type: ignore[list-item]


class _Combined:
    """A server's collectors as one: a collector that raises is logged and left out (one
    broken figure must not hide the others), a family without samples is left out, and
    families of one name and type from several collectors become one family."""

    def __init__(self, collectors: Iterable[Collector]) -> None:
        self.collectors = list(collectors)

    def collect(self) -> Iterator[Metric]:
        merged: dict[str, Metric] = {}
        for collector in self.collectors:
            try:
                families = list(collector.collect())
            except Exception:  # one broken figure must not hide the others
                log.exception("event=collector_failed collector=%r", collector)
                continue
            for metric in families:
                if not metric.samples:
                    continue
                seen = merged.get(metric.name)
                if seen is None:
                    merged[metric.name] = metric
                elif seen.type != metric.type:
                    log.error("event=metric_type_conflict metric=%s types=%s,%s collector=%r",
                              metric.name, seen.type, metric.type, collector)
                else:
                    both = Metric(seen.name, seen.documentation, seen.type, seen.unit)
                    both.samples = [*seen.samples, *metric.samples]
                    merged[metric.name] = both
        return iter(merged.values())


class Exposition:
    """One server's /metrics: its own ``CollectorRegistry`` over its collectors."""

    def __init__(self, collectors: Iterable[Collector]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)  # collect only when scraped
        self.registry.register(_Combined(collectors))  # type: ignore[arg-type]

    def text(self) -> str:
        """The exposition in text format 0.0.4 (:data:`CONTENT_TYPE`)."""
        return generate_latest(self.registry).decode()


def render(collectors: Iterable[Collector]) -> str:
    """The exposition of ``collectors`` once (tests, one-off dumps)."""
    return Exposition(collectors).text()
