"""Teardown leaves nothing behind (issue 13, item 14): no service gets an anonymous volume,
`make down` / `make clean` remove containers with their anonymous volumes, and
scripts/leftovers.sh lists what is left. The scripts run against a fake `docker` CLI."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
# VOLUMEs declared by images the lab runs but does not build (checked when the tag changes).
EXTERNAL_IMAGE_VOLUMES = {"grafana/grafana-oss": ["/var/lib/grafana"],
                          "ghcr.io/shopify/toxiproxy": []}


def dockerfile_volumes(dockerfile: Path) -> list[str]:
    """VOLUME paths of a Dockerfile, with those of a FROM image built in this repo."""
    text = dockerfile.read_text()
    paths: list[str] = []
    for match in re.finditer(r"^VOLUME\s+(.+)$", text, re.MULTILINE):
        value = match.group(1).strip()
        paths += yaml.safe_load(value) if value.startswith("[") else value.split()
    if re.search(r"^FROM\s+\$\{MOOSENG_IMAGE", text, re.MULTILINE):
        paths += dockerfile_volumes(REPO / "images" / "mooseng" / "Dockerfile")
    return paths


def image_volumes(name: str, service: dict) -> list[str]:
    build = service.get("build")
    if build:
        context = REPO / build.get("context", ".")
        return dockerfile_volumes((context / build.get("dockerfile", "Dockerfile")).resolve())
    image = re.sub(r"^\$\{[A-Z_]+:-(.*)\}$", r"\1", service["image"]).rsplit(":", 1)[0]
    assert image in EXTERNAL_IMAGE_VOLUMES, (
        f"{name} runs {image}, an image not built here: list its VOLUMEs in "
        f"EXTERNAL_IMAGE_VOLUMES (docker image inspect --format '{{{{.Config.Volumes}}}}')")
    return EXTERNAL_IMAGE_VOLUMES[image]


def test_every_image_volume_of_every_service_is_a_named_volume():
    """A VOLUME that no named volume covers becomes an anonymous volume, which outlives a
    container removed without -v and then belongs to nobody (three were left after
    `make demo`, `make test`, `make clean`)."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    named = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        mounts = {}
        for entry in service.get("volumes") or []:
            source, target = entry.split(":")[:2]
            mounts[target] = source
        for path in image_volumes(name, service):
            assert mounts.get(path) in named, (
                f"{name}: its image declares VOLUME {path} but no named volume is mounted "
                f"there (mounted: {mounts}); Docker would create an anonymous one")


def test_the_lab_image_declares_no_volume():
    """Clients and Toxiproxy run it without a volume on /var/lib/mooseng."""
    assert dockerfile_volumes(REPO / "images" / "mooseng" / "Dockerfile") == []


@pytest.mark.parametrize("dockerfile", sorted((REPO / "images").glob("*/Dockerfile")),
                         ids=lambda p: p.parent.name)
def test_every_image_built_here_carries_the_lab_label(dockerfile: Path):
    """What `make clean` removes and scripts/leftovers.sh lists, containers included (a
    container inherits its image's labels)."""
    assert re.search(r"^LABEL org\.mooseng\.project=mooseng$", dockerfile.read_text(),
                     re.MULTILINE), dockerfile


def recipe(target: str) -> str:
    text = (REPO / "Makefile").read_text()
    match = re.search(rf"^{target}:[^\n]*\n((?:\t[^\n]*\n)+)", text, re.MULTILINE)
    assert match, f"no {target} target"
    return match.group(1)


def test_make_down_and_clean_go_through_the_teardown_script():
    down, clean = recipe("down"), recipe("clean")
    assert "scripts/teardown.sh" in down and "--volumes" not in down  # data stays
    assert re.search(r"scripts/teardown\.sh --volumes --images", clean)
    assert "rm -rf build" in clean
    assert clean.rstrip().endswith("scripts/leftovers.sh")  # and fails if anything is left
    for text in (down, clean):
        assert "docker rm " not in text and "down" not in text.replace("teardown", "")


def test_ci_checks_for_leftovers_after_its_teardown():
    ci = (REPO / ".ci" / "run").read_text()
    assert 'scripts/leftovers.sh --since "$started"' in ci
    assert "if ! teardown; then" in ci


def test_nothing_starts_a_container_outside_compose_that_would_outlive_it():
    """Containers made outside `compose up` must be removed with their volumes: `compose run`
    and `docker run` with --rm, no docker-py containers.run."""
    argv_run = re.compile(r'compose"?,\s*"run",\s*"([^"]*)"')  # [*compose, "run", "--rm", ...]
    shell_run = re.compile(r'(?:\bdocker(?:-compose| compose)?|\$COMPOSE|\$\(COMPOSE\)) run\b(?! --rm)')
    offenders = []
    files = [p for d in ("tests", "scripts", "chaosmoose", "mooseng") for p in (REPO / d).rglob("*")
             if p.suffix in (".py", ".sh") and p.name != "test_teardown.py"]
    for path in [*files, REPO / ".ci" / "run", REPO / "Makefile"]:
        text = "\n".join(line for line in path.read_text().splitlines()
                         if not line.lstrip().startswith("#"))  # prose may name them
        where = path.relative_to(REPO)
        offenders += [f"{where}: containers.run"] * text.count("containers.run(")
        offenders += [f"{where}: {m.group(0)}" for m in argv_run.finditer(text)
                      if m.group(1) != "--rm"]
        offenders += [f"{where}: {m.group(0)}" for m in shell_run.finditer(text)]
    assert offenders == []


# --- the scripts, against a fake docker CLI ---------------------------------------------

