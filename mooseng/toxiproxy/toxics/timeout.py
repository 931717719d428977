"""``timeout``: nothing gets through; with ``timeout`` > 0 the connection closes after it.

This is the partition toxic. Data is held, not forwarded, while the toxic is on: the
sender sees its writes stall once the buffers fill, as on a cut network. When the toxic
is removed the held bytes flow on, so the stream stays intact (Toxiproxy itself drops
the bytes and closes the connection on removal). When the sender closes its half during
the cut, the held bytes are dropped and the close goes through, as in Toxiproxy, so
closed clients do not leave connections behind.
"""

from __future__ import annotations

import asyncio

from mooseng.toxiproxy.toxics.base import Attribute, Chunk, Emit, LinkControl, Stage, Toxic


class TimeoutStage(Stage):
    """Holds every chunk while active; a ``timeout`` > 0 closes the connection that long
    after the toxic took effect on it (connection opened, toxic added or updated)."""

    KIND = "timeout"
    ATTRIBUTES = (Attribute("timeout"),)

    def __init__(self, toxic: Toxic, link: LinkControl) -> None:
        super().__init__(toxic, link)
        self._timer: asyncio.TimerHandle | None = None

    def on_start(self) -> None:
        """Arm the close timer when ``timeout`` > 0."""
        timeout_ms = self.attr("timeout")
        if timeout_ms > 0:
            self._timer = self.link.loop.call_later(timeout_ms / 1000, self._expire)

    def on_stop(self) -> None:
        """Disarm the close timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def on_source_end(self) -> None:
        """The sender closed: let the held chunk go (to be dropped)."""
        self.interrupt()

    def _expire(self) -> None:
        """Timer callback: close the connection."""
        self._timer = None
        if self.applies():
            self.link.close(f"timeout toxic {self.toxic.name} closed the connection after "
                            f"{self.attr('timeout')} ms")

    async def on_data(self, chunk: Chunk, emit: Emit) -> None:
        """Hold ``chunk`` until the toxic goes away (then pass it) or the sender closes
        (then drop it)."""
        while self.applies():
            if self.link.source_ended:
                return
            await self.wait(None)
        await emit(chunk)
