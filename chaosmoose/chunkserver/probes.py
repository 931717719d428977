"""Probes of chunk replication and placement: a file's copies, MooseFS noticing a damaged
copy, goal restored, the chunk matrices and how long replication took, per-tier space and
status as MooseFS reports them, chunks per label and storage class, whether every chunk
under a folder sits on servers its class allows, and where new chunks go.

MooseFS's own view comes from its tools run in a client container (``mfscli`` against the
serving master, ``mfsfileinfo``, ``mfsgetsclass``; ``client`` picks the container, default
the first configured client). Probes with a ``raise_on_...`` switch raise
``ActivityFailed`` saying what was observed; with the switch off they return the result
with ``"ok": false``.
"""

import logging
import time

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosmoose import _docker, _settings
from chaosmoose._checks import fail as _fail
from chaosmoose.chunkserver import _chunks, _disks, _mfs, _placement
from chaosmoose.ledger import Ledger
from mooseng.mfs import cli as _cli

__all__ = [
    "chunk_copies",
    "chunk_health",
    "chunks_per_label_and_class",
    "place_new_chunks",
    "placement_matches_class",
    "replication_converged",
    "tier_space",
    "wait_for_damage_detected",
    "wait_for_goal",
    "wait_for_tier_limits",
    "wait_for_tier_status",
]

TIER_STATUSES = ("ok", "damaged", "invalid", "scanning", "marked for removal", "ready")
# documented choices, checked by the strict preflight (chaosmoose._arguments)
ARGUMENT_CHOICES = {"chunk_health": {"matrix": _mfs.MATRICES},
                    "replication_converged": {"matrix": _mfs.MATRICES},
                    "wait_for_tier_status": {"status": TIER_STATUSES}}

logger = logging.getLogger("chaostoolkit")


def chunk_copies(path: str, client: str = "", configuration: Configuration = None,
                 secrets: Secrets = None) -> list:
    """The chunks of ``path`` with their copies, from ``mfsfileinfo`` on ``client``.

    Returns ``[{"index", "chunk", "copies": [{"address", "chunkserver", "status"}]}]``.
    """
    reader = _chunks.client_of(client, configuration, secrets)
    chunks = _chunks.fileinfo(path, reader, configuration, secrets)
    addresses = _chunks.chunkserver_addresses(configuration, secrets)
    for item in chunks:
        for copy in item["copies"]:
            copy["chunkserver"] = addresses.get(copy["address"])
    return chunks


def wait_for_goal(path: str, goal: int = 2, client: str = "", timeout: float = 120.0,
                  raise_on_timeout: bool = True, configuration: Configuration = None,
                  secrets: Secrets = None) -> dict:
    """Wait until every chunk of ``path`` has at least ``goal`` valid copies.

    Returns ``{"ok", "chunks", "waited_s", "short"}`` where ``short`` lists chunks still
    below goal (empty once reached).
    """
    want = _settings.parse_int("goal", goal, minimum=1)
    wait = _settings.parse_float("timeout", timeout)
    reader = _chunks.client_of(client, configuration, secrets)
    began = time.monotonic()
    while True:
        chunks = _chunks.fileinfo(path, reader, configuration, secrets)
        short = [{"chunk": c["chunk"],
                  "valid": sum(1 for k in c["copies"] if k["status"] == "VALID")}
                 for c in chunks]
        short = [s for s in short if s["valid"] < want]
        waited = round(time.monotonic() - began, 2)
        if not short or waited >= wait:
            result = {"ok": not short, "chunks": len(chunks), "waited_s": waited, "short": short}
            if short:
                _fail(raise_on_timeout, f"{path}: chunks below goal {want} after {wait:g} s: "
                                        f"{short}")
            return result
        time.sleep(1.0)


