"""``slow_close``: the end of the stream is passed on ``delay`` ms late."""

from __future__ import annotations

from mooseng.toxiproxy.toxics.base import Attribute, EmitEof, Stage


class SlowCloseStage(Stage):
    """Data passes at once; the FIN that follows it waits ``delay`` ms."""

    KIND = "slow_close"
    ATTRIBUTES = (Attribute("delay"),)

    async def on_eof(self, emit_eof: EmitEof) -> None:
        """Wait ``delay`` ms (or until the toxic goes away), then pass the close on."""
        start = self.link.loop.time()
        while self.applies():
            deadline = start + self.attr("delay") / 1000
            if self.link.loop.time() >= deadline:
                break
            await self.wait(deadline)
        await emit_eof()
