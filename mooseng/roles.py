"""Container roles: what ``mooseng run ROLE`` starts in each kind of container.

Every role validates its settings first (a malformed value stops the container
at once with a message naming the variable), starts the local leader router,
then the role's own processes, and supervises them: a child that dies is
restarted, SIGTERM stops everything in reverse order.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from mooseng import links, mfsconfig, router, settings, storageclasses, tiers
from mooseng.exporter import (
    Collector,
    ExporterServer,
    MountCollector,
    TierCollector,
    daemon_collector,
)
from mooseng.mfs import disks
from mooseng.supervisor import Daemon

log = logging.getLogger("mooseng.roles")

ROLES = ("master", "chunkserver", "client")


def node_name() -> str:
    """This container's node name: MOOSENG_NODE, else the host name."""
    return str(settings.read("MOOSENG_NODE")) or socket.gethostname()


def own_address(node: str) -> str:
    """The container's own address on the project network: the address of the interface that
    carries the default route, else the first non-loopback address its host name resolves to.

    The route decides because a master is on two networks (the shared one and the internal
    Raft network, which has no gateway) and Docker writes a hosts line for its name on each,
    in no promised order: the MooseFS daemons and the router must never bind or announce the
    Raft-network address, which chunkservers and clients cannot reach."""
    routed = _routed_address()
    if routed is not None:
        return routed
    try:
        names = socket.gethostbyname_ex(node)[2]
    except OSError:
        names = []
    for address in names:
        if not address.startswith("127."):
            return address
    raise OSError(f"{node} has no routable address (its name resolves to "
                  f"{', '.join(names) or 'nothing'} and there is no default route)")


