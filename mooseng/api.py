"""The agent's HTTP API (docs/http-api.md, mooseng/openapi.yaml), on the stdlib server.

The API never starts or stops a daemon: it reads the HA state and the store,
writes a switchover intent and wakes the loop. Every error is JSON
``{"node": ..., "error": "<reason>"}``; a bad request never crashes the server.
"""

from __future__ import annotations

import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mooseng.dcs import Store
from mooseng.mfs import cli
from mooseng.promtext import CONTENT_TYPE, MetricsText

log = logging.getLogger("mooseng.api")

MAX_BODY = 64 * 1024


class ClusterProbe:
    """Chunkservers and the chunk matrix from ``mfscli`` against the leader, cached briefly."""

    def __init__(self, port: int = 9421, max_age: float = 5.0,
                 resolve: Callable[[str], str] = socket.gethostbyname,
                 run: Callable[[str, int, str], str] = cli.run) -> None:
        self.port = port
        self.max_age = max_age
        self._resolve = resolve
        self._run = run
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def read(self, leader: str | None) -> dict[str, Any]:
        """{"chunkservers": [...], "chunks": {...}} or both None and "chunks_error"."""
        if leader is None:
            return {"chunkservers": None, "chunks": None, "chunks_error": "no leader holds the lease"}
        with self._lock:
            cached = self._cache.get(leader)
            if cached and time.monotonic() - cached[0] < self.max_age:
                return cached[1]
            try:
                host = self._resolve(leader)
                servers = cli.chunkservers(self._run(host, self.port, "CS"))
                chunks = cli.chunk_matrix(self._run(host, self.port, "IC"))
                result: dict[str, Any] = {"chunkservers": servers, "chunks": chunks}
            except (OSError, cli.MfscliError, ValueError) as exc:
                result = {"chunkservers": None, "chunks": None, "chunks_error": str(exc)}
            self._cache = {leader: (time.monotonic(), result)}
            return result


@dataclass
class ApiContext:
    """What the handlers read: the HA loop (``snapshot``, ``is_leader``, ``loop_alive``,
    ``request_switchover``), the store, the token and the cluster probe."""

    node: str
    ha: Any
    store: Store
    token: str = ""
    replica_max_lag: int = 200
    probe: ClusterProbe = field(default_factory=ClusterProbe)
    clock: Callable[[], float] = time.time


