"""``limit_data``: the connection is closed once ``bytes`` bytes passed on this stream."""

from __future__ import annotations

from mooseng.toxiproxy.toxics.base import Attribute, Chunk, Emit, LinkControl, Stage, Toxic


class LimitDataStage(Stage):
    """Counts bytes passed while the toxic is on this connection; at the limit it passes
    the bytes up to it and closes the connection (FIN on both sides)."""

    KIND = "limit_data"
    ATTRIBUTES = (Attribute("bytes"),)

    def __init__(self, toxic: Toxic, link: LinkControl) -> None:
        super().__init__(toxic, link)
        self.passed = 0

    async def on_data(self, chunk: Chunk, emit: Emit) -> None:
        """Pass what fits under the limit; close at the limit."""
        if not self.applies():
            await emit(chunk)
            return
        limit = self.attr("bytes")
        allowed = chunk.data[:max(0, limit - self.passed)]
        if allowed:
            await emit(Chunk(allowed, chunk.stamp))
            self.passed += len(allowed)
        if self.passed >= limit:
            self.link.close(f"limit_data toxic {self.toxic.name} passed {self.passed} bytes")