def _damage_gone(fault: dict, chunks: list, configuration: Configuration,
                 secrets: Secrets) -> str | None:
    """How MooseFS dealt with a corrupted copy, or None while it still serves it as valid."""
    copies = [k for c in chunks if c["chunk"] == fault["chunk"] for k in c["copies"]
              if k["address"] == fault["address"]]
    if any(k["status"] != "VALID" for k in copies):
        return "marked invalid"
    if not copies:
        return "copy removed"
    container = _docker.find_container(fault["target"]["project"], fault["target"]["service"])
    seen = _chunks.tool(container, ["compare", "--file", fault["file"], "--offset",
                                    str(fault["offset"]), "--data", fault["corrupted"]],
                        f"checking {fault['file']}")
    return None if seen["how"] == "same" else f"copy rewritten ({seen['how']})"


def wait_for_damage_detected(timeout: float = 90.0, idle_interval: float = 12.0,
                             raise_on_timeout: bool = True, configuration: Configuration = None,
                             secrets: Secrets = None) -> dict:
    """Wait until MooseFS has noticed every chunk copy this run corrupted.

    No client may be served corrupt data: each corrupted file is read through every client
    before and after, and compared with the SHA-256 taken before the corruption (one wrong
    read fails at once). In between, the damaged copy is read straight from its
    chunkserver, as a client that picked that copy would (which copy a client reads is up
    to MooseFS, so client reads alone may never touch it), every ``idle_interval``
    seconds: a chunkserver serves a chunk it used moments ago from memory and notices the
    damage only when it reads the block from disk again (measured: after 10 s idle, not
    after 5 s). Detected means MooseFS marked the copy invalid, removed or rewrote it.
    Returns ``{"ok", "files", "reads", "crc_errors", "waited_s", "detected": {chunk: how}}``.
    """
    wait = _settings.parse_float("timeout", timeout)
    pause = _settings.parse_float("idle_interval", idle_interval)
    ledger = Ledger(_settings.run_dir(configuration, secrets))
    faults = ledger.open_faults(run=_settings.run_id(configuration, secrets),
                                kinds=["chunk.corrupt"])
    if not faults:
        raise ActivityFailed("this run corrupted no chunk (no open chunk.corrupt fault in the "
                             "ledger); run corrupt_chunk first")
    clients = _settings.clients(configuration, secrets)
    detected: dict[str, str] = {}
    reads = _read_everywhere(faults, clients, configuration, secrets)
    crc_errors = 0
    began = time.monotonic()
    while True:
        for fault in faults:
            if fault["chunk"] in detected:
                continue
            crc_errors += _read_damaged_copy(fault, clients[0], configuration, secrets)
            chunks = _chunks.fileinfo(fault["path"], fault["client"], configuration, secrets)
            how = _damage_gone(fault, chunks, configuration, secrets)
            if how:
                detected[fault["chunk"]] = how
                logger.info("damaged copy of chunk %s on %s: %s", fault["chunk"],
                            fault["target"]["service"], how)
        waited = round(time.monotonic() - began, 2)
        if len(detected) == len(faults) or waited >= wait:
            break
        time.sleep(min(pause, max(0.0, wait - waited)))
    reads += _read_everywhere(faults, clients, configuration, secrets)
    done = len(detected) == len(faults)
    result = {"ok": done, "files": sorted({f["path"] for f in faults}), "reads": reads,
              "crc_errors": crc_errors, "waited_s": waited, "detected": detected}
    if not done:
        _fail(raise_on_timeout, f"MooseFS still serves a corrupted copy as valid after {wait:g} s "
                                f"({crc_errors} CRC errors on direct reads): "
                                f"{[f['chunk'] for f in faults if f['chunk'] not in detected]}")
    return result


def _read_everywhere(faults: list, clients: list, configuration: Configuration,
                     secrets: Secrets) -> int:
    """Read every corrupted file through every client; fail on content that differs."""
    reads = 0
    for fault in faults:
        for client in clients:
            got = _chunks.read_sha256(fault["path"], client, configuration, secrets)
            reads += 1
            if got != fault["sha256"]:
                raise ActivityFailed(f"{client} read {fault['path']} with SHA-256 {got[:12]}…, "
                                     f"expected {fault['sha256'][:12]}…: corrupt data served")
    return reads


