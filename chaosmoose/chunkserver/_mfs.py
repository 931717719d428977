"""MooseFS's own view, read through a client container: ``mfscli`` sections (disks,
chunkservers, storage classes, chunk matrices) and the storage class and chunk copies of
every file under a folder (``mfsgetsclass``, ``mfsfileinfo``), with their parsers.

``mfscli`` runs in the client against its local leader router (``$(hostname -i)``, port
``MOOSENG_ROUTER_CL_PORT``, default 9521), so it always asks the serving master; ``-SHD``
asks every chunkserver directly. With stdout not a terminal, each row is tab-separated and
starts with its section title (``mooseng.mfs.cli`` parses the sections). MooseFS
3.0.117's text, as printed by ``mfscli.py`` there:

- ``-SHD``: ``disks: IP:PORT:PATH chunks last-error status 8*io used total`` (``used`` and
  ``total`` in bytes; a folder being scanned shows ``progress: PERCENT`` instead); status
  is ``ok`` or a comma-separated list of ``damaged``, ``marked for removal`` (``(ready)``,
  ``(not ready)``), ``invalid``, ``scanning``; PATH is the mfshdd.cfg folder with a
  trailing ``/`` and without its ``*``;
- ``-SSC``: ``storage classes: id name admin mode files dirs under exact over
  arch-under arch-exact arch-over create-ok create-goal create-labels keep-ok keep-goal
  keep-labels arch-ok arch-goal arch-labels delay`` with label lists like ``F , S``;
- ``-SIC`` (``-m 1``): ``all chunks matrix:`` (``regular chunks matrix:``) rows
  ``chunkclass STATE: N``; the regular matrix leaves out copies on disks marked for removal.
"""

from __future__ import annotations

import re
from typing import Any

from chaoslib.exceptions import ActivityFailed

from chaosmoose import _docker, _settings
from chaosmoose._settings import Configuration, Secrets
from chaosmoose.chunkserver import _chunks
from mooseng.mfs import cli

__all__: list[str] = []  # not an activity module

MFSCLI = ("host=$(hostname -i | awk '{print $1}'); "
          'exec mfscli -H "$host" -P "${MOOSENG_ROUTER_CL_PORT:-9521}" -n "$@"')
MATRICES = ("all", "regular")
MATRIX_STATES = ("missing", "endangered", "undergoal", "stable", "overgoal", "pending_deletion")
FILEINFO_MARK = "@@ chaosmoose fileinfo @@"
# $1 mount point, $2 folder relative to it: each file's class, then each file's chunks.
WALK = f"""cd -- "$1" || exit 3
[ -d "$2" ] || {{ echo "$2 is not a folder on the mount" >&2; exit 4; }}
find "$2" -type f -print0 | sort -z | xargs -0 -r mfsgetsclass
echo '{FILEINFO_MARK}'
find "$2" -type f -print0 | sort -z | xargs -0 -r mfsfileinfo
exit 0
"""
CLASS_NAME = re.compile(r"[A-Za-z0-9_-]+")
SCLASS_NAMED = re.compile(r"^(.*): '(.*)'$")
SCLASS_GOAL = re.compile(r"^(.*): (\d+)$")


def class_problem(name: Any, required: bool = True) -> str | None:
    """Why ``name`` cannot be a MooseFS storage class name (``None`` when it can): letters,
    digits, ``_`` and ``-`` only, empty only when not ``required``."""
    if name == "" and not required:
        return None
    if not isinstance(name, str) or not CLASS_NAME.fullmatch(name):
        return (f"storage_class={name!r} is invalid; expected a storage class name of "
                "letters, digits, _ and - (no spaces)")
    return None


def client_run(client: str, script: str, args: list[str], what: str,
               configuration: Configuration, secrets: Secrets, timeout: float = 60.0) -> str:
    """Run a bash ``script`` in ``client``'s container with ``args`` as ``$1``...; its stdout.

    The arguments travel as positional parameters, never inside the script's text.
    Fails with the last line of stderr when the script exits non-zero.
    """
    container = _docker.find_container(_settings.project(configuration, secrets), client)
    code, out, err = _docker.exec_in(container, ["timeout", f"{timeout:g}", "bash", "-c",
                                                 script, "chaosmoose", *args])
    if code != 0:
        reason = (err.strip() or out.strip() or f"exit {code}").splitlines()[-1]
        raise ActivityFailed(f"{what} on {client} failed (exit {code}): {reason[:200]}")
    return out


