"""Container healthchecks that test real function, not only that a process exists.

- master: the agent's ``/health`` answers 200 (its loop is alive and its daemon runs).
- chunkserver: the current leader lists this chunkserver as connected (``mfscli -SCS``).
- client: the mount answers ``stat`` and a probe file can be written, read and removed.

Each check prints one line saying what it saw and returns 0 (healthy) or 1.
"""

from __future__ import annotations

import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from mooseng import mfscli_rows, roles, settings

TIMEOUT = 8.0


def with_timeout(check: Callable[[], str], timeout: float = TIMEOUT) -> tuple[bool, str]:
    """Run ``check`` in a thread; a hung FUSE call becomes a failure after ``timeout``."""
    outcome: list[tuple[bool, str]] = []

    def target() -> None:
        try:
            outcome.append((True, check()))
        except Exception as exc:  # noqa: BLE001 - every failure is a health verdict
            outcome.append((False, f"{type(exc).__name__}: {exc}"))

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        return False, f"no answer within {timeout:.0f}s"
    return outcome[0]


def check_master() -> str:
    """The local agent's /health must answer 200."""
    url = f"http://127.0.0.1:{settings.read('MOOSENG_API_PORT')}/health"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - fixed local URL
            return f"{url} -> {response.status}"
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{url} -> {exc.code} {exc.read()[:200]!r}") from None


def check_chunkserver() -> str:
    """The leader (through the local router) must list this chunkserver."""
    node = roles.node_name()
    address = roles.own_address(node)
    port = settings.read("MOOSENG_CS_PORT")
    rows = mfscli_rows.query(address, int(settings.read("MOOSENG_ROUTER_CL_PORT")), "CS")
    for row in rows:
        if address in row and str(port) in row:
            return f"registered with the leader as {address}:{port}"
    raise RuntimeError(f"{address}:{port} not among the leader's chunkservers ({len(rows)} rows)")


def check_client() -> str:
    """stat the mount, then write, read back and remove a probe file."""
    node = roles.node_name()
    where = roles.mount_point(node)
    if not os.path.ismount(where):
        raise RuntimeError(f"{where} is not mounted")
    os.stat(where)
    probe = Path(where) / f".health-{node}"
    payload = f"{node} {time.time()}\n".encode()
    with open(probe, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    if probe.read_bytes() != payload:
        raise RuntimeError(f"{probe} read back different bytes")
    probe.unlink()
    return f"{where} mounted, probe file written, read and removed"


CHECKS = {"master": check_master, "chunkserver": check_chunkserver, "client": check_client}


def main(role: str) -> int:
    """Run the healthcheck for ``role``; print one line; 0 when healthy."""
    if role not in CHECKS:
        print(f"unknown role {role!r}; expected one of {', '.join(CHECKS)}")
        return 2
    ok, detail = with_timeout(CHECKS[role])
    print(f"{'healthy' if ok else 'unhealthy'}: {role}: {detail}")
    return 0 if ok else 1
