"""The local leader router: HAProxy in every container, dialling only the leader.

Each MooseFS daemon (chunkserver, mount, metalogger, mfscli) is pointed at this
container's own address on a router port. HAProxy forwards to whichever master
answers ``GET /route`` with 200 on its agent's HTTP port (the lease holder, frozen or
not; ``/leader`` is the same without a frozen one), checks every few hundred
milliseconds, and cuts sessions to a master the moment it is marked down, so the
daemons reconnect straight to the new leader (Patroni's pattern). While no master is
routable (a failover), a new client or chunkserver connection is held (up to
``MOOSENG_ROUTER_HOLD_MS`` / ``MOOSENG_ROUTER_CS_HOLD_MS``) and routed the moment a master
is, instead of being refused: mfsmount retries only every 2 s and a chunkserver every
``MOOSENG_RECONNECT_DELAY`` s, so a refused attempt just before the new leader became
routable cost them up to that long.
"""

from __future__ import annotations

import logging
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from mooseng import links, settings
from mooseng.supervisor import Daemon

ROUTER_CFG = Path("/etc/mooseng/haproxy.cfg")
ROUTER_LUA = ROUTER_CFG.with_name("router-hold.lua")
log = logging.getLogger("mooseng.router")

# (listener name, router port setting, link kind, check backend): chunkservers and clients go
# to the lease holder only (GET /route on its agent). Metaloggers (master containers only)
# follow whichever mfsmaster runs (GET /master on its agent): during a planned handover the
# old master keeps streaming its changelog until it exits, while clients are already cut
# off. Fencing and the lease make sure that at most one mfsmaster runs.
ROUTES = {
    "chunkservers": ("MOOSENG_ROUTER_CS_PORT", "cs", "leader-check"),
    "clients": ("MOOSENG_ROUTER_CL_PORT", "cl", "leader-check"),
    "metaloggers": ("MOOSENG_ROUTER_ML_PORT", "ml", "master-check"),
    # The reply barrier's taps (MOOSENG_BARRIER on): acknowledgements go to the same mfsmaster
    # the metalogger stream comes from, and a partition cuts both.
    "acks": ("MOOSENG_ROUTER_ACK_PORT", "ack", "master-check"),
}
# Clients and chunkservers follow GET /route: the lease holder, also while its mfsmaster is
# frozen (no follower contact), so a short freeze keeps their sessions instead of cutting
# them (a freeze ends in a thaw under the same epoch or in SIGKILL, which ends them anyway).
CHECKS = {"leader-check": "/route", "master-check": "/master"}
# Which listeners each kind of container needs.
ROLE_ROUTES = {"master": ("metaloggers", "clients"), "chunkserver": ("chunkservers",),
               "client": ("clients",)}
BARRIER_ROUTES = {"master": ("acks",)}  # added with MOOSENG_BARRIER on
# Listeners whose new connections wait for a routable master (the daemons on the client
# path), and the setting that bounds the wait. mfsmount gives up on a registration answer
# after 1 s, a chunkserver after 10 s. Metaloggers and taps follow a running mfsmaster and
# retry on their own schedule.
HELD_ROUTES = {"chunkservers": "MOOSENG_ROUTER_CS_HOLD_MS", "clients": "MOOSENG_ROUTER_HOLD_MS"}
HOLD_POLL_MS = 20
# HAProxy Lua action: while the listener has no usable server, sleep (yielding, so HAProxy
# serves everything else) and look again; give up after the limit and let HAProxy refuse the
# connection as it would have. The buffered register packet is forwarded once routed.
HOLD_LUA = f"""\
core.register_action("mooseng_hold", {{ "tcp-req" }}, function(txn, limit)
    local listener = txn.f:be_name()
    local left = tonumber(limit)
    local waited = 0
    while txn.f:nbsrv(listener) == 0 and waited < left do
        core.msleep({HOLD_POLL_MS})
        waited = waited + {HOLD_POLL_MS}
    end
    if waited > 0 then
        local routed = txn.f:nbsrv(listener) > 0
        txn:Warning(string.format("event=router_hold listener=%s waited_ms=%d routed=%s",
                                  listener, waited, tostring(routed)))
    end
end, 1)
"""


def role_routes(role: str, barrier: bool = False) -> tuple[str, ...]:
    """The listeners a ``role`` container's router serves."""
    return ROLE_ROUTES[role] + (BARRIER_ROUTES.get(role, ()) if barrier else ())


