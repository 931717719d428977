"""The real compose cluster for the cluster tests.

The session fixture ``cluster`` runs ``make up`` (build if needed, start, wait
until every service is healthy). If the cluster was not running before the
session, it is taken down (``make down``, volumes kept) at the end; set
MOOSENG_TEST_KEEP_CLUSTER=1 to keep it. No test here is skipped silently: if
Docker is unreachable the fixture fails with the reason.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
import requests

from chaosmoose.ledger import Ledger

REPO = Path(__file__).resolve().parents[2]
MASTERS = {"master-1": "http://127.0.0.1:9431", "master-2": "http://127.0.0.1:9432",
           "master-3": "http://127.0.0.1:9433"}
CHUNKSERVERS = ("chunkserver-1", "chunkserver-2", "chunkserver-3")
CLIENTS = ("client-1", "client-2", "client-3")
MONITORING = ("prometheus", "logs")
NETWORK = ("toxiproxy",)
PROMETHEUS = "http://127.0.0.1:9090"
SERVICES = (*MASTERS, *CHUNKSERVERS, *CLIENTS, *MONITORING, *NETWORK)


def project_name() -> str:
    """The compose project (COMPOSE_PROJECT_NAME, else .env, else mooseng)."""
    if os.environ.get("COMPOSE_PROJECT_NAME"):
        return os.environ["COMPOSE_PROJECT_NAME"]
    env_file = REPO / ".env"
    if env_file.exists():
        for line in env_file.read_text().splitlines():
            if line.startswith("COMPOSE_PROJECT_NAME="):
                return line.split("=", 1)[1].strip()
    return "mooseng"


def make(*targets: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run make targets in the repo, streaming nothing, raising with the output on failure."""
    done = subprocess.run(["make", "--no-print-directory", *targets], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, check=False)
    if done.returncode:
        raise AssertionError(f"make {' '.join(targets)} failed ({done.returncode}):\n"
                             f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done


def wait_for(what: str, check: Callable[[], object], timeout: float, interval: float = 1.0):
    """Poll ``check`` until it returns a truthy value; fail naming ``what`` and the last result."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - keep polling, report the last error
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


@dataclass
class ExecResult:
    """Exit code and decoded output of a command run in a container."""

    code: int
    out: str
    err: str


class Cluster:
    """Handle on the running compose project: containers by service, exec, health."""

    def __init__(self) -> None:
        self.project = project_name()
        self.docker = docker.from_env()

    def container(self, service: str):
        """The container of ``service`` (by compose labels)."""
        found = self.docker.containers.list(all=True, filters={"label": [
            f"com.docker.compose.project={self.project}", f"com.docker.compose.service={service}"]})
        if not found:
            raise AssertionError(f"no container for service {service} in project {self.project}")
        return found[0]

    def sh(self, service: str, script: str, check: bool = True, timeout: int = 300) -> ExecResult:
        """Run a shell script in ``service``; raise on non-zero exit unless ``check`` is False."""
        container = self.container(service)
        code, (out, err) = container.exec_run(
            ["timeout", str(timeout), "bash", "-c", script], demux=True)
        result = ExecResult(code, (out or b"").decode(errors="replace"),
                            (err or b"").decode(errors="replace"))
        if check and code != 0:
            raise AssertionError(f"{service}: `{script}` exited {code}\n{result.out}\n{result.err}")
        return result

    def health(self, service: str) -> str:
        """Docker's health status of ``service`` (healthy, unhealthy, starting, or the state)."""
        container = self.container(service)
        container.reload()
        state = container.attrs["State"]
        return state.get("Health", {}).get("Status") or state["Status"]

    def wait_healthy(self, services=SERVICES, timeout: float = 180) -> None:
        """Wait until every service in ``services`` is healthy."""
        deadline = time.monotonic() + timeout
        while True:
            states = {s: self.health(s) for s in services}
            if all(v == "healthy" for v in states.values()):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"not healthy after {timeout:.0f}s: "
                                     f"{ {k: v for k, v in states.items() if v != 'healthy'} }")
            time.sleep(1)

    def leader(self) -> str | None:
        """The master whose /leader answers 200, if exactly one does."""
        leaders = [name for name, url in MASTERS.items() if self._is_leader(url)]
        return leaders[0] if len(leaders) == 1 else None

    @staticmethod
    def _is_leader(url: str) -> bool:
        try:
            return requests.get(f"{url}/leader", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def mfscli(self, section: str, service: str = "client-1") -> list[list[str]]:
        """Rows of ``mfscli -S<section>`` through ``service``'s leader router."""
        out = self.sh(service, f"mfscli -H $(hostname -i) -P 9521 -n -S{section}").out
        if "not found" in out or "can't connect" in out.lower():
            raise AssertionError(f"mfscli -S{section}: no master answered: {out[:300]}")
        return [line.split("\t") for line in out.splitlines() if line.strip()]

    def chunk_matrix(self) -> dict[str, int]:
        """The all-chunks matrix: missing, endangered, undergoal, stable, overgoal."""
        matrix = {}
        for row in self.mfscli("IC"):
            if len(row) >= 3 and row[1].startswith("chunkclass "):
                matrix[row[1].removeprefix("chunkclass ").rstrip(":")] = int(row[2].replace(" ", ""))
        return matrix


def cluster_running(handle: Cluster) -> bool:
    """True when every service's container exists and is healthy."""
    try:
        return all(handle.health(s) == "healthy" for s in SERVICES)
    except AssertionError:
        return False


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    """The running cluster; started with `make up` if needed, stopped afterwards if we started it."""
    try:
        handle = Cluster()
        handle.docker.ping()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"Docker is not reachable, the cluster tests cannot run: {exc}")
    started_here = not cluster_running(handle)
    if started_here:
        make("up")
    handle.wait_healthy(timeout=240)
    yield handle
    if started_here and not os.environ.get("MOOSENG_TEST_KEEP_CLUSTER"):
        make("down")


@pytest.fixture
def run_dir(tmp_path: Path, cluster):
    """A fresh run directory, handed out once every client writes and the chunk matrix is
    clean (an experiment's steady state is its precondition: the previous test may have
    left a failover settling); afterwards nothing may be open and the cluster is healthy."""
    from chaosmoose.workload.probes import clients_can_write

    clients_can_write(timeout=180)
    wait_for_clean_chunks()
    path = tmp_path / "run"
    yield path
    leftover = Ledger(path).open_faults()
    subprocess.run([str(REPO / ".venv" / "bin" / "chaosmoose"), "cleanup", "--run-dir",
                    str(path)], cwd=REPO, check=False, timeout=120)
    cluster.wait_healthy(timeout=180)
    wait_for_clean_chunks()
    assert leftover == [], f"faults left open by the run: {leftover}"


def wait_for_clean_chunks(timeout: float = 120) -> None:
    """Let the next experiment start from a clean chunk matrix (MooseFS heals in its loop)."""
    from chaosmoose.master.probes import cluster_healthy

    cluster_healthy(timeout=timeout)
