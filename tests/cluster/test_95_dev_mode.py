"""Dev mode (docker-compose.dev.yml, `make dev`; README "Dev mode"): a container runs the
mooseng source mounted into it, so an edit shows after a restart of the container, on the
same image, without a build.

CI runs the normal cluster, and this test leaves it alone: it starts ONE extra container
of the toxiproxy service (the lab's Toxiproxy server is mooseng.toxiproxy) through compose
with the dev file on top (``compose run --no-deps``: no published port, no network alias,
no proxies, API on its own loopback), from a copy of the working tree (MOOSENG_DEV_SRC), so
editing it touches no file a running service uses. It changes a harmless string in the
copy, ``mooseng.__version__``, which the server sends in every ``Server`` header, restarts
the container as ``make restart`` does (``compose restart`` is a Docker restart) and sees
the new string from the same container on the same image. The same dev file, through the
same compose, gives the cluster's services their mounts (checked with ``compose config``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.cluster.conftest import REPO, wait_for

pytestmark = pytest.mark.cluster

DEV_ROOT = "/opt/mooseng-dev"
PACKAGES = ("mooseng", "chaosmoose")
# Every service built from the mooseng image (docker-compose.yml).
SERVICES = ("master-1", "master-2", "master-3", "chunkserver-1", "chunkserver-2",
            "chunkserver-3", "client-1", "client-2", "client-3", "toxiproxy")


def compose_command() -> list[str]:
    """``docker compose`` (v2) or ``docker-compose`` (v1), as the Makefile picks."""
    done = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    return ["docker", "compose"] if done.returncode == 0 else ["docker-compose"]


def compose(env: dict[str, str], *args: str, dev: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess:
    """Run compose on docker-compose.yml (and the dev file) in the repository."""
    files = ["-f", "docker-compose.yml"] + (["-f", "docker-compose.dev.yml"] if dev else [])
    done = subprocess.run([*compose_command(), *files, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode:
        raise AssertionError(f"compose {' '.join(args)} exited {done.returncode}:\n"
                             f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def mounts(service: dict) -> dict[str, tuple[str, bool]]:
    """{target: (source, read-only)} of a service in ``compose config`` output (Compose v2
    writes the long syntax, docker-compose 1.x the short one)."""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            found[volume["target"]] = (str(volume.get("source")), bool(volume.get("read_only")))
        else:
            source, target, *mode = str(volume).split(":")
            found[target] = (source, "ro" in (mode[0].split(",") if mode else []))
    return found


def service_view(env: dict[str, str], dev: bool) -> dict[str, tuple[dict, dict]]:
    """{service: (mounts, the environment variables dev mode sets or must keep)} of the
    merged configuration; only those variables, as the masters' .env holds secrets."""
    services = yaml.safe_load(compose(env, "config", dev=dev).stdout)["services"]
    keep = ("PYTHONPATH", "MOOSENG_LOG_LEVEL", "MOOSENG_NODE")
    return {name: (mounts(services[name]),
                   {k: v for k, v in (services[name].get("environment") or {}).items() if k in keep})
            for name in SERVICES}


def set_version(src: Path, version: str) -> None:
    """Write ``__version__`` of the copy's mooseng package."""
    init = src / "mooseng" / "__init__.py"
    lines = [f'__version__ = "{version}"' if line.startswith("__version__ =") else line
             for line in init.read_text().splitlines()]
    init.write_text("\n".join(lines) + "\n")


@pytest.fixture
def dev_src():
    """A copy of the working tree's packages under build/ (a path the Docker daemon sees, as
    it sees ./toxiproxy), removed afterwards."""
    src = REPO / "build" / f"dev-mode-test-{secrets.token_hex(4)}"
    for package in PACKAGES:
        shutil.copytree(REPO / package, src / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    yield src
    shutil.rmtree(src, ignore_errors=True)


def test_a_dev_container_runs_the_mounted_source_and_a_restart_shows_an_edit(cluster, dev_src):
    env = {k: v for k, v in os.environ.items()
           if k not in ("COMPOSE_FILE", "MOOSENG_DEV_LOG_LEVEL")}
    env.update(COMPOSE_PROJECT_NAME=cluster.project, MOOSENG_DEV_SRC=str(dev_src))

    # The dev file gives every service of the mooseng image both packages, read-only, ahead
    # of the installed copies, and debug logs; without it nothing of that is there.
    dev_view = service_view(env, dev=True)
    for service, (mounted, environment) in dev_view.items():
        for package in PACKAGES:
            assert mounted.get(f"{DEV_ROOT}/{package}") == (str(dev_src / package), True), (
                f"{service}: {package} not mounted read-only: {mounted}")
        assert environment.get("PYTHONPATH") == DEV_ROOT, service
    assert dev_view["master-1"][1] == {"PYTHONPATH": DEV_ROOT, "MOOSENG_LOG_LEVEL": "debug",
                                       "MOOSENG_NODE": "master-1"}  # merged with the base's
    normal = service_view(env, dev=False)
    assert all(f"{DEV_ROOT}/mooseng" not in mounted and "PYTHONPATH" not in environment
               for mounted, environment in normal.values())

    image = cluster.container("toxiproxy").image.id  # the image the normal cluster runs
    token = secrets.token_hex(4)
    set_version(dev_src, f"0.1.0+devtest.{token}.1")
    name = f"{cluster.project}-devmode-test-{token}"
    compose(env, "run", "-d", "--no-deps", "--name", name, "toxiproxy", "-host=127.0.0.1")
    container = cluster.docker.containers.get(name)
    try:
        def server_header() -> str:
            code, out = container.exec_run(["python3", "-c", (
                "import urllib.request; print(urllib.request.urlopen("
                "'http://127.0.0.1:8474/version', timeout=5).headers['Server'])")])
            if code:
                raise AssertionError(out.decode(errors="replace")[-500:])
            return out.decode().strip()

        assert wait_for("the dev container's API", server_header, timeout=60) == (
            f"mooseng-toxiproxy/0.1.0+devtest.{token}.1")
        code, out = container.exec_run(["python3", "-c", "import mooseng; print(mooseng.__file__)"])
        assert (code, out.decode().strip()) == (0, f"{DEV_ROOT}/mooseng/__init__.py")
        code, _ = container.exec_run(["touch", f"{DEV_ROOT}/mooseng/written-from-inside"])
        assert code != 0, "the source mount must be read-only"

        set_version(dev_src, f"0.1.0+devtest.{token}.2")
        container.reload()
        started = container.attrs["State"]["StartedAt"]
        began = time.monotonic()
        container.restart(timeout=10)
        wait_for("the edited string after the restart",
                 lambda: server_header() == f"mooseng-toxiproxy/0.1.0+devtest.{token}.2",
                 timeout=60, interval=0.5)
        took = time.monotonic() - began
        print(f"dev mode: restart to edited code answering in {took:.1f} s, no build")
        container.reload()
        assert container.attrs["State"]["StartedAt"] != started, "the container was not restarted"
        assert cluster.docker.containers.get(name).id == container.id  # the same, not recreated
        assert container.image.id == image, "the dev container must run the cluster's image"
        assert took < 60
    finally:
        container.remove(force=True)
