"""The plan of a test data set: from a seed, a total size and a file count, every entry.

Pure and deterministic: the same (seed, size, files, max_file_size) always gives the same
plan, on any machine and Python version (only ``random.Random(seed).random()`` is used,
whose sequence Python guarantees). An entry is one of

- ``{"path", "kind": "dir"}``: a folder, parents listed before children, at most
  ``MAX_DEPTH`` levels deep;
- ``{"path", "kind": "file", "size"}``: a regular file;
- ``{"path", "kind": "sparse", "size", "holes": [[offset, length], ...]}``: a file whose
  holes are never written (zeros when read), aligned to MooseFS's 64 KiB blocks;
- ``{"path", "kind": "hardlink", "size", "target"}``: another name of the regular file
  ``target`` (a path in the plan);
- ``{"path", "kind": "symlink", "target", "points_to"}``: a symbolic link whose text
  ``target`` is relative to its own folder and resolves to the plan's ``points_to``.

Paths are relative to the data set's folder. ``files`` counts every entry but folders
(regular and sparse files and both kinds of links: about 2 % of each kind of link once there
are 4 or more); the sizes of regular and sparse files add up to ``size`` exactly. Sizes are
spread log-uniformly from 1 byte to ``max_file_size`` (a few files are empty), scaled to the
requested total and capped at ``max_file_size``.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from typing import Any

from chaosmoose._settings import SettingError

__all__: list[str] = []  # not an activity module

PLAN_VERSION = 1
KIB, MIB, GIB, TIB = 1 << 10, 1 << 20, 1 << 30, 1 << 40
MAX_FILE_SIZE = 64 * MIB  # one MooseFS chunk
MAX_FILES = 1_000_000
MAX_DEPTH = 4
BLOCK = 64 * KIB  # MooseFS block: holes and data extents of sparse files are aligned to it
SPARSE_MIN = 4 * BLOCK  # files at least this large may be sparse

_UNITS = {"": 1, "b": 1,
          "k": KIB, "kib": KIB, "kb": 1000,
          "m": MIB, "mib": MIB, "mb": 1000 ** 2,
          "g": GIB, "gib": GIB, "gb": 1000 ** 3,
          "t": TIB, "tib": TIB, "tb": 1000 ** 4}
_SIZE = re.compile(r"(\d+(?:\.\d+)?) ?([A-Za-z]*)")


def parse_size(value: Any, key: str = "size") -> int:
    """Bytes from ``1048576``, ``"64MiB"``, ``"1.5GiB"``, ``"10MB"`` or ``"1G"``.

    KiB/MiB/GiB/TiB and the one-letter K/M/G/T are powers of 1024, kB/MB/GB/TB powers of
    1000; one space may separate the number from the unit. Raises ``SettingError`` naming
    ``key`` on anything else (a negative size, ``"1 GB x"``, ``"lots"``).
    """
    if isinstance(value, bool):
        raise SettingError(f"{key}={value!r} is invalid; expected a size such as 256MiB")
    if isinstance(value, int):
        number, unit = float(value), ""
        if value < 0:
            raise SettingError(f"{key}={value!r} is invalid; expected a size >= 0")
    elif isinstance(value, float):
        if not math.isfinite(value) or value < 0:
            raise SettingError(f"{key}={value!r} is invalid; expected a size >= 0")
        number, unit = value, ""
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("-"):
            raise SettingError(f"{key}={value!r} is invalid; expected a size >= 0")
        match = _SIZE.fullmatch(text)
        if not match or match.group(2).lower() not in _UNITS:
            raise SettingError(f"{key}={value!r} is invalid; expected a size such as 256MiB, "
                               "1GiB, 10MB or a number of bytes")
        number, unit = float(match.group(1)), match.group(2).lower()
    else:
        raise SettingError(f"{key}={value!r} is invalid; expected a size such as 256MiB")
    return round(number * _UNITS[unit])


def format_size(size: float) -> str:
    """``1.5 GiB``, ``64.0 MiB``, ``12 B``: for messages and progress lines."""
    for unit, scale in (("TiB", TIB), ("GiB", GIB), ("MiB", MIB), ("KiB", KIB)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{int(size)} B"


class _Rng:
    """``random()`` only: its sequence for an integer seed is stable across Python versions."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def random(self) -> float:
        return self._random.random()

    def below(self, n: int) -> int:
        """An integer in [0, n)."""
        return min(n - 1, int(self._random.random() * n))

    def choice(self, items: list[Any]) -> Any:
        return items[self.below(len(items))]


