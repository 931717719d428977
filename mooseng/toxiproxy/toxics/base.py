"""The toxic contract: a validated configuration and the stage that applies it.

A :class:`Toxic` is what the API shows and what a proxy keeps: name, type, stream,
toxicity and integer attributes, checked when created or updated. A :class:`Stage` is
that toxic on one direction of one connection: it owns the per-connection state (bytes
counted, the bandwidth clock, the timeout timer) and dies with the connection.

A stage receives each chunk with ``on_data(chunk, emit)`` and passes what survives to the
next stage (or the socket) by awaiting ``emit``; ``on_eof(emit_eof)`` does the same for
the end of the stream. Waits go through :meth:`Stage.wait`, which an update or removal of
the toxic interrupts, so a change reaches connections that are already open.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

STREAMS = ("upstream", "downstream")
INT64_MAX = 2**63 - 1


class ToxicError(ValueError):
    """A toxic's input is invalid (the API answers 400)."""


class UnknownToxicType(ToxicError):
    """The ``type`` names no toxic this server knows."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes on their way through a pump, stamped with the loop time they were read at."""

    data: bytes
    stamp: float


Emit = Callable[[Chunk], Awaitable[None]]
EmitEof = Callable[[], Awaitable[None]]


class LinkControl(Protocol):
    """What a stage may see of and do to the direction (and connection) it sits on."""

    peer: str
    loop: asyncio.AbstractEventLoop

    @property
    def source_ended(self) -> bool:
        """True once the sending side has closed its half (EOF read)."""
        ...

    def close(self, reason: str) -> None:
        """Close the whole connection (FIN on both sides) for ``reason``."""
        ...

    def reset(self, reason: str) -> None:
        """Reset the whole connection (RST on both sides) for ``reason``."""
        ...


@dataclass(frozen=True)
class Attribute:
    """One integer attribute of a toxic type, with its default and bounds."""

    name: str
    minimum: int = 0
    maximum: int = INT64_MAX
    default: int = 0

    def parse(self, kind: str, value: Any) -> int:
        """``value`` as an int within bounds, or ToxicError saying what was wrong."""
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ToxicError(f"{kind} attribute {self.name} must be an integer, got {value!r}")
        if value < self.minimum:
            raise ToxicError(f"{kind} attribute {self.name} is {value} but must be >= "
                             f"{self.minimum}")
        if value > self.maximum:
            raise ToxicError(f"{kind} attribute {self.name} is {value} but must be <= "
                             f"{self.maximum}")
        return value


@dataclass(frozen=True)
class Toxic:
    """A toxic as configured on a proxy; immutable, an update makes a new one.

    ``seq`` orders toxics in their chain (later added, later applied) and survives updates.
    """

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: Mapping[str, int] = field(default_factory=dict)
    seq: int = 0

    def to_json(self) -> dict[str, Any]:
        """The toxic as Toxiproxy's API renders it."""
        return {"attributes": dict(self.attributes), "name": self.name, "type": self.type,
                "stream": self.stream, "toxicity": self.toxicity}


class Stage:
    """One toxic applied to one direction of one connection (base: pass everything).

    Subclasses set ``KIND`` and ``ATTRIBUTES`` and override the hooks they need. The
    toxicity is rolled when the stage starts and again on every update, as Toxiproxy
    rolls it each time it (re)starts a toxic on a link; an inactive stage passes data.
    """

    KIND: ClassVar[str] = ""
    ATTRIBUTES: ClassVar[tuple[Attribute, ...]] = ()

    def __init__(self, toxic: Toxic, link: LinkControl) -> None:
        self.toxic = toxic
        self.link = link
        self.active = False
        self.removed = False
        self._waiter: asyncio.Future[None] | None = None

    @classmethod
    def check(cls, attributes: Mapping[str, int]) -> None:
        """Checks across attributes (raise ToxicError); single values are checked already."""

    @property
    def seq(self) -> int:
        """Position of the toxic in its chain."""
        return self.toxic.seq

    def attr(self, name: str) -> int:
        """The current value of attribute ``name``."""
        return self.toxic.attributes[name]

    def start(self) -> None:
        """Roll the toxicity and start whatever the toxic does without data (timers)."""
        self.active = random.random() < self.toxic.toxicity
        if self.active:
            self.on_start()

    def update(self, toxic: Toxic) -> None:
        """Take new attributes/toxicity: stop, re-roll, restart; wake a waiting chunk."""
        self.on_stop()
        self.toxic = toxic
        self.start()
        self.interrupt()

    def remove(self) -> None:
        """The toxic was removed: stop its timers and let a waiting chunk through."""
        self.removed = True
        self.on_stop()
        self.interrupt()

    def applies(self) -> bool:
        """True while this stage should act on data (active and not removed)."""
        return self.active and not self.removed

    def on_start(self) -> None:
        """Hook: the stage became active (connection opened, toxic added or updated)."""

    def on_stop(self) -> None:
        """Hook: the stage is being updated, removed or its connection closed."""

    def on_source_end(self) -> None:
        """Hook: the sending side closed its half; data still queued may follow."""

    async def on_data(self, chunk: Chunk, emit: Emit) -> None:
        """Pass ``chunk`` on (possibly later, in pieces, or never) by awaiting ``emit``."""
        await emit(chunk)

    async def on_eof(self, emit_eof: EmitEof) -> None:
        """Pass the end of the stream on by awaiting ``emit_eof``."""
        await emit_eof()

    def interrupt(self) -> None:
        """Wake a pending :meth:`wait` early."""
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self, deadline: float | None) -> None:
        """Sleep until loop time ``deadline`` (None: no deadline) or an interrupt.

        Returns at once when the deadline has passed; the caller re-checks its state after.
        """
        loop = self.link.loop
        if deadline is not None and deadline <= loop.time():
            return
        waiter = loop.create_future()
        self._waiter = waiter
        timer = None
        if deadline is not None:
            timer = loop.call_at(deadline, _wake, waiter)
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()
            self._waiter = None


def _wake(waiter: asyncio.Future[None]) -> None:
    """Timer callback: resolve ``waiter`` unless it is resolved or cancelled already."""
    if not waiter.done():
        waiter.set_result(None)