def _routed_address() -> str | None:
    """The source address of the default route (no packet is sent for a UDP connect)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: routed by the default route
            address = str(probe.getsockname()[0])
    except OSError:
        return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def mount_point(node: str) -> Path:
    """Where a client mounts MooseFS: MOOSENG_MOUNT_POINT or /mnt/<node>."""
    return Path(str(settings.read("MOOSENG_MOUNT_POINT")) or f"/mnt/{node}")


def release_stale_mount(path: Path) -> None:
    """Lazily unmount a mount left behind by a dead mfsmount (ENOTCONN on stat)."""
    try:
        os.stat(path)
        if not os.path.ismount(path):
            return
    except OSError:
        pass
    subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def master_daemons(node: str, address: str) -> list[Daemon]:
    """A master container: the HA agent, which decides between mfsmaster and mfsmetalogger."""
    mfsconfig.write_master_configs(mfsconfig.Layout.from_settings(), address)
    return [Daemon("agent", [sys.executable, "-m", "mooseng", "agent"], keep_settings=True)]


def chunkserver_daemons(node: str, address: str) -> list[Daemon]:
    """A chunkserver container: mfschunkserver with its storage tiers."""
    layout = mfsconfig.Layout.from_settings()
    healed = disks.clear_faults(tiers.configured_tiers(layout.tiers), layout.data_dir)
    if healed:  # a start is the configured state: every `mooseng disk` change is undone
        log.info("event=disk_faults_cleared tiers=%s", ",".join(healed))
    mfsconfig.write_chunkserver_configs(layout, address, address)
    return [Daemon("mfschunkserver",
                   ["mfschunkserver", "-c", str(mfsconfig.CHUNKSERVER_CFG), "-f", "start"])]


def client_daemons(node: str, address: str) -> list[Daemon]:
    """A client container: mfsmount in the foreground at its mount point."""
    where = mount_point(node)
    release_stale_mount(where)
    where.mkdir(parents=True, exist_ok=True)
    argv = ["mfsmount", "-f", str(where), "-H", address,
            "-P", str(settings.read("MOOSENG_ROUTER_CL_PORT")),
            "-S", str(settings.read("MOOSENG_MOUNT_SUBFOLDER"))]
    return [Daemon("mfsmount", argv)]


BUILDERS = {"master": master_daemons, "chunkserver": chunkserver_daemons, "client": client_daemons}


def exporter_collectors(role: str, node: str, daemons: list[Daemon]) -> list[Collector]:
    """What the exporter of a chunkserver or client container reports (masters: none, their
    agent's API exports)."""
    if role == "chunkserver":
        layout = mfsconfig.Layout.from_settings()
        folders = {str(t): layout.tiers / str(t) for t in settings.read("MOOSENG_CS_TIERS")}  # type: ignore[attr-defined]
        return [daemon_collector(daemons), TierCollector(folders),
                tiers_usage_collector(layout)]
    if role == "client":
        return [daemon_collector(daemons), MountCollector(mount_point(node))]
    return []


def tiers_usage_collector(layout: mfsconfig.Layout) -> tiers.TierUsageCollector:
    """``mooseng_tier_*_bytes``: each tier bounded by its mfshdd.cfg limit (:mod:`mooseng.tiers`)."""
    return tiers.TierUsageCollector(tiers.configured_tiers(layout.tiers), mfsconfig.HDD_CFG)


def supervise(daemons: list[Daemon], stop: threading.Event, on_restart=None) -> None:
    """Keep every daemon running until ``stop`` is set."""
    while not stop.wait(1.0):
        for daemon in daemons:
            if not daemon.running() and on_restart is not None:
                on_restart(daemon)
            daemon.keep_running()


def run(role: str) -> int:
    """Run ``role`` in this container until SIGTERM; return the exit code."""
    if role not in ROLES:
        print(f"mooseng run: unknown role {role!r}; expected one of {', '.join(ROLES)}",
              file=sys.stderr)
        return 2
    errors = settings.validate(role)
    if errors:
        for error in errors:
            print(f"mooseng run {role}: configuration error: {error}", file=sys.stderr)
        return 2
    node = node_name()
    address = own_address(node)
    log.info("event=role_start role=%s node=%s address=%s", role, node, address)
    router.write_config(address, node, role)
    daemons = [router.router_daemon(), *BUILDERS[role](node, address)]

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("event=signal signal=%s action=stop_all", signal.Signals(signum).name)
        # The main thread may be inside stop.wait() holding the Event's lock: setting it
        # from the handler itself could deadlock, so a short-lived thread does.
        threading.Thread(target=stop.set, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for daemon in daemons:
        if daemon.name == "mfsmount":
            began = time.monotonic()
            routable = router.wait_until_routable(
                address, int(settings.read("MOOSENG_ROUTER_CL_PORT")),  # type: ignore[call-overload]
                router.api_urls(node, links.Topology.from_settings()),
                int(settings.read("MOOSENG_ROUTER_CHECK_INTERVAL_MS")))  # type: ignore[call-overload]
            log.info("event=router_ready routable=%s waited_s=%.2f", routable,
                     time.monotonic() - began)
        daemon.start()
    collectors = exporter_collectors(role, node, daemons)
    exporter = None
    if collectors:
        exporter = ExporterServer(collectors, port=int(settings.read("MOOSENG_EXPORTER_PORT")),  # type: ignore[call-overload]
                                  node=node)
        exporter.start()
    if role == "chunkserver":  # an empty tier must not look full to MooseFS (mooseng/mfs/disks.py)
        threading.Thread(target=disks.keep_empty_tiers_open, args=(stop,), daemon=True,
                         name="empty-tiers").start()
    keeper = None
    if role == "client":  # the lab's storage classes, through this mount (mooseng/storageclasses.py)
        keeper = storageclasses.SclassKeeper(
            mount_point(node), float(settings.read("MOOSENG_SCLASS_CHECK_INTERVAL")))  # type: ignore[arg-type]
        keeper.start()

    def before_restart(daemon: Daemon) -> None:
        if daemon.name == "mfsmount":
            release_stale_mount(mount_point(node))

    supervise(daemons, stop, before_restart)
    if keeper is not None:
        keeper.stop()
    for daemon in reversed(daemons):
        daemon.stop("graceful")
    if role == "client":
        release_stale_mount(mount_point(node))
    if exporter is not None:
        exporter.stop()
    log.info("event=role_stopped role=%s node=%s", role, node)
    return 0
