"""The reply barrier: a proxy in front of mfsmaster's client port.

Client -> master bytes pass straight through. Master -> client bytes are framed; every
packet except ANTOAN_NOP is held. To learn what a held reply may depend on, the barrier
sends CLTOMA_INFO on its own connection to mfsmaster after seeing it: mfsmaster is one
thread and bumps ``meta_version`` inside ``changelog()`` before it queues the reply, so
the answer's ``meta_version - 1`` is at least every change that existed when each reply
seen before the INFO was sent was produced. Those replies go out once ``quorum`` followers
have acknowledged that change number. One INFO in flight covers every reply seen before it
was sent (batching); a few may be in flight at once (pipelining).

A reply is never released without that acknowledgement. A client connection whose oldest
held reply waits longer than ``hold_timeout`` is closed instead: the client sees a lost
connection (outcome unknown, it reconnects and retries) rather than an acknowledgement of
a change that may be lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field

from mooseng.barrier import protocol

log = logging.getLogger("mooseng.barrier.proxy")


class BarrierState:
    """Which held replies may go: sequence numbers, INFO probes, follower acks. No I/O."""

    def __init__(self, quorum: int = 1) -> None:
        if quorum < 1:
            raise ValueError(f"quorum is {quorum} but should be at least 1")
        self.quorum = quorum
        self.seq = 0            # replies seen so far (each held reply gets the next number)
        self.probed = 0         # replies covered by the last INFO sent
        self.released = 0       # replies numbered up to this may go to their clients
        self.in_flight: deque[int] = deque()           # seq covered by each INFO sent
        self.answered: deque[tuple[int, int]] = deque()  # (seq covered, change needed)
        self.acks: dict[str, int] = {}

    def note_reply(self) -> int:
        self.seq += 1
        return self.seq

    def wants_probe(self, max_in_flight: int) -> bool:
        return self.seq > self.probed and len(self.in_flight) < max_in_flight

    def probe_sent(self) -> None:
        self.in_flight.append(self.seq)
        self.probed = self.seq

    def probe_answered(self, meta_version: int) -> bool:
        """An INFO answer (answers come in order); True when more replies may go."""
        covered = self.in_flight.popleft()
        self.answered.append((covered, meta_version - 1))
        return self._advance()

    def probes_lost(self) -> None:
        """The INFO connection broke: what was asked must be asked again."""
        self.in_flight.clear()
        self.probed = max(self.released, max((s for s, _ in self.answered), default=0))

    def ack(self, node: str, version: int) -> bool:
        """A follower holds every change up to ``version``; True when more replies may go."""
        if version <= self.acks.get(node, 0):
            return False
        self.acks[node] = version
        return self._advance()

    def confirmed(self) -> int:
        """The change number that ``quorum`` followers hold."""
        versions = sorted(self.acks.values(), reverse=True)
        return versions[self.quorum - 1] if len(versions) >= self.quorum else 0

    def _advance(self) -> bool:
        confirmed = self.confirmed()
        moved = False
        while self.answered and self.answered[0][1] <= confirmed:
            self.released = max(self.released, self.answered.popleft()[0])
            moved = True
        return moved


@dataclass(eq=False)
class ClientLink:
    """One client connection through the barrier."""

    peer: str
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    held: deque[tuple[int, bytes, float]] = field(default_factory=deque)
    closed: bool = False

    def close(self) -> None:
        self.closed = True
        self.held.clear()
        for writer in (self.client, self.upstream):
            with contextlib.suppress(Exception):
                writer.close()


@dataclass
class Stats:
    replies: int = 0
    passed_nops: int = 0
    probes: int = 0
    timeouts: int = 0
    hold_times: list[float] = field(default_factory=list)

    def record(self, seconds: float) -> None:
        if len(self.hold_times) < 1_000_000:
            self.hold_times.append(seconds)

    def summary(self) -> str:
        times = sorted(self.hold_times)
        def pct(p: float) -> float:
            return times[min(len(times) - 1, int(p * len(times)))] * 1000 if times else 0.0
        per_probe = self.replies / self.probes if self.probes else 0.0
        return (f"replies={self.replies} nops={self.passed_nops} probes={self.probes} "
                f"replies_per_probe={per_probe:.2f} timeouts={self.timeouts} "
                f"hold_ms_p50={pct(0.5):.2f} hold_ms_p99={pct(0.99):.2f}")


class ReplyBarrier:
    """The proxy: listen for clients and for follower acks, probe mfsmaster with INFO."""

    def __init__(self, master: tuple[str, int], listen: tuple[str, int],
                 ack_listen: tuple[str, int], enabled: bool = True, quorum: int = 1,
                 hold_timeout: float = 10.0, max_in_flight: int = 4, epoch: int = 0) -> None:
        self.master = master
        self.listen = listen
        self.ack_listen = ack_listen
        self.enabled = enabled
        self.state = BarrierState(quorum)
        self.hold_timeout = hold_timeout
        self.max_in_flight = max_in_flight
        self.epoch = epoch
        self.links: set[ClientLink] = set()
        self.stats = Stats()
        self._kick = asyncio.Event()
        self._servers: list[asyncio.base_events.Server] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._servers.append(await asyncio.start_server(self._client, *self.listen))
        if self.enabled:
            self._servers.append(await asyncio.start_server(self._acker, *self.ack_listen))
            self._tasks.append(asyncio.create_task(self._probe_loop()))
            if self.hold_timeout > 0:
                self._tasks.append(asyncio.create_task(self._timeout_loop()))
        log.info("event=barrier_listening clients=%s:%d acks=%s:%d master=%s:%d enabled=%s "
                 "quorum=%d", *self.listen, *self.ack_listen, *self.master, self.enabled,
                 self.state.quorum)

    @property
    def client_port(self) -> int:
        return self._servers[0].sockets[0].getsockname()[1]

    @property
    def ack_port(self) -> int:
        return self._servers[1].sockets[0].getsockname()[1]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for server in self._servers:
            server.close()
        for link in list(self.links):
            link.close()
        log.info("event=barrier_stopped %s", self.stats.summary())

    # --- clients -----------------------------------------------------------------------
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = writer.get_extra_info("peername")[:2]
        peer = f"{host}:{port}"
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.master)
        except OSError as exc:
            log.warning("%s event=upstream_failed reason=%r", peer, str(exc))
            writer.close()
            return
        link = ClientLink(peer, writer, up_writer)
        self.links.add(link)
        try:
            await asyncio.gather(self._to_master(reader, link), self._to_client(up_reader, link))
        except (OSError, protocol.ProtocolError, asyncio.IncompleteReadError) as exc:
            log.info("%s event=client_link_closed reason=%r", peer, str(exc))
        finally:
            self.links.discard(link)
            link.close()

    async def _to_master(self, reader: asyncio.StreamReader, link: ClientLink) -> None:
        while not link.closed:
            data = await reader.read(1 << 16)
            if not data:
                break
            link.upstream.write(data)
            await link.upstream.drain()
        link.close()

    async def _to_client(self, reader: asyncio.StreamReader, link: ClientLink) -> None:
        framer = protocol.Framer()
        while not link.closed:
            data = await reader.read(1 << 16)
            if not data:
                break
            now = time.monotonic()
            for frame in framer.feed(data):
                if not self.enabled:
                    link.client.write(frame.raw)
                elif frame.kind == protocol.ANTOAN_NOP and not link.held:
                    # Keep-alives carry no state: with nothing held they pass at once.
                    self.stats.passed_nops += 1
                    link.client.write(frame.raw)
                elif frame.kind == protocol.ANTOAN_NOP:
                    # Behind held replies they keep their place (mfsmount reads the packet
                    # after its register request as the answer: "got incorrect answer from
                    # mfsmaster" when a NOP overtakes it) and go with the reply before them.
                    link.held.append((link.held[-1][0], frame.raw, now))
                else:
                    self.stats.replies += 1
                    link.held.append((self.state.note_reply(), frame.raw, now))
            if self.enabled and self.state.wants_probe(self.max_in_flight):
                self._kick.set()
            await link.client.drain()
        link.close()

    def _release(self) -> None:
        released = self.state.released
        now = time.monotonic()
        for link in list(self.links):
            if link.closed or not link.held or link.held[0][0] > released:
                continue
            out = []
            while link.held and link.held[0][0] <= released:
                _, raw, since = link.held.popleft()
                out.append(raw)
                if raw[:4] != b"\0\0\0\0":  # a NOP's wait is not a reply's
                    self.stats.record(now - since)
            link.client.write(b"".join(out))

    # --- INFO probes ----------------------------------------------------------------------
    async def _probe_loop(self) -> None:
        while True:
            try:
                await self._probe_connection()
            except (OSError, protocol.ProtocolError, asyncio.IncompleteReadError) as exc:
                log.warning("event=probe_connection_lost reason=%r", str(exc))
            self.state.probes_lost()
            await asyncio.sleep(0.2)

    async def _probe_connection(self) -> None:
        reader, writer = await asyncio.open_connection(*self.master)
        answers = asyncio.create_task(self._probe_answers(reader))
        keepalive = asyncio.create_task(self._probe_keepalive(writer))
        try:
            while not answers.done():
                await self._kick.wait()  # _probe_answers also kicks when it ends
                self._kick.clear()
                while self.state.wants_probe(self.max_in_flight):
                    self.state.probe_sent()
                    self.stats.probes += 1
                    writer.write(protocol.info_request())
                await writer.drain()
            answers.result()
        finally:
            answers.cancel()
            keepalive.cancel()
            writer.close()

    @staticmethod
    async def _probe_keepalive(writer: asyncio.StreamWriter) -> None:
        while True:  # mfsmaster drops a client connection silent for 10 s
            await asyncio.sleep(2.0)
            writer.write(protocol.pack(protocol.ANTOAN_NOP))

    async def _probe_answers(self, reader: asyncio.StreamReader) -> None:
        try:
            await self._read_answers(reader)
        finally:
            self._kick.set()

    async def _read_answers(self, reader: asyncio.StreamReader) -> None:
        framer = protocol.Framer()
        while True:
            data = await reader.read(1 << 16)
            if not data:
                raise ConnectionError("mfsmaster closed the INFO connection")
            for frame in framer.feed(data):
                if frame.kind != protocol.MATOCL_INFO:
                    continue
                if self.state.probe_answered(protocol.info_meta_version(frame.payload)):
                    self._release()
                self._kick.set()  # replies seen meanwhile need the next probe

    # --- follower acks ---------------------------------------------------------------------
    async def _acker(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = writer.get_extra_info("peername")[:2]
        peer = f"{host}:{port}"
        framer = protocol.Framer(1024)
        node = None
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    break
                for frame in framer.feed(data):
                    if frame.kind == protocol.BARRIER_HELLO:
                        name, _, epoch = frame.payload.decode().partition(" ")
                        if epoch and int(epoch) != self.epoch:
                            log.warning("%s event=ack_refused node=%s epoch=%s expected=%d",
                                        peer, name, epoch, self.epoch)
                            return
                        node = name
                        log.info("%s event=follower_acks node=%s", peer, node)
                    elif (frame.kind == protocol.BARRIER_ACK and node is not None
                          and self.state.ack(node, protocol.parse_ack(frame.payload))):
                        self._release()
        except (OSError, protocol.ProtocolError, ValueError) as exc:
            log.info("%s event=ack_link_closed reason=%r", peer, str(exc))
        finally:
            writer.close()

    # --- liveness --------------------------------------------------------------------------
    async def _timeout_loop(self) -> None:
        while True:
            await asyncio.sleep(min(0.1, self.hold_timeout / 4))
            limit = time.monotonic() - self.hold_timeout
            for link in list(self.links):
                if link.held and link.held[0][2] < limit:
                    self.stats.timeouts += 1
                    log.warning("%s event=held_reply_timeout held=%d confirmed=%d "
                                "action=close_connection", link.peer, len(link.held),
                                self.state.confirmed())
                    link.close()
