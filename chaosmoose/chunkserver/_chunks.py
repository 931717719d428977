"""Host side of chunk faults: where a file's chunks are, which chunkserver holds a copy,
and the chunk tool run inside chunkserver containers."""

from __future__ import annotations

import random
import re
import shlex
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ActivityFailed

from chaosmoose import _docker, _settings
from chaosmoose._settings import Configuration, Secrets
from chaosmoose.chunkserver import chunktool
from chaosmoose.workload import _clients

__all__: list[str] = []  # not an activity module

TIERS_ROOT = "/var/lib/mooseng/tiers"  # MOOSENG_DATA_DIR/tiers in chunkserver containers
TOOL = ["python3", "/tmp/chaosmoose/chunktool.py"]
CHUNK_LINE = re.compile(r"^\s*chunk (\d+): ([0-9A-F]{16})_([0-9A-F]{8})\b")
# A status may hold spaces and commas: "MARKED FOR REMOVAL", "WRONG VERSION , MARKED FOR ...".
COPY_LINE = re.compile(r"^\s*copy \d+: ([0-9.]+):(\d+)(?: \(status:([A-Z_ ,]+?)\))?")


def check_path(path: str) -> str:
    """A path relative to the mount, without ``..``."""
    if not isinstance(path, str) or not path or path.startswith("/") or ".." in path.split("/"):
        raise _settings.SettingError(f"path {path!r} is invalid; expected a relative path on "
                                     "the mount")
    return path


def parse_fileinfo(text: str) -> list[dict[str, Any]]:
    """Chunks of ``mfsfileinfo`` output: ``[{"index", "chunk", "copies": [{"address",
    "status"}]}]`` where ``chunk`` is ``ID_VERSION`` as in the chunk file's name."""
    chunks: list[dict[str, Any]] = []
    for line in text.splitlines():
        match = CHUNK_LINE.match(line)
        if match:
            chunks.append({"index": int(match.group(1)),
                           "chunk": f"{match.group(2)}_{match.group(3)}", "copies": []})
            continue
        match = COPY_LINE.match(line)
        if match and chunks:
            chunks[-1]["copies"].append({"address": match.group(1),
                                         "status": match.group(3) or "VALID"})
    return chunks


def client_of(client: str | None, configuration: Configuration, secrets: Secrets) -> str:
    """``client`` if configured, else the first configured client."""
    clients = _settings.clients(configuration, secrets)
    if client in (None, ""):
        return clients[0]
    if client not in clients:
        raise _settings.SettingError(f"client {client!r} is not a configured client; expected one "
                                     f"of {', '.join(clients)}")
    return str(client)


def client_sh(client: str, script: str, what: str, configuration: Configuration,
              secrets: Secrets) -> str:
    """Run a bash script in a client container; its stdout, or ActivityFailed with stderr."""
    container = _docker.find_container(_settings.project(configuration, secrets), client)
    code, out, err = _docker.exec_in(container, ["timeout", "30", "bash", "-c", script])
    if code != 0:
        reason = (err.strip() or out.strip() or f"exit {code}").splitlines()[-1]
        raise ActivityFailed(f"{what} on {client} failed: {reason[:200]}")
    return out


def fileinfo(path: str, client: str, configuration: Configuration,
             secrets: Secrets) -> list[dict[str, Any]]:
    """The chunks of ``path`` and their copies, from ``mfsfileinfo`` on ``client``."""
    full = f"{_settings.mount_point(client, configuration, secrets)}/{check_path(path)}"
    out = client_sh(client, f"mfsfileinfo {shlex.quote(full)}", f"mfsfileinfo {path}",
                    configuration, secrets)
    chunks = parse_fileinfo(out)
    if not chunks:
        raise ActivityFailed(f"{path} has no chunks (an empty file?); mfsfileinfo said: "
                             f"{out.strip()[:200]}")
    return chunks


def chunkserver_addresses(configuration: Configuration, secrets: Secrets) -> dict[str, str]:
    """``{container IP: chunkserver service}`` of the configured chunkservers."""
    project = _settings.project(configuration, secrets)
    found = {}
    for service in _settings.chunkservers(configuration, secrets):
        container = _docker.find_container(project, service)
        container.reload()
        for network in container.attrs.get("NetworkSettings", {}).get("Networks", {}).values():
            if network.get("IPAddress"):
                found[network["IPAddress"]] = service
    return found


def pick_copy(chunk: dict[str, Any], copy: str, addresses: dict[str, str],
              configuration: Configuration, secrets: Secrets) -> str:
    """The chunkserver service whose VALID copy of ``chunk`` to hit: ``random``, ``first``,
    or a chunkserver name."""
    holders = [addresses.get(c["address"]) for c in chunk["copies"] if c["status"] == "VALID"]
    holders = [h for h in holders if h]
    if not holders:
        raise ActivityFailed(f"chunk {chunk['chunk']} has no valid copy on a configured "
                             f"chunkserver: {chunk['copies']}")
    if copy == "random":
        return random.choice(holders)
    if copy == "first":
        return holders[0]
    if copy not in _settings.chunkservers(configuration, secrets):
        raise _settings.SettingError(f"copy {copy!r} is invalid; expected random, first or a "
                                     "configured chunkserver")
    if copy not in holders:
        raise ActivityFailed(f"{copy} holds no valid copy of chunk {chunk['chunk']}; holders: "
                             f"{', '.join(holders)}")
    return copy


def tool(container: Any, args: list[str], what: str) -> dict[str, Any]:
    """Ship the chunk tool into ``container``, run it, decode its JSON; fail on an error."""
    _docker.put_file(container, "/tmp", "chaosmoose/chunktool.py",
                     Path(chunktool.__file__).read_bytes(), "the chunk tool")
    result = _docker.exec_json(container, TOOL + args, what, "the chunk tool")
    if "error" in result:
        raise ActivityFailed(f"{what}: {result['error']}")
    return result


def read_sha256(path: str, client: str, configuration: Configuration, secrets: Secrets) -> str:
    """SHA-256 of ``path`` read through ``client`` (the workload runner's canary read)."""
    full = f"{_settings.mount_point(client, configuration, secrets)}/{check_path(path)}"
    container = _docker.find_container(_settings.project(configuration, secrets), client)
    result = _clients.runner_json(container, ["canary", "--path", full], f"reading {path} on {client}")
    if "error" in result:
        raise ActivityFailed(f"reading {path} on {client} failed: {result['error']}")
    return str(result["sha256"])
