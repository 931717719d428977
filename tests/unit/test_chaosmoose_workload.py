"""Workload actions and probes over a faked Docker exec (the runner itself is tested for real)."""

import json
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
from chaoslib.exceptions import ActivityFailed
from docker.models.containers import ExecResult

from chaosmoose.ledger import Ledger
from chaosmoose.workload import actions, probes
from tests.unit import chaosmoose_fakes as fakes
from tests.unit.chaosmoose_fakes import CLIENTS, exec_json

config = fakes.config  # fixture
fake_docker = fakes.fake_docker  # fixture



def history(client):
    return [{"t": 0, "type": "start", "f": "workload", "client": client},
            {"t": 1, "type": "invoke", "f": "write-file", "seq": 1, "client": client,
             "path": f"files/{client}/00000001.dat", "sha256": "s1"},
            {"t": 1.1, "type": "ok", "f": "write-file", "seq": 1, "client": client,
             "path": f"files/{client}/00000001.dat", "sha256": "s1"},
            {"t": 2, "type": "end", "f": "workload", "client": client}]


class Exec:
    """Routes runner commands to canned answers, per client container."""

    def __init__(self, client):
        self.client = client
        self.files = {f"files/{c}/00000001.dat": {"sha256": "s1"} for c in CLIENTS}
        self.running = False
        self.calls = []

    def __call__(self, cmd, detach=False, demux=False, **_):
        self.calls.append(cmd)
        if cmd[0] == "cat":
            return ExecResult(0, ("".join(json.dumps(r) + "\n"
                                          for r in history(self.client)).encode(), b""))
        sub = cmd[2]
        if sub == "run":
            self.running = True
            return ExecResult(None, iter(()))
        if sub == "status":
            return exec_json({"running": self.running})
        if sub == "stop":
            was, self.running = self.running, False
            return exec_json({"stopped": True, "how": "terminated" if was else "not running"})
        if sub == "digest":
            return exec_json({"files": dict(self.files), "records": {}})
        if sub == "write-check":
            return exec_json({"ok": True})
        if sub == "canary":
            return exec_json({"sha256": "c4"})
        raise AssertionError(cmd)


EXECS: dict = {}


@pytest.fixture
def clients(fake_docker):
    EXECS.clear()
    for client in CLIENTS:
        EXECS[client] = Exec(client)
        fake_docker.containers[client].exec_run.side_effect = EXECS[client]
    return EXECS


def test_before_any_workload_the_checker_passes_with_zero_counts(config):
    report = probes.check_acknowledged_writes(configuration=config)
    assert report["valid"] is True and report["lost"] == 0 and report["acknowledged"] == 0
    assert probes.checker_report(configuration=config)["corrupt"] == 0


def test_start_stop_check_round_trip(config, clients, fake_docker):
    started = actions.start_workload(configuration=config)
    assert started == {"run": "run-1", "clients": list(CLIENTS)}
    run_cmd = clients["client-2"].calls[0]
    assert run_cmd[:3] == ["python3", "/tmp/chaosmoose/runner.py", "run"]
    fake_docker.containers["client-2"].put_archive.assert_called_with("/tmp", mock.ANY)
    assert "/mnt/client-2/chaosmoose/run-1" in run_cmd
    ledger = Ledger(config["chaosmoose_run_dir"])
    assert len(ledger.open_faults(kinds=["workload.runner"])) == 3
    with pytest.raises(ActivityFailed, match="already started"):
        actions.start_workload(configuration=config)
    unknown = probes.check_acknowledged_writes(configuration=config)
    assert unknown["valid"] == "unknown" and unknown["lost"] == -1

    counts = actions.stop_workload(configuration=config)
    assert counts["client-1"] == {"start": 1, "invoke": 1, "ok": 1, "end": 1}
    assert ledger.open_faults() == []
    report = probes.check_acknowledged_writes(configuration=config)
    assert (report["valid"], report["acknowledged"], report["intact"], report["lost"]) == \
        (True, 3, 3, 0)
    assert probes.checker_report(configuration=config)["intact"] == 3


def test_a_reader_that_cannot_read_makes_the_check_unknown(config, clients, fake_docker):
    actions.start_workload(configuration=config)
    actions.stop_workload(configuration=config)
    fake_docker.containers["client-3"].exec_run.side_effect = \
        lambda cmd, **_: ExecResult(3, (b'{"error": "timed out after 60 s"}\n', b""))
    report = probes.check_acknowledged_writes(configuration=config)
    assert report["valid"] == "unknown" and report["lost"] == -1
    with pytest.raises(ActivityFailed, match="checker verdict unknown"):
        probes.check_acknowledged_writes(raise_on_unknown=True, configuration=config)


