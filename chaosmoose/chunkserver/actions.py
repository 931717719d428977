"""Actions on chunkservers: kill or stop one, corrupt one copy of a chunk, and their undo.

``target`` is a configured chunkserver service (``mooseng_chunkservers``) or ``random`` (a
running one, chosen when the action fires). Every fault is written to the run's ledger
before it is applied; the rollbacks ``start_chunkservers`` and ``undo_corruption`` (and
``chaosmoose cleanup``) heal exactly what the ledger holds.
"""

import logging
import random

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosmoose import _docker, _faults, _settings
from chaosmoose.chunkserver import _chunks
from chaosmoose.ledger import Ledger

__all__ = [
    "corrupt_chunk",
    "kill_chunkserver",
    "start_chunkservers",
    "stop_chunkserver",
    "undo_corruption",
]

logger = logging.getLogger("chaostoolkit")

CONTAINER_KINDS = ("container.kill", "container.stop")


def _resolve(target: str, configuration: Configuration, secrets: Secrets) -> str:
    """The chunkserver service named by ``target`` (``random``: one of the running ones)."""
    names = _settings.chunkservers(configuration, secrets)
    if target == "random":
        project = _settings.project(configuration, secrets)
        running = [n for n in names
                   if _docker.container_state(_docker.find_container(project, n)) == "running"]
        if not running:
            raise ActivityFailed(f"no chunkserver is running (configured: {', '.join(names)})")
        return random.choice(running)
    if target not in names:
        raise _settings.SettingError(f"target {target!r} is invalid; expected random or one of "
                                     f"{', '.join(names)}")
    return target


def _hit(kind: str, target: str, configuration: Configuration, secrets: Secrets,
         apply_name: str, **apply_args: object) -> dict:
    """Resolve ``target``, record the fault, then apply it to the chunkserver's container."""
    name = _resolve(target, configuration, secrets)
    project = _settings.project(configuration, secrets)
    container = _docker.find_container(project, name)
    ledger = Ledger(_settings.run_dir(configuration, secrets))
    fault = _faults.inject(ledger, kind, _faults.target_of(container, project, name),
                           _settings.run_id(configuration, secrets),
                           lambda: getattr(container, apply_name)(**apply_args),
                           role="chunkserver", selector=target)
    logger.info("%s: %s (container %s)", kind, name, container.name)
    return {"chunkserver": name, "fault": fault["id"], "container": container.name}


def kill_chunkserver(target: str = "random", signal: str = "SIGKILL",
                     configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Kill the chunkserver container ``target`` (a name or ``random``) with ``signal``.

    Returns ``{"chunkserver", "fault", "container"}``. Fails before touching anything when
    the target or the signal is invalid or the container does not exist.
    """
    _docker.check_signal(signal)
    return _hit("container.kill", target, configuration, secrets, "kill", signal=signal)


def stop_chunkserver(target: str = "random", timeout: int = 10,
                     configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Stop the chunkserver container ``target`` (SIGTERM, SIGKILL after ``timeout`` s).

    Returns what was hit, like ``kill_chunkserver``.
    """
    grace = _settings.parse_int("timeout", timeout)
    return _hit("container.stop", target, configuration, secrets, "stop", timeout=grace)


def _undo_open(kinds: tuple[str, ...], configuration: Configuration, secrets: Secrets) -> list:
    """Undo this run's open faults of ``kinds`` on chunkservers (newest first)."""
    ledger = Ledger(_settings.run_dir(configuration, secrets))
    names = set(_settings.chunkservers(configuration, secrets))
    faults = [f for f in ledger.open_faults(run=_settings.run_id(configuration, secrets),
                                            kinds=list(kinds))
              if f["target"].get("service") in names]
    return _faults.undo_each(ledger, faults, "chunkserver")


def start_chunkservers(configuration: Configuration = None, secrets: Secrets = None) -> list:
    """Rollback: start again every chunkserver this run killed or stopped.

    Returns what was done per chunkserver; fails when a container cannot be started.
    """
    return _undo_open(CONTAINER_KINDS, configuration, secrets)


def corrupt_chunk(path: str, client: str = "", chunk: int = 0, copy: str = "random",
                  offset: int = 0, length: int = 16, configuration: Configuration = None,
                  secrets: Secrets = None) -> dict:
    """Corrupt one copy of a chunk of ``path`` on its chunkserver's disk (bit rot).

    Inverts ``length`` bytes at data ``offset`` of chunk number ``chunk`` of ``path``
    (relative to the mount) in the chunk file of one valid copy: ``copy`` is ``random``,
    ``first`` or a chunkserver name. The block's CRC no longer matches, so MooseFS must
    refuse that copy, serve the other and replicate. First reads the file's SHA-256
    through ``client`` (default: the first client): every later read must return it.
    Returns ``{"path", "chunk", "chunkserver", "file", "offset", "sha256", "fault"}``;
    rollback ``undo_corruption`` puts the original bytes back if the copy still exists.
    """
    _chunks.check_path(path)
    index = _settings.parse_int("chunk", chunk)
    at = _settings.parse_int("offset", offset)
    size = _settings.parse_int("length", length, minimum=1)
    reader = _chunks.client_of(client, configuration, secrets)
    chunks = _chunks.fileinfo(path, reader, configuration, secrets)
    if index >= len(chunks):
        raise ActivityFailed(f"{path} has {len(chunks)} chunk(s); chunk {index} does not exist")
    target_chunk = chunks[index]
    addresses = _chunks.chunkserver_addresses(configuration, secrets)
    service = _chunks.pick_copy(target_chunk, copy, addresses, configuration, secrets)
    project = _settings.project(configuration, secrets)
    container = _docker.find_container(project, service)
    sha = _chunks.read_sha256(path, reader, configuration, secrets)
    where = _chunks.tool(container, ["locate", "--root", _chunks.TIERS_ROOT, "--chunk",
                                     target_chunk["chunk"], "--offset", str(at),
                                     "--length", str(size)],
                         f"finding chunk {target_chunk['chunk']} on {service}")
    original = where["original"]
    corrupted = bytes(b ^ 0xFF for b in bytes.fromhex(original)).hex()
    address = next(ip for ip, name in addresses.items() if name == service)

    def apply() -> None:
        done = _chunks.tool(container, ["swap", "--file", where["file"], "--offset",
                                        str(where["offset"]), "--expect", original,
                                        "--data", corrupted], f"corrupting {where['file']}")
        if done["how"] != "written":
            raise ActivityFailed(f"chunk file {where['file']} on {service}: {done['how']}")

    ledger = Ledger(_settings.run_dir(configuration, secrets))
    fault = _faults.inject(ledger, "chunk.corrupt", _faults.target_of(container, project, service),
                           _settings.run_id(configuration, secrets), apply, path=path,
                           client=reader, chunk=target_chunk["chunk"], address=address,
                           file=where["file"], offset=where["offset"], header=where["header"],
                           original=original,
                           corrupted=corrupted, sha256=sha)
    logger.info("corrupted %d bytes of chunk %s of %s on %s (%s)", size, target_chunk["chunk"],
                path, service, where["file"])
    return {"path": path, "chunk": target_chunk["chunk"], "chunkserver": service,
            "file": where["file"], "offset": where["offset"], "sha256": sha, "fault": fault["id"]}


def undo_corruption(configuration: Configuration = None, secrets: Secrets = None) -> list:
    """Rollback: put back the original bytes of every chunk copy this run corrupted.

    A copy MooseFS already removed or rewrote is left alone (the result says so).
    """
    return _undo_open(("chunk.corrupt",), configuration, secrets)
