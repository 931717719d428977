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

from chaosmoose import _container, _docker, _faults, _settings
from chaosmoose.ledger import Ledger
from chaosmoose.workload import _clients
from chaosmoose.workload.checker import acknowledged_ops

__all__ = ["repair_unknown_outcome_files", "start_workload", "stop_workload",
           "tamper_with_acknowledged_writes"]

logger = logging.getLogger("chaostoolkit")


TAMPER_MODES = ("delete", "corrupt")
# documented choices, checked by the strict preflight (chaosmoose._arguments)
ARGUMENT_CHOICES = {"tamper_with_acknowledged_writes": {"mode": TAMPER_MODES}}

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
                               _container.target_of(container, project, client), run,
                               lambda container=container, cmd=cmd:
                               container.exec_run(cmd, detach=True),
                               state_dir=state_dir, data=data)
        state["clients"][client] = {"container": container.id, "data": data,
                                    "state_dir": state_dir, "fault": fault["id"]}
        _clients.save_state(state, configuration, secrets)
    for client, container in containers.items():
        state_dir = state["clients"][client]["state_dir"]
        def running(container: object = container, state_dir: str = state_dir) -> bool:
            try:
                return _clients.runner_running(container, state_dir)
            except ActivityFailed as exc:  # a status exec that printed nothing: ask again
                logger.debug("workload status not known yet: %s", exc)
                return False

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
    if mode not in TAMPER_MODES:
        raise ActivityFailed(f"mode={mode!r} is invalid; expected {' or '.join(TAMPER_MODES)}")
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


# Runs in a client container: for each file (positional arguments), repair it when a chunk
# has no valid copy, and print one line "<path>\t<repaired|ok|absent|error text>".
_REPAIR_SCRIPT = r"""
for f in "$@"; do
  [ -e "$f" ] || { printf '%s\tabsent\n' "$f"; continue; }
  out=$(timeout 10 mfscheckfile "$f" 2>&1) || { printf '%s\terror %s\n' "$f" "${out//$'\n'/ }"; continue; }
  if grep -q 'chunks with 0 copies' <<<"$out"; then
    if timeout 20 mfsfilerepair "$f" >/dev/null 2>&1; then printf '%s\trepaired\n' "$f"
    else printf '%s\terror mfsfilerepair failed\n' "$f"; fi
  else printf '%s\tok\n' "$f"; fi
done
"""


def repair_unknown_outcome_files(configuration: Configuration = None,
                                 secrets: Secrets = None) -> dict:
    """Repair the files of writes whose outcome is unknown if a chunk of theirs has no copy.

    A file creation in flight when a leader is cut off can leave, in the new leader's
    metadata, a chunk that no chunkserver ever created (the change reached the followers'
    metaloggers, the chunk's creation never reached a chunkserver): every read of that file
    then blocks. Its write was never acknowledged (``info``), so nothing promised is lost,
    but the cluster keeps a missing chunk. This runs ``mfscheckfile`` on each such file from
    its own client and ``mfsfilerepair`` where a chunk has 0 copies, as an operator would.
    Acknowledged files are never touched. Needs a stopped workload. Returns ``{"checked",
    "repaired": [paths], "errors": [...]}``; fails when a check or repair fails.
    """
    state = _clients.load_state(configuration, secrets)
    if state is None or not state.get("stopped"):
        raise ActivityFailed("no stopped workload in this run; expected stop_workload first")
    histories = _clients.saved_histories(state, configuration, secrets)
    project = _settings.project(configuration, secrets)
    checked, repaired, errors = 0, [], []
    for client, info in state["clients"].items():
        _, unknown = acknowledged_ops(histories.get(client, []))
        paths = [f"{info['data']}/{op['path']}" for op in unknown
                 if op.get("f") == "write-file" and op.get("path")]
        if not paths:
            continue
        container = _docker.get_container(info["container"], project, client)
        code, out, err = _docker.exec_in(container, ["bash", "-c", _REPAIR_SCRIPT, "repair",
                                                     *paths])
        for line in out.splitlines():
            path, _, verdict = line.partition("\t")
            checked += 1
            if verdict == "repaired":
                repaired.append(path)
            elif verdict not in ("ok", "absent"):
                errors.append(f"{client}: {path}: {verdict}")
        if code != 0 and not out:
            errors.append(f"{client}: the check did not run ({err.strip()[:200]})")
    if repaired:
        logger.warning("repaired %d files of unacknowledged writes with a chunk that had no "
                       "copy: %s", len(repaired), ", ".join(repaired))
    if errors:
        raise ActivityFailed("; ".join(errors))
    return {"checked": checked, "repaired": repaired, "errors": errors}
