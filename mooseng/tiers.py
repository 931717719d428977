"""Bounded storage tiers of a chunkserver: their folders, their mfshdd.cfg lines, their use.

Each tier (``MOOSENG_CS_TIERS``) is one folder, ``$MOOSENG_DATA_DIR/tiers/<tier>`` (one named
volume each), listed in mfshdd.cfg with a size limit from ``MOOSENG_CS_TIER_SIZES``. What
MooseFS 3.0.117 does with the line ``<folder> <bytes>`` (mfschunkserver/hddspacemgr.c):

- a positive number is the space MooseFS may use in the folder (``hdd_parseline``, ~6836:
  ``lmode = 2``, ``f->sizelimit``); it then reports ``total = limit`` and ``used`` = the bytes
  of its own chunk files, estimated from their block counts (``hdd_refresh_usage``, ~1614-1637),
  whatever else fills the volume. ``HDD_LEAVE_SPACE_DEFAULT`` does not apply to such a folder.
- a limit larger than the volume (its statvfs size available to non-root) is ignored with
  "limit on ... is greater than real volume size ... - using real volume size" (~6925): the
  folder then counts like an unlimited one (volume size, minus the leave-free space). The
  check runs when the line is parsed (start and reload) only.
- ``0`` means "no limit"; a leading ``*`` marks the folder for removal (its chunks are
  copied elsewhere, nothing new is written there); a leading ``-`` before the number would
  be the space to leave free instead, which we do not use.
- MooseFS refreshes a folder's figures every 60 s, or at once after a chunk operation in it
  (``hdd_check_folders``, ``f->needrefresh``): a changed limit shows within that time.

``mooseng disk`` (:mod:`mooseng.mfs.disks`) changes these lines at run time; the exporter's
:class:`TierUsageCollector` reports each tier from the chunkserver's own view.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from mooseng import settings

REMOVAL_PREFIX = "*"
HDD_CFG_HEADER = ("# Written by mooseng at container start from MOOSENG_CS_TIERS and "
                  "MOOSENG_CS_TIER_SIZES;\n# `mooseng disk` edits it at run time "
                  "(limit, removal). Lines: [*]<folder> <bytes>, or\n# <folder> -<bytes> "
                  "(leave free) while a tier holds no chunk (mooseng/mfs/disks.py).\n")


@dataclass(frozen=True)
class Tier:
    """One configured tier: its name, folder and configured size limit in bytes."""

    name: str
    path: Path
    configured_limit: int


def configured_tiers(tiers_root: Path | None = None,
                     environ: Mapping[str, str] | None = None) -> list[Tier]:
    """The tiers of MOOSENG_CS_TIERS with their MOOSENG_CS_TIER_SIZES, in that order; the
    folders live under ``tiers_root`` (default ``$MOOSENG_DATA_DIR/tiers``). Raises
    settings.SettingError when a tier has no size."""
    if tiers_root is None:
        tiers_root = Path(str(settings.read("MOOSENG_DATA_DIR", environ))) / "tiers"
    return [Tier(name, tiers_root / name, size)
            for name, size in settings.tier_sizes(environ).items()]


# --- mfshdd.cfg ------------------------------------------------------------------
@dataclass(frozen=True)
class HddLine:
    """One folder line of mfshdd.cfg: ``[*]<path> [<size>]``. ``limit`` is the size limit in
    bytes (None: no limit); ``flags`` keeps MooseFS's other prefixes (``~`` ignore size
    changes, ``<``/``>`` rebalance) and ``other_size`` a size token we do not model (``-N``,
    space to leave free, or a unit we do not parse), both written back as they were."""

    path: str
    limit: int | None = None
    removal: bool = False
    flags: str = ""
    other_size: str | None = None

    def render(self) -> str:
        """The line as MooseFS reads it (no newline)."""
        prefix = (REMOVAL_PREFIX if self.removal else "") + self.flags
        size = self.other_size if self.limit is None else str(self.limit)
        return f"{prefix}{self.path}" + (f" {size}" if size else "")


def same_folder(a: str | Path, b: str | Path) -> bool:
    """True when two folder paths name the same folder (MooseFS adds a trailing slash)."""
    return str(a).rstrip("/") == str(b).rstrip("/")


def parse_hdd_line(line: str) -> HddLine | None:
    """One mfshdd.cfg line (None for a comment or a blank line), read the way
    ``hdd_parseline`` does: the last blank-separated token is a size when it starts with a
    digit or a dot (with a ``-`` first: space to leave free), then the prefix characters."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    limit: int | None = None
    other: str | None = None
    split = re.fullmatch(r"(.*\S)[ \t]+(\S+)", text)
    if split and re.match(r"-?[0-9.]", split.group(2)):
        text, token = split.group(1), split.group(2)
        try:
            limit = None if token.startswith("-") else settings.parse_size(token)
        except ValueError:
            limit = None
        if limit is None or limit == 0:
            limit, other = None, token
    removal, flags = False, ""
    while text and text[0] in "*~<>":
        if text[0] == REMOVAL_PREFIX:
            removal = True
        else:
            flags += text[0]
        text = text[1:]
    return HddLine(text, limit, removal, flags, other)


