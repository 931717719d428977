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

Paths are relative to the plan file's folder, then to the current directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from chaoslib.exceptions import ActivityFailed

__all__: list[str] = []  # not an activity module


class PlanError(ActivityFailed):
    """The plan file is malformed; nothing was run."""


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


def _resolve(raw: str, base: Path) -> Path:
    for candidate in (base / raw, Path(raw)):
        if candidate.is_file():
            return candidate.resolve()
    raise PlanError(f"experiment {raw!r} not found (looked in {base} and the current directory)")


def parse_plan(data: Any, base: Path) -> Plan:
    """A plan from its decoded file; PlanError naming the first problem."""
    if not isinstance(data, dict):
        raise PlanError("a plan is a mapping with an 'experiments' list")
    unknown = set(data) - {"title", "pause_between", "stop_on_failure", "experiments"}
    if unknown:
        raise PlanError(f"unknown plan keys: {', '.join(sorted(unknown))}; expected title, "
                        "pause_between, stop_on_failure, experiments")
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
    return Plan(str(data.get("title") or "Game day"), steps, float(pause), stop)


def load_plan(path: Path) -> Plan:
    """Read and parse a plan file (YAML or JSON)."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise PlanError(f"cannot read plan {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise PlanError(f"plan {path} is not valid YAML/JSON: {exc}") from None
    return parse_plan(data, path.parent)
