"""The local leader router: HAProxy in every container, dialling only the leader.

Each MooseFS daemon (chunkserver, mount, metalogger, mfscli) is pointed at this
container's own address on a router port. HAProxy forwards to whichever master
answers ``GET /leader`` with 200 on its agent's HTTP port, checks every few
hundred milliseconds, and cuts sessions to a master the moment it is marked
down, so the daemons reconnect straight to the new leader (Patroni's pattern).
"""

from __future__ import annotations

import logging
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

from mooseng import settings
from mooseng.supervisor import Daemon

ROUTER_CFG = Path("/etc/mooseng/haproxy.cfg")
log = logging.getLogger("mooseng.router")

# (listener name, router port setting, master port setting): chunkservers and clients go to
# the lease holder only (GET /leader on its agent).
ROUTES = (
    ("chunkservers", "MOOSENG_ROUTER_CS_PORT", "MOOSENG_MATOCS_PORT"),
    ("clients", "MOOSENG_ROUTER_CL_PORT", "MOOSENG_MATOCL_PORT"),
)
# Metaloggers (master containers only) follow whichever mfsmaster runs, checked by a plain
# TCP connect to its metalogger port: during a planned handover the old master keeps
# streaming its changelog until it exits, while clients are already cut off. Fencing and
# the lease make sure that at most one mfsmaster runs.
METALOGGER_ROUTE = ("metaloggers", "MOOSENG_ROUTER_ML_PORT", "MOOSENG_MATOML_PORT")


def haproxy_config(bind_address: str, masters: list[str], api_port: int, check_ms: int,
                   metaloggers: bool = False) -> str:
    """The HAProxy configuration routing MooseFS ports to the leader (and, with
    ``metaloggers``, the metalogger port to the running mfsmaster)."""
    lines = [
        "global",
        "    maxconn 4096",
        "    log stdout format raw local0 notice",
        "",
        "resolvers docker",
        "    nameserver dns 127.0.0.11:53",
        "    accepted_payload_size 8192",
        "    hold valid 1s",
        "    hold obsolete 1s",
        "",
        "defaults",
        "    mode tcp",
        "    log global",
        "    option dontlognull",
        # A killed leader's address swallows SYNs: give up fast and, with redispatch, let the
        # retry go to whichever master is up instead of waiting out the dead one 4 times.
        "    timeout connect 300ms",
        "    retries 1",
        "    option redispatch 1",
        "    timeout client 10m",
        "    timeout server 10m",
        "    timeout check 1s",
        (f"    default-server inter {check_ms} fastinter {check_ms} downinter {check_ms} fall 2 "
         "rise 1 on-marked-down shutdown-sessions resolvers docker init-addr last,libc,none"),
        "",
    ]
    # Only the first listener checks the agents; the others track its verdicts, so each
    # container asks each agent once per interval, not once per port.
    checker = ROUTES[0][0]
    for name, router_port_key, master_port_key in ROUTES:
        router_port = settings.read(router_port_key)
        master_port = settings.read(master_port_key)
        lines += [f"listen {name}", f"    bind {bind_address}:{router_port}"]
        if name == checker:
            lines += ["    option httpchk GET /leader", "    http-check expect status 200"]
            lines += [f"    server {master} {master}:{master_port} check port {api_port}"
                      for master in masters]
        else:
            lines += [f"    server {master} {master}:{master_port} track {checker}/{master}"
                      for master in masters]
        lines.append("")
    if metaloggers:
        name, router_port_key, master_port_key = METALOGGER_ROUTE
        lines += [f"listen {name}",
                  f"    bind {bind_address}:{settings.read(router_port_key)}"]
        lines += [f"    server {master} {master}:{settings.read(master_port_key)} check"
                  for master in masters]
        lines.append("")
    return "\n".join(lines)


def write_config(bind_address: str, metaloggers: bool = False) -> Path:
    """Render the router config for this container from the settings."""
    body = haproxy_config(
        bind_address,
        list(settings.read("MOOSENG_MASTERS")),
        int(settings.read("MOOSENG_API_PORT")),
        int(settings.read("MOOSENG_ROUTER_CHECK_INTERVAL_MS")),
        metaloggers=metaloggers,
    )
    ROUTER_CFG.parent.mkdir(parents=True, exist_ok=True)
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


def _some_master_leads(masters: list[str], api_port: int) -> bool:
    for master in masters:
        try:
            with urllib.request.urlopen(f"http://{master}:{api_port}/leader", timeout=0.5) as reply:
                if reply.status == 200:
                    return True
        except (OSError, urllib.error.URLError):
            continue
    return False


def wait_until_routable(address: str, port: int, masters: list[str], api_port: int,
                        check_ms: int, timeout: float = 20.0) -> bool:
    """Wait until the router listens on ``port`` and a master leads, then for two router
    checks (HAProxy assumes every server up until its first check says otherwise).

    mfsmount exits at once when its first connection fails; started together with HAProxy
    it did so in every client at every start (a spurious restart). Returns False after
    ``timeout`` s (the caller starts the daemon anyway; the supervisor restarts it).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _listening(address, port) and _some_master_leads(masters, api_port):
            time.sleep(2 * check_ms / 1000)
            return True
        time.sleep(0.1)
    return False
