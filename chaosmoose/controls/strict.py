"""Strict mode: make ``chaos run`` exit non-zero whenever the experiment did not really pass.

Chaos Toolkit 1.19 (chaostoolkit-lib 1.44) exits 1 only when the journal's status is not
``completed`` or the experiment deviated. It exits **0** when the steady state was missed
*before* the method (status ``completed``, ``deviated`` false, method skipped), when an
action of the method failed (a fault was not injected), and when a rollback failed. This
control turns each of those into ``status: failed`` (so ``chaos run`` exits 1) and lists
the reasons under ``journal["chaosmoose"]["strict"]["violations"]``.

Before the experiment it also runs a preflight, so bad input fails before anything touches
the cluster: malformed chaosmoose settings, an activity argument that does not fit the
activity's signature, type hints or documented choices (``chaosmoose._arguments``) or that
its fault family's checks reject (a target that names no configured master, a partition
naming an unknown node: each family registers its own checks, see
``chaosmoose._families``), a fault family that fails to load, an unreachable master API,
or open faults left in any run's ledger (every ``faults.jsonl`` below the runs directory;
run ``chaosmoose cleanup``). A failed preflight interrupts the run (status
``interrupted``, exit 1, no rollbacks: nothing was done).

Declare it in an experiment::

    "controls": [{"name": "chaosmoose-strict",
                  "provider": {"type": "python", "module": "chaosmoose.controls.strict"}}]

The control's own arguments are checked when Chaos Toolkit validates the experiment
(``validate_control``) and again at preflight: an unknown argument (a misspelled flag) or a
value that is not a boolean makes the experiment invalid instead of silently switching a
check off, and so does a Chaos Toolkit control flag that would keep this control from
running everywhere (``automatic`` that is false or not a boolean, any ``scope``).

During the method it stops injecting: once a method action has failed (a fault was not
injected) or the process got SIGTERM or SIGHUP (Chaos Toolkit turns SIGTERM inside an
activity into a failed activity and goes on; SIGHUP would kill the run without healing),
the next method activity interrupts the run instead of starting (``journal["chaosmoose"]
["strict"]["stopped"]`` says why). Rollbacks still run as the rollback strategy says.

After the experiment, whatever the rollbacks did (none played, some cut short, all
failed), it undoes every fault of this run still open in the ledger and lists them under
``journal["chaosmoose"]["strict"]["healed"]``; set ``heal_open_faults`` to false to keep
faults in place for inspection (``chaosmoose cleanup`` heals them later).

Last, it stores the run's evidence in its run directory (``chaosmoose.report.evidence``):
the report's Prometheus series and the collected log lines of the run's window under
``evidence/``, so that ``chaosmoose report`` renders the run later, offline or elsewhere.
This is best effort: a source that cannot be read is recorded in
``evidence/manifest.json`` and ``journal["chaosmoose"]["evidence"]``, logged as a warning,
and never fails the run. ``store_evidence`` false skips it.

Arguments (all optional, booleans, default true): ``fail_on_missed_steady_state``,
``fail_on_failed_activity``, ``fail_on_failed_rollback``, ``preflight``,
``refuse_open_faults``, ``require_masters_reachable``, ``stop_on_failed_injection``,
``stop_on_signal``, ``heal_open_faults``, ``store_evidence``.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chaoslib import substitute
from chaoslib.exceptions import ActivityFailed, InterruptExecution, InvalidActivity
from chaoslib.types import Activity, Configuration, Control, Experiment, Journal, Run, Secrets

from chaosmoose import _families, _faults, _settings
from chaosmoose._http import Reply, get_all
from chaosmoose.ledger import Ledger

logger = logging.getLogger("chaostoolkit")

__all__ = [
    "FLAGS",
    "after_activity_control",
    "after_experiment_control",
    "after_method_control",
    "before_activity_control",
    "before_experiment_control",
    "before_method_control",
    "control_problems",
    "heal_open_faults",
    "preflight_problems",
    "store_evidence",
    "validate_control",
    "violations",
]

# Every argument of the control, with its default (all booleans).
FLAGS = {
    "fail_on_missed_steady_state": True,
    "fail_on_failed_activity": True,
    "fail_on_failed_rollback": True,
    "preflight": True,
    "refuse_open_faults": True,
    "require_masters_reachable": True,
    "stop_on_failed_injection": True,
    "stop_on_signal": True,
    "heal_open_faults": True,
    "store_evidence": True,
}
STOP_SIGNALS = ("SIGTERM", "SIGHUP")


@dataclass
class _Run:
    """What the control knows about the running experiment (one ``chaos run`` process)."""

    in_method: bool = False
    stop_reason: str | None = None
    stopped: list[str] = field(default_factory=list)
    previous_handlers: dict[int, Any] = field(default_factory=dict)


_run = _Run()


def control_problems(arguments: Mapping[str, Any], control: Control | None = None) -> list[str]:
    """What is wrong with the control's declaration: unknown or non-boolean arguments, and
    Chaos Toolkit control flags that would keep it from running at every level.

    A value still holding a ``${...}`` placeholder is checked after substitution (at
    preflight), not here.
    """
    problems = [f"unknown argument {name!r}; expected one of {', '.join(FLAGS)}"
                for name in arguments if name not in FLAGS]
    for name, value in arguments.items():
        if name not in FLAGS or (isinstance(value, str) and "${" in value):
            continue
        try:
            _settings.parse_bool(name, value)
        except ActivityFailed as exc:
            problems.append(str(exc))
    control = control or {}
    if "automatic" in control and not isinstance(control["automatic"], bool):
        problems.append(f"automatic={control['automatic']!r} is invalid; expected true or "
                        "false (a JSON boolean)")
    elif control.get("automatic") is False:
        problems.append("automatic=false skips strict mode around every activity and the "
                        "method; expected true or no automatic (the control acts everywhere)")
    if control.get("scope"):
        problems.append(f"scope={control['scope']!r} runs only half of strict mode; expected "
                        "no scope (the control acts before and after)")
    return problems


def validate_control(control: Control) -> None:
    """Chaos Toolkit's validation hook: reject a bad declaration before the run starts."""
    problems = control_problems((control.get("provider") or {}).get("arguments") or {}, control)
    if problems:
        raise InvalidActivity(f"control {control.get('name', 'chaosmoose-strict')!r}: "
                              + "; ".join(problems))


