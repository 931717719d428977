"""Host side of the workload: run the in-container runner through the Docker API."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ActivityFailed

from chaosmoose import _docker, _settings
from chaosmoose.workload import runner as runner_module

logger = logging.getLogger("chaostoolkit")

__all__: list[str] = []  # not an activity module

STATE_ROOT = "/tmp/chaosmoose"  # inside client containers, off the MooseFS mount
RUNNER_PATH = f"{STATE_ROOT}/runner.py"
RUNNER = ["python3", RUNNER_PATH]


def ship_runner(container: Any) -> None:
    """Copy this version's runner (one stdlib-only file) into the container.

    The runner then matches the host's chaosmoose exactly, whatever version the image has.
    Done before every command (a few milliseconds): a restarted container may have lost it.
    """
    _docker.put_file(container, "/tmp", "chaosmoose/runner.py",
                     Path(runner_module.__file__).read_bytes(), "the workload runner")


def runner_json(container: Any, args: list[str], what: str) -> dict[str, Any]:
    """Run a runner command in ``container`` and decode the JSON it prints."""
    ship_runner(container)
    return _docker.exec_json(container, RUNNER + args, what, f"runner {args[0]}")


def stop_runner(container: Any, state_dir: str, timeout: float = 10.0) -> str:
    """Stop the runner whose state is ``state_dir``; say how."""
    result = runner_json(container, ["stop", "--state", state_dir, "--timeout", str(timeout)],
                         f"stopping the workload in {container.name}")
    return str(result.get("how", "stopped"))


def runner_running(container: Any, state_dir: str) -> bool:
    """Whether the runner of ``state_dir`` is alive."""
    return bool(runner_json(container, ["status", "--state", state_dir],
                            f"workload status in {container.name}").get("running"))


def fetch_history(container: Any, state_dir: str) -> list[dict[str, Any]]:
    """The runner's history records (a torn last line is dropped)."""
    code, out, err = _docker.exec_in(container, ["cat", f"{state_dir}/history.jsonl"])
    if code != 0:
        raise ActivityFailed(f"cannot read the workload history in {container.name}: "
                             f"{err.strip() or 'exit ' + str(code)}")
    return parse_history(out)


def parse_history(text: str) -> list[dict[str, Any]]:
    """History records from the text of ``history.jsonl`` (a torn line is dropped)."""
    records = []
    for line in text.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def saved_histories(state: dict[str, Any], configuration: Any,
                    secrets: Any) -> dict[str, list[dict[str, Any]]]:
    """Every client's history as ``stop_workload`` copied it into the run directory."""
    folder = state_file(configuration, secrets).parent
    return {c: [json.loads(line) for line in
                (folder / f"{c}.history.jsonl").read_text().splitlines()]
            for c in state["clients"]}


def histories(state: dict[str, Any], configuration: Any,
              secrets: Any) -> dict[str, list[dict[str, Any]]]:
    """Every client's history: the run directory's copies once the workload stopped, else
    read from the client containers now (what the runners have recorded so far)."""
    if state.get("stopped"):
        return saved_histories(state, configuration, secrets)
    project = _settings.project(configuration, secrets)
    return {client: fetch_history(_docker.get_container(info["container"], project, client),
                                  info["state_dir"])
            for client, info in state["clients"].items()}


def state_file(configuration: Any, secrets: Any) -> Path:
    """This run's workload description on the host."""
    run = _settings.run_id(configuration, secrets)
    return _settings.run_dir(configuration, secrets) / "workload" / run / "workload.json"


def load_state(configuration: Any, secrets: Any) -> dict[str, Any] | None:
    """This run's workload description, None when no workload started in this run."""
    try:
        return json.loads(state_file(configuration, secrets).read_text())
    except FileNotFoundError:
        return None


def save_state(state: dict[str, Any], configuration: Any, secrets: Any) -> None:
    """Write the workload description atomically."""
    path = state_file(configuration, secrets)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(path)


def wait_until(predicate: Any, timeout: float, step: float = 0.2) -> bool:
    """Poll ``predicate`` until true or ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
