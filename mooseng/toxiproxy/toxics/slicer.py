"""``slicer``: chunks are cut into pieces of about ``average_size`` bytes
(+/- ``size_variation``), each followed by a pause of ``delay`` microseconds."""

from __future__ import annotations

import random
from collections.abc import Mapping

from mooseng.toxiproxy.toxics.base import Attribute, Chunk, Emit, Stage, ToxicError


class SlicerStage(Stage):
    """Writes each chunk as several smaller writes, so readers see short reads."""

    KIND = "slicer"
    ATTRIBUTES = (Attribute("average_size", minimum=1), Attribute("size_variation"),
                  Attribute("delay"))

    @classmethod
    def check(cls, attributes: Mapping[str, int]) -> None:
        """``size_variation`` must stay below ``average_size`` (every piece >= 1 byte)."""
        if attributes["size_variation"] >= attributes["average_size"]:
            raise ToxicError(f"slicer attribute size_variation is {attributes['size_variation']}"
                             f" but must be < average_size ({attributes['average_size']})")

    async def on_data(self, chunk: Chunk, emit: Emit) -> None:
        """Pass ``chunk`` on in pieces with a pause after each."""
        data = chunk.data
        while data:
            if not self.applies():
                await emit(Chunk(data, chunk.stamp))
                return
            average, variation = self.attr("average_size"), self.attr("size_variation")
            size = average + (random.randint(-variation, variation) if variation else 0)
            piece, data = data[:size], data[size:]
            await emit(Chunk(piece, chunk.stamp))
            start = self.link.loop.time()
            while self.applies():
                deadline = start + self.attr("delay") / 1_000_000
                if self.link.loop.time() >= deadline:
                    break
                await self.wait(deadline)
