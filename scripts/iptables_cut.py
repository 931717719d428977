"""Cut one master from others with iptables in the containers' network namespaces.

The kernel-level counterpart of ``chaosmoose.network.actions.isolate`` for comparison:
packets are dropped (TCP retransmits and times out) instead of Toxiproxy's ``timeout``
toxic holding data back on open connections. Needs root and ``nsenter`` and ``iptables``
on the host (each rule runs as ``nsenter -t <container pid> -n iptables -w -I ...``).

Every path between the cut master and another master is dropped where it can be told apart:

- direct (``MOOSENG_TOXIPROXY_HOST`` empty, or anything not proxied): in the cut master's
  namespace, every packet to and from the other master's addresses;
- through Toxiproxy (``<dialer>><dialed>:<kind>``, one listen port per link): in the
  *dialer's* namespace, packets to and from the proxy's address on that link's listen
  port. (In the dialed master's namespace the proxied packets come from the proxy's
  address to the service port, exactly like the clients' and chunkservers', so they are
  cut on the dialer's side.)

``raft_only`` keeps only the Raft paths (direct: TCP on the Raft port; proxied: the
``raft`` links). Rules are written to a JSON file before the first is inserted, so a run
killed half-way can be cleaned with :func:`remove_recorded` (``leader_isolation.py
--remove-iptables FILE``).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from chaosmoose import _docker
from chaosmoose.network import _links, _toxiproxy

RAFT_PORT = 9440  # MOOSENG_RAFT_PORT's default, for direct links (proxies name theirs)
TOXIPROXY_SERVICE = "toxiproxy"


@dataclass(frozen=True)
class Rule:
    """One DROP rule in ``node``'s network namespace (entered through process ``pid``)."""

    node: str
    pid: int
    chain: str  # INPUT or OUTPUT
    match: tuple[str, ...]

    def command(self, action: str) -> list[str]:
        """The host command that inserts (``-I``) or deletes (``-D``) the rule."""
        return ["nsenter", "-t", str(self.pid), "-n", "iptables", "-w", action, self.chain,
                *self.match, "-j", "DROP"]

    def as_dict(self) -> dict[str, Any]:
        """JSON form (what the record file holds)."""
        return {**asdict(self), "match": list(self.match)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rule:
        """A rule from its JSON form."""
        return cls(str(data["node"]), int(data["pid"]), str(data["chain"]),
                   tuple(str(m) for m in data["match"]))


def plan(cut: str, others: Sequence[str], pids: Mapping[str, int],
         addresses: Mapping[str, Sequence[str]], proxy_addresses: Sequence[str],
         links: Iterable[_links.Link], ports: Mapping[str, int], raft_only: bool = False,
         raft_port: int = RAFT_PORT) -> list[Rule]:
    """The DROP rules that cut master ``cut`` from ``others`` (pure; see the module).

    ``addresses``: each master's container addresses; ``proxy_addresses``: the proxy's;
    ``links`` and ``ports``: the proxied links and each proxy's listen port by name.
    """
    rules: list[Rule] = []
    for other in others:
        for address in addresses.get(other, ()):
            if raft_only:
                for port in ("--dport", "--sport"):
                    rules.append(Rule(cut, pids[cut], "OUTPUT",
                                      ("-d", address, "-p", "tcp", port, str(raft_port))))
                    rules.append(Rule(cut, pids[cut], "INPUT",
                                      ("-s", address, "-p", "tcp", port, str(raft_port))))
            else:
                rules.append(Rule(cut, pids[cut], "OUTPUT", ("-d", address)))
                rules.append(Rule(cut, pids[cut], "INPUT", ("-s", address)))
    pairs = {frozenset((cut, other)) for other in others}
    for link in sorted(links):
        if link.pair not in pairs or (raft_only and link.kind != "raft"):
            continue
        port = str(ports[link.proxy])
        for address in proxy_addresses:
            rules.append(Rule(link.src, pids[link.src], "OUTPUT",
                              ("-d", address, "-p", "tcp", "--dport", port)))
            rules.append(Rule(link.src, pids[link.src], "INPUT",
                              ("-s", address, "-p", "tcp", "--sport", port)))
    return rules


def container_addresses(container: Any) -> list[str]:
    """Every IP address of a container on its networks."""
    networks = (container.attrs.get("NetworkSettings") or {}).get("Networks") or {}
    return sorted({n["IPAddress"] for n in networks.values() if n.get("IPAddress")})


def port_of(address: str) -> int:
    """``0.0.0.0:20011`` or ``master-1:9440`` -> the port."""
    return int(address.rsplit(":", 1)[1])


def resolve(cut: str, others: Sequence[str], project: str, toxiproxy: _toxiproxy.Toxiproxy,
            raft_only: bool = False) -> list[Rule]:
    """Look up the containers, their addresses and the proxied links now; plan the rules.

    Fails (RuntimeError) when a master's container is not running.
    """
    pids: dict[str, int] = {}
    addresses: dict[str, list[str]] = {}
    for name in (cut, *others):
        container = _docker.find_container(project, name)
        container.reload()
        pid = int((container.attrs.get("State") or {}).get("Pid") or 0)
        if pid <= 0:
            raise RuntimeError(f"{name}'s container is {container.status}; expected it running")
        pids[name], addresses[name] = pid, container_addresses(container)
    proxies = toxiproxy.proxies()
    links = [link for link in _links.links_of(proxies)
             if link.pair in {frozenset((cut, o)) for o in others}]
    proxy_addresses: list[str] = []
    if links:
        proxy_addresses = container_addresses(_docker.find_container(project, TOXIPROXY_SERVICE))
    raft = [proxies[link.proxy].upstream for link in links if link.kind == "raft"]
    raft_port = port_of(raft[0]) if raft else RAFT_PORT
    return plan(cut, others, pids, addresses, proxy_addresses, links,
                {link.proxy: port_of(proxies[link.proxy].listen) for link in links},
                raft_only, raft_port)


def run(command: list[str]) -> None:
    """Run a host command; raise RuntimeError with its stderr when it fails."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    if done.returncode != 0:
        reason = (done.stderr or done.stdout).strip().splitlines()
        raise RuntimeError(f"{' '.join(command)} exited {done.returncode}: "
                           f"{reason[-1] if reason else 'no output'}")


class IptablesCut:
    """Insert rules (recorded in ``record`` first) and delete exactly those (idempotent)."""

    def __init__(self, rules: Sequence[Rule], record: Path) -> None:
        self.rules = list(rules)
        self.record = record
        self.inserted: list[Rule] = []

    def apply(self) -> dict[str, Any]:
        """Record, then insert every rule; on a failure delete what was inserted and raise."""
        self.record.parent.mkdir(parents=True, exist_ok=True)
        self.record.write_text(json.dumps([r.as_dict() for r in self.rules], indent=2))
        try:
            for rule in self.rules:
                run(rule.command("-I"))
                self.inserted.append(rule)
        except (RuntimeError, OSError, subprocess.SubprocessError):
            self.heal()
            raise
        return {"rules": len(self.rules), "record": str(self.record),
                "namespaces": sorted({r.node for r in self.rules})}

    def heal(self) -> dict[str, Any]:
        """Delete every inserted rule, newest first; raise RuntimeError naming those left."""
        errors = []
        for rule in reversed(list(self.inserted)):
            try:
                run(rule.command("-D"))
                self.inserted.remove(rule)
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                errors.append(str(exc))
        if errors:
            raise RuntimeError(f"{len(errors)} iptables rules still in place (recorded in "
                               f"{self.record}): {errors[0]}")
        return {"removed": len(self.rules)}


def remove_recorded(record: Path) -> list[str]:
    """Delete every rule of a record file; return the errors (a rule already gone errs too)."""
    errors = []
    for data in reversed(json.loads(record.read_text())):
        rule = Rule.from_dict(data)
        try:
            run(rule.command("-D"))
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            errors.append(str(exc))
    return errors
