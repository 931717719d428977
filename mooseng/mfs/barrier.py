"""The reply barrier's processes in a master container (docs/reply-barrier.md).

With ``MOOSENG_BARRIER`` on, the leader runs ``python -m mooseng.barrier proxy`` on the
public client port in front of mfsmaster (whose client port is then internal, on
127.0.0.1), and every follower runs ``python -m mooseng.barrier tap`` next to its
mfsmetalogger. This module only turns the settings into those command lines; the
:class:`~mooseng.mfs.controller.MfsController` starts and stops them.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mooseng import settings

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class BarrierConfig:
    """Everything the barrier and the tap of one master container need."""

    node: str
    ack_port: int = 9424
    internal_client_port: int = 9423
    router_ml_port: int = 9519
    router_ack_port: int = 9524
    quorum: int = 1
    hold_timeout: float = 10.0
    max_in_flight: int = 4
    tap_sync: str = "fsync"

    @classmethod
    def from_settings(cls, node: str, environ: Mapping[str, str] | None = None) -> BarrierConfig | None:
        """The configuration when ``MOOSENG_BARRIER`` is on, else None (plain daemons)."""
        def read(name: str) -> object:
            return settings.read(name, environ)

        if not read("MOOSENG_BARRIER"):
            return None
        return cls(node=node, ack_port=int(read("MOOSENG_BARRIER_ACK_PORT")),  # type: ignore[call-overload]
                   internal_client_port=int(read("MOOSENG_MFSMASTER_CLIENT_PORT")),  # type: ignore[call-overload]
                   router_ml_port=int(read("MOOSENG_ROUTER_ML_PORT")),  # type: ignore[call-overload]
                   router_ack_port=int(read("MOOSENG_ROUTER_ACK_PORT")),  # type: ignore[call-overload]
                   quorum=int(read("MOOSENG_BARRIER_QUORUM")),  # type: ignore[call-overload]
                   hold_timeout=float(read("MOOSENG_BARRIER_HOLD_TIMEOUT")),  # type: ignore[arg-type]
                   max_in_flight=int(read("MOOSENG_BARRIER_MAX_IN_FLIGHT")),  # type: ignore[call-overload]
                   tap_sync=str(read("MOOSENG_BARRIER_TAP_SYNC")))

    def problems(self, client_port: int, masters: list[str]) -> list[str]:
        """Why this configuration cannot work (empty when it can)."""
        errors = []
        ports = {"MOOSENG_MATOCL_PORT": client_port, "MOOSENG_BARRIER_ACK_PORT": self.ack_port,
                 "MOOSENG_MFSMASTER_CLIENT_PORT": self.internal_client_port}
        if len(set(ports.values())) < len(ports):
            errors.append("with MOOSENG_BARRIER on, " + ", ".join(f"{k}={v}" for k, v in ports.items())
                          + " must be three different ports")
        if self.router_ack_port == self.router_ml_port:
            errors.append(f"MOOSENG_ROUTER_ACK_PORT={self.router_ack_port} is also "
                          f"MOOSENG_ROUTER_ML_PORT; they must differ")
        followers = len(masters) - 1
        if self.quorum > followers:
            errors.append(f"MOOSENG_BARRIER_QUORUM={self.quorum} is more than the {followers} "
                          f"followers of MOOSENG_MASTERS; no reply could ever be released")
        return errors

    def proxy_argv(self, address: str, client_port: int, epoch: int) -> list[str]:
        """The leader's barrier: clients on ``address:client_port``, taps on the ack port,
        mfsmaster behind it on the loopback; ``epoch`` is the lease epoch it serves (acks
        from taps following another epoch are refused)."""
        return [sys.executable, "-m", "mooseng.barrier", "proxy",
                "--master", f"{LOOPBACK}:{self.internal_client_port}",
                "--listen", f"{address}:{client_port}",
                "--ack-listen", f"{address}:{self.ack_port}",
                "--quorum", str(self.quorum), "--hold-timeout", f"{self.hold_timeout:g}",
                "--max-in-flight", str(self.max_in_flight), "--epoch", str(epoch)]

    def tap_argv(self, address: str, folder: Path, data_path: Path, epoch: int) -> list[str]:
        """A follower's tap: the leader's changelog through the local router's metaloggers
        listener, acks through its acks listener (so a partition cuts both with the
        metalogger), files in ``folder``, anchored on the metalogger's DATA_PATH."""
        return [sys.executable, "-m", "mooseng.barrier", "tap",
                "--master", f"{address}:{self.router_ml_port}",
                "--ack", f"{address}:{self.router_ack_port}",
                "--folder", str(folder), "--anchor-dir", str(data_path),
                "--node", self.node, "--epoch", str(epoch), "--sync", self.tap_sync]