def parse_hdd_cfg(text: str) -> list[HddLine]:
    """Every folder line of an mfshdd.cfg body, in order."""
    return [entry for entry in (parse_hdd_line(line) for line in text.splitlines()) if entry]


def render_hdd_cfg(lines: list[HddLine]) -> str:
    """An mfshdd.cfg body: our header, then one line per folder."""
    return HDD_CFG_HEADER + "".join(line.render() + "\n" for line in lines)


def configured_hdd_lines(tiers: list[Tier]) -> list[HddLine]:
    """The lines of the configured state: every tier with its configured limit."""
    return [HddLine(str(tier.path), tier.configured_limit) for tier in tiers]


def start_hdd_lines(tiers: list[Tier]) -> list[HddLine]:
    """The lines a chunkserver starts with: a tier that holds chunks gets its configured
    limit (MooseFS learns its chunks' sizes while it scans a limited folder and measures it
    within seconds), an empty tier its "leave N free" form (:func:`empty_tier_line`: MooseFS
    cannot measure a limited folder before it has counted a chunk there); the settle thread
    gives that one its limit once MooseFS can (:meth:`mooseng.mfs.disks.Disks.settle_empty_tiers`)."""
    lines = []
    for tier in tiers:
        if has_chunk(tier.path):
            lines.append(HddLine(str(tier.path), tier.configured_limit))
            continue
        info = os.statvfs(tier.path)
        lines.append(empty_tier_line(tier, info.f_bavail * info.f_frsize, chunk_bytes(tier.path)))
    return lines


def line_of(lines: list[HddLine], tier: Tier) -> HddLine | None:
    """The mfshdd.cfg line of ``tier``'s folder, if any."""
    return next((line for line in lines if same_folder(line.path, tier.path)), None)


# --- use ---------------------------------------------------------------------------
def chunk_bytes(folder: Path) -> int:
    """Bytes the chunk files (``XX/chunk_*.mfs``) of a folder occupy on disk
    (``st_blocks * 512`` summed: what MooseFS's own estimate counts)."""
    total = 0
    try:
        subfolders = [entry.path for entry in os.scandir(folder) if entry.is_dir(follow_symlinks=False)]
    except OSError:
        return 0
    for sub in subfolders:
        try:
            with os.scandir(sub) as entries:
                for entry in entries:
                    if entry.name.startswith("chunk_") and entry.name.endswith(".mfs"):
                        try:
                            total += entry.stat(follow_symlinks=False).st_blocks * 512
                        except OSError:
                            continue
        except OSError:
            continue
    return total


def has_chunk(folder: Path) -> bool:
    """True as soon as one chunk file (``XX/chunk_*.mfs``) is found under ``folder``."""
    try:
        subfolders = [entry.path for entry in os.scandir(folder) if entry.is_dir(follow_symlinks=False)]
    except OSError:
        return False
    for sub in subfolders:
        try:
            with os.scandir(sub) as entries:
                if any(e.name.startswith("chunk_") and e.name.endswith(".mfs") for e in entries):
                    return True
        except OSError:
            continue
    return False


