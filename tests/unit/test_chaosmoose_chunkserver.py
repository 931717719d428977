"""Chunk fault helpers: mfsfileinfo parsing, copy choice, and the in-container chunk tool on
real files and a local socket that speaks the chunkserver's read protocol."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from chaoslib.exceptions import ActivityFailed

from chaosmoose.chunkserver import _chunks, chunktool

# mfsfileinfo output of MooseFS 3.0.117 (captured from client-1), plus a copy marked invalid.
FILEINFO = """/mnt/client-1/cx.bin:
\tchunk 0: 00000000000001B0_00000001 / (id:432 ver:1)
\t\tcopy 1: 172.18.0.5:9422 (status:VALID)
\t\tcopy 2: 172.18.0.6:9422 (status:VALID)
\t\tcopy 3: 172.18.0.7:9422 (status:INVALID)
\tchunk 1: 00000000000001B1_00000002 / (id:433 ver:2)
\t\tcopy 1: 172.18.0.7:9422 (status:VALID)
"""
ADDRESSES = {"172.18.0.5": "chunkserver-2", "172.18.0.6": "chunkserver-1",
             "172.18.0.7": "chunkserver-3"}
TOOL = [sys.executable, chunktool.__file__]


def test_parse_fileinfo_keeps_chunk_names_and_copy_states():
    chunks = _chunks.parse_fileinfo(FILEINFO)
    assert [c["chunk"] for c in chunks] == ["00000000000001B0_00000001", "00000000000001B1_00000002"]
    assert chunks[0]["copies"][2] == {"address": "172.18.0.7", "status": "INVALID"}
    assert len(chunks[1]["copies"]) == 1
    assert _chunks.parse_fileinfo("no chunks here") == []


def test_copy_candidates_take_only_valid_copies_and_check_names():
    chunk = _chunks.parse_fileinfo(FILEINFO)[0]
    assert _chunks.valid_holders(chunk, ADDRESSES) == {"chunkserver-2": "172.18.0.5",
                                                       "chunkserver-1": "172.18.0.6"}
    assert _chunks.copy_candidates(chunk, "first", ADDRESSES, None, None) == ["chunkserver-2"]
    for _ in range(20):
        assert sorted(_chunks.copy_candidates(chunk, "random", ADDRESSES, None, None)) == [
            "chunkserver-1", "chunkserver-2"]
    with pytest.raises(ActivityFailed, match="chunkserver-3 holds no valid copy"):
        _chunks.copy_candidates(chunk, "chunkserver-3", ADDRESSES, None, None)
    with pytest.raises(ActivityFailed, match="copy 'chunkserver-9' is invalid"):
        _chunks.copy_candidates(chunk, "chunkserver-9", ADDRESSES, None, None)


@pytest.mark.parametrize("path", ["/etc/passwd", "a/../../b", ""])
def test_paths_must_stay_on_the_mount(path):
    with pytest.raises(ActivityFailed, match="expected a relative path on the mount"):
        _chunks.check_path(path)


def run_tool(*args: str) -> dict:
    done = subprocess.run([*TOOL, *args], capture_output=True, text=True, timeout=30, check=False)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def chunk_file(tmp_path: Path) -> Path:
    """A chunk file laid out like MooseFS's: 8 KiB header, two 64 KiB data blocks."""
    folder = tmp_path / "tiers" / "fast" / "00"
    folder.mkdir(parents=True)
    path = folder / "chunk_00000000000001B0_00000001.mfs"
    path.write_bytes(b"H" * 8192 + bytes(range(256)) * 512)
    return path


def test_locate_swap_and_compare_work_on_a_real_chunk_file(chunk_file, tmp_path):
    root = str(tmp_path / "tiers")
    found = run_tool("locate", "--root", root, "--chunk", "00000000000001B0_00000001",
                     "--offset", "65536", "--length", "4")
    assert found["file"] == str(chunk_file) and found["header"] == 8192
    assert found["offset"] == 8192 + 65536 and found["original"] == "00010203"
    common = ["--file", found["file"], "--offset", str(found["offset"])]
    assert run_tool("swap", *common, "--expect", "00010203", "--data", "fffefdfc")["how"] == "written"
    assert chunk_file.read_bytes()[found["offset"]:found["offset"] + 4] == b"\xff\xfe\xfd\xfc"
    assert run_tool("compare", *common, "--data", "fffefdfc")["how"] == "same"
    # Compare-and-swap: a second corruption or a restore of changed bytes does nothing.
    assert run_tool("swap", *common, "--expect", "00010203", "--data", "fffefdfc")["how"] == "already"
    assert run_tool("swap", *common, "--expect", "aaaaaaaa", "--data", "00010203")["how"] == "changed"
    assert run_tool("swap", *common, "--expect", "fffefdfc", "--data", "00010203")["how"] == "written"
    assert chunk_file.read_bytes()[found["offset"]:found["offset"] + 4] == b"\x00\x01\x02\x03"
    chunk_file.unlink()
    assert run_tool("swap", *common, "--expect", "fffefdfc", "--data", "00010203")["how"] == "gone"
    assert run_tool("compare", *common, "--data", "00010203")["how"] == "gone"


def test_locate_refuses_offsets_outside_the_data_and_unknown_chunks(chunk_file, tmp_path):
    root = str(tmp_path / "tiers")
    assert "cannot take 16 at 131072" in run_tool(
        "locate", "--root", root, "--chunk", "00000000000001B0_00000001", "--offset", "131072")["error"]
    assert "no file for chunk" in run_tool(
        "locate", "--root", root, "--chunk", "00000000000009FF_00000001")["error"]


