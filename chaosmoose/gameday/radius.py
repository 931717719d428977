"""The plan's blast radius, checked before anything runs.

Each experiment of the plan is read (JSON or YAML) and its method, then its rollbacks, are
walked in the order one ``chaos run`` plays them, keeping the services each action leaves
down. The plan is refused (:func:`check_plan`, a :class:`PlanError` naming the experiment,
the activity and the limit) when one activity would leave more masters or chunkservers down
at once than the plan's ``blast_radius`` allows, or when an experiment's own configuration
or secrets set ``max_masters_down`` / ``max_chunkservers_down`` looser than the plan (the
fault guard reads those before the environment, so they would override the plan's limits
that :func:`limits_env` hands to each run).

What counts, as the live guard (``chaosmoose._faults.blast_radius_problem``) counts it:

- container faults (``kill_master``, ``stop_master``, ``pause_master``, ``restart_master``,
  ``kill_chunkserver``, ``stop_chunkserver``) leave their target down when their fault kind
  is registered under ``takes_down`` by a loaded family (``chaosmoose._families``);
- partitions (``isolate``, ``partition_halves``, ``partition_majorities_ring``, ``bridge``,
  ``cut``) leave down every master they leave without a majority of masters in direct
  reach (the ``cut_off`` masters the network family records), for the worst resolution of
  the roles they name;
- a fault with ``duration`` > 0 heals itself before the next activity, and so does every
  ``restart_master``, unless it runs in the background; the healing actions
  (``restart_killed``, ``unpause_paused``, ``start_chunkservers``, ``network.heal``,
  ``faults.undo_all_faults``) close what they heal.

A target resolved when the action fires (``leader``, ``random-follower``, ``random``)
counts as a new service every time (after the leader was killed, "the leader" is another
master), so the count is an upper bound; a named target counts once however often it is
hit. Activities outside these families (a ``process`` provider running ``docker kill``)
are not seen here; the watcher still sees their faults if they are in a ledger.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from chaoslib import substitute
from chaoslib.exceptions import ActivityFailed

from chaosmoose import _families, _settings
from chaosmoose.gameday.plan import Plan, PlanError

__all__: list[str] = []  # not an activity module

MASTERS, CHUNKSERVERS = "max_masters_down", "max_chunkservers_down"
NOUNS = {MASTERS: "masters", CHUNKSERVERS: "chunkservers"}
MASTER_ACTIONS = "chaosmoose.master.actions"
CHUNKSERVER_ACTIONS = "chaosmoose.chunkserver.actions"
NETWORK_ACTIONS = "chaosmoose.network.actions"
FAULTS_ACTIONS = "chaosmoose.faults.actions"
PARTITION_KIND = "network.partition"


def _held(arguments: Mapping[str, Any]) -> bool:
    """Whether a fault with these arguments heals itself (``duration`` > 0)."""
    try:
        return float(arguments.get("duration") or 0) > 0
    except (TypeError, ValueError):
        return False  # unparseable: count it as staying (the run will refuse it anyway)


@dataclass(frozen=True)
class ContainerFault:
    """An action that records a container fault on one master or chunkserver."""

    kind: str
    group: str
    transient: Callable[[Mapping[str, Any]], bool] = lambda arguments: False


@dataclass(frozen=True)
class Heal:
    """An action that closes open faults: of ``kinds`` (None: all) in ``group`` (None: any)."""

    group: str | None
    kinds: tuple[str, ...] | None

    def heals(self, down: Down) -> bool:
        """Whether this action closes ``down``."""
        return ((self.group is None or down.group == self.group)
                and (self.kinds is None or down.kind in self.kinds))


CONTAINER_FAULTS: dict[tuple[str, str], ContainerFault] = {
    (MASTER_ACTIONS, "kill_master"): ContainerFault("container.kill", MASTERS),
    (MASTER_ACTIONS, "stop_master"): ContainerFault("container.stop", MASTERS),
    (MASTER_ACTIONS, "pause_master"): ContainerFault("container.pause", MASTERS, _held),
    (MASTER_ACTIONS, "restart_master"): ContainerFault("container.restart", MASTERS,
                                                       lambda arguments: True),
    (CHUNKSERVER_ACTIONS, "kill_chunkserver"): ContainerFault("container.kill", CHUNKSERVERS),
    (CHUNKSERVER_ACTIONS, "stop_chunkserver"): ContainerFault("container.stop", CHUNKSERVERS),
}
PARTITIONS = ("isolate", "partition_halves", "partition_majorities_ring", "bridge", "cut")
HEALS: dict[tuple[str, str], Heal] = {
    (MASTER_ACTIONS, "restart_killed"): Heal(MASTERS, ("container.kill", "container.stop",
                                                       "container.restart")),
    (MASTER_ACTIONS, "unpause_paused"): Heal(MASTERS, ("container.pause",)),
    (CHUNKSERVER_ACTIONS, "start_chunkservers"): Heal(CHUNKSERVERS, ("container.kill",
                                                                     "container.stop")),
    (NETWORK_ACTIONS, "heal"): Heal(None, (PARTITION_KIND,)),
    (FAULTS_ACTIONS, "undo_all_faults"): Heal(None, None),
}
# actions of these modules that take nothing down (a test keeps the three tables complete)
NEUTRAL: dict[str, tuple[str, ...]] = {
    MASTER_ACTIONS: ("switchover",),
    CHUNKSERVER_ACTIONS: ("corrupt_chunk", "fail_disk", "fill_disk", "mark_disk_for_removal",
                          "set_storage_class", "undo_corruption", "undo_disk_faults"),
    NETWORK_ACTIONS: ("add_latency", "blackhole", "limit_bandwidth", "limit_data",
                      "reset_peer", "slice"),
}


@dataclass(frozen=True)
class Down:
    """One service an activity leaves down (``service`` is unique per run-time target)."""

    group: str      # MASTERS or CHUNKSERVERS: the limit it counts against
    service: str    # a configured name, or a run-time target made unique by its position
    kind: str       # the ledger fault kind
    activity: str   # the activity's name
    what: str       # for messages: "container.kill on leader"


@dataclass(frozen=True)
class Limit:
    """One limit an experiment runs with, and where it comes from."""

    value: int
    source: str  # "blast_radius.max_masters_down of the plan" or the experiment's own


def limits_env(radius: Mapping[str, int]) -> dict[str, str]:
    """The environment that hands the plan's limits to a ``chaos run``: the variables the
    fault guard's settings read (``CHAOSMOOSE_MAX_MASTERS_DOWN``, ...)."""
    return {_settings.SETTINGS[key].env: str(int(value)) for key, value in radius.items()}