def _read_damaged_copy(fault: dict, client: str, configuration: Configuration,
                       secrets: Secrets) -> int:
    """Read the corrupted block of the damaged copy from its chunkserver; 1 on a CRC error."""
    container = _docker.find_container(_settings.project(configuration, secrets), client)
    block_start = (fault["offset"] - fault.get("header", 8192)) // 65536 * 65536
    try:
        result = _chunks.tool(container, ["read", "--host", fault["address"], "--chunk",
                                          fault["chunk"], "--offset", str(block_start),
                                          "--size", "1024"],
                              f"reading chunk {fault['chunk']} from {fault['address']}")
    except ActivityFailed as exc:  # the copy may be gone already: not an error
        logger.info("%s", exc)
        return 0
    return 1 if result.get("crc_error") else 0


def _chunkserver_list(key: str, value: str, configuration: Configuration,
                      secrets: Secrets) -> list:
    """A comma-separated list of configured chunkservers (empty: none)."""
    names = _settings.parse_name_list(key, value) if value else []
    configured = _settings.chunkservers(configuration, secrets)
    unknown = [n for n in names if n not in configured]
    if unknown:
        raise _settings.SettingError(f"{key}={value!r} names {', '.join(unknown)}, not a "
                                     "configured chunkserver")
    return names


def _names(configuration: Configuration, secrets: Secrets) -> dict:
    """``{IP: chunkserver service}`` of the configured chunkservers (Docker's view)."""
    return _chunks.chunkserver_addresses(configuration, secrets)


def _tiers(chunkserver: str, tier: str, reader: str, configuration: Configuration,
           secrets: Secrets) -> list:
    """The ``-SHD`` rows of ``chunkserver`` / ``tier`` (empty: every one), named."""
    rows = _mfs.disks(_mfs.mfscli(["-SHD"], reader, configuration, secrets))
    names = _names(configuration, secrets)
    for row in rows:
        row["chunkserver"] = names.get(row["address"])
    selected = [r for r in rows if (not chunkserver or r["chunkserver"] == chunkserver)
                and (not tier or r["tier"] == tier)]
    if not selected:
        listed = ", ".join(f"{r['chunkserver'] or r['address']}:{r['tier']}" for r in rows)
        raise ActivityFailed(f"mfscli -SHD lists no disk of {chunkserver or 'any chunkserver'}"
                             f" tier {tier or 'any'}; it lists {listed or 'none'}")
    return selected


def tier_space(chunkserver: str = "", tier: str = "", client: str = "",
               configuration: Configuration = None, secrets: Secrets = None) -> list:
    """Space and status of every storage tier as MooseFS reports it (``mfscli -SHD``).

    ``chunkserver`` and ``tier`` (empty: all) select tiers. Returns ``[{"chunkserver",
    "tier", "path", "address", "status", "damaged", "removal", "chunks", "used", "total",
    "free", "used_percent"}]`` in bytes; ``total`` is the tier's size limit, ``used`` the
    chunk data MooseFS counts on it. Fails when nothing matches or no master answers.
    """
    if chunkserver and chunkserver not in _settings.chunkservers(configuration, secrets):
        raise _settings.SettingError(f"chunkserver={chunkserver!r} is not a configured "
                                     "chunkserver")
    if tier:
        _disks.check_tier(tier, configuration, secrets)
    reader = _chunks.client_of(client, configuration, secrets)
    return _tiers(chunkserver, tier, reader, configuration, secrets)


