"""One proxied connection: a task that owns a pump per direction.

Each :class:`Pump` moves one direction (``upstream``: client to server, ``downstream``:
server to client). Its reader reads bounded chunks (``CHUNK_SIZE``) and stamps them with
the time they were read; its writer takes them in order, passes each through the
direction's toxic stages, writes what comes out and awaits ``drain()``. A queue bounded
in bytes sits between the two, so a latency toxic delays every chunk from its own read
time without throttling a steady stream, and a held stream (timeout toxic) stops reading
once the queue is full: the sender then sees TCP back-pressure, and memory stays bounded.

The end of a stream (EOF) travels through the stages like data and becomes a half-close
(``write_eof``) on the other side; the connection ends when both directions ended, when a
toxic closes or resets it, when its proxy is disabled or deleted, or on a socket error.
The connection's task is cancelled to end it; teardown closes both sockets and re-raises.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from functools import partial
from typing import Any

from mooseng.toxiproxy import log_event
from mooseng.toxiproxy.resolver import RESOLVER
from mooseng.toxiproxy.toxics import Chunk, Stage, Toxic, new_stage

log = logging.getLogger("mooseng.toxiproxy.link")

# Reads of up to 256 KiB (asyncio's own recv size): at 64 KiB the per-chunk overhead of
# Python halves the throughput (measured with scripts/toxiproxy_benchmark.py).
CHUNK_SIZE = 256 * 1024
QUEUE_BYTES = 1024 * 1024
CONNECT_TIMEOUT = 10.0
# After a graceful close, data the peer does not read is given this long to leave.
CLOSE_GRACE = 5.0


def format_address(address: tuple[object, ...] | str | None) -> str:
    """``host:port`` (``[v6]:port``) for a socket address tuple."""
    if not isinstance(address, tuple) or len(address) < 2:
        return str(address)
    host, port = str(address[0]), address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def split_host_port(text: str) -> tuple[str, int]:
    """(host, port) of ``host:port`` or ``[v6]:port``; ValueError saying what is wrong."""
    if not isinstance(text, str) or ":" not in text:
        raise ValueError(f"address {text!r} is not host:port")
    host, _, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        ipaddress.IPv6Address(host.split("%")[0])
    elif ":" in host:
        raise ValueError(f"address {text!r}: an IPv6 host must be in brackets")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"address {text!r} has no valid port (0-65535)")
    if any(ch.isspace() or ch in "/?#@" for ch in host):
        raise ValueError(f"address {text!r} has an invalid host")
    return host, int(port_text)


class ChunkQueue:
    """First-in first-out chunks between a pump's reader and writer, bounded in bytes.

    One producer and one consumer; ``None`` marks the end of the stream.
    """

    def __init__(self, max_bytes: int) -> None:
        self._items: deque[Chunk | None] = deque()
        self.busy = False  # the consumer is processing an item it took
        self._bytes = 0
        self._max_bytes = max_bytes
        self._getter: asyncio.Future[None] | None = None
        self._putter: asyncio.Future[None] | None = None

    async def put(self, item: Chunk | None) -> None:
        """Append ``item``, first waiting while the queue holds ``max_bytes`` or more."""
        while self._bytes >= self._max_bytes:
            self._putter = asyncio.get_running_loop().create_future()
            try:
                await self._putter
            finally:
                self._putter = None
        self._items.append(item)
        if item is not None:
            self._bytes += len(item.data)
        if self._getter is not None and not self._getter.done():
            self._getter.set_result(None)

    def empty(self) -> bool:
        """True when nothing is queued."""
        return not self._items

    async def get(self) -> Chunk | None:
        """The oldest item, waiting for one if the queue is empty."""
        while not self._items:
            self._getter = asyncio.get_running_loop().create_future()
            try:
                await self._getter
            finally:
                self._getter = None
        item = self._items.popleft()
        if item is not None:
            self._bytes -= len(item.data)
            if (self._bytes < self._max_bytes and self._putter is not None
                    and not self._putter.done()):
                self._putter.set_result(None)
        return item


class Pump:
    """One direction of a connection: source socket, toxic stages, destination socket.

    Implements the ``LinkControl`` a stage sees: the peer, the loop, whether the source
    ended, and closing or resetting the whole connection.
    """

    def __init__(self, connection: Connection, stream: str, source: asyncio.StreamReader,
                 dest: asyncio.StreamWriter) -> None:
        self.connection = connection
        self.stream = stream
        self.peer = connection.peer
        self.loop = connection.loop
        self.source = source
        self.dest = dest
        self.stages: list[Stage] = []
        self.bytes_in = 0
        self.bytes_out = 0
        self._queue = ChunkQueue(QUEUE_BYTES)
        self._source_ended = False
        self._writer: asyncio.Task[None] | None = None

    @property
    def source_ended(self) -> bool:
        """True once EOF was read from the source."""
        return self._source_ended

    def close(self, reason: str) -> None:
        """Close the whole connection gracefully (a toxic asked)."""
        self.connection.close(reason)

    def reset(self, reason: str) -> None:
        """Reset the whole connection (a toxic asked)."""
        self.connection.reset(reason)

    def add_toxic(self, toxic: Toxic) -> None:
        """Start applying ``toxic`` here, after the stages added before it."""
        stage = new_stage(toxic, self)
        self.stages.append(stage)
        self.stages.sort(key=lambda each: each.seq)

    def update_toxic(self, toxic: Toxic) -> None:
        """Give the stage of ``toxic`` (by name) its new configuration."""
        for stage in self.stages:
            if stage.toxic.name == toxic.name:
                stage.update(toxic)

    def remove_toxic(self, name: str) -> None:
        """Stop applying toxic ``name``; chunks it holds move on to the next stage."""
        for stage in [each for each in self.stages if each.toxic.name == name]:
            self.stages.remove(stage)
            stage.remove()

    def stop_stages(self) -> None:
        """The connection is closing: stop the stages' timers."""
        for stage in self.stages:
            stage.on_stop()

    def start(self) -> None:
        """Start reading; the writer task starts when something first needs the queue."""
        self.connection.spawn(self.read_loop())

    def _direct(self) -> bool:
        """True when the next item may skip the queue: no toxic on this direction and
        nothing ahead of it (order is kept)."""
        return not self.stages and not self._queue.busy and self._queue.empty()

    async def _enqueue(self, item: Chunk | None) -> None:
        """Queue ``item`` for the writer task, starting that task the first time."""
        if self._writer is None:
            self._writer = self.connection.spawn(self.write_loop())
        await self._queue.put(item)

    async def read_loop(self) -> None:
        """Read chunks from the source until EOF and pass them on.

        Fast path: when :meth:`_direct`, the reader writes the chunk and drains itself
        (a connection without toxics never starts a writer task); otherwise the chunk is
        stamped and queued for the writer, which applies the toxics.
        """
        while True:
            data = await self.source.read(CHUNK_SIZE)
            if not data:
                break
            self.bytes_in += len(data)
            if self._direct():
                self.dest.write(data)
                self.bytes_out += len(data)
                await self.dest.drain()
            else:
                await self._enqueue(Chunk(data, self.loop.time()))
        self._source_ended = True
        for stage in list(self.stages):
            stage.on_source_end()
        if self._direct():
            self._half_close()
        else:
            await self._enqueue(None)

    def _half_close(self) -> None:
        """Pass the end of the stream on: FIN towards the destination."""
        if self.dest.can_write_eof() and not self.dest.is_closing():
            self.dest.write_eof()

    async def write_loop(self) -> None:
        """Pass queued chunks through the stages to the destination; end with its EOF."""
        queue = self._queue
        while True:
            item = await queue.get()
            queue.busy = True
            if item is None:
                await self._eof_after(-1)
                return
            await self._data_after(-1, item)
            queue.busy = False

    def _next_stage(self, seq: int) -> Stage | None:
        """The first stage after position ``seq`` in the current chain."""
        for stage in self.stages:
            if stage.seq > seq:
                return stage
        return None

    async def _data_after(self, seq: int, chunk: Chunk) -> None:
        """Send ``chunk`` through the stages after ``seq``, then to the destination."""
        stage = self._next_stage(seq)
        while stage is not None and not stage.applies():
            stage = self._next_stage(stage.seq)
        if stage is None:
            self.dest.write(chunk.data)
            self.bytes_out += len(chunk.data)
            await self.dest.drain()
            return
        await stage.on_data(chunk, partial(self._data_after, stage.seq))

    async def _eof_after(self, seq: int) -> None:
        """Send the end of the stream through the stages after ``seq``, then half-close."""
        stage = self._next_stage(seq)
        while stage is not None and not stage.applies():
            stage = self._next_stage(stage.seq)
        if stage is None:
            self._half_close()
            return
        await stage.on_eof(partial(self._eof_after, stage.seq))