def _flags(arguments: Mapping[str, Any]) -> dict[str, bool]:
    """Every flag, parsed; a malformed one counts as true (the strict choice)."""
    parsed = dict(FLAGS)
    for name, value in arguments.items():
        if name in FLAGS:
            try:
                parsed[name] = _settings.parse_bool(name, value)
            except ActivityFailed:
                parsed[name] = True
    return parsed


def _activities(experiment: Experiment) -> list[dict]:
    ssh = experiment.get("steady-state-hypothesis") or {}
    return [*ssh.get("probes", []), *experiment.get("method", []),
            *experiment.get("rollbacks", [])]


def _argument_problems(activity: dict, configuration: Configuration,
                       secrets: Secrets) -> list[str]:
    """What the fault families' argument checks find wrong with one activity."""
    provider = activity.get("provider") or {}
    module = str(provider.get("module", ""))
    if provider.get("type") != "python" or not module.startswith("chaosmoose."):
        return []
    args = substitute(provider.get("arguments") or {}, configuration, secrets)
    return [f"activity {activity.get('name')!r}: {problem}"
            for problem in _families.argument_problems(module, str(provider.get("func", "")),
                                                       args, configuration, secrets)]


def _open_fault_problems(configuration: Configuration, secrets: Secrets) -> list[str]:
    """Faults left open in any run's ledger (each named with its run), as one problem."""
    found = []
    for ledger in _faults.every_ledger(configuration, secrets):
        found += [_faults.describe(ledger, fault) for fault in ledger.open_faults()]
        for problem in ledger.problems:
            logger.warning("preflight: ledger %s", problem)
    if not found:
        return []
    more = f", and {len(found) - 5} more" if len(found) > 5 else ""
    listed = "; ".join(found[:5]) + more
    return [f"{len(found)} open faults ({listed}); expected none: run `chaosmoose cleanup` first"]


