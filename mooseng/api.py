"""The agent's HTTP API (docs/http-api.md, mooseng/openapi.yaml), on the stdlib server.

The API never starts or stops a daemon: it reads the HA state and the store,
writes a switchover intent and wakes the loop. Every error is JSON
``{"node": ..., "error": "<reason>"}`` with its proper status (404 unknown path, 405 with
``Allow`` for a known path and another method, 400/413/501 for a body framing the server
cannot trust, then the connection closes); a bad request never crashes the server and no
traceback leaves it (it goes to the log).
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from mooseng.agentmetrics import AgentCollector
from mooseng.dcs import Store
from mooseng.httpserver import MAX_THREADS, REQUEST_TIMEOUT_S, BoundedHTTPServer, JsonHandler
from mooseng.mfs import cli
from mooseng.promtext import CONTENT_TYPE, Exposition

log = logging.getLogger("mooseng.api")

MAX_BODY = 64 * 1024
CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,8}")


class ClusterProbe:
    """Chunkservers and the chunk matrix from ``mfscli`` against the leader, cached briefly;
    storage classes (``-SSC``) and every chunkserver's disks (``-SHD``, which asks each
    chunkserver) as a slower "layout", read in a background thread at most every
    ``layout_max_age`` seconds so that they never hold up /cluster or /metrics (callers with
    2 s timeouts): a stale layout is answered at once while a new one is read; only the first
    read for a leader waits, at most ``layout_wait`` seconds."""

    def __init__(self, port: int = 9421, max_age: float = 5.0,
                 resolve: Callable[[str], str] = socket.gethostbyname,
                 run: Callable[[str, int, str], str] = cli.run,
                 layout_max_age: float = 30.0, layout_wait: float = 1.0) -> None:
        self.port = port
        self.max_age = max_age
        self.layout_max_age = layout_max_age
        self.layout_wait = layout_wait
        self._resolve = resolve
        self._run = run
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._layout_cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._layout_reader: threading.Thread | None = None
        self._lock = threading.Lock()
        self._layout_lock = threading.Lock()

    def read(self, leader: str | None) -> dict[str, Any]:
        """{"chunkservers": [...], "chunks": {...}, "storage_classes": [...], "disks": [...]};
        a part that could not be read is None, with "chunks_error" (chunkservers and chunks),
        "storage_classes_error" or "disks_error" saying why."""
        if leader is None:
            reason = "no leader holds the lease"
            return {"chunkservers": None, "chunks": None, "chunks_error": reason,
                    "storage_classes": None, "storage_classes_error": reason,
                    "disks": None, "disks_error": reason}
        return {**self._health(leader), **self._layout(leader)}

    def _health(self, leader: str) -> dict[str, Any]:
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

    def _layout(self, leader: str) -> dict[str, Any]:
        with self._layout_lock:
            cached = self._layout_cache.get(leader)
            stale = cached is None or time.monotonic() - cached[0] >= self.layout_max_age
            reader = self._layout_reader
            if stale and (reader is None or not reader.is_alive()):
                reader = threading.Thread(target=self._read_layout, args=(leader,),
                                          name="cluster-layout", daemon=True)
                self._layout_reader = reader
                reader.start()
        if cached is not None:
            return cached[1]
        if reader is not None:
            reader.join(self.layout_wait)
        with self._layout_lock:
            cached = self._layout_cache.get(leader)
        if cached is not None:
            return cached[1]
        reason = "being read (mfscli -SSC, -SHD); ask again in a few seconds"
        return {"storage_classes": None, "storage_classes_error": reason,
                "disks": None, "disks_error": reason}

    def _read_layout(self, leader: str) -> None:
        result: dict[str, Any] = {}
        for key, section, parse in (("storage_classes", "SC", cli.storage_classes),
                                    ("disks", "HD", cli.disks)):
            try:
                result[key] = parse(self._run(self._resolve(leader), self.port, section))
            except (OSError, cli.MfscliError, ValueError) as exc:
                result[key] = None
                result[f"{key}_error"] = str(exc)
            except Exception as exc:  # a parser bug must not kill every later read
                log.exception("event=cluster_layout_failed section=%s", section)
                result[key] = None
                result[f"{key}_error"] = f"internal error ({type(exc).__name__})"
        with self._layout_lock:
            self._layout_cache = {leader: (time.monotonic(), result)}


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
        self._metrics = Exposition([AgentCollector(ctx)])

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
        """/health, /leader, /route, /master, /replica."""
        snap = self.ctx.ha.snapshot()
        daemon = snap["daemon"]
        lag = self._lag(snap)
        if kind == "health":
            ok = self.ctx.ha.loop_alive() and daemon["state"] == "running"
            reason = (f"loop alive and {daemon['name']} running" if ok else
                      "agent loop stalled" if not self.ctx.ha.loop_alive() else
                      f"{daemon['name']} is {daemon['state']}")
        elif kind == "master":
            ok = daemon["name"] == "mfsmaster" and daemon["state"] == "running"
            reason = ("mfsmaster runs here" if ok else
                      f"no mfsmaster here ({daemon['name']} {daemon['state']})")
        elif kind == "route":
            ok = self.ctx.ha.is_route_target()
            reason = (f"holds lease epoch {snap['epoch']}; mfsmaster is frozen (no follower "
                      f"contact): sessions wait here" if ok and snap["frozen"] else
                      f"holds lease epoch {snap['epoch']} and mfsmaster accepts clients" if ok
                      else f"not the leader (role {snap['role']})")
        elif kind == "leader":
            ok = self.ctx.ha.is_leader()
            reason = (f"holds lease epoch {snap['epoch']} and mfsmaster accepts clients" if ok else
                      f"holds lease epoch {snap['epoch']} but mfsmaster is frozen (no follower "
                      f"contact)" if snap["frozen"] else
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
            "start_version": snap["start_version"], "diverged_changes": snap["diverged_changes"],
            "leader_changes": snap["leader_changes"], "since": iso(snap["since"]),
            "last_decision": snap["last_decision"], "action": snap["action"],
            "promotion_duration": snap["promotion_duration"],
            "frozen": snap["frozen"], "frozen_since": snap["frozen_since"],
            "freezes": snap["freezes"], "thaws": snap["thaws"],
            "follower_contact_age": (None if snap["contact_age"] is None
                                     else round(snap["contact_age"], 3)),
            "timing": self._timing(),
            "serving_history": self.ctx.ha.serving_history(50),
        }

    def _timing(self) -> dict[str, float]:
        """The HA timing this agent runs with (what a benchmark must report with its figures)."""
        cfg = self.ctx.ha.config
        return {"ttl": cfg.ttl, "loop_wait": cfg.loop_wait, "retry_timeout": cfg.retry_timeout,
                "safety_margin": cfg.safety_margin,
                "freeze_after": cfg.freeze_after if cfg.freeze_on_contact_loss else None,
                "contact_check_interval": cfg.contact_check_interval}

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
        """/metrics: :class:`~mooseng.agentmetrics.AgentCollector` in text format 0.0.4."""
        return self._metrics.text()

    def switchover(self, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        """POST /switchover."""
        if not self.ctx.token:
            return 403, {"error": "no MOOSENG_API_TOKEN configured"}
        given = bearer_token(headers.get("Authorization", ""))
        if not given or not hmac.compare_digest(given.encode(), self.ctx.token.encode()):
            return 401, {"error": "missing or wrong bearer token"}
        try:
            data = json.loads(body or b"{}")
        except (ValueError, UnicodeDecodeError) as exc:
            return 400, {"error": f"malformed JSON: {exc}"}
        except RecursionError:
            return 400, {"error": "malformed JSON: nested too deeply"}
        if not isinstance(data, dict):
            return 400, {"error": "the body must be a JSON object like {\"to\": \"master-2\"}"}
        target = data.get("to")
        if target is not None and not isinstance(target, str):
            return 400, {"error": "\"to\" must be a node name"}
        status, answer = self.ctx.ha.request_switchover(target)
        return status, answer


# Each endpoint and the methods it answers (a known path with another method: 405 + Allow).
ROUTES = {"/health": ("GET", "HEAD"), "/leader": ("GET", "HEAD"), "/route": ("GET", "HEAD"),
          "/master": ("GET", "HEAD"),
          "/replica": ("GET", "HEAD"), "/status": ("GET", "HEAD"), "/cluster": ("GET", "HEAD"),
          "/metrics": ("GET", "HEAD"), "/switchover": ("POST",)}


class BadRequest(Exception):
    """The request's framing or body is unusable: answer ``status`` and close the connection."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


