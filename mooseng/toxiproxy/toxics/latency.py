"""``latency``: every chunk leaves ``latency`` ms (+/- ``jitter`` ms) after it was read."""

from __future__ import annotations

import random

from mooseng.toxiproxy.toxics.base import Attribute, Chunk, Emit, Stage


class LatencyStage(Stage):
    """Delays each chunk relative to the time it was read, so a steady stream keeps its
    throughput (chunks queue up behind each other instead of adding their delays).

    Jitter draws an offset in [-jitter, +jitter] per chunk; order is always kept, so a
    chunk never overtakes an earlier one. A delay applied moves the chunk's stamp, so a
    second latency toxic adds to the first. Removing the toxic releases waiting chunks.
    """

    KIND = "latency"
    ATTRIBUTES = (Attribute("latency"), Attribute("jitter"))

    async def on_data(self, chunk: Chunk, emit: Emit) -> None:
        """Hold ``chunk`` until its read time plus the delay, then pass it on."""
        if not self.applies():
            await emit(chunk)
            return
        jitter = self.attr("jitter")
        offset_ms = random.randint(-jitter, jitter) if jitter > 0 else 0
        deadline = chunk.stamp
        while self.applies():
            deadline = chunk.stamp + max(0, self.attr("latency") + offset_ms) / 1000
            if self.link.loop.time() >= deadline:
                break
            await self.wait(deadline)
        if self.applies():
            chunk = Chunk(chunk.data, deadline)
        await emit(chunk)
