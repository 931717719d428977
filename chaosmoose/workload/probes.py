"""Probes of the file system as the clients see it, and the acknowledged-write checker."""

import json
import logging
import time
from pathlib import Path

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosmoose import _docker, _settings
from chaosmoose._checks import fail as _fail
from chaosmoose.workload import _clients
from chaosmoose.workload.checker import UNKNOWN, check

__all__ = [
    "check_acknowledged_writes",
    "checker_report",
    "clients_can_write",
    "file_readable_from_all_clients",
]

logger = logging.getLogger("chaostoolkit")

NO_WORKLOAD = {"valid": True, "acknowledged": 0, "intact": 0, "lost": 0, "corrupt": 0,
               "indeterminate": 0, "note": "no workload in this run yet"}



def _report_path(configuration: Configuration, secrets: Secrets) -> Path:
    return _clients.state_file(configuration, secrets).parent / "check.json"


def check_acknowledged_writes(digest_timeout: float = 60.0, raise_on_unknown: bool = False,
                              configuration: Configuration = None,
                              secrets: Secrets = None) -> dict:
    """Re-read this run's workload from every client and classify acknowledged writes.

    Returns ``{"valid", "acknowledged", "intact", "lost", "corrupt", "indeterminate",
    "recovered", "unexpected", "unavailability": {"longest_s", ...}, ...}``; assert
    ``lost`` and ``corrupt`` with a range tolerance ``[0, 0]``. ``valid`` is true, false or
    "unknown" (a reader that could not read, a crashed checker, a workload still running);
    when unknown, ``lost`` and ``corrupt`` are -1, and with ``raise_on_unknown`` the probe
    fails instead. Before any workload in this run: valid, all counts 0. The report is also
    saved as ``check.json`` in the run directory.
    """
    wait = _settings.parse_float("digest_timeout", digest_timeout)
    strict = _settings.parse_bool("raise_on_unknown", raise_on_unknown)
    state = _clients.load_state(configuration, secrets)
    if state is None:
        return dict(NO_WORKLOAD)
    if not state.get("stopped"):
        result = {"valid": UNKNOWN, "lost": -1, "corrupt": -1,
                  "error": "workload still running; expected stop_workload before checking"}
    else:
        try:
            histories = _clients.saved_histories(state, configuration, secrets)
            digests = _digests(state, wait, configuration, secrets)
            result = check(histories, digests)
        except Exception as exc:  # noqa: BLE001 - a crashing checker gives unknown
            result = {"valid": UNKNOWN, "lost": -1, "corrupt": -1,
                      "error": f"checker crashed: {exc}"}
    result["run"] = state["run"]
    _report_path(configuration, secrets).write_text(json.dumps(result, indent=2))
    logger.info("checker: valid=%s acknowledged=%s intact=%s lost=%s corrupt=%s "
                "longest unavailability %s s", result.get("valid"), result.get("acknowledged"),
                result.get("intact"), result.get("lost"), result.get("corrupt"),
                result.get("unavailability", {}).get("longest_s"))
    for reader, paths in (result.get("blocked_reads") or {}).items():
        logger.warning("checker: on %s, %d reads blocked (counted unreadable): %s", reader,
                       len(paths), ", ".join(paths[:5]) + (" ..." if len(paths) > 5 else ""))
    if strict and result["valid"] == UNKNOWN:
        reason = result.get("error") or f"a reader failed: {result.get('reader_errors')}"
        raise ActivityFailed(f"checker verdict unknown: {reason}; expected a definite verdict")
    return result


SLOW_DIGEST = 10.0  # s: a client's read-back that took longer is logged with its figures


def _digests(state: dict, timeout: float, configuration: Configuration,
             secrets: Secrets) -> dict:
    """Each client's digest of the whole workload folder (or the error why not)."""
    project = _settings.project(configuration, secrets)
    digests: dict = {}
    for reader in _settings.clients(configuration, secrets):
        data = f"{_settings.mount_point(reader, configuration, secrets)}/{state['data_rel']}"
        try:
            container = _docker.find_container(project, reader)
            digests[reader] = _clients.runner_json(
                container, ["digest", "--data", data, "--timeout", str(timeout)],
                f"reading the workload back on {reader}")
        except ActivityFailed as exc:
            digests[reader] = exc
            continue
        took = digests[reader].get("seconds", 0)
        if took >= SLOW_DIGEST:
            logger.warning("checker: reading back on %s took %.1f s (%d files, %d reads over "
                           "1 s, %d blocked)", reader, took, len(digests[reader].get("files", {})),
                           digests[reader].get("slow_reads", 0),
                           len(digests[reader].get("blocked", [])))
    return digests


