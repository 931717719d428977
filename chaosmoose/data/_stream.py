"""Run the data generator in a client container and read its JSON lines as they come.

``chaosmoose._docker.exec_in`` returns a command's output once it exited; generating a
gigabyte takes a while and the user wants to see it move, so this runs the command with
``exec_run(stream=True, demux=True)`` and decodes stdout line by line. The generator's
last line says how it ended (``done`` or ``error``), since a streamed exec has no exit code.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ActivityFailed

from chaosmoose import _docker
from chaosmoose._settings import SettingError
from chaosmoose.data import generator as generator_module

logger = logging.getLogger("chaostoolkit")

__all__: list[str] = []  # not an activity module

STATE_ROOT = "/tmp/chaosmoose"  # inside client containers, off the MooseFS mount
GENERATOR_NAME = "datagen.py"
GENERATOR = ["python3", f"{STATE_ROOT}/{GENERATOR_NAME}"]
INPUT_ERRORS = ("input", "exists", "not-ours")  # the caller's input; "no-mount" is the cluster's


def ship(container: Any, document: dict[str, Any] | None = None) -> str | None:
    """Copy this version's generator (and ``document`` as a JSON file, which the generator
    deletes once read) into ``container``; return the document's path there."""
    name = f"chaosmoose/data-{uuid.uuid4().hex[:12]}.json"
    try:
        _docker.put_file(container, "/tmp", f"chaosmoose/{GENERATOR_NAME}",
                         Path(generator_module.__file__).read_bytes(), "the data generator")
        if document is None:
            return None
        _docker.put_file(container, "/tmp", name, json.dumps(document).encode(),
                         "the data set plan")
    except ActivityFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - the Docker API's errors, said in one sentence
        raise ActivityFailed(f"cannot copy the data generator into {container.name}: "
                             f"{exc}") from None
    return f"/tmp/{name}"


def lines(chunks: Any) -> Iterator[tuple[str, str]]:
    """``("out"|"err", line)`` from demultiplexed ``(stdout, stderr)`` byte chunks."""
    pending = {"out": b"", "err": b""}
    for chunk in chunks:
        out, err = chunk if isinstance(chunk, tuple) else (chunk, None)
        for name, data in (("out", out), ("err", err)):
            if not data:
                continue
            pending[name] += data
            *complete, pending[name] = pending[name].split(b"\n")
            for line in complete:
                yield name, line.decode("utf-8", "replace")
    for name, rest in pending.items():
        if rest:
            yield name, rest.decode("utf-8", "replace")


def run(container: Any, args: list[str], what: str,
        on_event: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Run the generator with ``args``, pass every event to ``on_event``, return the
    ``done`` event.

    Fails with ``SettingError`` when the generator refused its input (a folder that exists,
    no mount: the caller's input was wrong, nothing was written), with ``ActivityFailed``
    naming ``what`` on an I/O error, a stall, or when it ended without a result. If the
    host gives up (Ctrl-C, an error in ``on_event``), the generator is killed in the
    container so it does not go on writing.
    """
    try:
        result = container.exec_run(GENERATOR + args, stream=True, demux=True)
    except Exception as exc:  # noqa: BLE001 - the Docker API's errors, said in one sentence
        raise ActivityFailed(f"{what} in {container.name}: cannot run the data generator: "
                             f"{exc}") from None
    stream = result.output
    pid = None
    errors: list[str] = []
    final: dict[str, Any] | None = None
    try:
        for name, line in lines(stream):
            if name == "err":
                if line.strip():
                    errors.append(line.strip())
                continue
            try:
                event = json.loads(line)
            except ValueError:
                logger.debug("data generator printed %r", line[:200])
                continue
            if not isinstance(event, dict):
                continue
            if event.get("event") == "start":
                pid = event.get("pid")
            if event.get("event") in ("done", "error"):
                final = event
            on_event(event)
    except (KeyboardInterrupt, ActivityFailed):
        if final is None and isinstance(pid, int):
            _kill(container, pid)
        raise
    except Exception as exc:  # noqa: BLE001 - a broken stream (Docker API, read timeout)
        if final is None and isinstance(pid, int):
            _kill(container, pid)
        raise ActivityFailed(f"{what} in {container.name}: lost the data generator's output "
                             f"({exc.__class__.__name__}: {exc})") from None
    finally:
        close = getattr(stream, "close", None)
        if callable(close):
            close()
    if final is None:
        reason = errors[-1] if errors else "no output"
        raise ActivityFailed(f"{what} in {container.name}: the data generator ended without "
                             f"a result: {reason[:300]}")
    if final["event"] == "error":
        message = f"{what} in {container.name}: {final.get('error')}"
        if final.get("reason") in INPUT_ERRORS:
            raise SettingError(message)
        raise ActivityFailed(message)
    return final


def _kill(container: Any, pid: int) -> None:
    """Stop an abandoned generator (by its pid, in its container)."""
    try:
        _docker.exec_in(container, ["kill", str(pid)])
        logger.warning("stopped the data generator (pid %s) in %s", pid, container.name)
    except Exception as exc:  # noqa: BLE001 - best effort while already failing
        logger.warning("could not stop the data generator (pid %s) in %s: %s", pid,
                       container.name, exc)
