"""Probes of chunk replication: a file's copies, MooseFS noticing a damaged copy, goal
restored. Probes with a ``raise_on_...`` switch raise ``ActivityFailed`` saying what was
observed; with the switch off they return the result with ``"ok": false``.
"""

import logging
import time

from chaoslib.exceptions import ActivityFailed
from chaoslib.types import Configuration, Secrets

from chaosmoose import _docker, _settings
from chaosmoose._checks import fail as _fail
from chaosmoose.chunkserver import _chunks
from chaosmoose.ledger import Ledger

__all__ = ["chunk_copies", "wait_for_damage_detected", "wait_for_goal"]

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
        short = [{"chunk": c["chunk"], "valid": sum(1 for k in c["copies"] if k["status"] == "VALID")}
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
