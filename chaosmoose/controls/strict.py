"""Strict mode: make ``chaos run`` exit non-zero whenever the experiment did not really pass.

Chaos Toolkit 1.19 (chaostoolkit-lib 1.44) exits 1 only when the journal's status is not
``completed`` or the experiment deviated. It exits **0** when the steady state was missed
*before* the method (status ``completed``, ``deviated`` false, method skipped), when an
action of the method failed (a fault was not injected), and when a rollback failed. This
control turns each of those into ``status: failed`` (so ``chaos run`` exits 1) and lists
the reasons under ``journal["chaosmoose"]["strict"]["violations"]``.

Before the experiment it also runs a preflight, so bad input fails before anything touches
the cluster: malformed chaosmoose settings, a target that names no configured master, an
unreachable master API, or open faults left in the ledger by an earlier run (run
``chaosmoose cleanup``). A failed preflight interrupts the run (status ``interrupted``,
exit 1, no rollbacks: nothing was done).

Declare it in an experiment::

    "controls": [{"name": "chaosmoose-strict",
                  "provider": {"type": "python", "module": "chaosmoose.controls.strict"}}]

After the experiment, if Chaos Toolkit played no rollback (its default strategy skips them
when the run's status is ``failed``), it undoes the run's open faults from the ledger and
lists them under ``journal["chaosmoose"]["strict"]["healed"]``; set
``heal_on_skipped_rollbacks`` to false to keep faults in place for inspection.

Arguments (all optional, booleans): ``fail_on_missed_steady_state``,
``fail_on_failed_activity``, ``fail_on_failed_rollback``, ``preflight``,
``refuse_open_faults``, ``require_masters_reachable``, ``heal_on_skipped_rollbacks`` (all
default true).
"""

from __future__ import annotations

import logging
from typing import Any

from chaoslib import substitute
from chaoslib.exceptions import ActivityFailed, InterruptExecution
from chaoslib.types import Configuration, Experiment, Journal, Secrets

from chaosmoose import _faults, _settings
from chaosmoose._http import Reply, get_all
from chaosmoose.ledger import Ledger

logger = logging.getLogger("chaostoolkit")

__all__ = [
    "after_experiment_control",
    "before_experiment_control",
    "heal_skipped_rollbacks",
    "preflight_problems",
    "violations",
]

TARGET_ARGUMENTS = {"target", "to", "name"}


def _flag(name: str, value: Any) -> bool:
    try:
        return _settings.parse_bool(name, value)
    except ActivityFailed as exc:
        raise InterruptExecution(f"strict control: {exc}") from None


def _activities(experiment: Experiment) -> list[dict]:
    ssh = experiment.get("steady-state-hypothesis") or {}
    return [*ssh.get("probes", []), *experiment.get("method", []),
            *experiment.get("rollbacks", [])]


def _chunkserver_target_problems(activity: dict, chunkservers: list[str],
                                 configuration: Configuration, secrets: Secrets) -> list[str]:
    """A chunkserver action's ``target`` (or ``copy``) that names no configured chunkserver."""
    args = substitute((activity.get("provider") or {}).get("arguments") or {}, configuration,
                      secrets)
    problems = []
    for key, extra in (("target", {"random"}), ("copy", {"random", "first"})):
        if key in args and args[key] not in set(chunkservers) | extra:
            problems.append(f"activity {activity.get('name')!r}: {key}={args[key]!r} is not a "
                            f"configured chunkserver; expected one of "
                            f"{', '.join(sorted(set(chunkservers) | extra))}")
    return problems


def preflight_problems(experiment: Experiment, configuration: Configuration = None,
                       secrets: Secrets = None, refuse_open_faults: bool = True,
                       require_masters_reachable: bool = True) -> list[str]:
    """Everything wrong with the input, found without touching the cluster's state."""
    problems = _settings.validate_all(configuration, secrets)
    if problems:
        return problems
    masters = _settings.masters(configuration, secrets)
    from chaosmoose.master._cluster import ROLE_TARGETS

    chunkservers = _settings.chunkservers(configuration, secrets)
    for activity in _activities(experiment):
        provider = activity.get("provider") or {}
        if provider.get("type") == "python" and \
                str(provider.get("module", "")).startswith("chaosmoose.chunkserver"):
            problems += _chunkserver_target_problems(activity, chunkservers, configuration,
                                                     secrets)
            continue
        if provider.get("type") != "python" or \
                not str(provider.get("module", "")).startswith("chaosmoose.master"):
            continue
        args = substitute(provider.get("arguments") or {}, configuration, secrets)
        for key in TARGET_ARGUMENTS & set(args):
            value = args[key]
            allowed = set(masters) | (set(ROLE_TARGETS) if key == "target" else set())
            if key == "to" and value == "":
                continue
            if value not in allowed:
                problems.append(
                    f"activity {activity.get('name')!r}: {key}={value!r} is not a configured "
                    f"master; expected one of {', '.join(sorted(allowed))}")
    if refuse_open_faults:
        ledger = Ledger(_settings.run_dir(configuration, secrets))
        open_faults = ledger.open_faults()
        if open_faults:
            listed = ", ".join(f"{f['kind']} on {f['target'].get('service')} since {f['at']}"
                               for f in open_faults[:5])
            problems.append(f"{len(open_faults)} open faults in {ledger.path} ({listed}); "
                            "expected none: run `chaosmoose cleanup` first")
    if require_masters_reachable:
        replies = get_all(masters, "/status", _settings.http_timeout(configuration, secrets))
        for reply in replies.values():
            if not isinstance(reply, Reply):
                problems.append(str(reply))
    return problems


