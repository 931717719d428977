"""``reset_peer``: the first data (or close) on the stream, ``timeout`` ms later, resets
the connection: both sides get an RST (SO_LINGER 0), as Toxiproxy does."""

from __future__ import annotations

from mooseng.toxiproxy.toxics.base import Attribute, Chunk, Emit, EmitEof, Stage


class ResetPeerStage(Stage):
    """Holds the first chunk or close that arrives, waits ``timeout`` ms, then resets.

    Like Toxiproxy, the countdown starts with traffic on this stream, not when the toxic
    is added: an idle connection is not reset until something is sent.
    """

    KIND = "reset_peer"
    ATTRIBUTES = (Attribute("timeout"),)

    async def _countdown(self) -> bool:
        """Wait out ``timeout`` then reset; False when the toxic went away first."""
        start = self.link.loop.time()
        while self.applies():
            deadline = start + self.attr("timeout") / 1000
            if self.link.loop.time() >= deadline:
                self.link.reset(f"reset_peer toxic {self.toxic.name} reset the connection")
                return True
            await self.wait(deadline)
        return False

    async def on_data(self, chunk: Chunk, emit: Emit) -> None:
        """Reset instead of passing ``chunk`` (unless the toxic goes away meanwhile)."""
        if not await self._countdown():
            await emit(chunk)

    async def on_eof(self, emit_eof: EmitEof) -> None:
        """Reset instead of passing the close (unless the toxic goes away meanwhile)."""
        if not await self._countdown():
            await emit_eof()
