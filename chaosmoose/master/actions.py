"""Actions on the MooseNG masters: kill, stop, pause, restart, switchover, and their undo.

Targets are resolved when the action fires: ``"leader"`` (the master serving /leader),
``"follower"`` (the first follower in configured order), ``"random-follower"``, or a
configured master name. Every fault is written to the run's ledger before it is applied,
with the master it hit and that master's role at the time, so rollbacks (``restart_killed``,
``unpause_paused``) heal exactly those masters, and ``chaosmoose cleanup`` can heal them
after a crash.
"""

import logging
import time

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosmoose import _container, _docker, _faults, _settings
from chaosmoose._http import request
from chaosmoose.master import _cluster

__all__ = [
    "kill_master",
    "pause_master",
    "restart_killed",
    "restart_master",
    "stop_master",
    "switchover",
    "unpause_paused",
]

logger = logging.getLogger("chaostoolkit")


def _hit(kind: str, target: str, configuration: Configuration, secrets: Secrets,
         apply_name: str, **apply_args: object) -> dict:
    """Resolve ``target``, record the fault in the ledger, then apply it to the container."""
    name, role, view = _cluster.resolve_target(target, configuration, secrets)
    project = _settings.project(configuration, secrets)
    run = _settings.run_id(configuration, secrets)
    container = _docker.find_container(project, name)
    epoch = view.epoch_of(name)
    ledger = _cluster.ledger_for(configuration, secrets)
    fault = _faults.inject(
        ledger, kind, _container.target_of(container, project, name), run,
        lambda: getattr(container, apply_name)(**apply_args),
        role=role, epoch=epoch, selector=target, configuration=configuration, secrets=secrets,
    )
    logger.info("%s: %s (%s, epoch %s) in container %s", kind, name, role, epoch,
                container.name)
    return {"master": name, "role": role, "epoch": epoch, "fault": fault["id"],
            "container": container.name}


def kill_master(target: str = "leader", signal: str = "SIGKILL",
                configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Kill the master container selected by ``target`` with ``signal`` (default SIGKILL).

    Returns ``{"master", "role", "epoch", "fault", "container"}``. Fails before touching
    anything when the target or signal is invalid, the master APIs cannot resolve the
    target, or the container does not exist.
    """
    _docker.check_signal(signal)
    return _hit("container.kill", target, configuration, secrets, "kill", signal=signal)


def stop_master(target: str = "leader", timeout: int = 10,
                configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Stop the master container selected by ``target`` (SIGTERM, SIGKILL after ``timeout`` s).

    Returns what was hit, like ``kill_master``.
    """
    grace = _settings.parse_int("timeout", timeout)
    return _hit("container.stop", target, configuration, secrets, "stop", timeout=grace)


def pause_master(target: str = "leader", duration: float = 0.0,
                 configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Freeze the master container selected by ``target`` (Docker pause: SIGSTOP semantics).

    With ``duration`` > 0 the container is resumed after that many seconds and the fault is
    closed in the ledger (use a duration beyond the lease TTL to test self-fencing); with 0
    it stays paused until ``unpause_paused`` or ``chaosmoose cleanup``.
    """
    seconds = _settings.parse_float("duration", duration)
    hit = _hit("container.pause", target, configuration, secrets, "pause")
    if seconds > 0:
        time.sleep(seconds)
        ledger = _cluster.ledger_for(configuration, secrets)
        fault = next(f for f in ledger.faults() if f["id"] == hit["fault"])
        hit["resumed"] = _faults.undo(ledger, fault)
        hit["paused_s"] = seconds
    return hit


def restart_master(target: str = "leader", timeout: int = 10,
                   configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Restart the master container selected by ``target`` (docker restart).

    The restart is recorded like a fault and closed once the container runs again.
    """
    grace = _settings.parse_int("timeout", timeout)
    hit = _hit("container.restart", target, configuration, secrets, "restart", timeout=grace)
    ledger = _cluster.ledger_for(configuration, secrets)
    fault = next(f for f in ledger.faults() if f["id"] == hit["fault"])
    hit["after"] = _faults.undo(ledger, fault)
    return hit


def switchover(to: str = "", wait: bool = True, timeout: float = 30.0,
               configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Ask the leader for a planned transfer of leadership (``POST /switchover``).

    ``to`` names the follower to promote (empty: the agent picks the best follower). Needs
    the ``mooseng_api_token`` secret/configuration or ``MOOSENG_API_TOKEN``. With ``wait``,
    waits up to ``timeout`` s for the new leader and returns it; fails when the agent
    refuses (its reason is in the message) or no new leader appears.
    """
    masters = _settings.masters(configuration, secrets)
    if to and to not in masters:
        raise ActivityFailed(f"switchover target {to!r} is not a configured master; expected "
                             f"one of {', '.join(masters)}")
    should_wait = _settings.parse_bool("wait", wait)
    limit = _settings.parse_float("timeout", timeout)
    token = _settings.api_token(configuration, secrets)
    if not token:
        raise ActivityFailed("switchover needs a token: set secret/configuration "
                             "mooseng_api_token or MOOSENG_API_TOKEN (or .env)")
    view = _cluster.snapshot(configuration, secrets)
    old = _cluster.single_leader(view)
    if to == old:
        raise ActivityFailed(f"switchover target {to} is already the leader; expected a "
                             "follower")
    reply = request(old, masters[old], "/switchover",
                    _settings.http_timeout(configuration, secrets), method="POST",
                    payload={"to": to} if to else {}, token=token)
    if reply.status not in (200, 202):
        raise ActivityFailed(f"{old} refused switchover with HTTP {reply.status}: "
                             f"{reply.body.get('error', reply.body)}; expected 202")
    result = {"from": old, "to": reply.body.get("to", to or None), "accepted": True}
    if not should_wait:
        return result
    started = time.monotonic()
    while time.monotonic() - started < limit:
        serving = _cluster.snapshot(configuration, secrets).serving()
        if len(serving) == 1 and serving[0] != old and (not to or serving[0] == to):
            result.update(leader=serving[0], waited_s=round(time.monotonic() - started, 3))
            return result
        time.sleep(0.25)
    raise ActivityFailed(f"switchover from {old} accepted but no new leader"
                         f"{' ' + to if to else ''} within {limit:g} s")


def _undo_master_faults(kinds: tuple[str, ...], configuration: Configuration,
                        secrets: Secrets) -> list:
    faults = _cluster.faulted_masters(configuration, secrets, kinds=kinds, state="open",
                                      cut_off=False)
    return _faults.undo_each(_cluster.ledger_for(configuration, secrets), faults, "master")


def restart_killed(configuration: Configuration = None, secrets: Secrets = None) -> list:
    """Rollback: start again every master this run killed, stopped or restarted.

    Heals exactly the masters recorded as open faults of this run in the ledger (the same
    code ``chaosmoose cleanup`` uses). Returns what was done per master; fails when a
    container cannot be started.
    """
    return _undo_master_faults(("container.kill", "container.stop", "container.restart"),
                               configuration, secrets)


def unpause_paused(configuration: Configuration = None, secrets: Secrets = None) -> list:
    """Rollback: resume every master this run paused and did not resume yet."""
    return _undo_master_faults(("container.pause",), configuration, secrets)
