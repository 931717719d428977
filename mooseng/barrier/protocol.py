"""MooseFS wire format as far as the barrier needs it (3.0.117, mfscommon/MFSCommunication.h).

Every packet is ``type:32 length:32 payload`` (big endian). Only the packets used here are
named; everything else is passed through as opaque frames.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HEADER = struct.Struct(">II")
MAX_PAYLOAD = 50_000_000  # CLTOMA_MAXPACKETSIZE, the largest any MooseFS peer accepts

ANTOAN_NOP = 0
ANTOMA_REGISTER = 50
MATOAN_METACHANGES_LOG = 51
CLTOMA_INFO = 510
MATOCL_INFO = 511

LOG_DATA = 0xFF
LOG_ROTATE = 0x55

# Our own packets on the ack link (follower tap -> leader barrier); far from MooseFS's range.
BARRIER_HELLO = 0x4D4E0001  # node name (utf-8)
BARRIER_ACK = 0x4D4E0002    # version:64, the highest contiguous change persisted by the tap

INFO_META_VERSION_OFFSET = 121  # in MATOCL_INFO (149 bytes in 3.0.117): the next change number
MOOSEFS_VERSION = (3, 0, 117)


class ProtocolError(ValueError):
    """A peer sent something this module cannot frame or decode."""


def pack(kind: int, payload: bytes = b"") -> bytes:
    """One packet: header plus payload."""
    return HEADER.pack(kind, len(payload)) + payload


@dataclass
class Frame:
    """A framed packet; ``raw`` holds the header and payload exactly as received."""

    kind: int
    payload: bytes

    @property
    def raw(self) -> bytes:
        return pack(self.kind, self.payload)


class Framer:
    """Incremental framing of a byte stream into packets."""

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self._buffer = bytearray()
        self._max = max_payload

    def feed(self, data: bytes) -> Iterator[Frame]:
        """Add ``data``; yield every packet now complete."""
        self._buffer += data
        while len(self._buffer) >= HEADER.size:
            kind, length = HEADER.unpack_from(self._buffer)
            if length > self._max:
                raise ProtocolError(f"packet type {kind} claims {length} bytes (max {self._max})")
            end = HEADER.size + length
            if len(self._buffer) < end:
                return
            payload = bytes(self._buffer[HEADER.size:end])
            del self._buffer[:end]
            yield Frame(kind, payload)

    @property
    def pending(self) -> int:
        """Bytes of an incomplete packet held back."""
        return len(self._buffer)


def info_request() -> bytes:
    """CLTOMA_INFO: empty payload; mfsmaster answers it on unregistered connections."""
    return pack(CLTOMA_INFO)


def info_meta_version(payload: bytes) -> int:
    """meta_version from a MATOCL_INFO payload: the number the next change will get, so every
    change up to ``meta_version - 1`` existed when the master produced the answer."""
    end = INFO_META_VERSION_OFFSET + 8
    if len(payload) < end:
        raise ProtocolError(f"MATOCL_INFO of {len(payload)} bytes has no meta_version "
                            f"(needs {end})")
    return struct.unpack_from(">Q", payload, INFO_META_VERSION_OFFSET)[0]


def register_metalogger(timeout_s: int, next_version: int = 0,
                        version: tuple[int, int, int] = MOOSEFS_VERSION) -> bytes:
    """ANTOMA_REGISTER as mfsmetalogger sends it: rver 1 (stream from now on) or, with
    ``next_version``, rver 2 (the master first resends the changes it still remembers from
    ``next_version`` on, CHANGELOG_PRESERVE_SECONDS)."""
    major, mid, minor = version
    body = struct.pack(">BHBBH", 2 if next_version else 1, major, mid, minor, timeout_s)
    if next_version:
        body += struct.pack(">Q", next_version)
    return pack(ANTOMA_REGISTER, body)


@dataclass(frozen=True)
class LogEntry:
    """One changelog line from MATOAN_METACHANGES_LOG (``text`` without the trailing NUL)."""

    version: int
    text: bytes

    def line(self) -> bytes:
        """The line exactly as mfsmetalogger writes it to changelog_ml.0.mfs."""
        return b"%d: %s\n" % (self.version, self.text)


def parse_metachanges(payload: bytes) -> LogEntry | None:
    """A LOG_DATA entry, or None for LOG_ROTATE. Raises on anything mfsmetalogger rejects."""
    if payload == bytes([LOG_ROTATE]):
        return None
    if len(payload) < 10 or payload[0] != LOG_DATA:
        raise ProtocolError(f"bad MATOAN_METACHANGES_LOG ({len(payload)} bytes, "
                            f"first {payload[:1].hex()})")
    if payload[-1] != 0:
        raise ProtocolError("MATOAN_METACHANGES_LOG text is not NUL-terminated")
    (version,) = struct.unpack_from(">Q", payload, 1)
    return LogEntry(version, payload[9:-1])


def metachanges(entry: LogEntry) -> bytes:
    """The packet the master sends for ``entry`` (used by fakes and tests)."""
    return pack(MATOAN_METACHANGES_LOG,
                bytes([LOG_DATA]) + struct.pack(">Q", entry.version) + entry.text + b"\0")


def hello(node: str, epoch: int = 0) -> bytes:
    """First packet on an ack link: who acknowledges, for which leader's lineage (lease
    epoch; 0 = unchecked)."""
    return pack(BARRIER_HELLO, (f"{node} {epoch}" if epoch else node).encode())


def ack(version: int) -> bytes:
    return pack(BARRIER_ACK, struct.pack(">Q", version))


def parse_ack(payload: bytes) -> int:
    if len(payload) != 8:
        raise ProtocolError(f"ack of {len(payload)} bytes (expected 8)")
    return struct.unpack(">Q", payload)[0]


# --- files mfsmaster -a reads ---------------------------------------------------------------

def last_version_in_changelog(path: Path) -> int:
    """The change number of the last complete line of a changelog file (0 if none)."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - 65536))
            tail = handle.read()
    except OSError:
        return 0
    for line in reversed(tail.split(b"\n")[:-1]):  # the part after the last \n is incomplete
        head, sep, _ = line.partition(b": ")
        if sep and head.isdigit():
            return int(head)
    return 0


def metadata_file_version(path: Path) -> int:
    """The meta_version stored in a metadata file header (``MFSM x.y`` then version:64);
    1 for the empty seed ``MFSM NEW``; 0 when unreadable."""
    try:
        with path.open("rb") as handle:
            header = handle.read(16)
    except OSError:
        return 0
    if header[:8] == b"MFSM NEW":
        return 1
    if len(header) < 16 or header[:5] != b"MFSM ":
        return 0
    return struct.unpack_from(">Q", header, 8)[0]


def covered_version(folder: Path, sync: bool = False) -> int:
    """The highest change a restore from ``folder`` (a metalogger's DATA_PATH) reaches at
    least: the best metadata file's version minus one, or the last complete changelog line
    (mfsmetalogger deletes its changelogs at a hole, so they follow its metadata). With
    ``sync`` the changelogs are fdatasync'ed first: mfsmetalogger never syncs them, and an
    acknowledgement must not rest on lines only in the page cache."""
    best = 0
    for path in folder.glob("metadata*"):
        best = max(best, metadata_file_version(path) - 1)
    for path in folder.glob("changelog*.mfs"):
        if sync:
            try:
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fdatasync(fd)
                finally:
                    os.close(fd)
            except OSError:
                continue
        best = max(best, last_version_in_changelog(path))
    return best