def wait_for_tier_status(chunkserver: str, tier: str, status: str = "ok",
                         timeout: float = 60.0, client: str = "", raise_on_timeout: bool = True,
                         configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Wait until MooseFS reports ``status`` for one tier of a chunkserver (``mfscli -SHD``).

    ``status`` is ``ok``, ``damaged`` (damaged or invalid: MooseFS cannot use the folder, as
    after ``fail_disk``), ``invalid``, ``scanning``, ``marked for removal`` (ready or not) or
    ``ready`` (marked for removal, and the master found every chunk on it copied elsewhere
    during a whole chunk loop). Polls every second for up to ``timeout`` s. Returns the
    tier's row with ``"ok"`` and ``"waited_s"``.
    """
    if status not in TIER_STATUSES:
        raise _settings.SettingError(f"status={status!r} is invalid; expected one of "
                                     f"{', '.join(TIER_STATUSES)}")
    wait = _settings.parse_float("timeout", timeout)
    if chunkserver not in _settings.chunkservers(configuration, secrets):
        raise _settings.SettingError(f"chunkserver={chunkserver!r} is not a configured "
                                     "chunkserver")
    _disks.check_tier(tier, configuration, secrets)
    reader = _chunks.client_of(client, configuration, secrets)
    loops: dict | None = {} if status == "ready" else None
    began = time.monotonic()
    while True:
        try:
            row = _tiers(chunkserver, tier, reader, configuration, secrets)[0]
            seen = row["status"]
        except ActivityFailed as exc:  # a chunkserver restarting: keep asking
            row, seen = {}, str(exc)
        waited = round(time.monotonic() - began, 2)
        if row and _mfs.status_matches(row["status"], status):
            return {**row, "ok": True, "waited_s": waited}
        if loops is not None:
            _watch_chunk_loops(loops, reader, configuration, secrets)
        if waited >= wait:
            _fail(raise_on_timeout, f"{chunkserver} tier {tier} is not {status} after {wait:g} "
                                    f"s (MooseFS says: {seen}){_loops_said(loops)}; expected "
                                    f"{status}")
            return {**row, "ok": False, "waited_s": waited}
        time.sleep(1.0)


def _watch_chunk_loops(seen: dict, reader: str, configuration: Configuration,
                       secrets: Secrets) -> None:
    """While waiting for "ready": note each master chunk loop that ended (``mfscli -SIL``)
    and the master's removal state per chunkserver (``-SCS``), and log both per loop.

    MooseFS 3.0 (``mfsmaster/chunks.c``, ``mfr_state``) calls a server's marked disks ready
    only after two whole chunk loops (60 s each at least) in which no chunk with a copy
    there was below its goal and no chunkserver connected or disconnected; either one
    starts the count again. The log says which of them a slow "ready" waited for."""
    try:
        text = _mfs.mfscli(["-SIL", "-SCS"], reader, configuration, secrets)
    except ActivityFailed as exc:
        seen["error"] = str(exc)
        return
    seen.pop("error", None)
    names = _names(configuration, secrets)
    seen["states"] = {names.get(address.rsplit(":", 1)[0], address): state
                      for address, state in _cli.removal_states(text).items()}
    loop = _cli.chunk_loop(text)
    if loop is None or loop["end"] == seen.get("last_end"):
        return
    if "last_end" in seen:  # the first look shows a loop that ended before the wait
        seen["loops"] = seen.get("loops", 0) + 1
        seen["work"] = _loop_work_text(loop["work"])
        seen["under_goal"] = _under_goal_by_class(reader, configuration, secrets)
        logger.info("master chunk loop ended (%d s long, %d during this wait); removal "
                    "state: %s; the loop did: %s; chunks under goal by class: %s",
                    loop["end"] - loop["start"], seen["loops"], _states_text(seen["states"]),
                    seen["work"], seen["under_goal"])
    seen["last_end"] = loop["end"]


LOOP_WORK_SHOWN = ("replications under goal", "replications wrong labels",
                   "deletions disk clean", "deletions over goal", "locked used")


def _loop_work_text(work: dict) -> str:
    """The chunk loop's counters that bear on a removal (done/needed), as one phrase."""
    return ", ".join(f"{key} {work[key]}" for key in LOOP_WORK_SHOWN if key in work) or "unknown"


def _under_goal_by_class(reader: str, configuration: Configuration, secrets: Secrets) -> str:
    """Standard chunks under goal per storage class (``mfscli -SSC``), or why unknown."""
    try:
        classes = _cli.storage_classes(_mfs.mfscli(["-SSC"], reader, configuration, secrets))
    except ActivityFailed as exc:
        return f"unknown ({exc})"
    under = {c["name"]: c["chunks"]["undergoal"] for c in classes if c["chunks"]["undergoal"]}
    return ", ".join(f"{name} {count}" for name, count in sorted(under.items())) or "none"


def _states_text(states: dict) -> str:
    return ", ".join(f"{name} {state}" for name, state in sorted(states.items())) or "unknown"


def _loops_said(seen: dict | None) -> str:
    """What the chunk-loop watch saw, for a timeout's message (empty: no watch)."""
    if seen is None:
        return ""
    return (f"; {seen.get('loops', 0)} master chunk loops ended during the wait (MooseFS "
            f"needs two in a row with no chunk there below goal and no chunkserver "
            f"connecting or disconnecting); the master's removal state: "
            f"{_states_text(seen.get('states') or {})}"
            + (f"; the last loop did: {seen['work']}; chunks under goal by class: "
               f"{seen['under_goal']}" if seen.get("work") else "")
            + (f"; last mfscli error: {seen['error']}" if seen.get("error") else ""))


def _limits_seen(expected: dict, text: str, names: dict) -> dict:
    """How far MooseFS's ``-SHD``/``-SCS`` text is from the ``expected`` tier totals."""
    rows = _mfs.disks(text)
    for row in rows:
        row["chunkserver"] = names.get(row["address"])
    tiers = []
    for (service, tier), want in sorted(expected.items()):
        row = next((r for r in rows if r["chunkserver"] == service and r["tier"] == tier), {})
        tiers.append({"chunkserver": service, "tier": tier, "expected": want,
                      "total": row.get("total"), "status": row.get("status")})
    masters = {names.get(s["address"].rsplit(":", 1)[0]): s["total_bytes"]
               for s in _cli.chunkservers(text)}
    servers = {}
    for service in sorted({service for service, _ in expected}):
        usable = [r["total"] for r in rows if r["chunkserver"] == service and not r["damaged"]
                  and not r["removal"] and r["total"] is not None]
        servers[service] = {"master_total": masters.get(service), "disks_total": sum(usable)}
    ok = (all(t["total"] == t["expected"] for t in tiers)
          and all(s["master_total"] == s["disks_total"] for s in servers.values()))
    return {"ok": ok, "tiers": tiers, "servers": servers}


def wait_for_tier_limits(timeout: float = 90.0, client: str = "", raise_on_timeout: bool = True,
                         configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Wait until MooseFS counts with the tier limits this run's fills set or restored.

    For every tier a ``fill_disk`` of this run changed, ``mfscli -SHD`` must report the
    lowered limit as the tier's total while the fault is open, its configured limit once
    undone; and the master (``mfscli -SCS``) must count each such chunkserver's total as the
    sum of its usable tiers' totals, so it places chunks by the new figures. MooseFS takes a
    new limit at the folder's next refresh: right after a chunk operation in it, else within
    60 s. Returns ``{"ok", "waited_s", "tiers": [{"chunkserver", "tier", "expected",
    "total", "status"}], "servers": {chunkserver: {"master_total", "disks_total"}}}``.
    Fails when this run filled no tier, or after ``timeout`` s.
    """
    wait = _settings.parse_float("timeout", timeout)
    ledger = Ledger(_settings.run_dir(configuration, secrets))
    expected: dict = {}
    for fault in ledger.faults(run=_settings.run_id(configuration, secrets),
                               kinds=[_disks.FILL]):  # in order: the latest fill of a tier wins
        expected[(fault["target"]["service"], fault["tier"])] = (
            fault["limit"] if fault["state"] == "open" else fault["configured_limit"])
    if not expected:
        raise ActivityFailed("this run filled no tier (no disk.fill fault in the ledger); "
                             "run fill_disk first")
    reader = _chunks.client_of(client, configuration, secrets)
    names = _names(configuration, secrets)
    began = time.monotonic()
    while True:
        try:
            seen = _limits_seen(expected, _mfs.mfscli(["-SHD", "-SCS"], reader, configuration,
                                                      secrets), names)
        except ActivityFailed as exc:  # a chunkserver restarting: keep asking
            seen = {"ok": False, "tiers": [], "servers": {}, "error": str(exc)}
        seen["waited_s"] = round(time.monotonic() - began, 2)
        if seen["ok"]:
            return seen
        if seen["waited_s"] >= wait:
            differ = seen.get("error") or "; ".join(
                [f"{t['chunkserver']} {t['tier']} total {t['total']} (expected {t['expected']})"
                 for t in seen["tiers"] if t["total"] != t["expected"]]
                + [f"master counts {s} total {v['master_total']}, its tiers {v['disks_total']}"
                   for s, v in seen["servers"].items() if v["master_total"] != v["disks_total"]])
            _fail(raise_on_timeout, f"MooseFS does not count with the tier limits after "
                                    f"{wait:g} s: {differ}")
            return seen
        time.sleep(1.0)


def chunk_health(matrix: str = "all", client: str = "", configuration: Configuration = None,
                 secrets: Secrets = None) -> dict:
    """The serving master's chunk matrix summary (``mfscli -SIC``).

    Counts of missing, endangered, undergoal, stable, overgoal and pending-deletion chunks.
    ``matrix`` ``all`` counts every valid copy; ``regular`` leaves out copies on disks
    marked for removal (a chunk whose only other copies are there is undergoal in it).
    Returns the counts and ``"matrix"``.
    """
    reader = _chunks.client_of(client, configuration, secrets)
    return {**_mfs.chunk_matrix(matrix, reader, configuration, secrets), "matrix": matrix}


def _short_of_goal(counts: dict, overgoal: bool) -> dict:
    states = ("missing", "endangered", "undergoal") + (("overgoal",) if overgoal else ())
    return {s: counts[s] for s in states if counts.get(s)}


MATRIX_UNREADABLE_FOR = 15.0  # s of failed polls in a row before replication_converged gives up


def replication_converged(timeout: float = 120.0, matrix: str = "all",
                          include_overgoal: bool = False, never_below_goal: bool = False,
                          client: str = "", raise_on_timeout: bool = True,
                          configuration: Configuration = None, secrets: Secrets = None) -> float:
    """Wait until replication restored every chunk's goal; return the seconds it took.

    Converged means no chunk is missing, endangered or undergoal (0 s when it already was
    so). Polls the ``matrix`` (``all`` or ``regular``: see ``chunk_health``) every second, also
    counting overgoal chunks with ``include_overgoal``. With ``never_below_goal`` (only
    with ``regular``: disks marked for removal being copied away) every poll also reads the
    all-copies matrix and fails at once if a chunk there is missing, endangered or
    undergoal: the goal was violated. A chunkserver that just died counts only once the
    master noticed (use ``master.probes.cluster_healthy`` with ``expected_chunkservers``
    for that). Fails after ``timeout`` s (with ``raise_on_timeout`` off: returns -1.0).
    """
    wait = _settings.parse_float("timeout", timeout)
    overgoal = _settings.parse_bool("include_overgoal", include_overgoal)
    guard = _settings.parse_bool("never_below_goal", never_below_goal)
    if matrix not in _mfs.MATRICES:
        raise _settings.SettingError(f"matrix={matrix!r} is invalid; expected all or regular")
    if guard and matrix != "regular":
        raise _settings.SettingError("never_below_goal needs matrix='regular' (it watches the "
                                     "all-copies matrix while the regular one converges)")
    reader = _chunks.client_of(client, configuration, secrets)
    began = time.monotonic()
    polls = 0
    failing_since: float | None = None
    while True:
        try:
            counts = _mfs.chunk_matrix(matrix, reader, configuration, secrets)
            all_copies = _mfs.chunk_matrix("all", reader, configuration, secrets) if guard else {}
            failing_since = None
        except ActivityFailed as exc:  # one poll the master did not answer: ask again
            now = time.monotonic()
            failing_since = failing_since or now
            if now - failing_since >= MATRIX_UNREADABLE_FOR or now - began >= wait:
                raise ActivityFailed(f"{exc} (unreadable for {now - failing_since:.0f} s)") from exc
            logger.warning("chunk matrix unreadable, asking again: %s", exc)
            time.sleep(1.0)
            continue
        polls += 1
        if guard:
            below = _short_of_goal(all_copies, False)
            if below:
                raise ActivityFailed(f"goal violated while the regular matrix converged: all "
                                     f"copies matrix has {below} after "
                                     f"{time.monotonic() - began:.1f} s; expected none")
        short = _short_of_goal(counts, overgoal)
        took = round(time.monotonic() - began, 2)
        if not short:
            logger.info("%s chunk matrix converged after %.1f s (%d polls)", matrix, took, polls)
            return took
        if took >= wait:
            _fail(raise_on_timeout, f"{matrix} chunk matrix still has {short} after {wait:g} s; "
                                    "expected none")
            return -1.0
        time.sleep(1.0)


def chunks_per_label_and_class(path: str = "", client: str = "",
                               configuration: Configuration = None,
                               secrets: Secrets = None) -> dict:
    """Chunk copies per server label and chunks per storage class, as MooseFS counts them.

    ``labels``: copies on the servers carrying each label (``mfscli -SCS``; a server with
    labels A,F counts under both); ``servers``: each chunkserver's labels and chunks;
    ``classes``: per storage class its files, standard chunks under/exact/over goal and
    keep expressions (``mfscli -SSC``). With ``path`` (a folder on the mount) also
    ``matrix``: valid copies of the files under it per class and label (``mfsgetsclass``,
    ``mfsfileinfo``).
    """
    reader = _chunks.client_of(client, configuration, secrets)
    text = _mfs.mfscli(["-SCS", "-SSC"], reader, configuration, secrets)
    servers = _cli.chunkservers(text)
    names = _names(configuration, secrets)
    result = {
        "labels": _placement.per_label(servers),
        "servers": {names.get(s["address"].rsplit(":", 1)[0]) or s["address"]:
                    {"labels": s["labels"], "chunks": s["chunks"]} for s in servers},
        "classes": {name: {"files": c["files"], "chunks": c["chunks"], "keep": c["keep"],
                           "archived_chunks": c["archived_chunks"]}
                    for name, c in _mfs.storage_classes(text).items()},
    }
    if path:
        files = _mfs.walk(path, reader, configuration, secrets)
        result["path"] = path
        result["matrix"] = _placement.label_class_matrix(files, _mfs.labels_by_address(text))
    return result


def placement_matches_class(path: str, storage_class: str = "", avoid: str = "",
                            client: str = "", timeout: float = 0.0,
                            raise_on_mismatch: bool = True, configuration: Configuration = None,
                            secrets: Secrets = None) -> dict:
    """Check that every chunk under folder ``path`` sits on servers its class allows.

    Every chunk of every file under ``path`` must be on servers whose labels satisfy its
    storage class's keep expressions. Reads each file's class (``mfsgetsclass``) and chunk
    copies (``mfsfileinfo``), the classes' keep expressions (``mfscli -SSC``) and each
    chunkserver's labels (``mfscli -SCS``). A chunk matches when every keep expression has
    its own valid copy on a server satisfying it and no valid copy is on a server
    satisfying none. With ``storage_class`` every file must also be in that class;
    ``avoid`` (chunkservers, comma-separated) must hold no valid copy: after losing one, the class is met by the others. With ``timeout``
    > 0, polls every 2 s until it matches (MooseFS moves a new chunk from its create to its
    keep labels within seconds; the master drops a lost chunkserver's copies once it
    noticed, then replicates), and a read that fails (no master answered) is retried too.
    Returns ``{"ok", "files", "chunks", "by_class", "misplaced": [{"file", "chunk", "class",
    "keep", "why"}], "problems", "waited_s"}``; fails (or, with ``raise_on_mismatch`` off,
    returns ``"ok": false``) on a misplaced chunk, an unreadable file, or no file at all.
    """
    _chunks.check_path(path)
    problem = _mfs.class_problem(storage_class, required=False)
    if problem:
        raise _settings.SettingError(problem)
    wait = _settings.parse_float("timeout", timeout)
    avoided = _chunkserver_list("avoid", avoid, configuration, secrets)
    reader = _chunks.client_of(client, configuration, secrets)
    began = time.monotonic()
    while True:
        try:
            files = _mfs.walk(path, reader, configuration, secrets)
            text = _mfs.mfscli(["-SCS", "-SSC"], reader, configuration, secrets)
        except ActivityFailed as exc:  # no master answered (a failover): poll on, if allowed
            if time.monotonic() - began >= wait:
                raise
            logger.warning("placement of %s not readable yet (%s); retrying", path, exc)
            time.sleep(2.0)
            continue
        names = _names(configuration, secrets)
        result = _placement.check(files, _mfs.storage_classes(text),
                                  _mfs.labels_by_address(text), names, storage_class,
                                  [ip for ip, name in names.items() if name in avoided])
        result["waited_s"] = round(time.monotonic() - began, 2)
        if result["ok"] or result["waited_s"] >= wait:
            break
        time.sleep(2.0)
    if not result["ok"]:
        first = (result["problems"] or [f"{m['file']} chunk {m['chunk']} (class {m['class']}, "
                                        f"keep {m['keep']}): {m['why']}"
                                        for m in result["misplaced"]])[0]
        _fail(raise_on_mismatch, f"{path}: {len(result['misplaced'])} of {result['chunks']} "
                                 f"chunks misplaced, {len(result['problems'])} problems after "
                                 f"{result['waited_s']:g} s; first: {first}")
    return result


PLACE = """cd -- "$1" || exit 3
mkdir -p -- "$2" || exit 4
for i in $(seq 1 "$3"); do
  dd if=/dev/urandom of="$2/$i.dat" bs="$4" count=1 iflag=fullblock conv=fsync status=none || exit 5
done
mfsfileinfo "$2"/*.dat
"""


def place_new_chunks(path: str, files: int = 12, size: int = 65536, avoid: str = "",
                     expect_on: str = "", client: str = "", raise_on_violation: bool = True,
                     configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Write ``files`` new files of ``size`` bytes and report where MooseFS put their chunks.

    The files go to a fresh folder ``<path>/<run id>/<time>`` on the mount of ``client``
    (it inherits ``path``'s storage class), each fsync'ed, then ``mfsfileinfo`` lists their
    copies. ``avoid`` (chunkservers, comma-separated) must hold no copy: MooseFS placed no
    new chunk on a full chunkserver; ``expect_on`` must each hold at least one: it takes
    chunks again. Returns ``{"ok", "folder", "files", "chunks", "copies": {chunkserver:
    copies}, "violations"}``.
    """
    _chunks.check_path(path)
    count = _settings.parse_int("files", files, minimum=1)
    nbytes = _settings.parse_int("size", size, minimum=1)
    lists = {key: _chunkserver_list(key, value, configuration, secrets)
             for key, value in (("avoid", avoid), ("expect_on", expect_on))}
    reader = _chunks.client_of(client, configuration, secrets)
    folder = (f"{path.rstrip('/')}/{_settings.run_id(configuration, secrets)}/"
              f"{time.strftime('%Y%m%dT%H%M%S')}-{int(time.time() * 1000) % 1000:03d}")
    mount = _settings.mount_point(reader, configuration, secrets)
    out = _mfs.client_run(reader, PLACE, [mount, folder, str(count), str(nbytes)],
                          f"writing {count} files to {folder}", configuration, secrets,
                          timeout=180.0)
    names = _names(configuration, secrets)
    copies: dict = {}
    chunks = 0
    for info in _mfs.fileinfo_many(out).values():
        for chunk in info["chunks"]:
            chunks += 1
            for copy in chunk["copies"]:
                holder = names.get(copy["address"]) or copy["address"]
                copies[holder] = copies.get(holder, 0) + 1
    violations = [f"{n} holds {copies[n]} new copies; expected none" for n in lists["avoid"]
                  if copies.get(n)]
    violations += [f"{n} holds no new copy; expected some" for n in lists["expect_on"]
                   if not copies.get(n)]
    result = {"ok": not violations and chunks > 0, "folder": folder, "files": count,
              "chunks": chunks, "copies": dict(sorted(copies.items())),
              "violations": violations}
    logger.info("%d new chunks in %s: copies %s", chunks, folder, result["copies"])
    if not result["ok"]:
        _fail(raise_on_violation, f"new chunks in {folder}: "
                                  f"{'; '.join(violations) or 'mfsfileinfo listed no chunk'} "
                                  f"(copies per chunkserver: {result['copies']})")
    return result