def mfscli(sections: list[str], client: str, configuration: Configuration,
           secrets: Secrets) -> str:
    """``mfscli -n SECTIONS`` through ``client``'s leader router; fails when no master
    answered (mfscli itself exits 0 then)."""
    shown = " ".join(sections)
    out = client_run(client, MFSCLI, sections, f"mfscli {shown}", configuration, secrets)
    lowered = out.lower()
    if not out.strip() or any(marker in lowered for marker in cli.NO_MASTER_MARKERS):
        first = next((line for line in out.splitlines() if line.strip()), "no output")
        raise ActivityFailed(f"mfscli {shown} on {client}: {first.strip()[:200]}; expected "
                             "the serving master's answer")
    return out


def disks(text: str) -> list[dict[str, Any]]:
    """``-SHD`` rows (parsed by ``mooseng.mfs.cli.disks``): ``[{"address" (IP), "port",
    "path", "tier", "chunks", "status", "damaged", "removal", "used", "total", "free",
    "used_percent"}]`` in bytes (sizes None while the folder is scanned)."""
    found = []
    for row in cli.disks(text):
        ip, _, port = row["address"].rpartition(":")
        used, total = row["used_bytes"], row["total_bytes"]
        found.append({
            "address": ip, "port": int(port), "path": row["path"], "tier": row["tier"],
            "chunks": row["chunks"], "status": row["status"], "damaged": row["damaged"],
            "removal": row["marked_for_removal"], "used": used, "total": total,
            "free": None if used is None or total is None else max(0, total - used),
            "used_percent": round(100.0 * used / total, 2) if used is not None and total else None,
        })
    return found


def status_matches(status: str, wanted: str) -> bool:
    """Whether a ``-SHD`` status shows ``wanted``: ``ok``, ``damaged`` (damaged or invalid:
    MooseFS cannot use the folder; a failed tier whose folder MooseFS dropped is listed
    ``invalid``), ``invalid``, ``scanning``, ``marked for removal`` (ready or not) or
    ``ready`` (marked for removal, every chunk copied elsewhere)."""
    parts = [p.strip() for p in status.split(",")]
    if wanted == "damaged":
        return "damaged" in parts or "invalid" in parts
    if wanted == "ready":
        return "marked for removal (ready)" in parts
    if wanted == "marked for removal":
        return any(p.startswith("marked for removal") for p in parts)
    return wanted in parts


def storage_classes(text: str) -> dict[str, dict[str, Any]]:
    """``-SSC`` rows by class name (parsed by ``mooseng.mfs.cli.storage_classes``):
    ``{"id", "mode", "files", "dirs", "chunks": {"under", "exact", "over"}, "create",
    "keep", "archive" (one label expression per copy), "can_be_fulfilled": {"create",
    "keep", "archive"}}``."""
    found = {}
    for c in cli.storage_classes(text):
        chunks = c["chunks"]
        found[c["name"]] = {
            "id": c["id"], "mode": c["mode"], "files": c["files"], "dirs": c["dirs"],
            "chunks": {"under": chunks["undergoal"], "exact": chunks["exact"],
                       "over": chunks["overgoal"]},
            "archived_chunks": c["archived_chunks"],
            **{kind: [e for e in c[kind]["labels"] if e != "-"]
               for kind in ("create", "keep", "archive")},
            "can_be_fulfilled": {kind: c[kind]["can_be_fulfilled"]
                                 for kind in ("create", "keep", "archive")},
        }
    return found


