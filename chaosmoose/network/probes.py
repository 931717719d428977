"""Probes of the network through Toxiproxy: which toxics are active, whether a partition is
healed, whether the proxies answer, and the state of chosen links.

Probes with a ``raise_on_...`` switch raise ``ActivityFailed`` saying what was observed;
with the switch off they log it and return False (an unreachable Toxiproxy counts as a
failed check).
"""

import json
import logging

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosmoose import _settings
from chaosmoose._checks import fail as _fail
from chaosmoose._http import Reply, get_all
from chaosmoose.ledger import Ledger
from chaosmoose.master import _cluster
from chaosmoose.network import _family, _links, _loss, _plan, _toxiproxy

__all__ = [
    "active_toxics",
    "link_state",
    "loss_within_cut_window",
    "no_toxics_active",
    "partition_healed",
    "proxies_reachable",
]

logger = logging.getLogger("chaostoolkit")


def _describe(toxics: list[_toxiproxy.Toxic], limit: int = 5) -> str:
    shown = ", ".join(f"{t.type} {t.name} ({t.stream}) on {t.proxy}" for t in toxics[:limit])
    return shown + (f" and {len(toxics) - limit} more" if len(toxics) > limit else "")


def _all_toxics(configuration: Configuration, secrets: Secrets) -> list[_toxiproxy.Toxic]:
    proxies = _toxiproxy.client(configuration, secrets).proxies()
    return sorted((t for p in proxies.values() for t in p.toxics),
                  key=lambda t: (t.proxy, t.name))


def active_toxics(configuration: Configuration = None, secrets: Secrets = None) -> list:
    """Every toxic on every proxy of the Toxiproxy server.

    Returns ``[{"proxy", "name", "type", "stream", "toxicity", "attributes"}]`` sorted by
    proxy and name (empty when the network is clean). Fails when Toxiproxy does not answer.
    """
    return [t.as_dict() for t in _all_toxics(configuration, secrets)]


def no_toxics_active(raise_on_active: bool = True, configuration: Configuration = None,
                     secrets: Secrets = None) -> bool:
    """True when no proxy carries any toxic (ours or anyone's).

    A steady-state probe: with ``raise_on_active`` false a toxic (or an unreachable
    Toxiproxy) gives False and a log line naming it.
    """
    raise_on = _settings.parse_bool("raise_on_active", raise_on_active)
    try:
        toxics = _all_toxics(configuration, secrets)
    except _toxiproxy.ToxiproxyError as exc:
        return _fail(raise_on, str(exc))
    if toxics:
        return _fail(raise_on, f"{len(toxics)} toxics active ({_describe(toxics)}); "
                               "expected none")
    return True


def partition_healed(raise_on_partition: bool = True, configuration: Configuration = None,
                     secrets: Secrets = None) -> bool:
    """True when no partition is open in the ledger and no link carries a ``timeout`` toxic.

    Latency and other link toxics do not count (use ``no_toxics_active`` for those). With
    ``raise_on_partition`` false a partition gives False and a log line naming it.
    """
    raise_on = _settings.parse_bool("raise_on_partition", raise_on_partition)
    ledger = Ledger(_settings.run_dir(configuration, secrets))
    problems = [f"partition fault {f['id']} ({f['target'].get('service')}) is open in the "
                f"ledger since {f['at']}"
                for f in ledger.open_faults(kinds=[_family.PARTITION_KIND])]
    try:
        cutting = [t for t in _all_toxics(configuration, secrets) if t.type == "timeout"]
    except _toxiproxy.ToxiproxyError as exc:
        problems.append(str(exc))
        cutting = []
    if cutting:
        problems.append(f"{len(cutting)} timeout toxics cut links ({_describe(cutting)})")
    if problems:
        return _fail(raise_on, "; ".join(problems) + "; expected the partition healed")
    return True


def proxies_reachable(raise_on_unreachable: bool = True, configuration: Configuration = None,
                      secrets: Secrets = None) -> bool:
    """True when Toxiproxy answers, lists proxied links, and every one of them is enabled.

    With ``raise_on_unreachable`` false a failure gives False and a log line saying why.
    """
    raise_on = _settings.parse_bool("raise_on_unreachable", raise_on_unreachable)
    try:
        server = _toxiproxy.client(configuration, secrets)
        proxies = server.proxies()
    except _toxiproxy.ToxiproxyError as exc:
        return _fail(raise_on, str(exc))
    links = _links.links_of(proxies)
    if not links:
        return _fail(raise_on, f"Toxiproxy at {server.url} lists {len(proxies)} proxies, none "
                               "named <src>><dst>:<kind>; expected the cluster's links")
    disabled = [link.proxy for link in links if not proxies[link.proxy].enabled]
    if disabled:
        return _fail(raise_on, f"{len(disabled)} proxies are disabled ({', '.join(disabled[:5])}"
                               "); expected every link enabled")
    return True


