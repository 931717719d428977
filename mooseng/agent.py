"""``mooseng agent``: the master HA agent of one master container.

Validates the settings (exit 2 naming the variable), starts the Raft store, the
HTTP API, the fencing watchdog and the HA loop. SIGTERM/SIGINT: as leader stop
mfsmaster and release the lease, stop the metalogger, exit 0.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from mooseng import links, settings
from mooseng.api import ApiContext, ApiServer, ClusterProbe
from mooseng.dcs.raft import RaftBindError, RaftStore, append_entries_period, local_address
from mooseng.ha import HA, HAConfig
from mooseng.history import ServingHistory
from mooseng.mfs import MfsController, MfsPaths
from mooseng.mfs.barrier import BarrierConfig
from mooseng.roles import own_address

log = logging.getLogger("mooseng.agent")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(level: str) -> logging.handlers.QueueListener:
    """Log to stderr through a queue so a slow stderr cannot stall the HA loop."""
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    stream = logging.StreamHandler(sys.stderr)
    stream.setFormatter(logging.Formatter(LOG_FORMAT))
    listener = logging.handlers.QueueListener(records, stream, respect_handler_level=False)
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(records)]
    root.setLevel(level.upper() if level.upper() in logging._nameToLevel else "INFO")
    logging.getLogger("pysyncobj").setLevel(logging.WARNING)
    listener.start()
    return listener


def load_config(environ: dict[str, str] | None = None) -> tuple[HAConfig, dict[str, object]]:
    """Read and check every setting the agent uses; raise SettingError with all problems."""
    errors = settings.validate("master", environ)
    if errors:
        raise settings.SettingError("; ".join(errors))

    def get(name: str) -> object:
        return settings.read(name, environ)

    node = str(get("MOOSENG_NODE")) or socket.gethostname()
    values = {name: get(name) for name in (
        "MOOSENG_MASTERS", "MOOSENG_API_PORT", "MOOSENG_RAFT_PORT", "MOOSENG_RAFT_PASSWORD",
        "MOOSENG_RAFT_MIN_TIMEOUT", "MOOSENG_RAFT_MAX_TIMEOUT", "MOOSENG_API_TOKEN",
        "MOOSENG_DATA_DIR", "MOOSENG_MATOCL_PORT", "MOOSENG_LOG_LEVEL")}
    masters = list(values["MOOSENG_MASTERS"])  # type: ignore[call-overload]
    config = HAConfig(
        node=node, masters=masters, ttl=float(get("MOOSENG_TTL")),  # type: ignore[arg-type]
        loop_wait=float(get("MOOSENG_LOOP_WAIT")),  # type: ignore[arg-type]
        retry_timeout=float(get("MOOSENG_RETRY_TIMEOUT")),  # type: ignore[arg-type]
        safety_margin=float(get("MOOSENG_SAFETY_MARGIN")),  # type: ignore[arg-type]
        api_url=f"http://{node}:{values['MOOSENG_API_PORT']}",
        replica_max_lag=int(get("MOOSENG_REPLICA_MAX_LAG")),  # type: ignore[call-overload]
        freeze_on_contact_loss=bool(get("MOOSENG_FREEZE_ON_CONTACT_LOSS")),
        freeze_after=float(get("MOOSENG_FREEZE_AFTER")),  # type: ignore[arg-type]
        contact_check_interval=float(get("MOOSENG_CONTACT_CHECK_INTERVAL")),  # type: ignore[arg-type]
    )
    problems = config.problems()
    if not values["MOOSENG_RAFT_PASSWORD"]:
        problems.append("MOOSENG_RAFT_PASSWORD is empty; set a shared secret (make writes one to .env)")
    if float(values["MOOSENG_RAFT_MIN_TIMEOUT"]) >= float(values["MOOSENG_RAFT_MAX_TIMEOUT"]):  # type: ignore[arg-type]
        problems.append("MOOSENG_RAFT_MIN_TIMEOUT must be below MOOSENG_RAFT_MAX_TIMEOUT")
    heartbeat = append_entries_period(float(values["MOOSENG_RAFT_MIN_TIMEOUT"]))  # type: ignore[arg-type]
    if config.freeze_on_contact_loss and config.freeze_after < 2 * heartbeat:
        problems.append(f"MOOSENG_FREEZE_AFTER = {config.freeze_after:g} s is below two Raft heartbeat "
                        f"periods ({2 * heartbeat:g} s with MOOSENG_RAFT_MIN_TIMEOUT); one late "
                        f"heartbeat would freeze mfsmaster")
    barrier = BarrierConfig.from_settings(node, environ)
    if barrier is not None:
        problems += barrier.problems(int(values["MOOSENG_MATOCL_PORT"]), masters)  # type: ignore[call-overload]
    values["barrier"] = barrier
    if problems:
        raise settings.SettingError("; ".join(problems))
    return config, values


def raft_dial(node: str) -> dict[str, str]:
    """``host:port`` this master dials for each partner it connects to (pysyncobj: the
    higher address dials): the link's proxy, so that one Raft link can be cut alone."""
    topology = links.Topology.from_settings()
    dial = {}
    for master in topology.masters:
        if master != node and topology.raft_dialer(node, master) == node:
            host, port = topology.dial(node, master, "raft")
            dial[master] = f"{host}:{port}"
    return dial


