"""Helpers shared by the cluster benchmarks (``failover_benchmark.py``, ``leader_isolation.py``).

They run on the host against the running cluster: masters through their agents' published
APIs, clients through chaosmoose's workload runner. Import them from a script in this
folder (``python scripts/<name>.py`` puts the folder on ``sys.path``).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import requests

from chaosmoose import _settings
from chaosmoose.workload import _clients

T = TypeVar("T")


def log(message: str) -> None:
    """Progress on stderr, one line per event."""
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def get(url: str, timeout: float = 1.0) -> int:
    """HTTP status of GET url, 0 when unreachable."""
    try:
        return requests.get(url, timeout=timeout).status_code
    except requests.RequestException:
        return 0


def leaders(masters: Mapping[str, str]) -> list[str]:
    """Masters whose /leader answers 200."""
    return [name for name, url in masters.items() if get(f"{url}/leader") == 200]


def steady(masters: Mapping[str, str]) -> str | None:
    """The leader when the cluster is steady (one leader, all healthy, followers current)."""
    found = leaders(masters)
    if len(found) != 1:
        return None
    for name, url in masters.items():
        if get(f"{url}/health") != 200:
            return None
        if name != found[0] and get(f"{url}/replica") != 200:
            return None
    return found[0]


class Timeout(Exception):
    """A wait ran out."""


def wait(what: str, check: Callable[[], T | None], timeout: float, step: float = 0.05) -> T:
    """Poll until ``check`` gives a truthy value and return it; raise Timeout naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    raise Timeout(f"timed out after {timeout:.0f}s waiting for {what}")


def first_writes(histories: Mapping[str, Sequence[Mapping[str, Any]]], since: float,
                 acked_after: float | None = None) -> dict[str, float]:
    """Per client: when its first ``ok`` file creation invoked at or after ``since`` (and,
    with ``acked_after``, acknowledged at or after it) completed.

    File creations only: creating a file needs the master, while an append to an open
    chunk may complete on the chunkservers alone.
    """
    firsts = {}
    for client, records in histories.items():
        invoked = {r["seq"]: r["t"] for r in records
                   if r.get("type") == "invoke" and r.get("f") == "write-file"}
        oks = [r["t"] for r in records if r.get("type") == "ok" and r.get("f") == "write-file"
               and invoked.get(r["seq"], float("-inf")) >= since
               and (acked_after is None or r["t"] >= acked_after)]
        if oks:
            firsts[client] = min(oks)
    return firsts


def histories_now(config: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The runners' histories so far (read from the client containers while running)."""
    state = _clients.load_state(config, None)
    if state is None:
        return {}
    return _clients.histories(state, config, None)


def writes_everywhere(config: Mapping[str, Any], since: float) -> dict[str, float] | None:
    """First writes after ``since`` once every client has one, else None."""
    firsts = first_writes(histories_now(config), since)
    return firsts if len(firsts) == len(_settings.clients(config, None)) else None


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def figures(values: Sequence[float]) -> dict[str, float] | None:
    """p50, p95 and max of ``values`` (rounded to 10 ms), None when there are none."""
    if not values:
        return None
    return {"p50": round(statistics.median(values), 2),
            "p95": round(percentile(values, 0.95), 2), "max": round(max(values), 2)}