FAKE_DOCKER = r"""#!/usr/bin/env bash
echo "$*" >> "$FAKE_LOG"
case "$*" in
  "info") exit 0 ;;
  "ps -q --filter label=com.docker.compose.project=mooseng") printf 'c1\nc2\n' ;;
  "ps -q -a --filter label=com.docker.compose.project=mooseng") printf 'c1\nc2\nc3\n' ;;
  "ps --filter label=org.mooseng.project=mooseng --format"*) printf 'c1 mooseng\nx9 other\nr7 \n' ;;
  "ps -a --filter label=org.mooseng.project=mooseng --format {{.ID}}"*) printf 'c1 mooseng\nc3 mooseng\nx9 other\nr7 \n' ;;
  "network ls -q --filter label=com.docker.compose.project=mooseng") echo n1 ;;
  "volume ls -q --filter label=com.docker.compose.project=mooseng") printf 'mooseng_master-1-data\n' ;;
  "image inspect debian:bookworm-slim"*) cat "$FAKE_DIR/base_label" 2>/dev/null ;;
  # leftovers.sh
  "ps -a --filter label=com.docker.compose.project=mooseng --format"*) cat "$FAKE_DIR/containers" 2>/dev/null ;;
  "ps -a --filter label=org.mooseng.project=mooseng --format {{.Label"*) cat "$FAKE_DIR/lab_containers" 2>/dev/null ;;
  "volume ls --filter label=com.docker.compose.project=mooseng --format"*) cat "$FAKE_DIR/volumes" 2>/dev/null ;;
  "volume ls -q --filter dangling=true") cat "$FAKE_DIR/dangling" 2>/dev/null ;;
  "volume inspect --format {{.CreatedAt}} old") echo 2020-01-01T00:00:00Z ;;
  "volume inspect --format {{.CreatedAt}} new") echo 2030-01-01T00:00:00+02:00 ;;
  "network ls --filter label=com.docker.compose.project=mooseng --format"*) cat "$FAKE_DIR/networks" 2>/dev/null ;;
  "image ls --filter label=org.mooseng.project=mooseng --format"*) cat "$FAKE_DIR/images" 2>/dev/null ;;
esac
exit 0
"""


@pytest.fixture
def fake_docker(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_DIR": str(tmp_path),
            "FAKE_LOG": str(tmp_path / "calls.log"), "COMPOSE": "docker compose",
            "COMPOSE_PROJECT_NAME": "mooseng", "BASE_IMAGE": "debian:bookworm-slim"}


def run(script: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(REPO / "scripts" / script), *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def calls(env: dict[str, str]) -> list[str]:
    return Path(env["FAKE_LOG"]).read_text().splitlines()


def test_down_removes_every_project_container_with_its_anonymous_volumes(fake_docker):
    done = run("teardown.sh", fake_docker)
    assert done.returncode == 0, done.stderr
    log = calls(fake_docker)
    # compose's order first, when compose can load the project (it needs .env: `make env`)
    assert ("compose stop" in log) == (REPO / ".env").exists()
    assert "stop c1 c2" in log
    assert "rm -v c1 c2 c3" in log
    assert not [c for c in log if c.startswith("rm ") and not c.startswith("rm -v")]
    assert "network rm n1" in log
    assert not [c for c in log if c.startswith(("volume rm", "image"))]  # data and images stay


def test_clean_removes_volumes_and_the_images_built_here(fake_docker, tmp_path: Path):
    run("teardown.sh", fake_docker, "--images")
    assert "image rm debian:bookworm-slim" not in calls(fake_docker)  # pulled: not ours
    (tmp_path / "base_label").write_text("true\n")
    done = run("teardown.sh", fake_docker, "--volumes", "--images")
    assert done.returncode == 0, done.stderr
    log = calls(fake_docker)
    assert "stop c1 c2 r7" in log  # and a `docker run` of a lab image, which holds the image
    assert "rm -v c1 c2 c3 r7" in log  # never x9: another project's container
    assert "volume rm mooseng_master-1-data" in log
    assert "image prune --all --force --filter label=org.mooseng.project=mooseng" in log
    assert "image rm debian:bookworm-slim" in log  # labelled: made by make-base-image.sh


def test_leftovers_is_quiet_and_zero_when_nothing_is_left(fake_docker):
    done = run("leftovers.sh", fake_docker)
    assert (done.returncode, done.stdout) == (0, "leftovers: nothing of project mooseng is left\n")


def test_leftovers_lists_each_thing_left_and_fails(fake_docker, tmp_path: Path):
    (tmp_path / "containers").write_text("container mooseng-client-1-1 (Exited (0))\n")
    (tmp_path / "lab_containers").write_text(
        "mooseng|container mooseng-client-1-1 (Exited (0), image mooseng:latest)\n"
        "|container eager_turing (Up 2 minutes, image mooseng:latest)\n")
    (tmp_path / "volumes").write_text("volume mooseng_master-1-data\n")
    (tmp_path / "networks").write_text("network mooseng_raft\n")
    (tmp_path / "images").write_text("image mooseng:latest (0123abcd)\n")
    (tmp_path / "dangling").write_text("old\nnew\n")
    (tmp_path / "base_label").write_text("true\n")
    done = run("leftovers.sh", fake_docker, "--since", "1700000000")
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[-1] == "leftovers: 7 thing(s) of project mooseng left (listed above)"
    assert "container eager_turing (Up 2 minutes, image mooseng:latest)" in lines
    assert "volume new (unused, created 2030-01-01T00:00:00+02:00: during this run)" in lines
    assert not [line for line in lines if line.startswith("volume old")]  # before the run
    assert "image debian:bookworm-slim (the base image images/make-base-image.sh made)" in lines
    kept = run("leftovers.sh", fake_docker, "--keep-images")
    assert not [line for line in kept.stdout.splitlines() if line.startswith("image ")]
