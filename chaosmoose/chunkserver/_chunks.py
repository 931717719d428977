"""Host side of chunk faults: where a file's chunks are, which chunkserver holds a copy,
and the chunk tool run inside chunkserver containers."""

from __future__ import annotations

import logging
import random
import re
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chaoslib.exceptions import ActivityFailed

from chaosmoose import _docker, _settings
from chaosmoose._settings import Configuration, Secrets
from chaosmoose.chunkserver import chunktool
from chaosmoose.workload import _clients

__all__: list[str] = []  # not an activity module

logger = logging.getLogger("chaostoolkit")

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


def valid_holders(chunk: dict[str, Any], addresses: dict[str, str]) -> dict[str, str]:
    """``{chunkserver service: address}`` of the configured chunkservers ``mfsfileinfo`` lists
    with a VALID copy of ``chunk``, in its order; fails when there is none."""
    holders: dict[str, str] = {}
    for listed in chunk["copies"]:
        service = addresses.get(listed["address"])
        if listed["status"] == "VALID" and service:
            holders.setdefault(service, listed["address"])
    if not holders:
        raise ActivityFailed(f"chunk {chunk['chunk']} has no valid copy on a configured "
                             f"chunkserver: {chunk['copies']}")
    return holders


def copy_candidates(chunk: dict[str, Any], copy: str, addresses: dict[str, str],
                    configuration: Configuration, secrets: Secrets) -> list[str]:
    """The chunkserver services whose VALID copy of ``chunk`` may be hit, in the order to
    try them: ``random`` (every holder, shuffled), ``first`` or a chunkserver name (one)."""
    holders = list(valid_holders(chunk, addresses))
    if copy == "random":
        return random.sample(holders, len(holders))
    if copy == "first":
        return holders[:1]
    if copy not in _settings.chunkservers(configuration, secrets):
        raise _settings.SettingError(f"copy {copy!r} is invalid; expected random, first or a "
                                     "configured chunkserver")
    if copy not in holders:
        raise ActivityFailed(f"{copy} holds no valid copy of chunk {chunk['chunk']}; holders: "
                             f"{', '.join(holders)}")
    return [copy]


def tool(container: Any, args: list[str], what: str, fail: bool = True) -> dict[str, Any]:
    """Ship the chunk tool into ``container``, run it, decode its JSON; fail on an error
    (``fail=False``: return it, ``{"error", ...}``)."""
    _docker.put_file(container, "/tmp", "chaosmoose/chunktool.py",
                     Path(chunktool.__file__).read_bytes(), "the chunk tool")
    result = _docker.exec_json(container, TOOL + args, what, "the chunk tool")
    if fail and "error" in result:
        raise ActivityFailed(f"{what}: {result['error']}")
    return result


@dataclass(frozen=True)
class LocatedCopy:
    """One copy of a chunk whose file is on its chunkserver's disk."""

    chunk: str  # ID_VERSION
    service: str  # chunkserver service
    address: str  # the chunkserver's IP, as mfsfileinfo lists the copy
    container: Any
    where: dict[str, Any]  # the chunk tool's locate result: file, offset, header, original


def locate_copy(path: str, index: int, copy: str, offset: int, length: int, reader: str,
                timeout: float, configuration: Configuration, secrets: Secrets,
                poll: float = 1.0) -> LocatedCopy:
    """The copy of chunk ``index`` of ``path`` chosen by ``copy``, once every valid copy of
    the chunk has its file on disk, with the ``length`` bytes at data ``offset`` of it.

    MooseFS lists a copy it is still replicating as valid (3.0.117 ``chunks.c``: a BUSY copy
    is reported as ``CHECK_VALID``) while the destination writes it as version 0 until the
    replication ends, so a chunk written a moment ago may still be on its way to its goal;
    and a chunkserver moving a chunk between its folders (tiers over 1 GB are rebalanced,
    ``hdd_move``) has it in two files for a moment. ``mfsfileinfo`` is asked again every
    ``poll`` seconds until each listed copy is in exactly one file; after ``timeout`` seconds
    a chosen copy that is on disk is taken anyway, and the action fails only when none is.
    """
    project = _settings.project(configuration, secrets)
    addresses = chunkserver_addresses(configuration, secrets)
    deadline = time.monotonic() + timeout
    while True:
        chunks = fileinfo(path, reader, configuration, secrets)
        if index >= len(chunks):
            raise ActivityFailed(f"{path} has {len(chunks)} chunk(s); chunk {index} does not "
                                 "exist")
        chunk = chunks[index]
        chosen = copy_candidates(chunk, copy, addresses, configuration, secrets)
        found: dict[str, LocatedCopy] = {}
        missing: list[str] = []
        for service, address in valid_holders(chunk, addresses).items():
            container = _docker.find_container(project, service)
            what = f"finding chunk {chunk['chunk']} on {service}"
            where = tool(container, ["locate", "--root", TIERS_ROOT, "--chunk", chunk["chunk"],
                                     "--offset", str(offset), "--length", str(length)],
                         what, fail=False)
            if "error" not in where:
                found[service] = LocatedCopy(chunk["chunk"], service, address, container, where)
            elif where.get("missing"):
                missing.append(f"{service}: {where['error']}")
            else:
                raise ActivityFailed(f"{what}: {where['error']}")
        ready = [found[s] for s in chosen if s in found]
        if ready and not missing:
            return ready[0]
        if time.monotonic() + poll > deadline:
            if ready:
                logger.warning("event=chunk_not_settled chunk=%s path=%s waited=%gs detail=%r; "
                               "taking the copy on %s", chunk["chunk"], path, timeout,
                               "; ".join(missing), ready[0].service)
                return ready[0]
            raise ActivityFailed(f"chunk {chunk['chunk']} of {path}: MooseFS lists a valid copy "
                                 f"but none chosen by copy={copy!r} has its file after "
                                 f"{timeout:g} s ({'; '.join(missing)})")
        logger.info("event=chunk_not_settled chunk=%s path=%s detail=%r; asking mfsfileinfo "
                    "again in %g s", chunk["chunk"], path, "; ".join(missing), poll)
        time.sleep(poll)


def read_sha256(path: str, client: str, configuration: Configuration, secrets: Secrets) -> str:
    """SHA-256 of ``path`` read through ``client`` (the workload runner's canary read)."""
    full = f"{_settings.mount_point(client, configuration, secrets)}/{check_path(path)}"
    container = _docker.find_container(_settings.project(configuration, secrets), client)
    result = _clients.runner_json(container, ["canary", "--path", full],
                                  f"reading {path} on {client}")
    if "error" in result:
        raise ActivityFailed(f"reading {path} on {client} failed: {result['error']}")
    return str(result["sha256"])