class Connection:
    """A client accepted by a proxy, its upstream connection, and the task running both.

    ``toxics`` are the proxy's toxics when the client was accepted; later changes arrive
    through :meth:`add_toxic`, :meth:`update_toxic` and :meth:`remove_toxic`.
    """

    def __init__(self, proxy_name: str, upstream: tuple[str, int],
                 client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter,
                 toxics: Iterable[Toxic], on_done: Callable[[Connection], None]) -> None:
        self.proxy_name = proxy_name
        self.upstream = upstream
        self.loop = asyncio.get_running_loop()
        self.peer = format_address(client_writer.get_extra_info("peername"))
        self.pumps: dict[str, Pump] = {}
        self.task: asyncio.Task[None] | None = None
        self._client = (client_reader, client_writer)
        self._upstream_writer: asyncio.StreamWriter | None = None
        self._toxics = list(toxics)
        self._on_done = on_done
        self._end: tuple[str, str] | None = None  # (reason, "close" | "reset" | "abort")
        self._level: int | None = None  # log level of the close line (None: by reason)
        self._children: list[asyncio.Task[None]] = []
        self._running = 0
        self._finished: asyncio.Future[None] = self.loop.create_future()
        self._started = self.loop.time()

    def start(self) -> asyncio.Task[None]:
        """Run the connection in its own task (returned)."""
        self.task = self.loop.create_task(self.run(), name=f"toxiproxy {self.proxy_name} "
                                                             f"{self.peer}")
        return self.task

    def add_toxic(self, toxic: Toxic) -> None:
        """Apply a toxic added to the proxy while this connection is open."""
        if self.pumps:
            self.pumps[toxic.stream].add_toxic(toxic)
        else:
            self._toxics.append(toxic)

    def update_toxic(self, toxic: Toxic) -> None:
        """Apply an updated toxic to this open connection."""
        if self.pumps:
            self.pumps[toxic.stream].update_toxic(toxic)
        else:
            self._toxics = [toxic if each.name == toxic.name else each for each in self._toxics]

    def remove_toxic(self, toxic: Toxic) -> None:
        """Stop applying a toxic removed from the proxy."""
        if self.pumps:
            self.pumps[toxic.stream].remove_toxic(toxic.name)
        else:
            self._toxics = [each for each in self._toxics if each.name != toxic.name]

    def close(self, reason: str) -> None:
        """End the connection: flush what was written, then FIN to both sides."""
        self._finish(reason, "close")

    def reset(self, reason: str) -> None:
        """End the connection with an RST to both sides (SO_LINGER 0)."""
        self._finish(reason, "reset")

    def abort(self, reason: str) -> None:
        """End the connection at once, dropping unsent data (proxy disabled or deleted)."""
        self._finish(reason, "abort")

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run a pump coroutine as a child task of this connection."""
        task = self.loop.create_task(coroutine)
        self._children.append(task)
        self._running += 1
        task.add_done_callback(self._child_done)
        return task

    def _child_done(self, task: asyncio.Task[None]) -> None:
        """A pump task ended: the connection is over on an error or when all ended."""
        self._running -= 1
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and self._end is None:
            self._end = (f"{type(error).__name__}: {error}", "abort")
        if (error is not None or self._running == 0) and not self._finished.done():
            self._finished.set_result(None)

    def _finish(self, reason: str, mode: str) -> None:
        """Record why and how the connection ends, and cancel its task."""
        if self._end is None:
            self._end = (reason, mode)
        if self.task is not None and not self.task.done():
            self.task.cancel()

    async def run(self) -> None:
        """Dial the upstream, pump both directions until the connection ends, tear down."""
        host, port = self.upstream
        client_reader, client_writer = self._client
        log_event(log, logging.DEBUG, "accept", peer=self.peer, proxy=self.proxy_name)
        try:
            try:
                address = await RESOLVER.resolve(host)
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    upstream_reader, upstream_writer = await asyncio.open_connection(
                        address, port, limit=CHUNK_SIZE)
            except (OSError, TimeoutError) as exc:
                reason = f"cannot connect to upstream {host}:{port}: {exc or 'timed out'}"
                self._end = (reason, "close")
                self._level = logging.WARNING
                return
            self._upstream_writer = upstream_writer
            self.pumps = {
                "upstream": Pump(self, "upstream", client_reader, upstream_writer),
                "downstream": Pump(self, "downstream", upstream_reader, client_writer),
            }
            for toxic in sorted(self._toxics, key=lambda each: each.seq):
                self.pumps[toxic.stream].add_toxic(toxic)
            for pump in self.pumps.values():
                pump.start()
            await self._finished
        finally:
            self._teardown()

    def _teardown(self) -> None:
        """Stop stages and child tasks, close both sockets as the end mode says, log."""
        reason, mode = self._end or ("closed by both sides", "close")
        for pump in self.pumps.values():
            pump.stop_stages()
        for child in self._children:
            child.cancel()
        for writer in (self._client[1], self._upstream_writer):
            if writer is not None:
                _close_writer(writer, mode, self.loop)
        up = self.pumps.get("upstream")
        down = self.pumps.get("downstream")
        natural = self._end is None or reason.startswith(("ConnectionResetError",
                                                          "BrokenPipeError"))
        level = self._level or (logging.DEBUG if natural else logging.INFO)
        log_event(log, level, "close", peer=self.peer,
                  proxy=self.proxy_name, how=mode, reason=reason,
                  sent_up=up.bytes_out if up else 0, sent_down=down.bytes_out if down else 0,
                  seconds=f"{self.loop.time() - self._started:.3f}")
        self._on_done(self)


def _close_writer(writer: asyncio.StreamWriter, mode: str,
                  loop: asyncio.AbstractEventLoop) -> None:
    """Close one side: ``close`` flushes then FINs (aborting after a grace period if the
    peer does not read), ``abort`` drops unsent data, ``reset`` sends an RST."""
    transport = writer.transport
    if mode == "reset":
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        transport.abort()
    elif mode == "abort":
        transport.abort()
    else:
        if transport.get_write_buffer_size() > 0:
            loop.call_later(CLOSE_GRACE, transport.abort)
        transport.close()