def _state(proxy: _toxiproxy.Proxy) -> str:
    """disabled, cut (timeout on both streams), half-cut, degraded (other toxics) or clean."""
    if not proxy.enabled:
        return "disabled"
    cut_streams = {t.stream for t in proxy.toxics if t.type == "timeout" and t.toxicity >= 1.0}
    if cut_streams >= {"upstream", "downstream"}:
        return "cut"
    if cut_streams:
        return "half-cut"
    return "degraded" if proxy.toxics else "clean"


def link_state(link: str = "*", configuration: Configuration = None,
               secrets: Secrets = None) -> list:
    """The selected links with their proxies' state and toxics.

    ``link`` is a selector (``client-2>masters``, ``leader<>follower:raft``, a proxy name,
    ``*``); roles are resolved now. Returns ``[{"proxy", "src", "dst", "kind", "enabled",
    "listen", "upstream", "state", "toxics"}]`` where ``state`` is ``clean``, ``degraded``
    (some toxic), ``half-cut`` (one stream blackholed), ``cut`` or ``disabled``. Fails on a
    bad selector, one that matches no proxy, or an unreachable Toxiproxy.
    """
    topology = _plan.topology(configuration, secrets)
    selectors = _plan.link_state(topology, link)
    proxies = _toxiproxy.client(configuration, secrets).proxies()
    roles = _cluster.resolve_roles(_links.roles_in(selectors), configuration, secrets)
    chosen = _links.match(selectors, _links.links_of(proxies), topology, roles)
    return [{"proxy": c.proxy, "src": c.src, "dst": c.dst, "kind": c.kind,
             "enabled": proxies[c.proxy].enabled, "listen": proxies[c.proxy].listen,
             "upstream": proxies[c.proxy].upstream, "state": _state(proxies[c.proxy]),
             "toxics": [t.as_dict() for t in proxies[c.proxy].toxics]} for c in chosen]


def loss_within_cut_window(raise_on_outside: bool = True, configuration: Configuration = None,
                           secrets: Secrets = None) -> dict:
    """Check the documented loss bound of a leader cut off from its followers.

    For every partition of this run that cut the leader off (the ledger's ``cut_off``), the
    cut-off leader must have stopped serving (frozen or fenced, from its ``/status``
    ``serving_history``) within ``freeze_after + contact_check_interval + 0.1`` s of the
    cut being in place (``ttl - safety_margin`` + the check interval with the freeze off),
    and every write the checker found lost must lie inside such a window: invoked before
    the cut-off leader stopped serving and acknowledged after the cut began, less 0.25 s for
    its changelog line still on its way to the followers (a write in
    flight at the freeze may be acknowledged later, once the mount resent it to the new
    leader) (a write that came back incomplete, "corrupt" to the checker, is judged the
    same way). Run it after ``check_acknowledged_writes``. Returns ``{"valid", "lost",
    "corrupt", "outside", "windows", "problems"}`` (``lost`` counts both); assert ``outside`` with a ``[0, 0]`` range. Fails
    (with ``raise_on_outside``; off: logs, returns the report) when a window is longer than
    its bound or a lost write lies outside every window.
    """
    strict = _settings.parse_bool("raise_on_outside", raise_on_outside)
    from chaosmoose.workload.probes import checker_report

    report = checker_report(configuration, secrets)
    run = _settings.run_id(configuration, secrets)
    partitions = [f for f in Ledger(_settings.run_dir(configuration, secrets)).faults(
        run=run, kinds=[_family.PARTITION_KIND]) if f.get("cut_off")]
    masters = _settings.masters(configuration, secrets)
    replies = get_all(masters, "/status", _settings.http_timeout(configuration, secrets))
    histories, timing = {}, {}
    for name, reply in replies.items():
        if isinstance(reply, Reply) and reply.status == 200:
            histories[name] = reply.body.get("serving_history") or []
            timing[name] = reply.body.get("timing") or {}
    if report.get("lost", 0) < 0:
        raise ActivityFailed("the checker's verdict is unknown (lost = -1); expected counts "
                             "to judge the loss bound on")
    # A write the cut-off leader acknowledged may also come back incomplete (its file
    # created, its data not): "corrupt" to the checker, lost in part. Both are judged.
    damaged = [*(report.get("lost_ops") or []), *(report.get("corrupt_ops") or [])]
    result = _loss.judge(partitions, histories, timing, damaged)
    result["corrupt"] = len(report.get("corrupt_ops") or [])
    path = _settings.run_dir(configuration, secrets) / "loss-window.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    for window in result["windows"]:
        logger.info("cut of %s in place at %.3f; it %s %.3f s later (bound %.3f s)",
                    window["leader"], window["applied_t"], window["stopped_by"],
                    window["window_s"], window["bound_s"])
    logger.info("loss bound: %d lost writes, %d outside the cut windows",
                result["lost"], result["outside"])
    for op in result["outside_ops"]:
        logger.warning("lost outside every window: %s #%s (%s) acknowledged %+.3f s from the "
                       "cut's start, invoked %+.3f s from the leader's stop",
                       op.get("client"), op.get("seq"), op.get("f"),
                       op.get("acked_minus_cut_s", float("nan")),
                       op.get("invoked_minus_stop_s", float("nan")))
    if result["valid"] is False:
        _fail(strict, "; ".join(result["problems"]))
    return result