def raft_bind(node: str, resolve_local: Callable[[str], str] = local_address) -> str | None:
    """The IP this master's Raft listener binds: its own address on the masters-only Raft
    network (``<node>.<MOOSENG_RAFT_DOMAIN>``), None (every address) with the domain empty.
    RaftBindError when that name does not resolve to an address of this container: Raft
    then stays down rather than listening where chunkservers and clients can reach it."""
    host = links.Topology.from_settings().raft_bind_host(node)
    return None if host is None else resolve_local(host)


def main(argv: list[str] | None = None) -> int:
    """Run the agent until SIGTERM; return the exit code."""
    if argv:
        print("usage: mooseng agent (configured by MOOSENG_* environment variables)", file=sys.stderr)
        return 2
    try:
        config, values = load_config()
    except settings.SettingError as exc:
        print(f"mooseng agent: configuration error: {exc}", file=sys.stderr)
        return 2
    listener = setup_logging(str(values["MOOSENG_LOG_LEVEL"]))
    try:
        return _run(config, values)
    finally:
        listener.stop()


def _run(config: HAConfig, values: dict[str, object]) -> int:
    data_dir = Path(str(values["MOOSENG_DATA_DIR"]))
    address = own_address(config.node)
    log.info("event=agent_start node=%s address=%s masters=%s ttl=%s loop_wait=%s retry_timeout=%s "
             "safety_margin=%s freeze_after=%s", config.node, address, ",".join(config.masters),
             config.ttl, config.loop_wait, config.retry_timeout, config.safety_margin,
             config.freeze_after if config.freeze_on_contact_loss else "off")
    try:
        store = RaftStore(config.node, config.masters, port=int(values["MOOSENG_RAFT_PORT"]),  # type: ignore[call-overload]
                          password=str(values["MOOSENG_RAFT_PASSWORD"]), journal_dir=data_dir / "raft",
                          retry_timeout=config.retry_timeout,
                          min_timeout=float(values["MOOSENG_RAFT_MIN_TIMEOUT"]),  # type: ignore[arg-type]
                          max_timeout=float(values["MOOSENG_RAFT_MAX_TIMEOUT"]),  # type: ignore[arg-type]
                          dial=raft_dial(config.node), bind_host=raft_bind(config.node))
    except (ImportError, RaftBindError) as exc:  # pysyncobj needs 'cryptography' for the password
        log.error("event=agent_fatal reason=%r", str(exc))
        return 2
    client_port = int(values["MOOSENG_MATOCL_PORT"])  # type: ignore[call-overload]
    barrier = values["barrier"]
    daemons = MfsController(MfsPaths(data_path=data_dir / "mfs"), address, client_port,
                            barrier=barrier)  # type: ignore[arg-type]
    if barrier is not None:
        log.info("event=reply_barrier_on %s", " ".join(
            f"{k}={v}" for k, v in vars(barrier).items()))
    history = ServingHistory(config.node, data_dir / "serving-history.jsonl", now=time.time())
    ha = HA(config, store, daemons, history=history)
    api = ApiServer(ApiContext(config.node, ha, store, token=str(values["MOOSENG_API_TOKEN"]),
                               replica_max_lag=config.replica_max_lag,
                               probe=ClusterProbe(port=client_port)),
                    port=int(values["MOOSENG_API_PORT"]))  # type: ignore[call-overload]
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("event=signal signal=%s action=shutdown", signal.Signals(signum).name)
        stop.set()
        ha.wake()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def watchdog() -> None:
        """Off the HA loop (a store call there can block up to retry_timeout): fence at the
        deadline, freeze or thaw mfsmaster on follower contact."""
        while not stop.wait(config.contact_check_interval):
            try:
                ha.check_fence()
                ha.check_contact()
            except Exception:  # the watchdog must outlive any one failure
                log.exception("event=watchdog_error")

    api.start()
    threading.Thread(target=watchdog, name="fence-watchdog", daemon=True).start()
    loop = threading.Thread(target=ha.run_forever, args=(stop,), name="ha-loop", daemon=True)
    loop.start()
    while loop.is_alive():
        loop.join(0.5)
    shutdown(ha, daemons)
    api.stop()
    store.close()
    log.info("event=agent_stopped node=%s", config.node)
    return 0


def shutdown(ha: HA, daemons: MfsController) -> None:
    """Leave cleanly: as leader keep the lease while mfsmaster stops, then release it;
    stop the metalogger."""
    log.info("event=agent_shutdown result=%r", ha.leave(daemons.stop_all, daemons.kill_master_now))