def checker_report(configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """The last report of ``check_acknowledged_writes`` in this run, without re-reading.

    Lets a second tolerance assert another count (e.g. ``corrupt``) cheaply. Before any
    workload in this run: valid, all counts 0. Fails when a workload ran but was not
    checked yet.
    """
    if _clients.load_state(configuration, secrets) is None:
        return dict(NO_WORKLOAD)
    try:
        return json.loads(_report_path(configuration, secrets).read_text())
    except FileNotFoundError:
        raise ActivityFailed("no checker report in this run; expected "
                             "check_acknowledged_writes to run first") from None


def clients_can_write(timeout: float = 20.0, raise_on_failure: bool = True, clients: str = "",
                      configuration: Configuration = None, secrets: Secrets = None) -> bool:
    """True when every client (or each of ``clients``) can write and read back a file.

    ``clients`` is a comma-separated subset of the configured clients (empty: all); each
    writes, fsyncs and reads back a small file. Retries for up to ``timeout`` seconds (a client reconnecting after a failover may
    block for a few seconds). Fails (or returns False) naming the clients that could not,
    and at once on a name that is not a configured client.
    """
    wait = _settings.parse_float("timeout", timeout)
    project = _settings.project(configuration, secrets)
    pending = list(_settings.clients(configuration, secrets))
    if clients:
        wanted = _settings.parse_name_list("clients", clients)
        unknown = [c for c in wanted if c not in pending]
        if unknown:
            raise ActivityFailed(f"clients={clients!r} names {', '.join(unknown)}, not a "
                                 f"configured client; expected some of {', '.join(pending)}")
        pending = wanted
    reasons: dict = {}
    deadline = time.monotonic() + wait
    while pending:
        for client in list(pending):
            data = f"{_settings.mount_point(client, configuration, secrets)}/chaosmoose"
            try:
                container = _docker.find_container(project, client)
                left = max(1.0, deadline - time.monotonic())
                result = _clients.runner_json(
                    container, ["write-check", "--data", data, "--client", client,
                                "--timeout", f"{left:.1f}"], f"write check on {client}")
            except ActivityFailed as exc:
                reasons[client] = str(exc)
                continue
            if result.get("ok"):
                pending.remove(client)
            else:
                reasons[client] = result.get("error", "read back differs from what was written")
        if not pending:
            return True
        if time.monotonic() >= deadline:
            seen = "; ".join(f"{c}: {reasons.get(c)}" for c in pending)
            return _fail(raise_on_failure,
                         f"{len(pending)} clients cannot write after {wait:g} s ({seen}); "
                         "expected every client to write")
        time.sleep(0.5)
    return True


def file_readable_from_all_clients(path: str = "chaosmoose/canary.dat",
                                   raise_on_mismatch: bool = True,
                                   configuration: Configuration = None,
                                   secrets: Secrets = None) -> bool:
    """True when a file written through the first client reads back the same everywhere.

    Writes fresh random content to ``path`` (relative to the mount) through the first
    configured client, fsyncs it, then reads it through every client and compares SHA-256.
    """
    if not path or path.startswith("/") or ".." in path.split("/"):
        raise ActivityFailed(f"path {path!r} is invalid; expected a relative path on the mount")
    project = _settings.project(configuration, secrets)
    clients = _settings.clients(configuration, secrets)
    writer = clients[0]
    full = f"{_settings.mount_point(writer, configuration, secrets)}/{path}"
    container = _docker.find_container(project, writer)
    expected = _clients.runner_json(container, ["canary", "--path", full, "--write"],
                                    f"writing {path} through {writer}")
    if "error" in expected:
        return _fail(raise_on_mismatch, f"{writer} cannot write {path}: {expected['error']}")
    bad = []
    for reader in clients:
        full = f"{_settings.mount_point(reader, configuration, secrets)}/{path}"
        try:
            got = _clients.runner_json(_docker.find_container(project, reader),
                                       ["canary", "--path", full], f"reading {path} on {reader}")
        except ActivityFailed as exc:
            bad.append(f"{reader}: {exc}")
            continue
        if got.get("sha256") != expected["sha256"]:
            bad.append(f"{reader} reads {got.get('error') or 'different content'}")
    if bad:
        return _fail(raise_on_mismatch, f"{path} not readable alike from all clients "
                     f"({'; '.join(bad)}); expected the content written through {writer}")
    return True