def test_locate_says_when_a_copy_is_still_being_replicated_there(chunk_file, tmp_path):
    root = str(tmp_path / "tiers")
    chunk_file.rename(chunk_file.with_name("chunk_00000000000001B0_00000000.mfs"))
    found = run_tool("locate", "--root", root, "--chunk", "00000000000001B0_00000001")
    assert found["missing"] is True and found["replicating"] is True
    assert "being replicated here" in found["error"]
    other = run_tool("locate", "--root", root, "--chunk", "00000000000009FF_00000001")
    assert other["missing"] is True and other["replicating"] is False


def test_locate_does_not_guess_between_two_files_of_a_chunk_being_moved(chunk_file, tmp_path):
    moved = tmp_path / "tiers" / "bulk" / "3A" / chunk_file.name
    moved.parent.mkdir(parents=True)
    moved.write_bytes(chunk_file.read_bytes())
    found = run_tool("locate", "--root", str(tmp_path / "tiers"), "--chunk",
                     "00000000000001B0_00000001")
    assert found["missing"] is True and "in 2 files" in found["error"]
    chunk_file.unlink()
    found = run_tool("locate", "--root", str(tmp_path / "tiers"), "--chunk",
                     "00000000000001B0_00000001")
    assert found["file"] == str(moved)


class FakeCluster:
    """Unit-test fake of what locate_copy asks: mfsfileinfo rounds and chunk files on disk.

    ``on_disk[n]`` is the set of chunkservers holding the chunk's file in round ``n``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, on_disk: list[set[str]]) -> None:
        self.on_disk, self.round = on_disk, -1
        monkeypatch.setattr(_chunks, "chunkserver_addresses", lambda c, s: ADDRESSES)
        monkeypatch.setattr(_chunks, "fileinfo", self.fileinfo)
        monkeypatch.setattr(_chunks._docker, "find_container", lambda project, name: name)
        monkeypatch.setattr(_chunks, "tool", self.tool)
        monkeypatch.setattr(_chunks._settings, "project", lambda c, s: "mooseng")

    def fileinfo(self, path, client, configuration, secrets):
        self.round += 1
        return _chunks.parse_fileinfo(FILEINFO)

    def tool(self, container, args, what, fail=True):
        if container in self.on_disk[min(self.round, len(self.on_disk) - 1)]:
            return {"file": f"/{container}/chunk.mfs", "offset": 8192, "header": 8192,
                    "original": "00"}
        return {"error": "no file for chunk", "missing": True, "replicating": True}


def test_locate_copy_waits_until_every_listed_copy_is_on_disk(monkeypatch):
    fake = FakeCluster(monkeypatch, [{"chunkserver-1"}, {"chunkserver-1", "chunkserver-2"}])
    got = _chunks.locate_copy("f", 0, "chunkserver-1", 0, 1, "client-1", 10, None, None, poll=0)
    # chunkserver-1's file was there at once, but chunkserver-2's copy was still on its way.
    assert fake.round == 1
    assert (got.service, got.address, got.where["file"]) == ("chunkserver-1", "172.18.0.6",
                                                             "/chunkserver-1/chunk.mfs")


def test_locate_copy_takes_a_chosen_copy_on_disk_after_the_timeout(monkeypatch):
    FakeCluster(monkeypatch, [{"chunkserver-1"}])
    for _ in range(5):
        got = _chunks.locate_copy("f", 0, "random", 0, 1, "client-1", 0, None, None, poll=0)
        assert got.service == "chunkserver-1"


def test_locate_copy_fails_naming_the_copy_that_never_reached_the_disk(monkeypatch):
    FakeCluster(monkeypatch, [{"chunkserver-1"}])
    with pytest.raises(ActivityFailed, match=r"none chosen by copy='chunkserver-2' has its file "
                                             r"after 0 s \(chunkserver-2: no file for chunk\)"):
        _chunks.locate_copy("f", 0, "chunkserver-2", 0, 1, "client-1", 0, None, None, poll=0)
    with pytest.raises(ActivityFailed, match="f has 2 chunk\\(s\\); chunk 5 does not exist"):
        _chunks.locate_copy("f", 5, "random", 0, 1, "client-1", 0, None, None, poll=0)


def fake_chunkserver(status: int, blocks: int) -> tuple[int, list[bytes]]:
    """A socket answering one CLTOCS_READ with data packets and a status (a unit-test fake)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    requests: list[bytes] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            kind, length = struct.unpack(">II", conn.recv(8))
            requests.append(struct.pack(">I", kind) + conn.recv(length))
            conn.sendall(struct.pack(">II", chunktool.ANTOAN_NOP, 0))
            for _ in range(blocks):
                body = struct.pack(">QHHII", 0x1B0, 0, 0, 1024, 0) + b"x" * 1024
                conn.sendall(struct.pack(">II", chunktool.CSTOCL_READ_DATA, len(body)) + body)
            conn.sendall(struct.pack(">IIQB", chunktool.CSTOCL_READ_STATUS, 9, 0x1B0, status))
        server.close()

    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1], requests


@pytest.mark.parametrize("status, blocks, crc_error", [(0, 1, False), (29, 0, True)])
def test_read_copy_speaks_cltocs_read(status, blocks, crc_error):
    port, requests = fake_chunkserver(status, blocks)
    result = chunktool.read_copy("127.0.0.1", port, "00000000000001B0_00000003", 0, 1024)
    assert result == {"status": status, "crc_error": crc_error, "bytes": 1024 * blocks}
    kind, chunk_id, version, offset, size = struct.unpack(">IQIII", requests[0])
    assert (kind, chunk_id, version, offset, size) == (200, 0x1B0, 3, 0, 1024)