def before_experiment_control(context: Experiment, configuration: Configuration = None,
                              secrets: Secrets = None, preflight: bool = True,
                              refuse_open_faults: bool = True,
                              require_masters_reachable: bool = True,
                              **_flags: Any) -> None:
    """Preflight: interrupt the run (exit 1, nothing touched) when the input is bad."""
    if not _flag("preflight", preflight):
        return
    try:
        problems = preflight_problems(context, configuration, secrets,
                                      _flag("refuse_open_faults", refuse_open_faults),
                                      _flag("require_masters_reachable",
                                            require_masters_reachable))
    except InterruptExecution:
        raise
    except Exception as exc:  # noqa: BLE001 - chaoslib would swallow it and carry on: stop instead
        problems = [f"preflight crashed: {exc.__class__.__name__}: {exc}"]
    if problems:
        for problem in problems:
            logger.error("preflight: %s", problem)
        raise InterruptExecution("preflight failed: " + "; ".join(problems))
    logger.info("chaosmoose preflight passed (settings, targets, ledger, master APIs)")


def violations(journal: Journal, fail_on_missed_steady_state: bool = True,
               fail_on_failed_activity: bool = True,
               fail_on_failed_rollback: bool = True) -> list[str]:
    """What makes this journal a failure in strict mode, one sentence each."""
    found = []
    before = (journal.get("steady_states") or {}).get("before")
    if fail_on_missed_steady_state and before and before.get("steady_state_met") is False:
        missed = [p["activity"].get("name") for p in before.get("probes", [])
                  if not p.get("tolerance_met", True) or p.get("status") != "succeeded"]
        found.append(f"steady state missed before the method ({', '.join(missed)}); "
                     "expected it to hold")
    if fail_on_failed_activity:
        for run in journal.get("run") or []:
            if run.get("status") == "failed":
                found.append(f"method activity {run['activity'].get('name')!r} failed: "
                             f"{str(run.get('exception', ['?'])[-1]).strip()}")
    if fail_on_failed_rollback:
        for run in journal.get("rollbacks") or []:
            if run.get("status") == "failed":
                found.append(f"rollback {run['activity'].get('name')!r} failed: "
                             f"{str(run.get('exception', ['?'])[-1]).strip()}")
    return found


def heal_skipped_rollbacks(state: Journal, configuration: Configuration = None,
                           secrets: Secrets = None) -> list[dict[str, Any]]:
    """Undo this run's open faults when Chaos Toolkit played no rollback.

    With its default strategy Chaos Toolkit skips the rollbacks of a run whose status is
    ``failed`` (for instance a probe of the steady state after the method raised), which
    would leave a killed chunkserver down or a corrupted chunk in place. The ledger knows
    what this run did, so heal it here. Returns one result per fault (empty when the
    rollbacks ran or nothing is open).
    """
    if state.get("rollbacks"):
        return []
    ledger = Ledger(_settings.run_dir(configuration, secrets))
    run = _settings.run_id(configuration, secrets)
    if not ledger.open_faults(run=run):
        return []
    logger.warning("strict mode: no rollback was played (status %s); undoing this run's open "
                   "faults from the ledger", state.get("status"))
    return _faults.undo_open(ledger, run=run)


def after_experiment_control(context: Experiment, state: Journal,
                             configuration: Configuration = None, secrets: Secrets = None,
                             fail_on_missed_steady_state: bool = True,
                             fail_on_failed_activity: bool = True,
                             fail_on_failed_rollback: bool = True,
                             heal_on_skipped_rollbacks: bool = True,
                             **_flags: Any) -> None:
    """Mark the journal failed when strict mode finds a violation (``chaos run`` exits 1);
    undo the run's faults if no rollback was played."""
    healed: list[dict[str, Any]] = []
    if _flag("heal_on_skipped_rollbacks", heal_on_skipped_rollbacks):
        healed = heal_skipped_rollbacks(state, configuration, secrets)
    found = violations(state, _flag("fail_on_missed_steady_state", fail_on_missed_steady_state),
                       _flag("fail_on_failed_activity", fail_on_failed_activity),
                       _flag("fail_on_failed_rollback", fail_on_failed_rollback))
    found += [f"could not undo {h['kind']} on {h['service']}: {h['error']}" for h in healed
              if not h["undone"]]
    state.setdefault("chaosmoose", {})["strict"] = {"violations": found, "healed": healed}
    if not found:
        return
    for item in found:
        logger.error("strict mode: %s", item)
    if state.get("status") == "completed":
        state["status"] = "failed"
        logger.error("strict mode: experiment marked failed (%d violations)", len(found))
