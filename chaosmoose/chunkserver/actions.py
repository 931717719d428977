"""Actions on chunkservers: kill or stop one, corrupt one copy of a chunk, fill, mark for
removal or fail one of its storage tiers, and their undo; put a folder in a storage class.

``target`` (``chunkserver`` for disk faults) is a configured chunkserver service
(``mooseng_chunkservers``) or ``random`` (a running one, chosen when the action fires).
Every fault is written to the run's ledger before it is applied; the rollbacks
``start_chunkservers``, ``undo_corruption`` and ``undo_disk_faults`` (and ``chaosmoose
cleanup``) heal exactly what the ledger holds.
"""

import logging
import random

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosmoose import _container, _docker, _faults, _settings
from chaosmoose.chunkserver import _chunks, _disks, _mfs
from chaosmoose.ledger import Ledger

__all__ = [
    "corrupt_chunk",
    "fail_disk",
    "fill_disk",
    "kill_chunkserver",
    "mark_disk_for_removal",
    "set_storage_class",
    "start_chunkservers",
    "stop_chunkserver",
    "undo_corruption",
    "undo_disk_faults",
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
    fault = _faults.inject(ledger, kind, _container.target_of(container, project, name),
                           _settings.run_id(configuration, secrets),
                           lambda: getattr(container, apply_name)(**apply_args),
                           role="chunkserver", selector=target,
                           configuration=configuration, secrets=secrets)
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
                  offset: int = 0, length: int = 16, settle_timeout: float = 60,
                  configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Corrupt one copy of a chunk of ``path`` on its chunkserver's disk (bit rot).

    Inverts ``length`` bytes at data ``offset`` of chunk number ``chunk`` of ``path``
    (relative to the mount) in the chunk file of one valid copy: ``copy`` is ``random``,
    ``first`` or a chunkserver name. The block's CRC no longer matches, so MooseFS must
    refuse that copy, serve the other and replicate. First reads the file's SHA-256
    through ``client`` (default: the first client): every later read must return it.
    A chunk MooseFS is still replicating has a copy without a file; the action waits up to
    ``settle_timeout`` seconds for every copy to be on disk before it picks one.
    Returns ``{"path", "chunk", "chunkserver", "file", "offset", "sha256", "fault"}``;
    rollback ``undo_corruption`` puts the original bytes back if the copy still exists.
    """
    _chunks.check_path(path)
    index = _settings.parse_int("chunk", chunk)
    at = _settings.parse_int("offset", offset)
    size = _settings.parse_int("length", length, minimum=1)
    settle = _settings.parse_float("settle_timeout", settle_timeout)
    reader = _chunks.client_of(client, configuration, secrets)
    sha = _chunks.read_sha256(path, reader, configuration, secrets)
    located = _chunks.locate_copy(path, index, copy, at, size, reader, settle, configuration,
                                  secrets)
    service, container, where = located.service, located.container, located.where
    project = _settings.project(configuration, secrets)
    original = where["original"]
    corrupted = bytes(b ^ 0xFF for b in bytes.fromhex(original)).hex()

    def apply() -> None:
        done = _chunks.tool(container, ["swap", "--file", where["file"], "--offset",
                                        str(where["offset"]), "--expect", original,
                                        "--data", corrupted], f"corrupting {where['file']}")
        if done["how"] != "written":
            raise ActivityFailed(f"chunk file {where['file']} on {service}: {done['how']}")

    ledger = Ledger(_settings.run_dir(configuration, secrets))
    fault = _faults.inject(ledger, "chunk.corrupt",
                           _container.target_of(container, project, service),
                           _settings.run_id(configuration, secrets), apply, path=path,
                           client=reader, chunk=located.chunk, address=located.address,
                           file=where["file"], offset=where["offset"], header=where["header"],
                           original=original,
                           corrupted=corrupted, sha256=sha)
    logger.info("corrupted %d bytes of chunk %s of %s on %s (%s)", size, located.chunk, path,
                service, where["file"])
    return {"path": path, "chunk": located.chunk, "chunkserver": service,
            "file": where["file"], "offset": where["offset"], "sha256": sha, "fault": fault["id"]}


def undo_corruption(configuration: Configuration = None, secrets: Secrets = None) -> list:
    """Rollback: put back the original bytes of every chunk copy this run corrupted.

    A copy MooseFS already removed or rewrote is left alone (the result says so).
    """
    return _undo_open(("chunk.corrupt",), configuration, secrets)


def _disk_target(chunkserver: str, configuration: Configuration,
                 secrets: Secrets) -> tuple[str, object, dict, dict]:
    """The chunkserver named by ``chunkserver``, its container, what a fault records about
    it, and its tiers as ``mooseng disk show`` reports them."""
    name = _resolve(chunkserver, configuration, secrets)
    project = _settings.project(configuration, secrets)
    container = _docker.find_container(project, name)
    if _docker.container_state(container) != "running":
        raise ActivityFailed(f"{name} container is {container.status}; expected it running")
    return (name, container, _container.target_of(container, project, name),
            _disks.show(container, name))


def _apply_disk(container: object, name: str, tier: str, args: list[str], flag: str,
                value: object) -> None:
    """Run ``mooseng disk ARGS``; fail unless the tier then shows ``flag == value``."""
    after = _disks.tier_state(_disks.disk(container, args, f"{' '.join(args[:1])} on {name}"),
                              name, tier)
    if after.get(flag) != value:
        raise ActivityFailed(f"{name} tier {tier} shows {flag}={after.get(flag)!r} after "
                             f"mooseng disk {' '.join(args)}; expected {value!r}")


def fill_disk(chunkserver: str, tier: str, percent: float | None = None,
              leave_bytes: int | None = None, configuration: Configuration = None,
              secrets: Secrets = None) -> dict:
    """Make one tier (or ``all`` tiers) of a chunkserver full as MooseFS counts space.

    ``chunkserver`` is a configured chunkserver or ``random``; ``tier`` a configured tier or
    ``all``. Give exactly one of ``percent`` (0 < percent <= 100: how full the tier is to
    be) or ``leave_bytes`` (>= 0: how much it is to keep free). The tier's size limit in
    mfshdd.cfg is lowered to ``max(1, ceil(used * 100 / percent))`` or ``max(1, used +
    leave_bytes)`` (``used``: MooseFS's own chunk data on it), so MooseFS reports it that
    full: the master creates no new chunk on a chunkserver with 64 MiB or less free over its
    tiers. This is MooseFS's accounting, not a kernel ENOSPC: writes to chunks already there
    go on. Every tier's fault (with its original limit) is in the ledger before its limit
    changes; rollback ``undo_disk_faults`` restores the configured limits. Fails before
    touching anything on bad arguments, an unknown tier, or a tier already fuller than asked
    (the limit would exceed its configured size); if one tier of ``all`` fails, those
    already filled are restored. Returns ``{"chunkserver", "filled": [{"tier", "fault",
    "limit", "limit_before", "configured_limit", "used"}]}``.
    """
    fill = _disks.fill_request(percent, leave_bytes)
    wanted = _disks.check_tier(tier, configuration, secrets, (_disks.ALL_TIERS,))
    name, container, target, state = _disk_target(chunkserver, configuration, secrets)
    names = list(state) if wanted == _disks.ALL_TIERS else [wanted]
    plans = [(t, _disks.fill_limit(name, _disks.tier_state(state, name, t), *fill))
             for t in names]
    ledger = Ledger(_settings.run_dir(configuration, secrets))
    run = _settings.run_id(configuration, secrets)
    filled, faults = [], []
    for each, limit in plans:
        before = state[each]
        try:
            fault = _faults.inject(
                ledger, _disks.FILL, target, run,
                lambda each=each, limit=limit: _apply_disk(
                    container, name, each, ["limit", each, str(limit)], "limit", limit),
                role="chunkserver", selector=chunkserver, tier=each, path=before.get("path"),
                limit=limit, limit_before=before["limit"],
                configured_limit=before["configured_limit"], used=before["used"],
                percent=fill[0], leave_bytes=fill[1],
                configuration=configuration, secrets=secrets)
        except ActivityFailed as exc:
            if faults:
                try:
                    _faults.undo_each(ledger, faults, "chunkserver")
                except ActivityFailed as undo_exc:
                    raise ActivityFailed(f"{exc}; and restoring the tiers filled before "
                                         f"failed: {undo_exc}") from None
            raise
        faults.append(fault)
        filled.append({"tier": each, "fault": fault["id"], "limit": limit,
                       "limit_before": before["limit"],
                       "configured_limit": before["configured_limit"], "used": before["used"]})
        logger.info("disk.fill: %s tier %s limit %d -> %d bytes (%d used)", name, each,
                    before["limit"], limit, before["used"])
    return {"chunkserver": name, "filled": filled}


def _switch_on(kind: str, command: str, flag: str, chunkserver: str, tier: str,
               configuration: Configuration, secrets: Secrets) -> dict:
    """Record, then apply ``mooseng disk COMMAND TIER on`` to one tier."""
    wanted = _disks.check_tier(tier, configuration, secrets)
    name, container, target, state = _disk_target(chunkserver, configuration, secrets)
    if _disks.tier_state(state, name, wanted).get(flag):
        raise ActivityFailed(f"{name} tier {wanted} already has {flag}=true; expected it "
                             "false (an open fault? run `chaosmoose cleanup`)")
    ledger = Ledger(_settings.run_dir(configuration, secrets))
    fault = _faults.inject(ledger, kind, target, _settings.run_id(configuration, secrets),
                           lambda: _apply_disk(container, name, wanted,
                                               [command, wanted, "on"], flag, True),
                           role="chunkserver", selector=chunkserver, tier=wanted,
                           path=state[wanted].get("path"),
                           configuration=configuration, secrets=secrets)
    logger.info("%s: %s tier %s", kind, name, wanted)
    return {"chunkserver": name, "tier": wanted, "fault": fault["id"],
            "path": state[wanted].get("path")}


def mark_disk_for_removal(chunkserver: str, tier: str, configuration: Configuration = None,
                          secrets: Secrets = None) -> dict:
    """Mark one tier of a chunkserver for removal (the ``*`` prefix in mfshdd.cfg, reloaded).

    MooseFS then copies every chunk on it to other disks; its copies stay readable and
    count in the all-chunks matrix, not in the regular one. Recorded in the ledger before
    the mark; rollback ``undo_disk_faults`` takes the mark away. Fails before touching
    anything when the chunkserver or tier is unknown or the tier is already marked.
    Returns ``{"chunkserver", "tier", "fault", "path"}``.
    """
    return _switch_on(_disks.REMOVAL, "removal", "removal", chunkserver, tier,
                      configuration, secrets)


def fail_disk(chunkserver: str, tier: str, configuration: Configuration = None,
              secrets: Secrets = None) -> dict:
    """Make one tier of a chunkserver unreadable so that MooseFS marks it damaged.

    ``mooseng disk fail`` takes the folder's permissions away from mfschunkserver and
    reloads it: MooseFS drops the folder (``mfscli -SHD`` lists it ``invalid`` or
    ``damaged``), reports its chunks lost and replicates them from the other chunkservers.
    Recorded in the ledger before the failure; rollback ``undo_disk_faults`` makes the tier
    readable again and MooseFS takes the folder up and rescans it. Fails before touching
    anything when the chunkserver or tier is unknown or the tier is already failed.
    Returns ``{"chunkserver", "tier", "fault", "path"}``.
    """
    return _switch_on(_disks.FAIL, "fail", "failed", chunkserver, tier, configuration, secrets)


def undo_disk_faults(configuration: Configuration = None, secrets: Secrets = None) -> list:
    """Rollback: restore every tier this run filled, marked for removal or failed.

    Newest first; returns what was done per fault; fails when a tier could not be restored
    (its fault stays open in the ledger for ``chaosmoose cleanup``).
    """
    return _undo_open(_disks.KINDS, configuration, secrets)


SETSCLASS = """cd -- "$1" || exit 3
mkdir -p -- "$2" || exit 4
mfssetsclass -r "$3" "$2" >&2 || exit 5
mfsgetsclass "$2"
"""


def set_storage_class(path: str, storage_class: str, client: str = "",
                      configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Put a folder and everything in it into a MooseFS storage class.

    Folder ``path`` (relative to the mount, created if missing) goes into class
    ``storage_class`` (``mfssetsclass -r``) through ``client``. New files and folders below
    it inherit the class. Not a fault (nothing to undo): it prepares a folder for a
    placement experiment. Fails before touching anything when the name is not a class name
    or MooseFS lists no such class (``mfscli -SSC``). Returns ``{"path", "storage_class",
    "client"}``.
    """
    _chunks.check_path(path)
    problem = _mfs.class_problem(storage_class)
    if problem:
        raise _settings.SettingError(problem)
    reader = _chunks.client_of(client, configuration, secrets)
    classes = _mfs.storage_classes(_mfs.mfscli(["-SSC"], reader, configuration, secrets))
    if storage_class not in classes:
        raise ActivityFailed(f"MooseFS has no storage class {storage_class!r}; it has "
                             f"{', '.join(sorted(classes)) or 'none'}")
    mount = _settings.mount_point(reader, configuration, secrets)
    out = _mfs.client_run(reader, SETSCLASS, [mount, path, storage_class],
                          f"setting storage class {storage_class} on {path}", configuration,
                          secrets)
    got = next(iter(_mfs.sclasses_many(out).values()), {"class": None, "error": out.strip()})
    if got["class"] != storage_class:
        raise ActivityFailed(f"{path} is in storage class {got['class']!r} after "
                             f"mfssetsclass ({got['error'] or 'no error'}); expected "
                             f"{storage_class!r}")
    logger.info("storage class of %s is %s", path, storage_class)
    return {"path": path, "storage_class": storage_class, "client": reader}