def test_runner_that_does_not_start_is_cleaned_up(config, clients, fake_docker):
    original = clients["client-2"]
    fake_docker.containers["client-2"].exec_run.side_effect = (
        lambda cmd, **kw: exec_json({"running": False}) if cmd[2] == "status"
        else original(cmd, **kw))
    with pytest.raises(ActivityFailed, match="runner on client-2 did not start within 5 s"):
        actions.start_workload(configuration=config)
    assert Ledger(config["chaosmoose_run_dir"]).open_faults() == []


def test_clients_can_write_and_canary(config, clients, fake_docker):
    assert probes.clients_can_write(timeout=1, configuration=config) is True
    assert probes.file_readable_from_all_clients(configuration=config) is True
    fake_docker.containers["client-3"].exec_run.side_effect = \
        lambda cmd, **_: exec_json({"error": "OSError: [Errno 5] Input/output error"}, 1)
    with pytest.raises(ActivityFailed, match="1 clients cannot write.*client-3"):
        probes.clients_can_write(timeout=0.1, configuration=config)
    assert probes.file_readable_from_all_clients(raise_on_mismatch=False,
                                                 configuration=config) is False
    with pytest.raises(ActivityFailed, match="expected a relative path"):
        probes.file_readable_from_all_clients(path="/etc/passwd", configuration=config)


def test_stop_without_start_says_so(config):
    with pytest.raises(ActivityFailed, match="no workload started in this run"):
        actions.stop_workload(configuration=config)


class RealRunnerExec:
    """Docker exec for one client container that runs the real runner on the host.

    Every client mounts the same file system: ``<mount root>/<client>`` maps to one shared
    local folder; the container's ``/tmp/chaosmoose`` maps to a folder of its own.
    """

    def __init__(self, client, root):
        self.mapping = {f"/mnt/{client}": str(root / "fs"),
                        "/tmp/chaosmoose": str(root / "containers" / client)}
        self.procs = []

    def local(self, arg):
        for inside, outside in self.mapping.items():
            if arg.startswith(inside):
                return outside + arg[len(inside):]
        return arg

    def __call__(self, cmd, detach=False, demux=False, **_):
        args = [self.local(a) for a in cmd]
        if args[0] == "cat":
            path = Path(args[1])
            return (ExecResult(0, (path.read_bytes(), b"")) if path.exists()
                    else ExecResult(1, (b"", b"no such file")))
        assert cmd[:2] == ["python3", "/tmp/chaosmoose/runner.py"], cmd
        real = [sys.executable, "-m", "chaosmoose.workload.runner", *args[2:]]
        if detach:
            self.procs.append(subprocess.Popen(real))
            return ExecResult(None, iter(()))
        done = subprocess.run(real, capture_output=True, timeout=90, check=False)
        return ExecResult(done.returncode, (done.stdout, done.stderr))


@pytest.mark.parametrize("mode, verdict", [("delete", "lost"), ("corrupt", "corrupt")])
def test_tamper_action_makes_the_real_checker_fail(config, fake_docker, tmp_path, mode,
                                                   verdict):
    """start_workload, stop_workload, tamper_with_acknowledged_writes and the checker, with
    the real runner doing the writes, the tampering and the digests (only Docker is fake)."""
    execs = {c: RealRunnerExec(c, tmp_path) for c in CLIENTS}
    for client, fake in execs.items():
        fake_docker.containers[client].exec_run.side_effect = fake
    actions.start_workload(interval=0.02, file_size=64, configuration=config)
    time.sleep(1.0)
    actions.stop_workload(configuration=config)
    for fake in execs.values():
        for proc in fake.procs:
            assert proc.wait(timeout=30) == 0
    clean = probes.check_acknowledged_writes(configuration=config)
    assert clean["valid"] is True and clean["lost"] == clean["corrupt"] == 0
    assert clean["acknowledged"] > 3

    (done,) = actions.tamper_with_acknowledged_writes(mode=mode, configuration=config)
    victim = tmp_path / "fs" / "chaosmoose" / "run-1" / done["path"]
    assert victim.exists() == (mode == "corrupt")  # the real runner did it, on disk
    report = probes.check_acknowledged_writes(configuration=config)
    assert report["valid"] is False and report[verdict] == 1
    assert report["examples"][0]["path"] == done["path"]


def test_a_status_check_that_prints_nothing_once_is_asked_again(config, clients, fake_docker):
    """A Docker exec that returned no output (seen once in CI) is not a failed start."""
    original = clients["client-2"]
    silent = {"left": 1}

    def status_silent_once(cmd, **kw):
        if cmd[2] == "status" and silent["left"]:
            silent["left"] -= 1
            return ExecResult(0, (b"", b""))
        return original(cmd, **kw)

    fake_docker.containers["client-2"].exec_run.side_effect = status_silent_once
    started = actions.start_workload(configuration=config)
    assert "client-2" in started["clients"] and silent["left"] == 0