def empty_tier_line(tier: Tier, free_bytes: int, used: int = 0) -> HddLine:
    """A tier's line while MooseFS cannot measure it: "leave N free" with N the filesystem's
    free space beyond what the tier may still take (its configured size minus ``used``, its
    chunks' bytes), so that MooseFS offers exactly that (see
    :meth:`mooseng.mfs.disks.Disks.settle_empty_tiers` for why)."""
    room = max(0, tier.configured_limit - used)
    return HddLine(str(tier.path), None, other_size=f"-{max(0, free_bytes - room)}")


def is_empty_tier_line(line: HddLine) -> bool:
    """True for a line written by :func:`empty_tier_line` (no limit, space left free)."""
    return line.limit is None and bool(line.other_size) and str(line.other_size).startswith("-")


@dataclass(frozen=True)
class TierUsage:
    """One tier as the chunkserver sees it: the limit in force (mfshdd.cfg, else the
    configured one), the bytes of its chunk files and what is left."""

    tier: str
    total: int
    used: int
    removal: bool

    @property
    def free(self) -> int:
        """Bytes MooseFS may still write there (0 when over the limit)."""
        return max(0, self.total - self.used)


def read_hdd_lines(path: Path) -> list[HddLine]:
    """The folder lines of the mfshdd.cfg at ``path``; [] when it cannot be read."""
    try:
        return parse_hdd_cfg(path.read_text())
    except OSError:
        return []


class TierUsageCollector:
    """``mooseng_tier_{total,used,free}_bytes{tier=...}``: each tier as this chunkserver
    bounds it (a prometheus_client custom collector, :class:`mooseng.promtext.Collector`).

    total is the limit in force in mfshdd.cfg (what ``mooseng disk limit`` set, else the
    configured size), used the bytes of the tier's chunk files, free the difference. Walking
    the chunk files costs a directory scan, so used is cached for ``scan_every`` seconds."""

    def __init__(self, tiers: list[Tier], hdd_cfg: Path, scan_every: float = 15.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.tiers = tiers
        self.hdd_cfg = hdd_cfg
        self.scan_every = scan_every
        self.clock = clock
        self._used: dict[str, int] = {}
        self._scanned_at: float | None = None
        self._lock = threading.Lock()

    def _used_bytes(self) -> dict[str, int]:
        with self._lock:
            now = self.clock()
            if self._scanned_at is None or now - self._scanned_at >= self.scan_every:
                self._used = {tier.name: chunk_bytes(tier.path) for tier in self.tiers}
                self._scanned_at = now
            return dict(self._used)

    def read(self) -> list[TierUsage]:
        """The figures of every tier, now (used: at most ``scan_every`` s old)."""
        lines = read_hdd_lines(self.hdd_cfg)
        used = self._used_bytes()
        usage = []
        for tier in self.tiers:
            line = line_of(lines, tier)
            limit = line.limit if line is not None and line.limit else tier.configured_limit
            usage.append(TierUsage(tier.name, limit, used.get(tier.name, 0),
                                   bool(line and line.removal)))
        return usage

    def collect(self) -> Iterator[object]:
        """The metric families of one scrape."""
        from mooseng.promtext import family  # the exporter's exposition helpers

        usage = self.read()
        yield family("mooseng_tier_total_bytes", "gauge",
                     "Space MooseFS may use in the storage tier (its mfshdd.cfg limit).",
                     [({"tier": u.tier}, u.total) for u in usage])
        yield family("mooseng_tier_used_bytes", "gauge",
                     "Bytes of the chunk files in the storage tier.",
                     [({"tier": u.tier}, u.used) for u in usage])
        yield family("mooseng_tier_free_bytes", "gauge",
                     "Space left in the storage tier under its limit.",
                     [({"tier": u.tier}, u.free) for u in usage])
        yield family("mooseng_tier_marked_for_removal", "gauge",
                     "1 when the storage tier is marked for removal in mfshdd.cfg.",
                     [({"tier": u.tier}, 1 if u.removal else 0) for u in usage])