def haproxy_config(bind_address: str, node: str, role: str, topology: links.Topology,
                   check_ms: int, barrier: bool = False,
                   holds: Mapping[str, int] | None = None) -> str:
    """The HAProxy configuration of ``node`` (a ``role`` container): each listener forwards
    to the master its check backend marks up, through that link's proxy.

    The checks travel through the node's own ``api`` proxy to each master, so cutting a
    node's links cuts what its router knows about the leader together with the data path
    (no half-partition). Each check backend asks each agent once per interval; the
    listeners only ``track`` its verdicts. ``holds`` (listener -> ms) makes a listener hold
    a new connection while none of its servers is up (``HOLD_LUA``, loaded from
    ``ROUTER_LUA``).
    """
    routes = role_routes(role, barrier)
    holds = {name: ms for name, ms in (holds or {}).items() if ms > 0 and name in routes}
    lines = [
        "global",
        "    maxconn 4096",
        # No log target: HAProxy in the foreground prints its notices (a server up or down,
        # no server available, the hold's Lua warning) on stderr, once each. A `log stdout`
        # target printed every one of them a second time, without its level.
        *([f"    lua-load {ROUTER_LUA}",
           # HAProxy 2.6 aborts a Lua action after 4 s (its sleeps included): outlast a hold.
           f"    tune.lua.session-timeout {max(holds.values()) + 1000}ms"] if holds else []),
        "",
        "resolvers docker",
        "    nameserver dns 127.0.0.11:53",
        "    accepted_payload_size 8192",
        "    hold valid 1s",
        "    hold obsolete 1s",
        "",
        "defaults",
        "    mode tcp",
        # A killed leader's address swallows SYNs: give up fast and, with redispatch, let the
        # retry go to whichever master is up instead of waiting out the dead one 4 times.
        "    timeout connect 300ms",
        "    retries 1",
        "    option redispatch 1",
        "    timeout client 10m",
        "    timeout server 10m",
        "    timeout check 1s",
        # Every master is reached through the same Toxiproxy host: allow-dup-ip keeps the
        # resolver from leaving all but one of them with "No IP for server".
        (f"    default-server inter {check_ms} fastinter {check_ms} downinter {check_ms} fall 2 "
         "rise 1 on-marked-down shutdown-sessions resolvers docker init-addr last,libc,none "
         "resolve-opts allow-dup-ip"),
        "",
    ]
    for backend in sorted({ROUTES[name][2] for name in routes}):
        lines += [f"backend {backend}", f"    option httpchk GET {CHECKS[backend]}",
                  "    http-check expect status 200"]
        for master in topology.masters:
            host, port = topology.dial(node, master, "api")
            lines.append(f"    server {master} {host}:{port} check")
        lines.append("")
    for name in routes:
        router_port_key, kind, backend = ROUTES[name]
        lines += [f"listen {name}", f"    bind {bind_address}:{settings.read(router_port_key)}"]
        if name in holds:
            # A yielding action needs an inspect delay that outlasts it.
            lines += [f"    tcp-request inspect-delay {holds[name] + 500}ms",
                      f"    tcp-request content lua.mooseng_hold {holds[name]}"]
        for master in topology.masters:
            host, port = topology.dial(node, master, kind)
            lines.append(f"    server {master} {host}:{port} track {backend}/{master}")
        lines.append("")
    return "\n".join(lines)


def write_config(bind_address: str, node: str, role: str) -> Path:
    """Render the router config for this container from the settings."""
    holds = {name: int(settings.read(HELD_ROUTES[name]))  # type: ignore[call-overload]
             for name in role_routes(role) if name in HELD_ROUTES}
    body = haproxy_config(bind_address, node, role, links.Topology.from_settings(),
                          int(settings.read("MOOSENG_ROUTER_CHECK_INTERVAL_MS")),  # type: ignore[call-overload]
                          barrier=role == "master" and bool(settings.read("MOOSENG_BARRIER")),
                          holds=holds)
    ROUTER_CFG.parent.mkdir(parents=True, exist_ok=True)
    if any(holds.values()):
        ROUTER_LUA.write_text(HOLD_LUA)
    ROUTER_CFG.write_text(body)
    return ROUTER_CFG


def router_daemon() -> Daemon:
    """HAProxy in the foreground (``-db``) on the rendered config."""
    return Daemon("haproxy", ["haproxy", "-db", "-f", str(ROUTER_CFG)])


def _listening(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def _some_master_leads(api_urls: list[str]) -> bool:
    for url in api_urls:
        try:
            with urllib.request.urlopen(f"{url}/leader", timeout=0.5) as reply:
                if reply.status == 200:
                    return True
        except (OSError, urllib.error.URLError):
            continue
    return False


def api_urls(node: str, topology: links.Topology) -> list[str]:
    """The masters' agent URLs as ``node`` reaches them (through its api proxies)."""
    return [f"http://{host}:{port}" for host, port in
            (topology.dial(node, master, "api") for master in topology.masters)]


def wait_until_routable(address: str, port: int, api_urls: list[str], check_ms: int,
                        timeout: float = 20.0) -> bool:
    """Wait until the router listens on ``port`` and a master leads, then for two router
    checks (HAProxy assumes every server up until its first check says otherwise).

    mfsmount exits at once when its first connection fails; started together with HAProxy
    it did so in every client at every start (a spurious restart). Returns False after
    ``timeout`` s (the caller starts the daemon anyway; the supervisor restarts it).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _listening(address, port) and _some_master_leads(api_urls):
            time.sleep(2 * check_ms / 1000)
            return True
        time.sleep(0.1)
    return False
