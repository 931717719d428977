"""In-container chunk file tool (standard library only; shipped into chunkserver containers).

A MooseFS 3.0 chunk file ``chunk_<ID>_<VERSION>.mfs`` is a header (signature and one CRC
per 64 KiB block) followed by whole 64 KiB data blocks, so the header length is the file
size modulo 64 KiB. Commands print one JSON object:

  locate --root DIR --chunk ID_VERSION --offset N --length L
      the file holding the chunk and the L bytes at data offset N (hex); when there is
      none (or two, during a move between folders), "missing" is true and "replicating"
      says whether a replication is writing it
  swap --file F --offset N --expect HEX --data HEX
      write DATA at file offset N only if the bytes there are EXPECT (compare and swap),
      fsync; how = "written", "already" (DATA is there), "gone" or "changed"
  compare --file F --offset N --data HEX
      how = "same" (DATA is there), "differs" or "gone"
  read --host IP --port P --chunk ID_VERSION --offset N --size S
      read a chunk copy straight from its chunkserver (MooseFS CLTOCS_READ), as a client
      would; the chunkserver checks every block's CRC and reports a damaged copy to the
      master. status 0 is OK, 29 is MooseFS's CRC error.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import socket
import struct
import sys
from typing import Any

BLOCK = 64 * 1024


def _print(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def locate(root: str, chunk: str, offset: int, length: int) -> dict[str, Any]:
    """Find the chunk file under ``root`` and read ``length`` bytes at data ``offset``."""
    found = sorted(glob.glob(os.path.join(root, "*", "*", f"chunk_{chunk}.mfs")))
    if not found:
        # A replication destination writes chunk_<ID>_00000000.mfs until it is complete
        # (MooseFS 3.0 replicator.c: hdd_create(chunkid, 0), then hdd_version to the real one).
        chunk_id = chunk.partition("_")[0]
        pattern = os.path.join(root, "*", "*", f"chunk_{chunk_id}_00000000.mfs")
        replicating = bool(glob.glob(pattern))
        return {"error": f"no file for chunk {chunk} under {root}"
                         + (" (a copy is being replicated here)" if replicating else ""),
                "missing": True, "replicating": replicating}
    if len(found) > 1:
        # The chunkserver moves chunks between its folders (hdd_move): it renames the new file
        # into place, then unlinks the old one; which of the two to hit is not ours to guess.
        return {"error": f"chunk {chunk} is in {len(found)} files under {root} (a move "
                         "between folders in progress)", "missing": True, "replicating": False}
    path = found[0]
    size = os.path.getsize(path)
    header = size % BLOCK
    data = size - header
    if offset < 0 or length <= 0 or offset + length > data:
        return {"error": f"chunk {chunk} has {data} data bytes; cannot take {length} at {offset}"}
    with open(path, "rb") as f:
        f.seek(header + offset)
        original = f.read(length)
    return {"file": path, "offset": header + offset, "header": header, "data_bytes": data,
            "original": original.hex()}


def swap(path: str, offset: int, expect: bytes, data: bytes) -> dict[str, Any]:
    """Compare-and-swap ``data`` at ``offset`` of ``path``."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return {"how": "gone"}
    try:
        current = os.pread(fd, len(expect), offset)
        if current == data:
            return {"how": "already"}
        if current != expect:
            return {"how": "changed", "current": current.hex()}
        os.pwrite(fd, data, offset)
        os.fsync(fd)
        return {"how": "written"}
    finally:
        os.close(fd)


def compare(path: str, offset: int, data: bytes) -> dict[str, Any]:
    """Whether ``data`` is at ``offset`` of ``path``."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return {"how": "same" if f.read(len(data)) == data else "differs"}
    except FileNotFoundError:
        return {"how": "gone"}


CLTOCS_READ, CSTOCL_READ_STATUS, CSTOCL_READ_DATA, ANTOAN_NOP = 200, 201, 202, 0
STATUS_CRC_ERROR = 29


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        part = sock.recv(size - len(data))
        if not part:
            raise ConnectionError("chunkserver closed the connection")
        data += part
    return data


def read_copy(host: str, port: int, chunk: str, offset: int, size: int,
              timeout: float = 10.0) -> dict[str, Any]:
    """Read ``size`` bytes at ``offset`` of one chunk copy from its chunkserver."""
    chunk_id, _, version = chunk.partition("_")
    request = struct.pack(">QIII", int(chunk_id, 16), int(version, 16), offset, size)
    received = 0
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">II", CLTOCS_READ, len(request)) + request)
        while True:
            kind, length = struct.unpack(">II", _recv_exact(sock, 8))
            body = _recv_exact(sock, length) if length else b""
            if kind == CSTOCL_READ_DATA:
                received += max(0, length - 20)  # chunkid:64 blocknum:16 offset:16 size:32 crc:32
            elif kind == CSTOCL_READ_STATUS:
                status = body[8] if len(body) >= 9 else -1
                return {"status": status, "crc_error": status == STATUS_CRC_ERROR,
                        "bytes": received}
            elif kind != ANTOAN_NOP:
                return {"error": f"unexpected packet type {kind} from {host}:{port}"}


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run one command, print its JSON result."""
    parser = argparse.ArgumentParser(prog="chunktool")
    sub = parser.add_subparsers(dest="command", required=True)
    loc = sub.add_parser("locate")
    loc.add_argument("--root", required=True)
    loc.add_argument("--chunk", required=True)
    loc.add_argument("--offset", type=int, default=0)
    loc.add_argument("--length", type=int, default=16)
    sw = sub.add_parser("swap")
    sw.add_argument("--file", required=True)
    sw.add_argument("--offset", type=int, required=True)
    sw.add_argument("--expect", required=True)
    sw.add_argument("--data", required=True)
    cmp = sub.add_parser("compare")
    cmp.add_argument("--file", required=True)
    cmp.add_argument("--offset", type=int, required=True)
    cmp.add_argument("--data", required=True)
    rd = sub.add_parser("read")
    rd.add_argument("--host", required=True)
    rd.add_argument("--port", type=int, default=9422)
    rd.add_argument("--chunk", required=True)
    rd.add_argument("--offset", type=int, default=0)
    rd.add_argument("--size", type=int, default=65536)
    args = parser.parse_args(argv)
    try:
        if args.command == "locate":
            result = locate(args.root, args.chunk, args.offset, args.length)
        elif args.command == "read":
            result = read_copy(args.host, args.port, args.chunk, args.offset, args.size)
        elif args.command == "compare":
            result = compare(args.file, args.offset, bytes.fromhex(args.data))
        else:
            expect, data = bytes.fromhex(args.expect), bytes.fromhex(args.data)
            if len(expect) != len(data):
                result = {"error": "expect and data differ in length"}
            else:
                result = swap(args.file, args.offset, expect, data)
    except (OSError, ValueError) as exc:
        result = {"error": f"{exc.__class__.__name__}: {exc}"}
    _print(result)
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main())