def load_experiment(path: Path) -> dict[str, Any]:
    """The experiment file as a mapping; PlanError when it cannot be read."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise PlanError(f"cannot read experiment {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise PlanError(f"experiment {path} is not valid JSON/YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PlanError(f"experiment {path} is {type(data).__name__}; expected a mapping")
    return data


def _resolve_value(value: Any, env: Mapping[str, str]) -> Any:
    """A configuration or secret value as chaos would see it (``{"type": "env"}`` read from
    ``env``; ``None`` when unset without default)."""
    if isinstance(value, dict) and value.get("type") == "env":
        return env.get(str(value.get("key")), value.get("default"))
    return value


def resolved_configuration(experiment: Mapping[str, Any],
                           env: Mapping[str, str]) -> dict[str, Any]:
    """The experiment's configuration with environment references resolved."""
    raw = experiment.get("configuration") or {}
    return {k: _resolve_value(v, env) for k, v in raw.items()} if isinstance(raw, dict) else {}


def resolved_secrets(experiment: Mapping[str, Any],
                     env: Mapping[str, str]) -> dict[str, Any]:
    """The experiment's secrets (scopes of values) with environment references resolved."""
    raw = experiment.get("secrets") or {}
    if not isinstance(raw, dict):
        return {}
    return {scope: ({k: _resolve_value(v, env) for k, v in values.items()}
                    if isinstance(values, dict) else values) for scope, values in raw.items()}


def effective_limits(radius: Mapping[str, int], configuration: Mapping[str, Any],
                     secrets: Mapping[str, Any]) -> tuple[dict[str, Limit], list[str]]:
    """The limits the experiment's faults will run with, and why the plan refuses them.

    The guard reads secrets, then configuration, then the environment (where the plan's
    limits are), so an experiment that sets its own limit runs with it: a stricter one is
    kept, a looser or malformed one is a problem.
    """
    limits, problems = {}, []
    for key, planned in radius.items():
        own, where = _settings.secret_value(key, secrets), "secrets"
        if own is None:
            own, where = configuration.get(key), "configuration"
        if own is None:
            limits[key] = Limit(planned, f"blast_radius.{key} of the plan")
            continue
        try:
            value = _settings.parse_int(key, own)
        except ActivityFailed as exc:
            problems.append(f"its {where} sets {exc}")
            continue
        if value > planned:
            problems.append(f"its {where} sets {key}={value}, looser than the plan's "
                            f"blast_radius.{key}={planned}; lower it to {planned} or raise "
                            "the plan's limit")
            continue
        limits[key] = Limit(value, f"{key} in the experiment's {where}")
    return limits, problems