def check_counts(total: int, files: int, max_file_size: int = MAX_FILE_SIZE) -> None:
    """Raise ``SettingError`` unless ``files`` entries can hold ``total`` bytes."""
    if isinstance(files, bool) or not isinstance(files, int) or files < 1:
        raise SettingError(f"files={files!r} is invalid; expected a whole number >= 1")
    if files > MAX_FILES:
        raise SettingError(f"files={files} is invalid; expected at most {MAX_FILES}")
    if total < 0:
        raise SettingError(f"size={total} is invalid; expected a size >= 0")
    if max_file_size < 1:
        raise SettingError(f"max_file_size={max_file_size} is invalid; expected >= 1 byte")
    data = files - 2 * link_count(files)
    if total > data * max_file_size:
        needed = -(-total // max_file_size)
        raise SettingError(
            f"size {format_size(total)} does not fit in {files} files of at most "
            f"{format_size(max_file_size)} each ({data} hold data); expected more files "
            f"(about {needed + 2 * link_count(needed)}) or a smaller size")


def link_count(files: int) -> int:
    """How many hard links (and as many symbolic links) a plan of ``files`` entries has."""
    return 0 if files < 4 else max(1, files // 50)


def _dirs(rng: _Rng, files: int) -> list[tuple[str, int]]:
    """Folder paths with their depth, parents first: about one folder per 8 files."""
    count = min(64, files // 8) if files >= 8 else (1 if files >= 2 else 0)
    dirs: list[tuple[str, int]] = []
    for i in range(count):
        parents = [("", 0)] + [d for d in dirs if d[1] < MAX_DEPTH]
        parent, depth = rng.choice(parents)
        name = f"d{i:03d}"
        dirs.append((f"{parent}/{name}" if parent else name, depth + 1))
    return dirs


def _sizes(rng: _Rng, count: int, total: int, cap: int) -> list[int]:
    """``count`` sizes adding up to ``total``, each <= ``cap``, spread log-uniformly."""
    if count == 0:
        return []
    if total == 0:
        return [0] * count
    empty = {i for i in range(count) if rng.random() < 0.03}
    if count >= 2 and not empty:
        empty = {rng.below(count)}
    while empty and (count - len(empty)) * cap < total:  # room for the total first
        empty.discard(max(empty))
    log_cap = math.log(max(cap, 2))
    weights = [0.0 if i in empty else math.exp(rng.random() * log_cap) for i in range(count)]
    # Scale to the total, then water-fill: sizes over the cap are capped and the excess is
    # spread over the others in proportion, until none is over (check_counts ensures room).
    fixed: set[int] = set(empty)
    sizes = list(weights)
    remaining = float(total)
    while True:
        free = [i for i in range(count) if i not in fixed]
        if not free:
            break
        weight = sum(weights[i] for i in free)
        for i in free:
            sizes[i] = weights[i] * remaining / weight
        over = [i for i in free if sizes[i] > cap]
        if not over:
            break
        for i in over:
            sizes[i] = float(cap)
            fixed.add(i)
            remaining -= cap
    whole = [min(cap, int(s)) for s in sizes]
    short = total - sum(whole)
    # Round-off: hand the missing bytes to (or take extra ones from) the largest files.
    for i in sorted((i for i in range(count) if i not in empty), key=lambda i: -whole[i]):
        if short == 0:
            break
        change = min(short, cap - whole[i]) if short > 0 else max(short, -whole[i])
        whole[i] += change
        short -= change
    return whole


def _holes(rng: _Rng, size: int) -> list[list[int]]:
    """Hole extents of a sparse file: aligned to ``BLOCK``, at least one, never the whole."""
    blocks = -(-size // BLOCK)
    cuts = sorted({1 + rng.below(blocks - 1) for _ in range(3)})
    bounds = [0, *[c * BLOCK for c in cuts], size]
    start_with_hole = rng.random() < 0.5
    holes = []
    for n, (begin, end) in enumerate(itertools.pairwise(bounds)):
        if (n % 2 == 0) == start_with_hole and end > begin:
            holes.append([begin, end - begin])
    if not holes or sum(h[1] for h in holes) >= size:
        holes = [[BLOCK, min(size, 2 * BLOCK) - BLOCK]]  # data, hole, data (or trailing)
    return holes


def _relative(target: str, link: str) -> str:
    """The text of a symbolic link at ``link`` pointing to ``target`` (both plan paths)."""
    link_dir = link.split("/")[:-1]
    parts = target.split("/")
    common = 0
    while common < min(len(link_dir), len(parts) - 1) and link_dir[common] == parts[common]:
        common += 1
    return "/".join([".."] * (len(link_dir) - common) + parts[common:])


def make_plan(seed: int, total: int, files: int, max_file_size: int = MAX_FILE_SIZE) -> dict:
    """The data set for ``seed``: ``{"version", "seed", "size", "files", "max_file_size",
    "entries": [...]}`` (see the module's docstring for the entries).

    Raises ``SettingError`` on a negative size, fewer than one file, or a size that ``files``
    files of at most ``max_file_size`` cannot hold.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise SettingError(f"seed={seed!r} is invalid; expected a whole number >= 0")
    check_counts(total, files, max_file_size)
    rng = _Rng(seed)
    links = link_count(files)
    data_count = files - 2 * links
    dirs = _dirs(rng, files)
    entries: list[dict[str, Any]] = [{"path": d, "kind": "dir"} for d, _ in dirs]
    folders = [""] + [d for d, _ in dirs]

    def place(name: str) -> str:
        folder = rng.choice(folders)
        return f"{folder}/{name}" if folder else name

    sizes = _sizes(rng, data_count, total, max_file_size)
    candidates = [i for i, s in enumerate(sizes) if s >= SPARSE_MIN]
    sparse = {i for i in candidates if rng.random() < 0.08}
    if candidates and not sparse:
        sparse = {rng.choice(candidates)}
    data_files = []
    for i, size in enumerate(sizes):
        if i in sparse:
            entry = {"path": place(f"s{i:05d}.img"), "kind": "sparse", "size": size,
                     "holes": _holes(rng, size)}
        else:
            entry = {"path": place(f"f{i:05d}.bin"), "kind": "file", "size": size}
        data_files.append(entry)
    entries += data_files
    regular = [e for e in data_files if e["kind"] == "file"] or data_files
    for n in range(links):
        target = rng.choice(regular)
        entries.append({"path": place(f"h{n:05d}.lnk"), "kind": "hardlink",
                        "size": target["size"], "target": target["path"]})
    for n in range(links):
        target = rng.choice(data_files)
        path = place(f"l{n:05d}.sym")
        entries.append({"path": path, "kind": "symlink", "target": _relative(target["path"], path),
                        "points_to": target["path"]})
    return {"version": PLAN_VERSION, "seed": seed, "size": total, "files": files,
            "max_file_size": max_file_size, "entries": entries}


def totals(entries: list[dict[str, Any]]) -> dict[str, int]:
    """Counts per kind, the logical bytes (regular and sparse files) and the bytes written
    (without holes)."""
    counts = {kind: 0 for kind in ("dir", "file", "sparse", "hardlink", "symlink")}
    size = written = 0
    for entry in entries:
        counts[entry["kind"]] = counts.get(entry["kind"], 0) + 1
        if entry["kind"] in ("file", "sparse"):
            size += entry["size"]
            written += entry["size"] - sum(h[1] for h in entry.get("holes", []))
    return {**counts, "entries": len(entries), "files": len(entries) - counts["dir"],
            "bytes": size, "written_bytes": written}