def preflight_problems(experiment: Experiment, configuration: Configuration = None,
                       secrets: Secrets = None, refuse_open_faults: bool = True,
                       require_masters_reachable: bool = True) -> list[str]:
    """Everything wrong with the input, found without touching the cluster's state."""
    problems = _settings.validate_all(configuration, secrets)
    if problems:
        return problems
    _families.load_all()
    problems += _families.load_problems()
    for activity in _activities(experiment):
        problems += _argument_problems(activity, configuration, secrets)
    if refuse_open_faults:
        problems += _open_fault_problems(configuration, secrets)
    if require_masters_reachable:
        masters = _settings.masters(configuration, secrets)
        replies = get_all(masters, "/status", _settings.http_timeout(configuration, secrets))
        for reply in replies.values():
            if not isinstance(reply, Reply):
                problems.append(str(reply))
    return problems


def before_experiment_control(context: Experiment, configuration: Configuration = None,
                              secrets: Secrets = None, **arguments: Any) -> None:
    """Check the control's arguments, arm the signal handlers, then run the preflight:
    interrupt the run (exit 1, nothing touched) when the input is bad."""
    global _run
    _run = _Run()
    own = control_problems(arguments)
    if own:
        for problem in own:
            logger.error("strict control: %s", problem)
        raise InterruptExecution("strict control: " + "; ".join(own))
    flags = _flags(arguments)
    if flags["stop_on_signal"]:
        _arm_signals()
    if not flags["preflight"]:
        return
    try:
        problems = preflight_problems(context, configuration, secrets,
                                      flags["refuse_open_faults"],
                                      flags["require_masters_reachable"])
    except InterruptExecution:
        raise
    except Exception as exc:  # noqa: BLE001 - chaoslib would swallow it and carry on: stop instead
        problems = [f"preflight crashed: {exc.__class__.__name__}: {exc}"]
    if problems:
        for problem in problems:
            logger.error("preflight: %s", problem)
        raise InterruptExecution("preflight failed: " + "; ".join(problems))
    logger.info("chaosmoose preflight passed (settings, arguments, ledgers, master APIs)")


def _arm_signals() -> None:
    """Note SIGTERM/SIGHUP (so no later method activity starts), then do what was done
    before: Chaos Toolkit's SIGTERM handler interrupts; SIGHUP interrupts too, instead of
    killing the process with its faults in place."""
    if threading.current_thread() is not threading.main_thread():
        return
    for name in STOP_SIGNALS:
        number = getattr(signal, name, None)
        if number is None:
            continue
        previous = signal.getsignal(number)
        _run.previous_handlers[number] = previous

        def handler(signum: int, frame: Any, _previous: Any = previous,
                    _name: str = name) -> None:
            _stop(f"{_name} received")
            if callable(_previous):
                _previous(signum, frame)
            raise InterruptExecution(f"{_name} signal received")

        signal.signal(number, handler)


def _disarm_signals() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    for number, previous in _run.previous_handlers.items():
        signal.signal(number, previous if previous is not None else signal.SIG_DFL)
    _run.previous_handlers.clear()


def _stop(reason: str) -> None:
    if _run.stop_reason is None:
        _run.stop_reason = reason
        logger.error("strict mode: %s; no further method activity will start", reason)


def before_method_control(context: Experiment, **arguments: Any) -> None:
    """The method starts: from now on a failed action or a signal stops it."""
    _run.in_method = True


def after_method_control(context: Experiment, **arguments: Any) -> None:
    """The method is over (rollbacks are not stopped)."""
    _run.in_method = False


def before_activity_control(context: Activity, **arguments: Any) -> None:
    """Refuse to start a method activity once injecting has been stopped."""
    if _run.in_method and _run.stop_reason:
        message = (f"strict mode: not starting {context.get('name')!r}: "
                   f"{_run.stop_reason}")
        _run.stopped.append(context.get("name"))
        raise InterruptExecution(message)


def after_activity_control(context: Activity, state: Run = None, **arguments: Any) -> None:
    """A failed method action (a fault not injected) stops the method."""
    flags = _flags(arguments)
    if (_run.in_method and flags["stop_on_failed_injection"] and state
            and state.get("status") == "failed" and context.get("type") == "action"):
        _stop(f"method action {context.get('name')!r} failed")


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


