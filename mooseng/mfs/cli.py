"""Run ``mfscli`` and parse its tab-separated text (MooseFS 3.0 has no JSON output).

With stdout not a terminal, mfscli prints one row per line, fields separated by
tabs, the first field being the section title (``chunk servers:``). Numbers may
carry a space as thousands separator; chunkserver space is humanized
(``1.2 GiB``). mfscli exits 0 even when no master answers, so the text decides.
"""

from __future__ import annotations

import re
import subprocess
from typing import Any

NO_MASTER_MARKERS = ("working master servers not found", "can't connect", "connection refused")
UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5, "E": 1024**6}
CHUNK_STATES = ("missing", "endangered", "undergoal", "stable", "overgoal", "pending deletion")


class MfscliError(RuntimeError):
    """mfscli could not reach a working master or its output made no sense."""


def run(host: str, port: int, section: str, timeout: float = 3.0) -> str:
    """stdout of ``mfscli -H host -P port -n -S<section>``; MfscliError when no master answered."""
    argv = ["mfscli", "-H", host, "-P", str(port), "-n", f"-S{section}"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MfscliError(f"mfscli -S{section} via {host}:{port}: {exc}") from None
    text = done.stdout + done.stderr
    if done.returncode or any(m in text.lower() for m in NO_MASTER_MARKERS):
        first = next((line for line in text.splitlines() if line.strip()), "no output")
        raise MfscliError(f"mfscli -S{section} via {host}:{port}: {first.strip()[:200]}")
    return done.stdout


def rows(text: str, title: str) -> list[list[str]]:
    """The fields after the section title of every row of section ``title``."""
    prefix = title.rstrip(":") + ":"
    found = []
    for line in text.splitlines():
        fields = line.split("\t")
        if fields and fields[0].strip() == prefix:
            found.append([f.strip() for f in fields[1:]])
    return found


def number(field: str) -> int:
    """An mfscli integer that may contain spaces as thousands separators ("348 208")."""
    cleaned = field.replace(" ", "").replace("\u00a0", "")
    if not re.fullmatch(r"-?\d+", cleaned):
        raise ValueError(f"not a number: {field!r}")
    return int(cleaned)


def size_bytes(field: str) -> int:
    """A humanized size ("1.2 GiB", "512 B", "0 B") or a plain number, in bytes (approximate)."""
    match = re.fullmatch(r"([\d.]+)\s*([KMGTPE]?)i?B?", field.strip().replace("\u00a0", " "))
    if not match:
        return number(field)
    return int(float(match.group(1)) * UNITS[match.group(2)])


def chunk_matrix(text: str) -> dict[str, int]:
    """``-SIC`` summary: {missing, endangered, undergoal, stable, overgoal, pending_deletion}."""
    result: dict[str, int] = {}
    for fields in rows(text, "all chunks matrix"):
        if len(fields) >= 2 and fields[0].startswith("chunkclass "):
            state = fields[0][len("chunkclass "):].rstrip(":")
            if state in CHUNK_STATES:
                result[state.replace(" ", "_")] = number(fields[1])
    if len(result) != len(CHUNK_STATES):
        raise MfscliError("mfscli -SIC output has no complete chunk class summary")
    return result


def chunkservers(text: str) -> list[dict[str, Any]]:
    """``-SCS`` rows (MooseFS >= 3.0.38, 14 columns): ip, port, id, labels, version, load,
    maintenance, chunks, used, total, % used, removal status, removal chunks/used/total/%."""
    servers = []
    for fields in rows(text, "chunk servers"):
        if len(fields) < 11:
            continue
        servers.append({
            "address": f"{fields[0]}:{fields[1]}", "id": number(fields[2]),
            "labels": "" if fields[3] == "-" else fields[3], "version": fields[4],
            "chunks": number(fields[7]), "used_bytes": size_bytes(fields[8]),
            "total_bytes": size_bytes(fields[9]),
        })
    return servers


def removal_states(text: str) -> dict[str, str]:
    """``-SCS``: each chunkserver's removal state as the master judges it, by ``ip:port``:
    ``-`` (nothing marked for removal), ``PENDING`` (not judged yet: after a chunkserver
    connected or disconnected), ``NOT READY`` (a chunk on a marked disk was below its goal
    during the current or the previous chunk loop) or ``READY``."""
    return {f"{fields[0]}:{fields[1]}": fields[10] for fields in rows(text, "chunk servers")
            if len(fields) >= 14}


def chunk_loop(text: str) -> dict[str, Any] | None:
    """``-SIL``: the master's last complete chunk loop as ``{"start", "end", "work"}``
    (Unix seconds; ``work``: what the loop did, as mfscli prints it, e.g.
    ``{"replications under goal": "0/0", "locked used": "0"}``: done/needed where there
    are two figures), None when it has none yet (``no data``: a master that just started)."""
    found: dict[str, str] = {}
    work: dict[str, str] = {}
    for line in text.splitlines():  # its title has no colon: "chunk loop<TAB>start:<TAB>..."
        fields = [f.strip() for f in line.split("\t")]
        if len(fields) >= 3 and fields[0] == "chunk loop" and fields[1] in ("start:", "end:"):
            found[fields[1].rstrip(":")] = fields[2]
        elif len(fields) >= 4 and fields[0] == "chunk loop":
            work[f"{fields[1]} {fields[2].rstrip(':')}"] = fields[3]
    try:
        return {"start": number(found["start"]), "end": number(found["end"]), "work": work}
    except (KeyError, ValueError):
        return None


def _optional_number(field: str) -> int | None:
    """An mfscli count, where ``-`` means none (0 or not applicable)."""
    return None if field.strip() in ("-", "") else number(field)


def _label_terms(field: str) -> list[str]:
    """A class's label list as mfscli prints it (``F , S``, ``* , *``): one term per copy."""
    return [term.strip() for term in field.split(",") if term.strip()]


def storage_classes(text: str) -> list[dict[str, Any]]:
    """``-SSC`` rows (mfscli.py 3.0.117, plain mode: 22 columns): id, name, admin only, mode,
    files, dirs, standard chunks under/exact/over, archived chunks under/exact/over, then for
    create, keep and archive: can be fulfilled, label count, labels; archive delay (``Nd``)."""
    classes = []
    for fields in rows(text, "storage classes"):
        if len(fields) < 22:
            continue
        delay = fields[21].strip()
        placement = {}
        for kind, at in (("create", 12), ("keep", 15), ("archive", 18)):
            placement[kind] = {"can_be_fulfilled": fields[at], "labels": _label_terms(fields[at + 2])}
        classes.append({
            "id": number(fields[0]), "name": fields[1], "admin_only": fields[2] == "YES",
            "mode": fields[3], "files": number(fields[4]), "dirs": number(fields[5]),
            "chunks": {"undergoal": _optional_number(fields[6]) or 0,
                       "exact": _optional_number(fields[7]) or 0,
                       "overgoal": _optional_number(fields[8]) or 0},
            "archived_chunks": None if fields[10].strip() == "-" else {
                "undergoal": _optional_number(fields[9]) or 0,
                "exact": _optional_number(fields[10]) or 0,
                "overgoal": _optional_number(fields[11]) or 0},
            **placement,
            "archive_delay_days": int(delay[:-1]) if re.fullmatch(r"\d+d", delay) else None,
        })
    return classes


def disks(text: str) -> list[dict[str, Any]]:
    """``-SHD`` rows (mfscli.py 3.0.117, plain mode: 14 columns): ``ip:port:path``, chunks,
    last error (a Unix time or ``no errors``), status (``ok``, ``damaged``, ``invalid``,
    ``marked for removal ...``, ``scanning``; several joined by ``, ``), 8 I/O figures, then
    used and total bytes (or ``progress:`` and the scan percentage while scanning). ``tier``
    is the folder's last path element; ``damaged`` is true for damaged and invalid folders
    (an mfshdd.cfg line MooseFS could not use is reported invalid)."""
    found = []
    for fields in rows(text, "disks"):
        if len(fields) < 14 or fields[0].count(":") < 2:
            continue
        host, port, path = fields[0].split(":", 2)
        status = fields[3]
        scanning = fields[12].strip() == "progress:"
        error = fields[2].strip()
        found.append({
            "address": f"{host}:{port}", "path": path,
            "tier": path.rstrip("/").rsplit("/", 1)[-1],
            "chunks": number(fields[1]),
            "last_error": None if error in ("no errors", "-", "") else (
                number(error) if re.fullmatch(r"[\d ]+", error) else error),
            "status": status,
            "damaged": "damaged" in status or "invalid" in status,
            "marked_for_removal": "marked for removal" in status,
            "scan_progress": number(fields[13]) if scanning else None,
            "used_bytes": None if scanning else size_bytes(fields[12]),
            "total_bytes": None if scanning else size_bytes(fields[13]),
        })
    return found
