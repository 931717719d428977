"""Game-day plans: which experiments, how often, with what pauses.

A plan is a YAML or JSON file::

    title: Storage team game day
    pause_between: 10          # seconds between two experiments (default 10)
    stop_on_failure: false     # stop the session at the first experiment that fails
    experiments:
      - experiments/leader-loss.json
      - path: experiments/chunk-corruption.json
        repeat: 2
        name: bit rot          # shown in the live view and the report
    halt:                      # stop the session when one holds (optional)
      - {when: no_leader, for: 20}                          # no master serves /leader 20 s
      - {when: alert_firing, alert: MooseNGNoLeader, for: 60}   # a Prometheus alert firing
      - {when: write_gap, above: 30}   # some client without an acknowledged write > 30 s
      - {when: write_lost}             # a run's checker found an acknowledged write lost
    targets:                   # what the score measures against (optional, defaults shown)
      recovery_s: 30           # longest wait of a recovery probe (waited_s)
      detection_s: null        # fault applied -> first new alert firing; null: not scored
      write_gap_grace_s: 5     # a client's write gap up to this costs nothing
      write_gap_budget_s: 60   # ... and this much more beyond the grace costs everything
    blast_radius:              # what the session may break at once (optional, defaults shown)
      max_masters_down: 1      # masters down at once (killed, stopped, paused, cut off)
      max_chunkservers_down: 1 # chunkservers down at once (killed, stopped, paused)

Paths are relative to the plan file's folder, then to the current directory.
``no_leader``, ``alert_firing`` and ``write_gap`` are watched every second while a run
goes on; ``write_lost`` is judged when a run's checker result is in (``check.json``).

``blast_radius`` is enforced three times (see ``chaosmoose.gameday.radius``): before
anything runs, each experiment's method and rollbacks are read and the plan is refused if
one would take more down at once, or if an experiment's own configuration or secrets set a
looser limit; each ``chaos run`` gets the limits as ``CHAOSMOOSE_MAX_MASTERS_DOWN`` /
``CHAOSMOOSE_MAX_CHUNKSERVERS_DOWN`` so the fault guard refuses any fault beyond them; and
the watcher halts the session when the faults open in the ledgers exceed them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from chaoslib.exceptions import ActivityFailed

from chaosmoose.gameday.score import DEFAULT_TARGETS

__all__: list[str] = []  # not an activity module


class PlanError(ActivityFailed):
    """The plan file is malformed; nothing was run."""


# each halt kind: {key: (required, description)} besides ``when``
HALT_KINDS: dict[str, dict[str, tuple[bool, str]]] = {
    "no_leader": {"for": (True, "seconds > 0 without any master serving /leader")},
    "alert_firing": {"alert": (True, "the name of a Prometheus alert, e.g. MooseNGNoLeader"),
                     "for": (True, "seconds > 0 the alert keeps firing")},
    "write_gap": {"above": (True, "seconds > 0 one client goes without an acknowledged write")},
    "write_lost": {},
}
TARGETS = DEFAULT_TARGETS
# the plan's blast radius: the fault guard's settings (chaosmoose._settings), same keys
DEFAULT_BLAST_RADIUS: dict[str, int] = {"max_masters_down": 1, "max_chunkservers_down": 1}


@dataclass(frozen=True)
class Halt:
    """One halt condition of the plan."""

    when: str
    seconds: float = 0.0   # ``for`` of no_leader / alert_firing, ``above`` of write_gap
    alert: str = ""

    def describe(self) -> str:
        """``no leader for 20 s`` and the like."""
        return {"no_leader": f"no leader for {self.seconds:g} s",
                "alert_firing": f"alert {self.alert} firing for {self.seconds:g} s",
                "write_gap": f"a client without an acknowledged write for over {self.seconds:g} s",
                "write_lost": "an acknowledged write lost or corrupt"}[self.when]


@dataclass(frozen=True)
class Step:
    """One experiment run of the session."""

    index: int
    name: str
    path: Path


@dataclass(frozen=True)
class Plan:
    """A parsed plan."""

    title: str
    steps: list[Step]
    pause_between: float
    stop_on_failure: bool
    halts: tuple[Halt, ...] = ()
    targets: dict[str, float | None] = field(default_factory=lambda: dict(TARGETS))
    blast_radius: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_BLAST_RADIUS))


def _resolve(raw: str, base: Path) -> Path:
    for candidate in (base / raw, Path(raw)):
        if candidate.is_file():
            return candidate.resolve()
    raise PlanError(f"experiment {raw!r} not found (looked in {base} and the current directory)")


def _seconds(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value > 0


def parse_halts(entries: Any) -> tuple[Halt, ...]:
    """The plan's ``halt`` list; PlanError naming the first bad entry."""
    if entries is None:
        return ()
    kinds = ", ".join(HALT_KINDS)
    if not isinstance(entries, list):
        raise PlanError(f"halt={entries!r} is invalid; expected a list of {{when: ...}} with "
                        f"when one of {kinds}")
    halts = []
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or entry.get("when") not in HALT_KINDS:
            got = entry.get("when") if isinstance(entry, dict) else entry
            raise PlanError(f"halt #{number}: when={got!r} is invalid; expected one of {kinds}")
        when = entry["when"]
        keys = HALT_KINDS[when]
        extra = set(entry) - {"when", *keys}
        if extra:
            allowed = ", ".join(keys) or "nothing besides when"
            raise PlanError(f"halt #{number} ({when}): unknown keys {', '.join(sorted(extra))}; "
                            f"expected {allowed}")
        for key, (required, meaning) in keys.items():
            value = entry.get(key)
            if value is None and not required:
                continue
            ok = (isinstance(value, str) and bool(value.strip())) if key == "alert" \
                else _seconds(value)
            if not ok:
                raise PlanError(f"halt #{number} ({when}): {key}={value!r} is invalid; "
                                f"expected {meaning}")
        seconds = float(entry.get("for") or entry.get("above") or 0.0)
        halts.append(Halt(when, seconds, str(entry.get("alert") or "").strip()))
    return tuple(halts)


