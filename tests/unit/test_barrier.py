"""The reply barrier prototype on fakes: framing, release rule, tap files, proxy end to end."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import pytest

from mooseng.barrier import protocol
from mooseng.barrier.proxy import BarrierState, ReplyBarrier
from mooseng.barrier.tap import ChangelogFile, Tap


# --- protocol ----------------------------------------------------------------------------
def test_framer_reassembles_packets_split_anywhere() -> None:
    stream = protocol.pack(7, b"abc") + protocol.pack(0) + protocol.pack(9, b"x" * 300)
    framer = protocol.Framer()
    frames = [f for i in range(len(stream)) for f in framer.feed(stream[i:i + 1])]
    assert [(f.kind, f.payload) for f in frames] == [(7, b"abc"), (0, b""), (9, b"x" * 300)]
    assert framer.pending == 0
    assert frames[0].raw == stream[:11]


def test_framer_refuses_absurd_length() -> None:
    with pytest.raises(protocol.ProtocolError):
        list(protocol.Framer(100).feed(struct.pack(">II", 1, 101)))


def info_payload(meta_version: int) -> bytes:
    body = bytearray(149)
    struct.pack_into(">Q", body, 121, meta_version)
    return bytes(body)


def test_info_meta_version_read_at_offset_121() -> None:
    assert protocol.info_meta_version(info_payload(4242)) == 4242
    with pytest.raises(protocol.ProtocolError):
        protocol.info_meta_version(b"\0" * 100)


def test_register_packets_match_mfsmetalogger_sizes() -> None:
    fresh = next(iter(protocol.Framer().feed(protocol.register_metalogger(10))))
    resume = next(iter(protocol.Framer().feed(protocol.register_metalogger(10, 77))))
    assert (fresh.kind, len(fresh.payload), fresh.payload[0]) == (50, 7, 1)
    assert (resume.kind, len(resume.payload), resume.payload[0]) == (50, 15, 2)
    assert struct.unpack(">HBBHQ", resume.payload[1:]) == (3, 0, 117, 10, 77)


def test_metachanges_round_trip_and_rotate() -> None:
    entry = protocol.LogEntry(12, b"1795933004|CREATE(1,f1,1,438,18,0,0,0):3")
    frame = next(iter(protocol.Framer().feed(protocol.metachanges(entry))))
    assert protocol.parse_metachanges(frame.payload) == entry
    assert entry.line() == b"12: 1795933004|CREATE(1,f1,1,438,18,0,0,0):3\n"
    assert protocol.parse_metachanges(b"\x55") is None
    with pytest.raises(protocol.ProtocolError):
        protocol.parse_metachanges(b"\xaa" + b"\0" * 12)


def test_covered_version_reads_changelogs_and_metadata_header(tmp_path: Path) -> None:
    (tmp_path / "changelog_ml.0.mfs").write_bytes(b"5: a\n6: b\n7: partial")
    (tmp_path / "metadata_ml.mfs.back").write_bytes(b"MFSM 2.0" + struct.pack(">QQ", 3, 0))
    assert protocol.last_version_in_changelog(tmp_path / "changelog_ml.0.mfs") == 6
    assert protocol.covered_version(tmp_path) == 6
    (tmp_path / "metadata_ml.mfs.back").write_bytes(b"MFSM 2.0" + struct.pack(">QQ", 10, 0))
    assert protocol.covered_version(tmp_path) == 9


# --- release rule --------------------------------------------------------------------------
def test_replies_go_only_after_a_follower_holds_the_info_version() -> None:
    state = BarrierState()
    state.note_reply()
    state.note_reply()
    assert state.wants_probe(4)
    state.probe_sent()
    state.note_reply()  # seen after the probe: not covered by it
    assert not state.probe_answered(11)       # needs change 10, nobody acked
    assert not state.ack("f1", 9)
    assert state.released == 0
    assert state.ack("f1", 10)
    assert state.released == 2
    assert state.wants_probe(4)               # reply 3 needs its own probe


def test_quorum_takes_the_kth_highest_ack() -> None:
    state = BarrierState(quorum=2)
    state.note_reply()
    state.probe_sent()
    state.probe_answered(6)
    assert not state.ack("f1", 100)
    assert state.ack("f2", 5)
    assert state.released == 1


def test_lost_probe_connection_asks_again() -> None:
    state = BarrierState()
    state.note_reply()
    state.probe_sent()
    assert not state.wants_probe(4)
    state.probes_lost()
    assert state.wants_probe(4)


# --- tap files -------------------------------------------------------------------------------
def entries(*versions: int) -> list[protocol.LogEntry]:
    return [protocol.LogEntry(v, b"t|ACCESS(1)") for v in versions]


def test_tap_skips_resent_lines_and_starts_a_segment_at_a_hole(tmp_path: Path) -> None:
    tap = Tap(("h", 1), [], tmp_path, "f1", sync="write", anchor=lambda: 4)
    tap.accept(entries(5, 6, 7))
    assert tap.ackable() == 7
    tap.accept(entries(6, 7, 8))
    assert tap.file.last == 8
    tap.accept(entries(11, 12))
    assert tap.ackable() == 0                  # the metalogger covers 4, not 10
    assert [p.name for p in sorted(tmp_path.iterdir())] == [
        "changelog_ml_back.100.mfs", "changelog_ml_back.101.mfs"]
    assert (tmp_path / "changelog_ml_back.100.mfs").read_bytes() == b"".join(
        e.line() for e in entries(5, 6, 7, 8))


def test_fresh_tap_acknowledges_what_the_metalogger_covers_at_once(tmp_path: Path) -> None:
    tap = Tap(("h", 1), [], tmp_path, "f1", sync="write", anchor=lambda: 10)
    assert tap.ackable() == 0
    assert tap.next_version() == 11
    assert tap.ackable() == 10                 # no need to wait for change 11 to confirm 10
    tap.accept(entries(11, 12))
    assert tap.ackable() == 12


def test_tap_resumes_after_its_own_file(tmp_path: Path) -> None:
    ChangelogFile(tmp_path, "write").append(entries(3, 4))
    with (tmp_path / "changelog_ml_back.100.mfs").open("ab") as handle:
        handle.write(b"5: torn")
    tap = Tap(("h", 1), [], tmp_path, "f1", sync="write", anchor=lambda: 2)
    assert tap.next_version() == 5
    assert (tmp_path / "changelog_ml_back.100.mfs").read_bytes().endswith(b"4: t|ACCESS(1)\n")


# --- end to end on a fake mfsmaster ---------------------------------------------------------
class FakeMaster:
    """Client port: every request makes one change and gets a reply; INFO gives meta_version.
    Metalogger port: streams the changes to registered taps (when ``streaming``)."""

    def __init__(self) -> None:
        self.meta_version = 1
        self.taps: list[asyncio.StreamWriter] = []
        self.streaming = True
        self.backlog: list[protocol.LogEntry] = []

    async def client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = protocol.Framer()
        while data := await reader.read(4096):
            for frame in framer.feed(data):
                if frame.kind == protocol.CLTOMA_INFO:
                    writer.write(protocol.pack(protocol.MATOCL_INFO,
                                               info_payload(self.meta_version)))
                elif frame.kind == 1000:
                    entry = protocol.LogEntry(self.meta_version, b"t|ACCESS(1)")
                    self.meta_version += 1
                    writer.write(protocol.pack(1001, frame.payload))  # reply first, like mfsmaster
                    self.backlog.append(entry)
                    self.flush()
        writer.close()

    def flush(self) -> None:
        if self.streaming:
            for entry in self.backlog:
                for tap in self.taps:
                    tap.write(protocol.metachanges(entry))
            self.backlog.clear()

    async def metalogger(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(8 + 7)
        self.taps.append(writer)
        while await reader.read(4096):
            pass


async def _request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tag: bytes,
                   timeout: float) -> bytes:
    writer.write(protocol.pack(1000, tag))
    header = await asyncio.wait_for(reader.readexactly(8), timeout)
    _kind, length = struct.unpack(">II", header)
    return await reader.readexactly(length)


def test_proxy_holds_replies_until_the_tap_acknowledges(tmp_path: Path) -> None:
    async def scenario() -> None:
        fake = FakeMaster()
        client_srv = await asyncio.start_server(fake.client, "127.0.0.1", 0)
        ml_srv = await asyncio.start_server(fake.metalogger, "127.0.0.1", 0)
        client_port = client_srv.sockets[0].getsockname()[1]
        ml_port = ml_srv.sockets[0].getsockname()[1]
        barrier = ReplyBarrier(("127.0.0.1", client_port), ("127.0.0.1", 0), ("127.0.0.1", 0),
                               hold_timeout=0)
        await barrier.start()
        tap = Tap(("127.0.0.1", ml_port), [("127.0.0.1", barrier.ack_port)], tmp_path, "f1",
                  sync="write", reconnect_delay=0.05)
        tap_task = asyncio.create_task(tap.run())
        reader, writer = await asyncio.open_connection("127.0.0.1", barrier.client_port)
        while not fake.taps:
            await asyncio.sleep(0.01)
        assert await _request(reader, writer, b"one", 2.0) == b"one"
        fake.streaming = False                 # the follower is cut off
        with pytest.raises(asyncio.TimeoutError):
            await _request(reader, writer, b"two", 0.5)
        assert fake.meta_version == 3          # applied by the master, reply held
        fake.streaming = True
        fake.flush()                           # the follower catches up: the reply goes
        header = await asyncio.wait_for(reader.readexactly(8), 2.0)
        assert await reader.readexactly(struct.unpack(">II", header)[1]) == b"two"
        assert tap.file.last == 2
        writer.close()
        tap_task.cancel()
        await barrier.stop()
        client_srv.close()
        ml_srv.close()

    asyncio.run(scenario())


def test_nop_never_overtakes_a_held_reply() -> None:
    async def scenario() -> None:
        async def master(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            framer = protocol.Framer()
            while data := await reader.read(4096):
                for frame in framer.feed(data):
                    if frame.kind == protocol.CLTOMA_INFO:
                        writer.write(protocol.pack(protocol.MATOCL_INFO, info_payload(5)))
                    else:
                        writer.write(protocol.pack(1001, b"reply") + protocol.pack(0))

        server = await asyncio.start_server(master, "127.0.0.1", 0)
        barrier = ReplyBarrier(("127.0.0.1", server.sockets[0].getsockname()[1]),
                               ("127.0.0.1", 0), ("127.0.0.1", 0), hold_timeout=0)
        await barrier.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", barrier.client_port)
        writer.write(protocol.pack(1000))
        with pytest.raises(asyncio.TimeoutError):  # neither the reply nor the NOP after it
            await asyncio.wait_for(reader.readexactly(1), 0.3)
        barrier.state.ack("f1", 4)
        barrier._release()
        data = await asyncio.wait_for(reader.readexactly(8 + 5 + 8), 2.0)
        assert data == protocol.pack(1001, b"reply") + protocol.pack(0)
        await barrier.stop()
        server.close()

    asyncio.run(scenario())


def test_proxy_closes_a_connection_whose_reply_waits_too_long() -> None:
    async def scenario() -> None:
        fake = FakeMaster()
        client_srv = await asyncio.start_server(fake.client, "127.0.0.1", 0)
        port = client_srv.sockets[0].getsockname()[1]
        barrier = ReplyBarrier(("127.0.0.1", port), ("127.0.0.1", 0), ("127.0.0.1", 0),
                               hold_timeout=0.3)
        await barrier.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", barrier.client_port)
        writer.write(protocol.pack(1000, b"x"))
        assert await asyncio.wait_for(reader.read(100), 2.0) == b""  # closed, no reply
        assert barrier.stats.timeouts == 1
        await barrier.stop()
        client_srv.close()

    asyncio.run(scenario())
