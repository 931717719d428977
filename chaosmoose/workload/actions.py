"""Start and stop the checksummed workload on every client; tamper to test the checker.

The workload runs detached inside each client container (``chaosmoose.workload.runner``),
so it survives nothing it should not: each runner is a ledger entry, stopped by
``stop_workload``, by a rollback or by ``chaosmoose cleanup``, and it stops by itself after
``max_seconds``.
"""

import json
import logging

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosmoose import _docker, _faults, _settings
from chaosmoose.ledger import Ledger
from chaosmoose.workload import _clients
from chaosmoose.workload.checker import acknowledged_ops

__all__ = ["start_workload", "stop_workload", "tamper_with_acknowledged_writes"]

logger = logging.getLogger("chaostoolkit")


def start_workload(interval: float = 0.1, op_timeout: float = 5.0, max_seconds: float = 300.0,
                   file_size: int = 4096, configuration: Configuration = None,
                   secrets: Secrets = None) -> dict:
    """Start the checksummed write workload on every configured client.

    Each client alternates, every ``interval`` s, between creating a ``file_size``-byte file
    and appending a checksummed record to its log, each fsync'ed, recording invoke / ok /
    fail / info (an operation slower than ``op_timeout`` s is info). Runners stop by
    themselves after ``max_seconds``. Fails (stopping what it started) when a runner does
    not come up. Returns the run id and the clients.
    """
    step = _settings.parse_float("interval", interval)
    limit = _settings.parse_float("op_timeout", op_timeout)
    cap = _settings.parse_float("max_seconds", max_seconds)
    size = _settings.parse_int("file_size", file_size, minimum=1)
    if limit <= 0 or cap <= 0:
        raise ActivityFailed("op_timeout and max_seconds must be > 0")
    project = _settings.project(configuration, secrets)
    run = _settings.run_id(configuration, secrets)
    if _clients.load_state(configuration, secrets) is not None:
        raise ActivityFailed(f"a workload already started in run {run}; expected one per run")
    clients = _settings.clients(configuration, secrets)
    containers = {c: _docker.find_container(project, c) for c in clients}
    ledger = Ledger(_settings.run_dir(configuration, secrets))
    state = {"run": run, "data_rel": f"chaosmoose/{run}", "clients": {}, "stopped": None}
    for client, container in containers.items():
        data = f"{_settings.mount_point(client, configuration, secrets)}/chaosmoose/{run}"
        state_dir = f"{_clients.STATE_ROOT}/{run}"
        cmd = _clients.RUNNER + [
            "run", "--client", client, "--data", data, "--state", state_dir,
            "--interval", str(step), "--op-timeout", str(limit), "--max-seconds", str(cap),
            "--size", str(size)]
        _clients.ship_runner(container)  # the detached start below does not ship it
        fault = _faults.inject(ledger, "workload.runner",
                               _faults.target_of(container, project, client), run,
                               lambda container=container, cmd=cmd:
                               container.exec_run(cmd, detach=True),
                               state_dir=state_dir, data=data)
        state["clients"][client] = {"container": container.id, "data": data,
                                    "state_dir": state_dir, "fault": fault["id"]}
        _clients.save_state(state, configuration, secrets)
    for client, container in containers.items():
        state_dir = state["clients"][client]["state_dir"]
        def running(container: object = container, state_dir: str = state_dir) -> bool:
            return _clients.runner_running(container, state_dir)

        if not _clients.wait_until(running, 5.0):
            _faults.undo_open(ledger, run=run, kinds=["workload.runner"])
            raise ActivityFailed(f"workload runner on {client} did not start within 5 s; "
                                 "expected it running (is chaosmoose installed in the image?)")
    logger.info("workload started on %s (run %s)", ", ".join(clients), run)
    return {"run": run, "clients": clients}


def stop_workload(configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Stop this run's workload runners and copy their histories to the run directory.

    Returns per-client operation counts. Fails when no workload started in this run or a
    history cannot be read.
    """
    state = _clients.load_state(configuration, secrets)
    if state is None:
        raise ActivityFailed("no workload started in this run; expected start_workload first")
    project = _settings.project(configuration, secrets)
    ledger = Ledger(_settings.run_dir(configuration, secrets))
    faults = {f["id"]: f for f in ledger.open_faults(run=state["run"],
                                                      kinds=["workload.runner"])}
    folder = _clients.state_file(configuration, secrets).parent
    summary, errors = {}, []
    for client, info in state["clients"].items():
        try:
            if info["fault"] in faults:
                _faults.undo(ledger, faults[info["fault"]])
            container = _docker.get_container(info["container"], project, client)
            history = _clients.fetch_history(container, info["state_dir"])
        except ActivityFailed as exc:
            errors.append(f"{client}: {exc}")
            continue
        (folder / f"{client}.history.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in history))
        counts: dict = {}
        for rec in history:
            counts[rec.get("type")] = counts.get(rec.get("type"), 0) + 1
        summary[client] = counts
    state["stopped"] = True
    _clients.save_state(state, configuration, secrets)
    if errors:
        raise ActivityFailed("; ".join(errors))
    return summary


def tamper_with_acknowledged_writes(mode: str = "delete", count: int = 1,
                                    configuration: Configuration = None,
                                    secrets: Secrets = None) -> list:
    """Delete or corrupt ``count`` acknowledged files of this run's workload.

    For validating the checker only: it proves that a lost (``mode="delete"``) or altered
    (``mode="corrupt"``) acknowledged write is reported and fails the run. Needs a stopped
    workload (its histories). Returns the files tampered with.
    """
    if mode not in ("delete", "corrupt"):
        raise ActivityFailed(f"mode {mode!r} is invalid; expected delete or corrupt")
    wanted = _settings.parse_int("count", count, minimum=1)
    state = _clients.load_state(configuration, secrets)
    if state is None or not state.get("stopped"):
        raise ActivityFailed("no stopped workload in this run; expected stop_workload first")
    folder = _clients.state_file(configuration, secrets).parent
    project = _settings.project(configuration, secrets)
    done = []
    for client, info in state["clients"].items():
        history = [json.loads(line) for line in
                   (folder / f"{client}.history.jsonl").read_text().splitlines()]
        acked, _ = acknowledged_ops(history)
        for op in [o for o in acked if o["f"] == "write-file"][:wanted - len(done)]:
            container = _docker.get_container(info["container"], project, client)
            _clients.runner_json(container, ["tamper", "--data", info["data"],
                                             "--path", op["path"], "--mode", mode],
                                 f"tampering with {op['path']} on {client}")
            done.append({"client": client, "path": op["path"], "mode": mode})
        if len(done) >= wanted:
            break
    if len(done) < wanted:
        raise ActivityFailed(f"only {len(done)} acknowledged files to tamper with; "
                             f"expected {wanted}")
    logger.warning("tampered with %d acknowledged files (%s)", len(done), mode)
    return done
