"""``bandwidth``: at most ``rate`` KB/s (1 KB = 1000 bytes, as Toxiproxy counts)."""

from __future__ import annotations

from mooseng.toxiproxy.toxics.base import Attribute, Chunk, Emit, LinkControl, Stage, Toxic

# A chunk is sent in pieces worth at most this long at the rate, so a low rate still
# trickles instead of bursting a large chunk after a long pause.
PIECE_SECONDS = 0.1


class BandwidthStage(Stage):
    """Paces data: each piece leaves when the link would have finished sending it.

    The pacing clock is per connection direction; idle time earns no burst credit.
    ``rate`` 0 means no limit (as in Toxiproxy).
    """

    KIND = "bandwidth"
    ATTRIBUTES = (Attribute("rate"),)

    def __init__(self, toxic: Toxic, link: LinkControl) -> None:
        super().__init__(toxic, link)
        self._free_at = 0.0

    async def on_data(self, chunk: Chunk, emit: Emit) -> None:
        """Pass ``chunk`` on in pieces, each after its transmission time at the rate."""
        loop = self.link.loop
        data = chunk.data
        while data:
            rate = self.attr("rate")
            if not self.applies() or rate <= 0:
                await emit(Chunk(data, chunk.stamp))
                return
            bytes_per_second = rate * 1000
            piece = data[:max(1, int(bytes_per_second * PIECE_SECONDS))]
            due = max(loop.time(), self._free_at) + len(piece) / bytes_per_second
            await self.wait(due)
            if loop.time() < due:
                continue  # interrupted: the rate changed or the toxic went away
            self._free_at = due
            await emit(Chunk(piece, chunk.stamp))
            data = data[len(piece):]
