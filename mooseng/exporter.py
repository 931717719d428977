"""Prometheus exporter of chunkserver and client containers (``GET /metrics``).

It runs as a thread of ``mooseng run chunkserver|client`` on ``MOOSENG_EXPORTER_PORT``
(masters export through their agent's API instead). Every figure is read when Prometheus
scrapes, from the real system: ``statvfs`` and chunk files of each storage tier, the
mount's own ``.stats`` file, a ``stat`` of the mount point, the supervised daemons.

Each figure source is a prometheus_client custom collector (:class:`mooseng.promtext.Collector`:
``collect()`` yields metric families, built with :func:`~mooseng.promtext.family`); the server
renders them through its own registry (:class:`~mooseng.promtext.Exposition`).

A hung FUSE mount blocks every system call on it, so mount reads run in a worker thread
with a deadline; while one read is still stuck no second one starts (the mount is then
reported down rather than piling up threads).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client.core import Metric

from mooseng.httpserver import BoundedHTTPServer, JsonHandler
from mooseng.promtext import CONTENT_TYPE, Collector, Exposition, family, gauge, render
from mooseng.supervisor import Daemon

__all__ = ["Collector", "DaemonCollector", "ExporterServer", "MountCollector", "SingleFlight",
           "TierCollector", "count_chunk_files", "daemon_collector", "parse_mount_stats", "render"]

log = logging.getLogger("mooseng.exporter")


# --- supervised daemons ----------------------------------------------------------
class DaemonCollector:
    """``mooseng_daemon_up`` and ``mooseng_daemon_restarts_total`` of every daemon."""

    def __init__(self, daemons: Iterable[Daemon]) -> None:
        self.daemons = list(daemons)

    def collect(self) -> Iterator[Metric]:
        yield family("mooseng_daemon_up", "gauge", "1 when the supervised daemon runs.",
                     [({"daemon": d.name}, 1 if d.running() else 0) for d in self.daemons])
        yield family("mooseng_daemon_restarts_total", "counter",
                     "Restarts of the supervised daemon by the container's supervisor.",
                     [({"daemon": d.name}, d.restarts) for d in self.daemons])


def daemon_collector(daemons: Iterable[Daemon]) -> Collector:
    """The collector of the supervised ``daemons`` (:class:`DaemonCollector`)."""
    return DaemonCollector(daemons)


# --- chunkserver storage tiers ---------------------------------------------------
def count_chunk_files(folder: Path) -> int:
    """Chunk files (``chunk_*.mfs``) under a chunkserver folder's 256 subfolders."""
    total = 0
    try:
        subfolders = [entry.path for entry in os.scandir(folder) if entry.is_dir()]
    except OSError:
        return 0
    for sub in subfolders:
        try:
            total += sum(1 for entry in os.scandir(sub)
                         if entry.name.startswith("chunk_") and entry.name.endswith(".mfs"))
        except OSError:
            continue
    return total