def read_body(headers: Any, rfile: Any, limit: int = MAX_BODY) -> bytes:
    """The request body, framed by Content-Length or ``Transfer-Encoding: chunked`` (at most
    ``limit`` bytes). Raises BadRequest for any framing the server cannot trust, and
    ConnectionError when the client stops sending."""
    lengths = headers.get_all("Content-Length") or []
    encodings = headers.get_all("Transfer-Encoding") or []
    if encodings:
        if lengths:
            raise BadRequest(400, "both Content-Length and Transfer-Encoding given")
        coding = ",".join(encodings).strip().lower()
        if coding != "chunked":
            raise BadRequest(501, f"Transfer-Encoding {coding!r} is not supported; expected chunked")
        return _read_chunked(rfile, limit)
    if not lengths:
        return b""
    if len({v.strip() for v in lengths}) != 1:
        raise BadRequest(400, "conflicting Content-Length headers")
    raw = lengths[0].strip()
    if not raw.isdigit() or not raw.isascii():
        raise BadRequest(400, f"Content-Length {raw[:40]!r} is not a non-negative integer")
    length = int(raw)
    if length > limit:
        raise BadRequest(413, f"body of {length} bytes is larger than {limit} bytes")
    body = rfile.read(length) if length else b""
    if len(body) != length:
        raise ConnectionError("the client closed before sending the whole body")
    return body