def heal_open_faults(state: Journal, configuration: Configuration = None,
                     secrets: Secrets = None) -> list[dict[str, Any]]:
    """Undo every fault of this run still open in the ledger, whatever the rollbacks did.

    Chaos Toolkit plays no rollback with its default strategy when the run's status is
    ``failed`` or ``interrupted``, a signal cuts rollbacks short, and a rollback may simply
    fail; the ledger knows what this run did, so heal it here. Returns one result per
    fault (empty when nothing is open).
    """
    ledger = Ledger(_settings.run_dir(configuration, secrets))
    run = _settings.run_id(configuration, secrets)
    if not ledger.open_faults(run=run):
        return []
    logger.warning("strict mode: this run's faults are still open after the rollbacks "
                   "(status %s, %d rollbacks played); undoing them from the ledger",
                   state.get("status"), len(state.get("rollbacks") or []))
    return _faults.undo_open(ledger, run=run)


def store_evidence(state: Journal, configuration: Configuration = None,
                   secrets: Secrets = None) -> dict[str, Any]:
    """Store this run's Prometheus series and log lines in its run directory's
    ``evidence/`` (best effort: never raises). Returns what the journal records: the
    evidence folder and one error per section that could not be stored."""
    from chaosmoose.report import collect, evidence

    try:
        run_dir = _settings.run_dir(configuration, secrets)
        start, end = collect.epoch(state.get("start")), collect.epoch(state.get("end"))
        if start is None:
            raise ValueError("the journal has no start time; expected one from chaos run")
        manifest = evidence.store_from_lab(run_dir, start, end if end is not None else start,
                                           "chaosmoose strict control after the experiment",
                                           configuration, secrets)
    except Exception as exc:  # noqa: BLE001 - evidence is best effort, never fails the run
        error = f"{exc.__class__.__name__}: {exc}"
        logger.warning("event=evidence_not_stored error=%s", error)
        return {"folder": None, "errors": {"evidence": error}}
    errors = {name: manifest[name]["error"] for name in ("series", "logs", "histories")
              if (manifest.get(name) or {}).get("error")}
    return {"folder": str(evidence.folder_of(run_dir)), "errors": errors}


def after_experiment_control(context: Experiment, state: Journal,
                             configuration: Configuration = None, secrets: Secrets = None,
                             **arguments: Any) -> None:
    """Undo this run's open faults; mark the journal failed when strict mode finds a
    violation (``chaos run`` exits 1); store the run's evidence in its run directory.
    Never raises: Chaos Toolkit would ignore it."""
    _disarm_signals()
    flags = _flags(arguments)
    found = [f"strict control: {p}" for p in control_problems(arguments)]
    healed: list[dict[str, Any]] = []
    if flags["heal_open_faults"]:
        try:
            healed = heal_open_faults(state, configuration, secrets)
        except Exception as exc:  # noqa: BLE001 - report, never let chaoslib swallow it
            found.append(f"healing open faults crashed: {exc.__class__.__name__}: {exc}")
    found += violations(state, flags["fail_on_missed_steady_state"],
                        flags["fail_on_failed_activity"], flags["fail_on_failed_rollback"])
    found += [f"could not undo {h['kind']} on {h['service']}: {h['error']}" for h in healed
              if not h["undone"]]
    if _run.stop_reason:
        found.append(f"method stopped ({_run.stop_reason}); not started: "
                     f"{', '.join(map(repr, _run.stopped)) or 'nothing left'}")
    if flags["store_evidence"]:
        state.setdefault("chaosmoose", {})["evidence"] = store_evidence(state, configuration,
                                                                       secrets)
    state.setdefault("chaosmoose", {})["strict"] = {
        "violations": found, "healed": healed,
        "stopped": {"reason": _run.stop_reason, "not_started": _run.stopped}}
    if not found:
        return
    for item in found:
        logger.error("strict mode: %s", item)
    if state.get("status") == "completed":
        state["status"] = "failed"
        logger.error("strict mode: experiment marked failed (%d violations)", len(found))
