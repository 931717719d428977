"""What the master agents say about the cluster, and target resolution at run time."""

from __future__ import annotations

import logging
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from chaoslib.exceptions import ActivityFailed

from chaosmoose import _container, _settings
from chaosmoose._http import Reply, get_all

logger = logging.getLogger("chaostoolkit")

__all__: list[str] = []  # not an activity module

ROLE_TARGETS = ("leader", "follower", "random-follower")


@dataclass
class MasterView:
    """One concurrent snapshot of every configured master's /status and /leader."""

    masters: dict[str, str]
    status: dict[str, Reply | Exception] = field(default_factory=dict)
    leader: dict[str, Reply | Exception] = field(default_factory=dict)

    def reachable(self) -> list[str]:
        """Masters whose /status answered."""
        return [n for n, r in self.status.items() if isinstance(r, Reply)]

    def unreachable(self) -> dict[str, str]:
        """Masters whose /status did not answer, with the reason."""
        return {n: str(r) for n, r in self.status.items() if not isinstance(r, Reply)}

    def serving(self) -> list[str]:
        """Masters answering 200 on /leader (normally exactly one)."""
        return [n for n, r in self.leader.items() if isinstance(r, Reply) and r.status == 200]

    def role(self, name: str) -> str | None:
        """The role ``name`` reports in /status, None when unreachable."""
        reply = self.status.get(name)
        return reply.body.get("role") if isinstance(reply, Reply) else None

    def lease(self, name: str) -> dict[str, Any]:
        """The lease as ``name`` sees it ({} when unreachable)."""
        reply = self.status.get(name)
        if not isinstance(reply, Reply):
            return {}
        lease = reply.body.get("lease")
        return lease if isinstance(lease, dict) else {}

    def epoch_of(self, name: str) -> int | None:
        """The lease epoch reported by ``name`` on /leader or /status."""
        reply = self.leader.get(name)
        if isinstance(reply, Reply) and reply.body.get("epoch") is not None:
            return reply.body.get("epoch")
        return self.lease(name).get("epoch")

    def describe_leader_replies(self) -> str:
        """'master-1 200, master-2 503, master-3 unreachable (connection refused)'."""
        parts = []
        for name, reply in self.leader.items():
            if isinstance(reply, Reply):
                parts.append(f"{name} {reply.status}")
            else:
                parts.append(f"{name} unreachable ({str(reply).rsplit(': ', 1)[-1]})")
        return ", ".join(parts)


def snapshot(configuration: Any = None, secrets: Any = None,
             timeout: float | None = None) -> MasterView:
    """Ask every master for /status and /leader at the same time."""
    masters = _settings.masters(configuration, secrets)
    timeout = timeout or _settings.http_timeout(configuration, secrets)
    with ThreadPoolExecutor(max_workers=2) as pool:
        status = pool.submit(get_all, masters, "/status", timeout)
        leader = pool.submit(get_all, masters, "/leader", timeout)
        return MasterView(masters, status.result(), leader.result())


def validate_target(target: str, configuration: Any = None, secrets: Any = None) -> None:
    """Reject a target that is neither a role selector nor a configured master name."""
    masters = _settings.masters(configuration, secrets)
    if not isinstance(target, str) or not target:
        raise ActivityFailed(f"target {target!r} is invalid; expected one of "
                             f"{', '.join(ROLE_TARGETS)} or a master name")
    if target not in ROLE_TARGETS and target not in masters:
        raise ActivityFailed(
            f"target {target!r} is not a configured master; expected one of "
            f"{', '.join(ROLE_TARGETS + tuple(masters))}"
        )


def single_leader(view: MasterView) -> str:
    """The one master serving /leader; fails when there is none or more than one."""
    serving = view.serving()
    if len(serving) == 1:
        return serving[0]
    if not serving:
        raise ActivityFailed(
            f"no master answers 200 on /leader ({view.describe_leader_replies()}); "
            "expected exactly one leader"
        )
    raise ActivityFailed(
        f"{len(serving)} masters answer 200 on /leader ({', '.join(serving)}); "
        "expected exactly one leader"
    )


def choose(view: MasterView, target: str,
           rng: random.Random | None = None) -> tuple[str, str | None]:
    """Resolve ``leader``, ``follower``, ``random-follower`` or a name against ``view``.

    Returns (master name, its role as reported). Several targets resolved against one view
    are consistent with each other (the leader is never also "the follower").
    """
    if target == "leader":
        return single_leader(view), "leader"
    if target in ("follower", "random-follower"):
        leader = single_leader(view)
        followers = [n for n in view.masters
                     if n != leader and view.role(n) == "follower"]
        if not followers:
            roles = ", ".join(f"{n} {view.role(n) or 'unreachable'}" for n in view.masters)
            raise ActivityFailed(f"no follower to target ({roles}); expected at least one "
                                 "master in role follower")
        name = (rng or random).choice(followers) if target == "random-follower" else followers[0]
        return name, "follower"
    return target, view.role(target)


def resolve_roles(targets: list[str], configuration: Any = None, secrets: Any = None,
                  rng: random.Random | None = None) -> dict[str, str]:
    """Resolve several targets now, all against one snapshot: ``{target: master name}``.

    No snapshot is taken (no master is asked) when ``targets`` is empty.
    """
    if not targets:
        return {}
    for target in targets:
        validate_target(target, configuration, secrets)
    view = snapshot(configuration, secrets)
    return {target: choose(view, target, rng)[0] for target in targets}


def resolve_target(target: str, configuration: Any = None, secrets: Any = None,
                   rng: random.Random | None = None) -> tuple[str, str | None, MasterView]:
    """Resolve ``leader``, ``follower``, ``random-follower`` or a name, now.

    Returns (master name, its role as reported, the snapshot used).
    """
    validate_target(target, configuration, secrets)
    view = snapshot(configuration, secrets)
    name, role = choose(view, target, rng)
    return name, role, view


CONTAINER_KINDS = _container.KINDS


def ledger_for(configuration: Any = None, secrets: Any = None) -> Any:
    """This run directory's fault ledger."""
    from chaosmoose.ledger import Ledger

    return Ledger(_settings.run_dir(configuration, secrets))


def faulted_masters(configuration: Any = None, secrets: Any = None,
                    kinds: tuple[str, ...] = CONTAINER_KINDS,
                    state: str | None = None, cut_off: bool = True) -> list[dict[str, Any]]:
    """Faults of this run that took a master out of service, in the order they were
    injected: faults of ``kinds`` on master containers and, with ``cut_off``, any fault that
    lists masters under ``cut_off`` (``[{"service", "role"}]``, e.g. a network partition
    that left them without a majority), one entry per master, shaped like a container
    fault (undo it through its own kind, never as a container fault)."""
    masters = _settings.masters(configuration, secrets)
    run = _settings.run_id(configuration, secrets)
    found = []
    for fault in ledger_for(configuration, secrets).faults(run=run, state=state):
        if fault.get("kind") in kinds and fault.get("target", {}).get("service") in masters:
            found.append(fault)
        for cut in (fault.get("cut_off") or []) if cut_off else []:
            if isinstance(cut, dict) and cut.get("service") in masters:
                found.append({**fault, "target": {"service": cut["service"]},
                              "role": cut.get("role")})
    return found