def _read_chunked(rfile: Any, limit: int) -> bytes:
    body = bytearray()
    while True:
        line = rfile.readline(1026)
        if not line.endswith(b"\n"):
            if not line:
                raise ConnectionError("the client closed inside a chunked body")
            raise BadRequest(400, "malformed chunk size line")
        size_text = line.split(b";", 1)[0].strip()
        if not CHUNK_SIZE.fullmatch(size_text):
            raise BadRequest(400, f"malformed chunk size {size_text[:20]!r}")
        size = int(size_text, 16)
        if size == 0:
            break
        if len(body) + size > limit:
            raise BadRequest(413, f"chunked body larger than {limit} bytes")
        chunk = rfile.read(size)
        if len(chunk) != size:
            raise ConnectionError("the client closed inside a chunk")
        body += chunk
        if rfile.readline(3) not in (b"\r\n", b"\n"):
            raise BadRequest(400, "chunk not followed by CRLF")
    for _ in range(64):  # trailer fields, ignored, up to the empty line
        line = rfile.readline(8194)
        if line in (b"\r\n", b"\n"):
            return bytes(body)
        if not line:
            raise ConnectionError("the client closed inside a chunked body's trailer")
    raise BadRequest(400, "too many trailer fields")


def bearer_token(authorization: str) -> str:
    """The credentials of an ``Authorization: Bearer <token>`` header (the scheme is
    case-insensitive, RFC 7235); "" for any other scheme."""
    scheme, _, credentials = authorization.strip().partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


def make_handler(ctx: ApiContext) -> type[BaseHTTPRequestHandler]:
    """A request handler class bound to ``ctx``."""
    views = Views(ctx)

    class Handler(JsonHandler):
        server_version = "mooseng-agent"
        node = ctx.node

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("event=http_request peer=%s line=%r", self.client_address[0], format % args)

        def _send(self, status: int, body: bytes, content_type: str, head_only: bool = False,
                  extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if not head_only:
                self.wfile.write(body)

        def _json(self, status: int, body: dict[str, Any], head_only: bool = False,
                  extra: dict[str, str] | None = None) -> None:
            payload = {"node": ctx.node, **body}
            self._send(status, json.dumps(payload).encode() + b"\n", "application/json", head_only,
                       extra)

        def _dispatch(self) -> None:
            """Every method: read the body (framing errors close the connection), then route."""
            head_only = self.command == "HEAD"
            path = self.path.split("?", 1)[0].rstrip("/") or "/"
            try:
                body = read_body(self.headers, self.rfile)
            except BadRequest as exc:
                self.request_arrived()
                self.close_connection = True
                self._json(exc.status, {"error": exc.error}, head_only)
                return
            except (ConnectionError, TimeoutError, OSError):
                self.close_connection = True  # the client stopped sending (or the deadline hit)
                return
            self.request_arrived()
            allowed = ROUTES.get(path)
            try:
                if allowed is None:
                    self._json(404, {"error": f"no such endpoint {path}"}, head_only)
                elif self.command not in allowed:
                    self._json(405, {"error": f"{self.command} is not allowed on {path}; use "
                                              f"{' or '.join(allowed)}"}, head_only,
                               {"Allow": ", ".join(allowed)})
                elif path == "/switchover":
                    self._switchover(path, body)
                elif path == "/status":
                    self._json(*views.status(), head_only=head_only)
                elif path == "/cluster":
                    self._json(*views.cluster(), head_only=head_only)
                elif path == "/metrics":
                    self._send(200, views.metrics().encode(), CONTENT_TYPE, head_only)
                else:
                    self._json(*views.probe(path[1:]), head_only=head_only)
            except (ConnectionError, TimeoutError):
                # Health checkers (HAProxy) hang up once they have read the status line; a
                # client that does not read its answer within the socket timeout is dropped.
                self.close_connection = True
            except Exception as exc:
                log.exception("event=http_error path=%s", path)
                self.close_connection = True
                try:
                    self._json(500, {"error": f"internal error ({type(exc).__name__}); "
                                              f"see the agent's log"}, head_only)
                except OSError:
                    pass

        def _switchover(self, path: str, body: bytes) -> None:
            status, answer = views.switchover(self.headers, body)
            log.info("event=switchover_request peer=%s status=%s answer=%r", self.client_address[0],
                     status, answer)
            self._json(status, answer)

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch
        do_TRACE = do_CONNECT = _dispatch

    return Handler


class ApiServer:
    """The bounded threaded HTTP server (:mod:`mooseng.httpserver`) in a background thread."""

    def __init__(self, ctx: ApiContext, host: str = "0.0.0.0", port: int = 9430,
                 max_threads: int = MAX_THREADS, request_timeout: float = REQUEST_TIMEOUT_S) -> None:
        self.httpd = BoundedHTTPServer((host, port), make_handler(ctx), max_threads=max_threads,
                                       request_timeout=request_timeout)
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
