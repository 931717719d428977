"""Dev mode's files without Docker: docker-compose.dev.yml mounts the source into every
service of the mooseng image and changes nothing else, and the Makefile's dev mark makes
every later compose command use the same files (tests/cluster/test_95_dev_mode.py runs a
real container with them)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEV_ROOT = "/opt/mooseng-dev"
MOOSENG_DOCKERFILES = {"images/mooseng/Dockerfile", "images/toxiproxy/Dockerfile"}


def load(name: str) -> dict:
    return yaml.safe_load((REPO / name).read_text())


def test_the_dev_file_mounts_the_source_into_every_service_of_the_mooseng_image():
    base, dev = load("docker-compose.yml"), load("docker-compose.dev.yml")
    assert dev["version"] == base["version"]  # docker-compose 1.x merges only equal versions
    ours = {name for name, spec in base["services"].items()
            if (spec.get("build") or {}).get("dockerfile") in MOOSENG_DOCKERFILES}
    assert len(ours) == 10 and set(dev["services"]) == ours
    for name, spec in dev["services"].items():
        assert set(spec) == {"volumes", "environment"}, f"{name}: dev mode changes only these"
        assert spec["volumes"] == [f"${{MOOSENG_DEV_SRC:-.}}/{package}:{DEV_ROOT}/{package}:ro"
                                   for package in ("mooseng", "chaosmoose")], name
        assert spec["environment"]["PYTHONPATH"] == DEV_ROOT, name
        assert not set(spec["environment"]) & set(base["services"][name].get("environment") or {})
    level = "${MOOSENG_DEV_LOG_LEVEL:-debug}"
    assert dev["services"]["master-1"]["environment"]["MOOSENG_LOG_LEVEL"] == level
    assert dev["services"]["toxiproxy"]["environment"]["LOG_LEVEL"] == level


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A folder to run the Makefile in, with a compose that prints what it was given and a
    wait-healthy that only says it ran."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "Makefile").symlink_to(REPO / "Makefile")
    for name, body in (("compose", 'echo "compose COMPOSE_FILE=${COMPOSE_FILE-unset} $*"'),
                       ("scripts/wait-healthy.sh", 'echo "wait-healthy $*"')):
        (tmp_path / name).write_text(f"#!/bin/sh\n{body}\n")
        (tmp_path / name).chmod(0o755)
    return tmp_path


def make(workdir: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("COMPOSE_FILE", "MAKEFLAGS")}
    return subprocess.run(["make", "--no-print-directory", f"COMPOSE={workdir / 'compose'}",
                           *args], cwd=workdir,
                          env={**environ, **env}, capture_output=True, text=True, timeout=60,
                          check=False)


def test_restart_uses_the_dev_file_only_in_dev_mode(workdir):
    done = make(workdir, "restart", "SERVICE=master-2")
    assert done.returncode == 0, done.stderr
    assert "not in dev mode" in done.stdout
    assert "compose COMPOSE_FILE=unset restart master-2" in done.stdout
    assert "wait-healthy 120 master-2" in done.stdout

    (workdir / ".dev").touch()
    done = make(workdir, "restart", "SERVICE=master-2 client-1")
    assert done.returncode == 0, done.stderr
    assert "not in dev mode" not in done.stdout
    assert ("compose COMPOSE_FILE=docker-compose.yml:docker-compose.dev.yml restart master-2 "
            "client-1") in done.stdout
    # A caller's COMPOSE_FILE (README: the AppArmor file) stays, under the dev file.
    done = make(workdir, "restart", "SERVICE=client-1",
                COMPOSE_FILE="docker-compose.yml:docker-compose.apparmor.yml")
    assert ("compose COMPOSE_FILE=docker-compose.yml:docker-compose.apparmor.yml:"
            "docker-compose.dev.yml restart client-1") in done.stdout


def test_restart_without_a_service_says_how(workdir):
    done = make(workdir, "restart")
    assert done.returncode != 0 and "usage: make restart SERVICE=<service>" in done.stderr


def test_dev_starts_with_both_files_and_up_leaves_dev_mode(workdir):
    dev = make(workdir, "-n", "dev").stdout
    assert "touch .dev" in dev
    assert "COMPOSE_FILE=docker-compose.yml:docker-compose.dev.yml" in dev and " up -d " in dev
    (workdir / ".dev").touch()
    up = make(workdir, "-n", "up").stdout
    assert "rm -f .dev" in up
    assert "COMPOSE_FILE=docker-compose.yml " in up and "docker-compose.dev.yml" not in up
