"""Docker access: the client factory and compose containers resolved by labels, never by name."""

from __future__ import annotations

import io
import json
import logging
import tarfile
import time
from typing import Any

from chaoslib.exceptions import ActivityFailed

logger = logging.getLogger("chaostoolkit")

__all__: list[str] = []  # not an activity module

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"

_client: Any = None


def docker_client() -> Any:
    """A Docker API client from the environment (DOCKER_HOST etc.), created once per process."""
    global _client
    if _client is None:
        import docker  # imported lazily: the package must import without it in containers

        try:
            _client = docker.from_env(timeout=30)
        except docker.errors.DockerException as exc:
            raise ActivityFailed(f"Docker API unreachable: {exc}") from None
    return _client


def set_docker_client(client: Any) -> None:
    """Replace the process-wide client (tests pass a fake; ``None`` resets)."""
    global _client
    _client = client


SIGNALS = ("SIGKILL", "SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP")


def signal_problem(signal: Any) -> str | None:
    """Why ``signal`` is not one a kill action may send (``None`` when it is)."""
    if signal not in SIGNALS:
        return f"signal={signal!r} is not supported; expected one of {', '.join(SIGNALS)}"
    return None


def check_signal(signal: str) -> None:
    """Fail unless ``signal`` is one a kill action may send."""
    problem = signal_problem(signal)
    if problem:
        raise ActivityFailed(problem)


def find_container(project: str, service: str, client: Any = None) -> Any:
    """The one container of compose ``service`` in ``project`` (running or not).

    Fails when there is none ("is the cluster up?") or more than one (scaled services are
    not targets).
    """
    client = client or docker_client()
    import docker

    try:
        found = client.containers.list(
            all=True,
            filters={"label": [f"{PROJECT_LABEL}={project}", f"{SERVICE_LABEL}={service}"]},
        )
    except docker.errors.DockerException as exc:
        raise ActivityFailed(f"Docker API error while looking for {service}: {exc}") from None
    if not found:
        raise ActivityFailed(
            f"no container for service {service} in compose project {project}; "
            "expected one (is the cluster up?)"
        )
    if len(found) > 1:
        names = ", ".join(sorted(c.name for c in found))
        raise ActivityFailed(
            f"{len(found)} containers for service {service} in project {project} ({names}); "
            "expected exactly one"
        )
    return found[0]


def get_container(container_id: str, project: str, service: str, client: Any = None) -> Any:
    """The container recorded as ``container_id``, or the service's current one if recreated."""
    client = client or docker_client()
    import docker

    try:
        return client.containers.get(container_id)
    except docker.errors.NotFound:
        logger.info("container %s of %s is gone; looking it up by labels", container_id[:12],
                    service)
        return find_container(project, service, client)


def container_state(container: Any) -> str:
    """The container's current state (running, paused, exited, ...), freshly reloaded."""
    container.reload()
    return str(container.status)


def exec_in(container: Any, cmd: list[str], detach: bool = False) -> tuple[int, str, str]:
    """Run ``cmd`` in ``container``; return (exit code, stdout, stderr) as text.

    With ``detach`` the command is started and (0, "", "") returned at once.
    """
    if detach:
        container.exec_run(cmd, detach=True)
        return 0, "", ""
    result = container.exec_run(cmd, demux=True)
    code = result.exit_code if result.exit_code is not None else -1
    out, err = result.output if isinstance(result.output, tuple) else (result.output, b"")
    return code, (out or b"").decode("utf-8", "replace"), (err or b"").decode("utf-8", "replace")


def put_file(container: Any, directory: str, name: str, data: bytes, what: str) -> None:
    """Copy ``data`` into ``container`` as ``directory/name`` (``name`` may hold one folder)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        folder = name.rpartition("/")[0]
        if folder:
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
            tar.addfile(info)
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
        tar.addfile(info, io.BytesIO(data))
    if not container.put_archive(directory, buffer.getvalue()):
        raise ActivityFailed(f"cannot copy {what} into {container.name}")


def exec_json(container: Any, cmd: list[str], what: str, name: str) -> dict[str, Any]:
    """Run ``cmd`` (a tool printing one JSON object last) in ``container``; decode it.

    Fails naming ``what`` and the tool (``name``) when no JSON object came out.
    """
    code, out, err = exec_in(container, cmd)
    lines = [line for line in out.splitlines() if line.strip()]
    try:
        result = json.loads(lines[-1]) if lines else None
    except ValueError:
        result = None
    if not isinstance(result, dict):
        reason = (err.strip().splitlines() or out.strip().splitlines() or ["no output"])[-1]
        raise ActivityFailed(f"{what}: {name} exited {code} without a result: {reason[:200]}")
    return result