def matrix(text: str, which: str = "all") -> dict[str, int]:
    """The ``-SIC`` summary of the ``all`` or ``regular`` matrix: missing, endangered,
    undergoal, stable, overgoal, pending_deletion (and to_be_removed when printed)."""
    result: dict[str, int] = {}
    for fields in cli.rows(text, f"{which} chunks matrix"):
        if len(fields) >= 2 and fields[0].startswith("chunkclass "):
            state = fields[0][len("chunkclass "):].rstrip(":").replace(" ", "_")
            result[state] = cli.number(fields[1])
    if not all(state in result for state in MATRIX_STATES):
        raise ActivityFailed(f"mfscli -SIC printed no complete {which} chunks matrix "
                             f"(found {sorted(result) or 'nothing'})")
    return result


def chunk_matrix(which: str, client: str, configuration: Configuration,
                 secrets: Secrets) -> dict[str, int]:
    """The serving master's ``all`` or ``regular`` chunk matrix, read through ``client``."""
    if which not in MATRICES:
        raise _settings.SettingError(f"matrix={which!r} is invalid; expected all or regular")
    sections = ["-SIC"] + (["-m", "1"] if which == "regular" else [])
    return matrix(mfscli(sections, client, configuration, secrets), which)


def labels_by_address(text: str) -> dict[str, set[str]]:
    """``-SCS``: each connected chunkserver's IP and its labels (``A,F`` -> {"A", "F"})."""
    return {server["address"].rsplit(":", 1)[0]:
            {label for label in server["labels"].split(",") if label}
            for server in cli.chunkservers(text)}


def fileinfo_many(text: str) -> dict[str, dict[str, Any]]:
    """``mfsfileinfo FILE...``: ``{file: {"chunks": [{"index", "chunk", "copies":
    [{"address", "status"}]}], "error"}}`` (``error`` is what the tool said instead)."""
    files: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for line in text.splitlines():
        if not line.strip():
            continue
        if not line[0].isspace():
            if line.endswith(":"):
                current = files.setdefault(line[:-1], {"chunks": [], "error": None})
            else:
                name, _, said = line.partition(": ")
                files[name] = {"chunks": [], "error": said.strip() or line}
                current = None
            continue
        if current is None:
            continue
        chunk = _chunks.CHUNK_LINE.match(line)
        if chunk:
            current["chunks"].append({"index": int(chunk.group(1)),
                                      "chunk": f"{chunk.group(2)}_{chunk.group(3)}",
                                      "copies": []})
            continue
        copy = _chunks.COPY_LINE.match(line)
        if copy and current["chunks"]:
            current["chunks"][-1]["copies"].append({"address": copy.group(1),
                                                    "status": copy.group(3) or "VALID"})
    return files


def sclasses_many(text: str) -> dict[str, dict[str, Any]]:
    """``mfsgetsclass FILE...``: ``{file: {"class", "error"}}``; a file of one of the nine
    predefined classes prints its goal, which is also that class's name."""
    found: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        if not line.strip() or line[0].isspace():
            continue
        named = SCLASS_NAMED.match(line) or SCLASS_GOAL.match(line)
        if named:
            found[named.group(1)] = {"class": named.group(2), "error": None}
        else:
            name, _, said = line.partition(": ")
            found[name] = {"class": None, "error": said.strip() or line}
    return found


def walk(path: str, client: str, configuration: Configuration,
         secrets: Secrets) -> dict[str, dict[str, Any]]:
    """Every file under folder ``path`` (relative to the mount) with its storage class and
    chunks: ``{file: {"class", "chunks", "error"}}`` (file paths relative to the mount)."""
    mount = _settings.mount_point(client, configuration, secrets)
    out = client_run(client, WALK, [mount, _chunks.check_path(path)],
                     f"reading classes and chunks under {path}", configuration, secrets,
                     timeout=180.0)
    classes_text, _, chunks_text = out.partition(FILEINFO_MARK)
    classes, chunks = sclasses_many(classes_text), fileinfo_many(chunks_text)
    files = {}
    for name in sorted(set(classes) | set(chunks)):
        got_class = classes.get(name, {"class": None, "error": "mfsgetsclass said nothing"})
        got_chunks = chunks.get(name, {"chunks": [], "error": "mfsfileinfo said nothing"})
        files[name] = {"class": got_class["class"], "chunks": got_chunks["chunks"],
                       "error": got_class["error"] or got_chunks["error"]}
    return files