def iso(ts: float) -> str:
    """A UTC ISO-8601 timestamp with Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class Views:
    """The bodies of every endpoint, as (status, body) pairs."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def _leader_version(self) -> int | None:
        lease = self.ctx.store.get_lease()
        member = self.ctx.store.members().get(lease.holder or "")
        return int(member.data.get("metadata_version", 0)) if member else None

    def _lag(self, snap: dict[str, Any]) -> int | None:
        leader = self._leader_version()
        if snap["epoch"] is not None:
            return 0
        return None if leader is None else max(0, leader - int(snap["metadata_version"]))

    def probe(self, kind: str) -> tuple[int, dict[str, Any]]:
        """/health, /leader, /replica."""
        snap = self.ctx.ha.snapshot()
        daemon = snap["daemon"]
        lag = self._lag(snap)
        if kind == "health":
            ok = self.ctx.ha.loop_alive() and daemon["state"] == "running"
            reason = (f"loop alive and {daemon['name']} running" if ok else
                      "agent loop stalled" if not self.ctx.ha.loop_alive() else
                      f"{daemon['name']} is {daemon['state']}")
        elif kind == "leader":
            ok = self.ctx.ha.is_leader()
            reason = (f"holds lease epoch {snap['epoch']} and mfsmaster accepts clients" if ok else
                      f"not the leader (role {snap['role']})")
        else:
            ok = (snap["role"] == "follower" and daemon["name"] == "mfsmetalogger"
                  and daemon["state"] == "running" and lag is not None
                  and lag <= self.ctx.replica_max_lag)
            reason = (f"metalogger running, {lag} changes behind the leader" if ok else
                      f"not a current replica (role {snap['role']}, {daemon['name']} "
                      f"{daemon['state']}, lag {lag})")
        return (200 if ok else 503), {"role": snap["role"], "ok": ok, "reason": reason,
                                      "epoch": self.ctx.store.get_lease().epoch, "lag": lag}

    def status(self) -> tuple[int, dict[str, Any]]:
        """/status."""
        snap = self.ctx.ha.snapshot()
        now = self.ctx.clock()
        lease = self.ctx.store.get_lease()
        raft = self.ctx.store.raft_status()
        return 200, {
            "role": snap["role"],
            "lease": {"holder": lease.holder, "epoch": lease.epoch,
                      "expires_in": round(lease.expires_in(now), 3) if lease.holder else None},
            "raft": {"term": raft.term, "commit_index": raft.commit_index,
                     "has_quorum": raft.has_quorum, "leader": raft.leader, "ready": raft.ready},
            "peers": {name: {"link": link} for name, link in raft.peers.items()},
            "daemon": snap["daemon"], "metadata_version": snap["metadata_version"],
            "leader_changes": snap["leader_changes"], "since": iso(snap["since"]),
            "last_decision": snap["last_decision"], "action": snap["action"],
            "promotion_duration": snap["promotion_duration"],
            "timing": self._timing(),
        }

    def _timing(self) -> dict[str, float]:
        """The HA timing this agent runs with (what a benchmark must report with its figures)."""
        cfg = self.ctx.ha.config
        return {"ttl": cfg.ttl, "loop_wait": cfg.loop_wait, "retry_timeout": cfg.retry_timeout,
                "safety_margin": cfg.safety_margin}

    def cluster(self) -> tuple[int, dict[str, Any]]:
        """/cluster."""
        now = self.ctx.clock()
        lease = self.ctx.store.get_lease()
        holder = lease.holder if lease.valid(now) else None
        members = {
            name: {"role": m.data.get("role"), "state": (m.data.get("daemon") or {}).get("state"),
                   "metadata_version": m.data.get("metadata_version"), "api_url": m.data.get("api_url"),
                   "lineage": m.data.get("lineage"), "candidate": m.data.get("candidate"),
                   "heartbeat_age": round(now - m.updated_at, 3), "fresh": m.fresh(now)}
            for name, m in sorted(self.ctx.store.members().items())
        }
        body = {"leader": holder, "epoch": lease.epoch, "served_epoch": self.ctx.store.served_epoch(),
                "members": members}
        body.update(self.ctx.probe.read(holder))
        return 200, body

    def metrics(self) -> str:
        """/metrics in Prometheus text format 0.0.4."""
        snap = self.ctx.ha.snapshot()
        now = self.ctx.clock()
        lease = self.ctx.store.get_lease()
        raft = self.ctx.store.raft_status()
        out = MetricsText()
        out.gauge("mooseng_master_is_leader", "1 when this node holds the lease and serves.",
                  1 if self.ctx.ha.is_leader() else 0)
        out.gauge("mooseng_raft_term", "Current Raft term.", raft.term)
        out.gauge("mooseng_raft_commit_index", "Raft commit index.", raft.commit_index)
        out.gauge("mooseng_raft_has_quorum", "1 when a Raft majority is connected.",
                  1 if raft.has_quorum else 0)
        out.add("mooseng_leader_changes_total", "counter", "Leader changes seen by this agent.",
                [({}, snap["leader_changes"])])
        out.gauge("mooseng_metadata_version", "This node's metadata change number.",
                  snap["metadata_version"])
        out.gauge("mooseng_lease_epoch", "Epoch of the leader lease.", lease.epoch)
        out.gauge("mooseng_lease_expires_in_seconds", "Seconds until the lease expires.",
                  round(lease.expires_in(now), 3) if lease.holder else 0)
        daemon = snap["daemon"]
        out.add("mooseng_daemon_up", "gauge", "1 when the MooseFS daemon runs here.",
                [({"daemon": name}, 1 if daemon["name"] == name and daemon["state"] == "running"
                  else 0) for name in ("mfsmaster", "mfsmetalogger")])
        if snap["promotion_duration"] is not None:
            out.gauge("mooseng_promotion_duration_seconds", "Duration of the last promotion.",
                      round(snap["promotion_duration"], 3))
        if self.ctx.ha.is_leader():
            cluster = self.ctx.probe.read(lease.holder)
            out.add("mooseng_chunks", "gauge", "Chunks by state (from the leader).",
                    [({"state": k}, v) for k, v in (cluster.get("chunks") or {}).items()])
            servers = cluster.get("chunkservers")
            if servers is None:  # mfscli failed: no figure rather than a false zero
                return out.text()
            out.gauge("mooseng_chunkservers_connected", "Chunkservers registered with the leader.",
                      len(servers))
            out.add("mooseng_chunkserver_disk_used_bytes", "gauge", "Disk space used.",
                    [({"chunkserver": s["address"]}, s["used_bytes"]) for s in servers])
            out.add("mooseng_chunkserver_disk_total_bytes", "gauge", "Disk space in total.",
                    [({"chunkserver": s["address"]}, s["total_bytes"]) for s in servers])
        return out.text()

    def switchover(self, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        """POST /switchover."""
        if not self.ctx.token:
            return 403, {"error": "no MOOSENG_API_TOKEN configured"}
        auth = headers.get("Authorization", "")
        given = auth[7:].strip() if auth.startswith("Bearer ") else ""
        if not given or not hmac.compare_digest(given.encode(), self.ctx.token.encode()):
            return 401, {"error": "missing or wrong bearer token"}
        try:
            data = json.loads(body or b"{}")
        except (ValueError, UnicodeDecodeError) as exc:
            return 400, {"error": f"malformed JSON: {exc}"}
        if not isinstance(data, dict):
            return 400, {"error": "the body must be a JSON object like {\"to\": \"master-2\"}"}
        target = data.get("to")
        if target is not None and not isinstance(target, str):
            return 400, {"error": "\"to\" must be a node name"}
        status, answer = self.ctx.ha.request_switchover(target)
        return status, answer


def make_handler(ctx: ApiContext) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to ``ctx``."""
    views = Views(ctx)

    class Handler(BaseHTTPRequestHandler):
        server_version = "mooseng-agent"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("event=http_request peer=%s line=%r", self.client_address[0], format % args)

        def _send(self, status: int, body: bytes, content_type: str, head_only: bool = False) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if not head_only:
                self.wfile.write(body)

        def _json(self, status: int, body: dict[str, Any], head_only: bool = False) -> None:
            payload = {"node": ctx.node, **body}
            self._send(status, json.dumps(payload).encode() + b"\n", "application/json", head_only)

        def _route_get(self, head_only: bool) -> None:
            path = self.path.split("?", 1)[0].rstrip("/") or "/"
            try:
                if path in ("/health", "/leader", "/replica"):
                    self._json(*views.probe(path[1:]), head_only=head_only)
                elif path == "/status":
                    self._json(*views.status(), head_only=head_only)
                elif path == "/cluster":
                    self._json(*views.cluster(), head_only=head_only)
                elif path == "/metrics":
                    self._send(200, views.metrics().encode(), CONTENT_TYPE, head_only)
                else:
                    self._json(404, {"error": f"no such endpoint {path}"}, head_only)
            except ConnectionError:
                # Health checkers (HAProxy) hang up once they have read the status line.
                self.close_connection = True
            except Exception as exc:
                log.exception("event=http_error path=%s", path)
                self._json(500, {"error": f"internal error: {exc}"}, head_only)

        def do_GET(self) -> None:
            self._route_get(head_only=False)

        def do_HEAD(self) -> None:
            self._route_get(head_only=True)

        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/")
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                self._json(400, {"error": "bad Content-Length"})
                return
            if length < 0 or length > MAX_BODY:
                self.close_connection = True
                self._json(400, {"error": f"body larger than {MAX_BODY} bytes"})
                return
            body = self.rfile.read(length) if length else b""
            if path != "/switchover":
                self._json(404, {"error": f"no such endpoint {path}"})
                return
            try:
                status, answer = views.switchover(self.headers, body)
            except Exception as exc:
                log.exception("event=http_error path=%s", path)
                status, answer = 500, {"error": f"internal error: {exc}"}
            log.info("event=switchover_request peer=%s status=%s answer=%r", self.client_address[0],
                     status, answer)
            self._json(status, answer)

    return Handler


class ApiServer:
    """The threaded HTTP server in a background thread."""

    def __init__(self, ctx: ApiContext, host: str = "0.0.0.0", port: int = 9430) -> None:
        ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = ThreadingHTTPServer((host, port), make_handler(ctx))
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="api", daemon=True)

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return self.httpd.server_address[1]

    def start(self) -> None:
        self._thread.start()
        log.info("event=api_started port=%s", self.port)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