def parse_targets(data: Any) -> dict[str, float | None]:
    """The plan's ``targets`` merged over the defaults; PlanError naming a bad one."""
    if data is None:
        return dict(TARGETS)
    if not isinstance(data, dict):
        raise PlanError(f"targets={data!r} is invalid; expected a mapping of "
                        f"{', '.join(TARGETS)}")
    extra = set(data) - set(TARGETS)
    if extra:
        raise PlanError(f"targets: unknown keys {', '.join(sorted(extra))}; expected "
                        f"{', '.join(TARGETS)}")
    targets = dict(TARGETS)
    for key, value in data.items():
        if key == "detection_s" and value is None:
            targets[key] = None
            continue
        zero_ok = key == "write_gap_grace_s"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 \
                or (value == 0 and not zero_ok):
            raise PlanError(f"targets: {key}={value!r} is invalid; expected seconds "
                            f"{'>= 0' if zero_ok else '> 0'}")
        targets[key] = float(value)
    return targets


def parse_blast_radius(data: Any) -> dict[str, int]:
    """The plan's ``blast_radius`` merged over the defaults; PlanError naming a bad key."""
    expected = ", ".join(DEFAULT_BLAST_RADIUS)
    if data is None:
        return dict(DEFAULT_BLAST_RADIUS)
    if not isinstance(data, dict):
        raise PlanError(f"blast_radius={data!r} is invalid; expected a mapping of {expected}")
    extra = set(data) - set(DEFAULT_BLAST_RADIUS)
    if extra:
        raise PlanError(f"blast_radius: unknown keys {', '.join(sorted(map(str, extra)))}; "
                        f"expected {expected}")
    radius = dict(DEFAULT_BLAST_RADIUS)
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise PlanError(f"blast_radius: {key}={value!r} is invalid; expected a whole "
                            "number >= 0")
        radius[key] = value
    return radius


def parse_plan(data: Any, base: Path) -> Plan:
    """A plan from its decoded file; PlanError naming the first problem."""
    if not isinstance(data, dict):
        raise PlanError("a plan is a mapping with an 'experiments' list")
    unknown = set(data) - {"title", "pause_between", "stop_on_failure", "experiments", "halt",
                           "targets", "blast_radius"}
    if unknown:
        raise PlanError(f"unknown plan keys: {', '.join(sorted(unknown))}; expected title, "
                        "pause_between, stop_on_failure, experiments, halt, targets, "
                        "blast_radius")
    entries = data.get("experiments")
    if not isinstance(entries, list) or not entries:
        raise PlanError("'experiments' must be a non-empty list of paths or {path, repeat, name}")
    pause = data.get("pause_between", 10)
    if isinstance(pause, bool) or not isinstance(pause, (int, float)) or pause < 0:
        raise PlanError(f"pause_between={pause!r} is invalid; expected seconds >= 0")
    stop = data.get("stop_on_failure", False)
    if not isinstance(stop, bool):
        raise PlanError(f"stop_on_failure={stop!r} is invalid; expected true or false")
    steps: list[Step] = []
    for number, entry in enumerate(entries, 1):
        if isinstance(entry, str):
            entry = {"path": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise PlanError(f"experiment #{number} needs a path")
        extra = set(entry) - {"path", "repeat", "name"}
        if extra:
            raise PlanError(f"experiment #{number}: unknown keys {', '.join(sorted(extra))}")
        repeat = entry.get("repeat", 1)
        if isinstance(repeat, bool) or not isinstance(repeat, int) or not 1 <= repeat <= 100:
            raise PlanError(f"experiment #{number}: repeat={repeat!r} is invalid; expected 1..100")
        path = _resolve(entry["path"], base)
        name = str(entry.get("name") or path.stem)
        for _ in range(repeat):
            steps.append(Step(len(steps) + 1, name, path))
    halts = parse_halts(data.get("halt"))
    targets = parse_targets(data.get("targets"))
    radius = parse_blast_radius(data.get("blast_radius"))
    return Plan(str(data.get("title") or "Game day"), steps, float(pause), stop, halts, targets,
                radius)


def load_plan(path: Path) -> Plan:
    """Read and parse a plan file (YAML or JSON)."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise PlanError(f"cannot read plan {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise PlanError(f"plan {path} is not valid YAML/JSON: {exc}") from None
    return parse_plan(data, path.parent)