def activities(experiment: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(section, activity)`` of the method then the rollbacks, references resolved."""
    named: dict[str, dict[str, Any]] = {}
    hypothesis = experiment.get("steady-state-hypothesis")
    probes = (hypothesis.get("probes") or []) if isinstance(hypothesis, dict) else []
    for probe in probes:
        if isinstance(probe, dict) and probe.get("name"):
            named[probe["name"]] = probe
    for section in ("method", "rollbacks"):
        for item in experiment.get(section) or []:
            if not isinstance(item, dict):
                continue
            if "ref" in item:
                item = named.get(str(item["ref"]), {})
            elif item.get("name"):
                named[item["name"]] = item
            if item:
                yield section, item


def _defaults(module: str, func: str) -> dict[str, Any]:
    """The activity's argument defaults (from its signature)."""
    target = getattr(importlib.import_module(module), func)
    return {name: p.default for name, p in inspect.signature(target).parameters.items()
            if p.default is not inspect.Parameter.empty
            and name not in ("configuration", "secrets")}


def _role_assignments(roles: list[str], masters: tuple[str, ...]) -> Iterator[dict[str, str]]:
    """Every way the named roles can resolve: a leader, followers among the others."""
    if not roles:
        yield {}
        return
    for leader in masters:
        others = [m for m in masters if m != leader] or [leader]
        followers = [r for r in roles if r != "leader"]
        for picks in itertools.product(others, repeat=len(followers)):
            yield {"leader": leader, **dict(zip(followers, picks, strict=True))}


def _partition_downs(func: str, arguments: Mapping[str, Any], configuration: Mapping[str, Any],
                     secrets: Mapping[str, Any], name: str, position: int) -> list[Down]:
    """The masters a partition cuts off, for the worst resolution of its roles."""
    from chaosmoose.network import _plan
    from chaosmoose.network.actions import _cut_off_masters

    topo = _plan.topology(configuration, secrets)
    planner = getattr(_plan, func)
    accepted = inspect.signature(planner).parameters
    request = planner(topo, **{k: v for k, v in arguments.items() if k in accepted})
    roles = request.roles(topo)
    worst: list[str] = []
    refusals: list[ActivityFailed] = []
    for assignment in _role_assignments(roles, topo.masters):
        try:  # some resolutions may be refused when it fires (the leader outside ``nodes``)
            pairs, nodes = request.compile(topo, assignment)
        except ActivityFailed as exc:
            refusals.append(exc)
            continue
        cut = [c["service"] for c in _cut_off_masters(pairs, nodes, topo.masters, assignment)]
        worst = cut if len(cut) > len(worst) else worst
    if refusals and len(refusals) == len(list(_role_assignments(roles, topo.masters))):
        raise refusals[0]  # no resolution the activity would carry out
    if roles:  # which masters depends on the roles when it fires: each is a new one
        what = f"{request.kind} cutting off a master ({', '.join(roles)} resolved when it fires)"
        return [Down(MASTERS, f"master #{i} cut off by '{name}' (#{position})", PARTITION_KIND,
                     name, what) for i in range(1, len(worst) + 1)]
    return [Down(MASTERS, master, PARTITION_KIND, name, f"{master} cut off by {request.kind}")
            for master in worst]


def _container_downs(fault: ContainerFault, arguments: Mapping[str, Any],
                     configuration: Mapping[str, Any], secrets: Mapping[str, Any], name: str,
                     position: int) -> list[Down]:
    """The one master or chunkserver a container fault takes down (none when its kind
    is not registered as taking its target down)."""
    if fault.kind not in _families.TAKES_DOWN:
        return []
    target = str(arguments.get("target"))
    configured = (_settings.masters(configuration, secrets) if fault.group == MASTERS
                  else _settings.chunkservers(configuration, secrets))
    service = target if target in configured else f"{target} at '{name}' (#{position})"
    return [Down(fault.group, service, fault.kind, name, f"{fault.kind} on {target}")]


def downs_of(activity: Mapping[str, Any], configuration: Mapping[str, Any],
             secrets: Mapping[str, Any], position: int) -> tuple[list[Down], bool]:
    """What one activity leaves down, and whether it heals itself before the next one."""
    provider = activity.get("provider") or {}
    if activity.get("type") != "action" or provider.get("type") != "python":
        return [], False
    key = (str(provider.get("module")), str(provider.get("func")))
    name = str(activity.get("name") or provider.get("func"))
    if key not in CONTAINER_FAULTS and not (key[0] == NETWORK_ACTIONS and key[1] in PARTITIONS):
        return [], False
    given = substitute(provider.get("arguments") or {}, dict(configuration), dict(secrets))
    arguments = {**_defaults(*key), **(given if isinstance(given, dict) else {})}
    background = bool(activity.get("background"))
    if key in CONTAINER_FAULTS:
        fault = CONTAINER_FAULTS[key]
        downs = _container_downs(fault, arguments, configuration, secrets, name, position)
        return downs, fault.transient(arguments) and not background
    downs = _partition_downs(key[1], arguments, configuration, secrets, name, position)
    return downs, _held(arguments) and not background


def count(number: int, key: str) -> str:
    """``1 master``, ``2 chunkservers``."""
    noun = NOUNS[key]
    return f"{number} {noun.removesuffix('s') if number == 1 else noun}"


def _over(downs: list[Down], limits: Mapping[str, Limit]) -> tuple[str, Limit, list[Down]] | None:
    """The first limit ``downs`` exceed: (key, limit, the downs of that group)."""
    for key, limit in limits.items():
        group = [d for d in downs if d.group == key]
        if len({d.service for d in group}) > limit.value:
            return key, limit, group
    return None


def _activity_label(activity: Mapping[str, Any]) -> str:
    provider = activity.get("provider") or {}
    return (f"activity '{activity.get('name', '?')}' ({provider.get('module', '?')}."
            f"{provider.get('func', '?')})")


def walk(experiment: Mapping[str, Any], limits: Mapping[str, Limit],
         configuration: Mapping[str, Any], secrets: Mapping[str, Any]) -> str | None:
    """Play the method and rollbacks; why one activity exceeds a limit, or None."""
    _families.load_all()
    down: list[Down] = []
    for position, (section, activity) in enumerate(activities(experiment), 1):
        provider = activity.get("provider") or {}
        heal = HEALS.get((str(provider.get("module")), str(provider.get("func"))))
        if heal is not None and activity.get("type") == "action":
            down = [d for d in down if not heal.heals(d)]
            continue
        try:
            new, transient = downs_of(activity, configuration, secrets, position)
        except ActivityFailed as exc:
            return (f"{_activity_label(activity)} in its {section} cannot be judged: "
                    f"{str(exc).splitlines()[0]}")
        too_much = _over([*down, *new], limits)
        if too_much:
            key, limit, group = too_much
            seen: dict[str, str] = {}
            for d in group:
                seen.setdefault(d.service, f"{d.what} by '{d.activity}'")
            return (f"{_activity_label(activity)} in its {section} would leave "
                    f"{count(len(seen), key)} down at once ({'; '.join(seen.values())}); "
                    f"expected at most {limit.value} ({limit.source})")
        if not transient:
            down += new
    return None


def experiment_problem(path: Path, label: str, radius: Mapping[str, int],
                       env: Mapping[str, str]) -> str | None:
    """Why the plan refuses one experiment, naming it; None when it fits the radius."""
    experiment = load_experiment(path)
    configuration = resolved_configuration(experiment, env)
    secrets = resolved_secrets(experiment, env)
    where = f"blast radius: experiment {label} ({path.name})"
    limits, problems = effective_limits(radius, configuration, secrets)
    if problems:
        return f"{where}: {problems[0]}"
    why = walk(experiment, limits, configuration, secrets)
    return f"{where}: {why}" if why else None


def plan_problems(plan: Plan, env: Mapping[str, str]) -> list[str]:
    """One sentence per experiment of the plan that exceeds its blast radius."""
    run_env = {**env, **limits_env(plan.blast_radius)}
    problems, seen = [], set()
    for step in plan.steps:
        if step.path in seen:
            continue
        seen.add(step.path)
        problem = experiment_problem(step.path, f"'{step.name}'", plan.blast_radius, run_env)
        if problem:
            problems.append(problem)
    return problems


def check_plan(plan: Plan, env: Mapping[str, str]) -> None:
    """Refuse (PlanError, one line per experiment) a plan whose experiments exceed its
    blast radius; nothing has run yet."""
    problems = plan_problems(plan, env)
    if problems:
        raise PlanError("\n".join(problems))