class TierCollector:
    """Size, free and used bytes and chunk files of each storage tier folder.

    Counting chunk files walks the folder, so counts are cached for ``count_every`` s.
    """

    def __init__(self, tiers: dict[str, Path], count_every: float = 15.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.tiers = tiers
        self.count_every = count_every
        self.clock = clock
        self._counts: dict[str, int] = {}
        self._counted_at: float | None = None

    def _chunk_counts(self) -> dict[str, int]:
        now = self.clock()
        if self._counted_at is None or now - self._counted_at >= self.count_every:
            self._counts = {tier: count_chunk_files(path) for tier, path in self.tiers.items()}
            self._counted_at = now
        return self._counts

    def collect(self) -> Iterator[Metric]:
        size, free, used = [], [], []
        for tier, path in self.tiers.items():
            try:
                st = os.statvfs(path)
            except OSError as exc:
                log.warning("event=statvfs_failed tier=%s path=%s error=%r", tier, path, str(exc))
                continue
            labels = {"tier": tier}
            size.append((labels, st.f_blocks * st.f_frsize))
            free.append((labels, st.f_bavail * st.f_frsize))
            used.append((labels, (st.f_blocks - st.f_bfree) * st.f_frsize))
        yield family("mooseng_chunkserver_folder_size_bytes", "gauge",
                     "Size of the file system holding the tier folder.", size)
        yield family("mooseng_chunkserver_folder_free_bytes", "gauge",
                     "Bytes available to the chunkserver in the tier folder's file system.", free)
        yield family("mooseng_chunkserver_folder_used_bytes", "gauge",
                     "Bytes used in the tier folder's file system.", used)
        yield family("mooseng_chunkserver_chunk_files", "gauge", "Chunk files in the tier folder.",
                     [({"tier": tier}, n) for tier, n in self._chunk_counts().items()])


# --- client mount ---------------------------------------------------------------
class SingleFlight:
    """Run a blocking read in a worker thread with a deadline, one read at a time."""

    def __init__(self) -> None:
        self._busy = threading.Lock()

    def run(self, func: Callable[[], Any], timeout: float) -> tuple[bool, Any]:
        """(True, result) if ``func`` returned in time; (False, reason) otherwise."""
        if not self._busy.acquire(blocking=False):
            return False, "an earlier read is still stuck"
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                result["value"] = func()
            except Exception as exc:  # noqa: BLE001 - reported as a failed read
                result["error"] = f"{exc.__class__.__name__}: {exc}"
            finally:
                self._busy.release()

        thread = threading.Thread(target=work, name="mount-read", daemon=True)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            return False, f"no answer within {timeout:g} s"
        if "error" in result:
            return False, result["error"]
        return True, result["value"]


def parse_mount_stats(text: str) -> dict[str, float]:
    """``name: value`` lines of mfsmount's ``.stats`` file (``[value]`` is a gauge)."""
    stats: dict[str, float] = {}
    for line in text.splitlines():
        name, sep, raw = line.partition(":")
        raw = raw.strip().strip("[]")
        if not sep or not name.strip():
            continue
        try:
            stats[name.strip()] = float(raw)
        except ValueError:
            continue
    return stats


class MountCollector:
    """Whether the mount answers, how fast, and mfsmount's own counters."""

    def __init__(self, mount: Path, timeout: float = 2.0) -> None:
        self.mount = mount
        self.timeout = timeout
        self._flight = SingleFlight()

    def _read(self) -> tuple[float, dict[str, float]]:
        began = time.monotonic()
        os.stat(self.mount)
        stat_seconds = time.monotonic() - began
        if not os.path.ismount(self.mount):
            raise OSError(f"{self.mount} is not a mount point")
        return stat_seconds, parse_mount_stats((self.mount / ".stats").read_text())

    def collect(self) -> Iterator[Metric]:
        ok, value = self._flight.run(self._read, self.timeout)
        yield gauge("mooseng_client_mount_up", "1 when a stat of the mount point answered in time.",
                    1 if ok else 0)
        if not ok:
            log.info("event=mount_unreadable mount=%s reason=%r", self.mount, value)
            return
        stat_seconds, stats = value
        yield gauge("mooseng_client_mount_stat_seconds", "Duration of the last stat of the mount.",
                    round(stat_seconds, 6))
        ops = [({"op": name.split(".", 1)[1]}, v) for name, v in stats.items()
               if name.startswith("fuse_ops.") and name.count(".") == 1]
        yield family("mooseng_client_fuse_operations_total", "counter",
                     "FUSE operations handled by mfsmount, by kind.", ops)
        counters = {"master.reconnects": ("mooseng_client_master_reconnects_total",
                                          "Reconnections of mfsmount to the master."),
                    "master.bytes_sent": ("mooseng_client_master_sent_bytes_total",
                                          "Bytes mfsmount sent to the master."),
                    "master.bytes_received": ("mooseng_client_master_received_bytes_total",
                                              "Bytes mfsmount received from the master.")}
        for key, (name, help_text) in counters.items():
            if key in stats:
                yield family(name, "counter", help_text, [({}, stats[key])])
        if "master.usec_ping" in stats:
            yield gauge("mooseng_client_master_ping_seconds",
                        "mfsmount's last ping time to the master.", stats["master.usec_ping"] / 1e6)


# --- HTTP -------------------------------------------------------------------------
class ExporterServer:
    """``GET /metrics`` (and ``/health``) on a background thread, on the bounded server of
    :mod:`mooseng.httpserver` (backlog, request deadline, thread cap, JSON errors).
    ``collectors`` render through the server's own registry; one that raises is logged and
    left out, the others still answer. Errors are JSON in the API's shape,
    ``{"node": node, "error": ...}``."""

    def __init__(self, collectors: list[Collector], host: str = "0.0.0.0", port: int = 9450,
                 node: str = "") -> None:
        exposition = Exposition(collectors)
        node_name = node  # the class body below cannot read a parameter it shadows

        class Handler(JsonHandler):
            server_version = "mooseng-exporter"
            node = node_name

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("event=http_request peer=%s line=%r", self.client_address[0], format % args)

            def _answer(self) -> None:
                self.request_arrived()
                path = self.path.split("?", 1)[0].rstrip("/")
                extra = {}
                if self.headers.get("Content-Length", "0").strip() not in ("", "0") or \
                        self.headers.get("Transfer-Encoding"):
                    self.close_connection = True  # a body we do not read: no keep-alive
                if path not in ("/metrics", "/health"):
                    body = self.error_body(f"no such endpoint {path}")
                    status, kind = 404, "application/json"
                elif self.command not in ("GET", "HEAD"):
                    body = self.error_body(f"{self.command} is not allowed on {path}; use GET or HEAD")
                    status, kind, extra = 405, "application/json", {"Allow": "GET, HEAD"}
                    self.close_connection = True
                elif path == "/metrics":
                    body, status, kind = exposition.text().encode(), 200, CONTENT_TYPE
                else:
                    body, status, kind = b'{"ok": true}\n', 200, "application/json"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for name, value in extra.items():
                    self.send_header(name, value)
                if self.close_connection:
                    self.send_header("Connection", "close")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _answer

        self.httpd = BoundedHTTPServer((host, port), Handler)

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return self.httpd.server_address[1]

    def start(self) -> None:
        """Serve in a daemon thread."""
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.5},
                         name="exporter", daemon=True).start()
        log.info("event=exporter_started port=%s", self.port)

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.httpd.shutdown()
        self.httpd.server_close()
